//! Operations on streams of key-value pairs, per batch (Spark's
//! `PairDStreamFunctions`).

use crate::dstream::DStream;
use ember::Group;
use ember::ops::Out;
use ember_core::closure::SerFn;
use ember_core::data::{Data, Key};

impl<K: Key, V: Data> DStream<(K, V)> {
    fn partitions(&self) -> usize {
        self.context().spark_context().default_parallelism()
    }

    /// Each value through `f`, keys kept.
    pub fn map_values<U: Data, F: SerFn<(V,), Output = U> + Clone>(&self, f: F) -> DStream<(K, U)> {
        self.derive("mapValues", move |rdd| Ok(rdd.map_values(f.clone())))
    }

    /// Each value to any number of values, keys kept.
    pub fn flat_map_values<U: Data, F>(&self, f: F) -> DStream<(K, U)>
    where
        F: SerFn<(V,)> + Clone,
        Out<F, V>: IntoIterator<Item = U>,
        <Out<F, V> as IntoIterator>::IntoIter: 'static,
    {
        self.derive("flatMapValues", move |rdd| Ok(rdd.flat_map_values(f.clone())))
    }

    /// Each batch's values of each key merged with `f` (into
    /// `spark.default.parallelism` partitions).
    pub fn reduce_by_key<F: SerFn<(V, V), Output = V> + Clone>(&self, f: F) -> DStream<(K, V)> {
        let partitions = self.partitions();
        self.reduce_by_key_with(f, partitions)
    }

    /// [`DStream::reduce_by_key`] into `partitions` partitions.
    pub fn reduce_by_key_with<F: SerFn<(V, V), Output = V> + Clone>(&self, f: F, partitions: usize) -> DStream<(K, V)> {
        self.derive("reduceByKey", move |rdd| Ok(rdd.reduce_by_key_with(f.clone(), partitions)))
    }

    /// Each batch's values grouped by key.
    pub fn group_by_key(&self) -> DStream<(K, Group<V>)> {
        let partitions = self.partitions();
        self.derive("groupByKey", move |rdd| Ok(rdd.group_by_key_with(partitions)))
    }

    /// Per batch, the values of each key on both sides.
    pub fn cogroup<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, (Vec<V>, Vec<W>))> {
        let partitions = self.partitions();
        self.derive2(other, "cogroup", move |a, b| Ok(a.cogroup_with(&b, partitions)))
    }

    /// Per batch, every pair of values of a key found on both sides.
    pub fn join<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, (V, W))> {
        let partitions = self.partitions();
        self.derive2(other, "join", move |a, b| Ok(a.join_with(&b, partitions)))
    }

    /// Per batch, every value of this side with the other side's values of its key, if any.
    pub fn left_outer_join<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, (V, Option<W>))> {
        self.derive2(other, "leftOuterJoin", |a, b| Ok(a.left_outer_join(&b)))
    }

    /// Per batch, every value of the other side with this side's values of its key, if any.
    pub fn right_outer_join<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, (Option<V>, W))> {
        self.derive2(other, "rightOuterJoin", |a, b| Ok(a.right_outer_join(&b)))
    }

    /// Per batch, every key of either side with the values of both sides.
    pub fn full_outer_join<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, (Option<V>, Option<W>))> {
        self.derive2(other, "fullOuterJoin", |a, b| Ok(a.full_outer_join(&b)))
    }
}
