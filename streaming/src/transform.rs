//! Per-batch transformations: each batch's RDD transformed as the same batch
//! operation would transform an RDD (Spark's `MappedDStream`, `FilteredDStream`,
//! `TransformedDStream`, …, here one node type driven by a driver-side function).

use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::ops::{CountPartition, PairWithOne, SumAgg, UnitKey};
use crate::time::Time;
use ember::ops::Out;
use ember::{BoxIter, Rdd};
use ember_core::closure::SerFn;
use ember_core::data::{Data, Key};
use ember_core::error::{EmberError, Result};
use std::sync::Arc;

type GenerateFn<U> = Box<dyn Fn(Time) -> Result<Option<Rdd<U>>> + Send + Sync>;

/// A stream computed from its parents' RDDs of the same batch.
pub(crate) struct Derived<U: Data> {
    pub name: String,
    pub slide_ms: u64,
    pub parents: Vec<Arc<dyn DStreamBase>>,
    pub generate: GenerateFn<U>,
    /// Set when the parents' slides differ (an error reported by `start`).
    pub mismatch: Option<String>,
}

impl<U: Data> Compute<U> for Derived<U> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn slide_ms(&self) -> u64 {
        self.slide_ms
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        self.parents.clone()
    }
    fn compute(&self, _node: &Node<U>, time: Time) -> Result<Option<Rdd<U>>> {
        (self.generate)(time)
    }
    fn validate(&self) -> Result<()> {
        match &self.mismatch {
            Some(m) => Err(EmberError::Invalid(m.clone())),
            None => Ok(()),
        }
    }
}

impl<T: Data> DStream<T> {
    /// A stream whose batch RDD is `f` of this stream's batch RDD.
    pub(crate) fn derive<U: Data>(
        &self,
        name: &str,
        f: impl Fn(Rdd<T>) -> Result<Rdd<U>> + Send + Sync + 'static,
    ) -> DStream<U> {
        let parent = self.node.clone();
        DStream::from_compute(
            self.context(),
            Derived {
                name: name.to_string(),
                slide_ms: parent.slide(),
                parents: vec![parent.clone()],
                generate: Box::new(move |t| parent.get_or_compute(t)?.map(&f).transpose()),
                mismatch: None,
            },
        )
    }

    /// A stream combining this stream's and `other`'s RDDs of each batch.
    pub(crate) fn derive2<U: Data, W: Data>(
        &self,
        other: &DStream<U>,
        name: &str,
        f: impl Fn(Rdd<T>, Rdd<U>) -> Result<Rdd<W>> + Send + Sync + 'static,
    ) -> DStream<W> {
        let (a, b) = (self.node.clone(), other.node.clone());
        let mismatch = (a.slide() != b.slide()).then(|| {
            format!("{name} of streams with different slide durations ({} ms and {} ms)", a.slide(), b.slide())
        });
        let sc = self.context().spark_context().clone();
        DStream::from_compute(
            self.context(),
            Derived {
                name: name.to_string(),
                slide_ms: a.slide(),
                parents: vec![a.clone(), b.clone()],
                generate: Box::new(move |t| {
                    let ra = a.get_or_compute(t)?;
                    let rb = b.get_or_compute(t)?;
                    if ra.is_none() && rb.is_none() {
                        return Ok(None);
                    }
                    let ra = ra.unwrap_or_else(|| sc.empty_rdd());
                    let rb = rb.unwrap_or_else(|| sc.empty_rdd());
                    f(ra, rb).map(Some)
                }),
                mismatch,
            },
        )
    }

    /// Each record through `f` (shipped: `Fn!(|x: T| …)`).
    pub fn map<U: Data, F: SerFn<(T,), Output = U> + Clone>(&self, f: F) -> DStream<U> {
        self.derive("map", move |rdd| Ok(rdd.map(f.clone())))
    }

