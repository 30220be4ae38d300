//! The reduce side of a shuffle: RDDs whose partitions are read from map outputs.

use super::{Dependency, RddBase, RddMeta, RddNode, into_any_node};
use crate::aggregator::Aggregator;
use crate::data::{BoxIter, Data, Key};
use crate::error::Result;
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::partitioner::Partitioner;
use crate::shuffle::combiner::ExternalCombiner;
use crate::shuffle::{CombineMode, ShuffleDepBase, ShuffleDependency, read_partition};
use crate::task::TaskContext;
use std::marker::PhantomData;
use std::sync::Arc;

/// Records redistributed by key, not combined (partitionBy, sortByKey's shuffle).
pub struct ShuffledRdd<K, V> {
    meta: RddMeta,
    shuffle_id: u32,
    partitions: usize,
    /// The map side; present on the driver only (executors read map outputs).
    dep: Option<Arc<dyn ShuffleDepBase>>,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K: Key, V: Data> ShuffledRdd<K, V> {
    pub fn new<P: Partitioner<K>>(parent: Arc<dyn RddNode<(K, V)>>, partitioner: P) -> Self {
        let partitions = partitioner.num_partitions();
        let dep = ShuffleDependency::<K, V, V, _, P>::new(
            parent,
            partitioner,
            crate::aggregator::NoAggregation,
            CombineMode::None,
        );
        Self {
            meta: RddMeta::new(),
            shuffle_id: dep.shuffle_id(),
            partitions,
            dep: Some(Arc::new(dep)),
            _kv: PhantomData,
        }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let shuffle_id = r.read()?;
        let partitions = r.read()?;
        Ok(into_any_node::<(K, V)>(Self { meta, shuffle_id, partitions, dep: None, _kv: PhantomData }))
    }
}

impl<K: Key, V: Data> Encode for ShuffledRdd<K, V> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.shuffle_id)?;
        w.write(&self.partitions)
    }
}

impl<K: Key, V: Data> RddBase for ShuffledRdd<K, V> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.dep.iter().map(|d| Dependency::Shuffle(d.clone())).collect()
    }
    fn op_name(&self) -> &'static str {
        "partitionBy"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<K: Key, V: Data> RddNode<(K, V)> for ShuffledRdd<K, V> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(K, V)>> {
        read_partition::<(K, V)>(ctx, self.shuffle_id, split)
    }
}

/// Marks the key, value and combiner types a node is generic over.
type KeyValueCombiner<K, V, C> = fn() -> (K, V, C);

/// Values combined per key across the shuffle (reduceByKey, groupByKey,
/// combineByKey, aggregateByKey, foldByKey, cogroup).
pub struct CombinedRdd<K, V, C, A> {
    meta: RddMeta,
    shuffle_id: u32,
    partitions: usize,
    mode: CombineMode,
    aggregator: Arc<A>,
    dep: Option<Arc<dyn ShuffleDepBase>>,
    _kvc: PhantomData<KeyValueCombiner<K, V, C>>,
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> CombinedRdd<K, V, C, A> {
    pub fn new<P: Partitioner<K>>(
        parent: Arc<dyn RddNode<(K, V)>>,
        partitioner: P,
        aggregator: A,
        map_side_combine: bool,
    ) -> Self {
        let partitions = partitioner.num_partitions();
        let mode = if map_side_combine { CombineMode::MapSide } else { CombineMode::ReduceSide };
        let dep = ShuffleDependency::<K, V, C, A, P>::new(parent, partitioner, aggregator, mode);
        Self {
            meta: RddMeta::new(),
            shuffle_id: dep.shuffle_id(),
            partitions,
            mode,
            aggregator: dep.aggregator().clone(),
            dep: Some(Arc::new(dep)),
            _kvc: PhantomData,
        }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let shuffle_id = r.read()?;
        let partitions = r.read()?;
        let mode = r.read()?;
        let aggregator: A = r.read()?;
        Ok(into_any_node::<(K, C)>(Self {
            meta,
            shuffle_id,
            partitions,
            mode,
            aggregator: Arc::new(aggregator),
            dep: None,
            _kvc: PhantomData,
        }))
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> Encode for CombinedRdd<K, V, C, A> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.shuffle_id)?;
        w.write(&self.partitions)?;
        w.write(&self.mode)?;
        w.write(&*self.aggregator)
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> RddBase for CombinedRdd<K, V, C, A> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.dep.iter().map(|d| Dependency::Shuffle(d.clone())).collect()
    }
    fn op_name(&self) -> &'static str {
        "combineByKey"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> RddNode<(K, C)> for CombinedRdd<K, V, C, A> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(K, C)>> {
        ExternalCombiner::<K, V, C, A>::in_task(self.aggregator.clone(), ctx, |combined| {
            match self.mode {
                CombineMode::MapSide => {
                    for (k, c) in read_partition::<(K, C)>(ctx, self.shuffle_id, split)? {
                        combined.insert_combiner(k, c)?;
                    }
                }
                CombineMode::ReduceSide | CombineMode::None => {
                    for (k, v) in read_partition::<(K, V)>(ctx, self.shuffle_id, split)? {
                        combined.insert_value(k, v)?;
                    }
                }
            }
            Ok(())
        })
    }
}
