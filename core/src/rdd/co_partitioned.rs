//! Per-key operations on RDDs already partitioned by key, with narrow
//! dependencies instead of a shuffle, as Spark does when an RDD's partitioner
//! is the one the operation needs:
//!
//! - [`CoPartitionedRdd`], for `cogroup` (and so `join`) of two RDDs partitioned the
//!   same way (Spark's `CoGroupedRDD` with `OneToOneDependency`s): partition i
//!   of the result groups partition i of both sides.
//! - [`LocallyCombinedRdd`], for `combineByKey` (`reduceByKey`, `aggregateByKey`, …)
//!   of an RDD already partitioned by the target partitioner (Spark's
//!   `mapPartitions(aggregator.combineValuesByKey, preservesPartitioning = true)`).
//!
//! Both combine through the same spilling [`ExternalCombiner`] as a shuffle's
//! reduce side, so a partition larger than the task's memory spills to disk.

use super::{Dependency, Parent, RddBase, RddMeta, RddNode, into_any_node, iterate};
use crate::aggregator::Aggregator;
use crate::data::{BoxIter, Data, Key};
use crate::error::{EmberError, Result};
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::shuffle::combiner::ExternalCombiner;
use crate::task::TaskContext;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::Arc;

/// Per key, its values in `left` and in `right`. Both parents must have the same
/// partitioner (the caller checks it): a key lives in the same partition on both.
pub struct CoPartitionedRdd<K: Key, V: Data, W: Data> {
    meta: RddMeta,
    left: Parent<(K, V)>,
    right: Parent<(K, W)>,
    partitions: usize,
}

/// One value of either side of a cogroup.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "V: Data, W: Data")]
enum Side<V, W> {
    Left(V),
    Right(W),
}

/// Collects each side's values of a key.
#[derive(Serialize, Deserialize)]
struct CoGroupSides;

impl<V: Data, W: Data> Aggregator<Side<V, W>, (Vec<V>, Vec<W>)> for CoGroupSides {
    fn create_combiner(&self, v: Side<V, W>) -> (Vec<V>, Vec<W>) {
        self.merge_value((Vec::new(), Vec::new()), v)
    }
    fn merge_value(&self, mut c: (Vec<V>, Vec<W>), v: Side<V, W>) -> (Vec<V>, Vec<W>) {
        match v {
            Side::Left(v) => c.0.push(v),
            Side::Right(w) => c.1.push(w),
        }
        c
    }
    fn merge_combiners(&self, mut a: (Vec<V>, Vec<W>), b: (Vec<V>, Vec<W>)) -> (Vec<V>, Vec<W>) {
        a.0.extend(b.0);
        a.1.extend(b.1);
        a
    }
}

impl<K: Key, V: Data, W: Data> CoPartitionedRdd<K, V, W> {
    /// Errors: the parents' partition counts differ.
    pub fn new(left: Arc<dyn RddNode<(K, V)>>, right: Arc<dyn RddNode<(K, W)>>) -> Result<Self> {
        Self::with_meta(RddMeta::new(), left, right)
    }

    fn with_meta(meta: RddMeta, left: Arc<dyn RddNode<(K, V)>>, right: Arc<dyn RddNode<(K, W)>>) -> Result<Self> {
        let partitions = left.num_partitions();
        if right.num_partitions() != partitions {
            return Err(EmberError::Invalid(format!(
                "co-partitioned cogroup of RDDs with {} and {} partitions",
                partitions,
                right.num_partitions()
            )));
        }
        Ok(Self { meta, left: Parent::new(left), right: Parent::new(right), partitions })
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let left = r.read_rdd::<(K, V)>()?;
        let right = r.read_rdd::<(K, W)>()?;
        Ok(into_any_node::<(K, (Vec<V>, Vec<W>))>(Self::with_meta(meta, left, right)?))
    }
}

impl<K: Key, V: Data, W: Data> Encode for CoPartitionedRdd<K, V, W> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write_rdd(&self.left)?;
        w.write_rdd(&self.right)
    }
}

impl<K: Key, V: Data, W: Data> RddBase for CoPartitionedRdd<K, V, W> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.left.arc()), Dependency::Narrow(self.right.arc())]
    }
    fn op_name(&self) -> &'static str {
        "cogroup"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<K: Key, V: Data, W: Data> RddNode<(K, (Vec<V>, Vec<W>))> for CoPartitionedRdd<K, V, W> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(K, (Vec<V>, Vec<W>))>> {
        ExternalCombiner::<K, Side<V, W>, (Vec<V>, Vec<W>), CoGroupSides>::in_task(
            Arc::new(CoGroupSides),
            ctx,
            |groups| {
                for (k, v) in iterate(&self.left, split, ctx)? {
                    groups.insert_value(k, Side::Left(v))?;
                }
                for (k, w) in iterate(&self.right, split, ctx)? {
                    groups.insert_value(k, Side::Right(w))?;
                }
                Ok(())
            },
        )
    }
}

/// Values combined per key within each partition of a parent already
/// partitioned by key: no shuffle.
pub struct LocallyCombinedRdd<K: Key, V: Data, C, A> {
    meta: RddMeta,
    parent: Parent<(K, V)>,
    partitions: usize,
    aggregator: Arc<A>,
    _c: PhantomData<fn() -> C>,
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> LocallyCombinedRdd<K, V, C, A> {
    pub fn new(parent: Arc<dyn RddNode<(K, V)>>, aggregator: A) -> Self {
        Self::with_meta(RddMeta::new(), parent, Arc::new(aggregator))
    }

    fn with_meta(meta: RddMeta, parent: Arc<dyn RddNode<(K, V)>>, aggregator: Arc<A>) -> Self {
        let partitions = parent.num_partitions();
        Self { meta, parent: Parent::new(parent), partitions, aggregator, _c: PhantomData }
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let aggregator: A = r.read()?;
        let parent = r.read_rdd::<(K, V)>()?;
        Ok(into_any_node::<(K, C)>(Self::with_meta(meta, parent, Arc::new(aggregator))))
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> Encode for LocallyCombinedRdd<K, V, C, A> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&*self.aggregator)?;
        w.write_rdd(&self.parent)
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> RddBase for LocallyCombinedRdd<K, V, C, A> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.parent.arc())]
    }
    fn op_name(&self) -> &'static str {
        "combineByKey"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> RddNode<(K, C)> for LocallyCombinedRdd<K, V, C, A> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(K, C)>> {
        ExternalCombiner::<K, V, C, A>::in_task(self.aggregator.clone(), ctx, |combined| {
            for (k, v) in iterate(&self.parent, split, ctx)? {
                combined.insert_value(k, v)?;
            }
            Ok(())
        })
    }
}