    /// Records for which `f(&x)` is true.
    pub fn filter<F: for<'a> SerFn<(&'a T,), Output = bool> + Clone>(&self, f: F) -> DStream<T> {
        self.derive("filter", move |rdd| Ok(rdd.filter(f.clone())))
    }

    /// Each record to any number of records.
    pub fn flat_map<U: Data, F>(&self, f: F) -> DStream<U>
    where
        F: SerFn<(T,)> + Clone,
        Out<F, T>: IntoIterator<Item = U>,
        <Out<F, T> as IntoIterator>::IntoIter: 'static,
    {
        self.derive("flatMap", move |rdd| Ok(rdd.flat_map(f.clone())))
    }

    /// Each partition of each batch through `f`.
    pub fn map_partitions<U: Data, F>(&self, f: F) -> DStream<U>
    where
        F: SerFn<(BoxIter<T>,)> + Clone,
        Out<F, BoxIter<T>>: IntoIterator<Item = U>,
        <Out<F, BoxIter<T>> as IntoIterator>::IntoIter: 'static,
    {
        self.derive("mapPartitions", move |rdd| Ok(rdd.map_partitions(f.clone())))
    }

    /// Each batch with exactly `partitions` partitions (a shuffle).
    pub fn repartition(&self, partitions: usize) -> DStream<T> {
        self.derive("repartition", move |rdd| Ok(rdd.repartition(partitions)))
    }

    /// Each batch as one vector per partition.
    pub fn glom(&self) -> DStream<Vec<T>> {
        self.derive("glom", |rdd| Ok(rdd.glom()))
    }

    /// Both streams' records of each batch (same slide duration).
    pub fn union(&self, other: &DStream<T>) -> DStream<T> {
        self.derive2(other, "union", |a, b| Ok(a.union(&b)))
    }

    /// Any RDD-to-RDD function, run on the driver for each batch with the
    /// batch's RDD and time (Spark's `transform`): joins with a static RDD,
    /// operations DStreams do not have, per-batch choices.
    pub fn transform<U: Data>(&self, f: impl Fn(Rdd<T>, Time) -> Result<Rdd<U>> + Send + Sync + 'static) -> DStream<U> {
        let parent = self.node.clone();
        DStream::from_compute(
            self.context(),
            Derived {
                name: "transform".into(),
                slide_ms: parent.slide(),
                parents: vec![parent.clone()],
                generate: Box::new(move |t| parent.get_or_compute(t)?.map(|rdd| f(rdd, t)).transpose()),
                mismatch: None,
            },
        )
    }

    /// Like [`DStream::transform`] with the RDDs of two streams.
    pub fn transform_with<U: Data, W: Data>(
        &self,
        other: &DStream<U>,
        f: impl Fn(Rdd<T>, Rdd<U>) -> Result<Rdd<W>> + Send + Sync + 'static,
    ) -> DStream<W> {
        self.derive2(other, "transformWith", f)
    }

    /// One record per batch: its number of records (0 for an empty batch).
    pub fn count(&self) -> DStream<u64> {
        self.derive("count", |rdd| {
            let zero = rdd.context().parallelize(vec![((), 0u64)], 1);
            Ok(rdd
                .map_partitions_op(CountPartition)
                .union(&zero)
                .combine_by_key_with_aggregator(SumAgg, 1, true)
                .values())
        })
    }

    /// One record per non-empty batch: its records reduced with `f`.
    pub fn reduce<F: SerFn<(T, T), Output = T> + Clone>(&self, f: F) -> DStream<T> {
        self.derive("reduce", move |rdd| Ok(rdd.map_partitions_op(UnitKey).reduce_by_key_with(f.clone(), 1).values()))
    }
}

impl<T: Key> DStream<T> {
    /// Each batch's distinct records with their number of occurrences.
    pub fn count_by_value(&self) -> DStream<(T, u64)> {
        self.derive("countByValue", |rdd| {
            let partitions = rdd.num_partitions().max(1);
            Ok(rdd.map_partitions_op(PairWithOne).combine_by_key_with_aggregator(SumAgg, partitions, true))
        })
    }
}
