//! `tree_aggregate` and `tree_reduce` (Spark's `RDD.treeAggregate` and
//! `treeReduce`): the partitions' results are combined in a tree of shuffles of
//! `depth` levels on the executors, so the driver receives a few partial results
//! instead of one per partition. Spark's scale: each level divides the number of
//! partitions by ⌈partitions^(1/depth)⌉, and stops when that would not pay.

use crate::rdd::Rdd;
use ember_core::closure::SerFn;
use ember_core::data::{BoxIter, Data};
use ember_core::error::{EmberError, Result};
use ember_core::group::Group;
use ember_core::rdd::PartitionOp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A partition folded to one value with `seq` from `zero`.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "U: Serialize, F: ember_core::closure::Ship",
    deserialize = "U: Data, F: ember_core::closure::Ship"
))]
pub struct PartialAggregateOp<U, F> {
    pub zero: U,
    #[serde(with = "ember_core::closure::shipped")]
    pub seq: F,
}

impl<T: Data, U: Data, F: SerFn<(U, T), Output = U>> PartitionOp<T, U> for PartialAggregateOp<U, F> {
    const NAME: &'static str = "treeAggregate";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<U> {
        let folded = input.fold(self.zero.clone(), |acc, x| self.seq.call((acc, x)));
        Box::new(std::iter::once(folded))
    }
}

/// A partition reduced with `f`: no element when it is empty.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct PartialReduceOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);

impl<T: Data, F: SerFn<(T, T), Output = T>> PartitionOp<T, T> for PartialReduceOp<F> {
    const NAME: &'static str = "treeReduce";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<T> {
        Box::new(input.reduce(|a, b| self.0.call((a, b))).into_iter())
    }
}

/// Each partial result keyed by its partition index modulo `fan_in`.
#[derive(Serialize, Deserialize)]
pub struct KeyByPartitionOp {
    pub fan_in: usize,
}

impl<U: Data> PartitionOp<U, (usize, U)> for KeyByPartitionOp {
    const NAME: &'static str = "treeAggregate";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<U>) -> BoxIter<(usize, U)> {
        let key = split % self.fan_in.max(1);
        Box::new(input.map(move |u| (key, u)))
    }
}

/// Each group of partial results merged into one with `f`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct MergeGroupsOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);

impl<U: Data, F: SerFn<(U, U), Output = U>> PartitionOp<(usize, Group<U>), U> for MergeGroupsOp<F> {
    const NAME: &'static str = "treeAggregate";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(usize, Group<U>)>) -> BoxIter<U> {
        Box::new(input.filter_map(move |(_, group)| group.into_iter().reduce(|a, b| self.0.call((a, b)))))
    }
}

/// Merges the partial results of `partials` in levels of shuffles on the
/// executors (Spark's scale, see the module docs); returns what is left.
fn merge_in_tree<U: Data, F>(mut partials: Rdd<U>, merge: F, depth: usize) -> Result<Vec<U>>
where
    F: SerFn<(U, U), Output = U> + Clone,
{
    if depth < 1 {
        return Err(EmberError::Invalid(format!("tree aggregation: depth must be at least 1 (got {depth})")));
    }
    let mut partitions = partials.num_partitions();
    let scale = ((partitions as f64).powf(1.0 / depth as f64).ceil() as usize).max(2);
    // Another level only while it cuts the partitions by more than it costs.
    while partitions > scale + partitions.div_ceil(scale) {
        partitions /= scale;
        partials = partials
            .with_op(KeyByPartitionOp { fan_in: partitions })
            .group_by_key_with(partitions)
            .with_op(MergeGroupsOp(merge.clone()));
    }
    partials.collect()
}

impl<T: Data> Rdd<T> {
    /// [`Rdd::aggregate`] combined in a tree of `depth` levels on the executors
    /// (Spark's default depth is 2): `seq` folds each partition from `zero`,
    /// `comb` merges partial results, on executors and then on the driver.
    ///
    /// # Errors
    /// `depth` below 1; the jobs' errors.
    pub fn tree_aggregate<U: Data, F2, F3>(&self, zero: U, seq: F2, comb: F3, depth: usize) -> Result<U>
    where
        F2: SerFn<(U, T), Output = U>,
        F3: SerFn<(U, U), Output = U> + Clone,
    {
        let partials: Rdd<U> = self.with_op(PartialAggregateOp { zero: zero.clone(), seq });
        let merged = merge_in_tree(partials, comb.clone(), depth)?;
        Ok(merged.into_iter().fold(zero, |a, b| comb.call((a, b))))
    }

    /// [`Rdd::reduce`] combined in a tree of `depth` levels on the executors.
    ///
    /// # Errors
    /// An empty RDD; `depth` below 1; the jobs' errors.
    pub fn tree_reduce<F: SerFn<(T, T), Output = T> + Clone>(&self, f: F, depth: usize) -> Result<T> {
        let partials: Rdd<T> = self.with_op(PartialReduceOp(f.clone()));
        let merged = merge_in_tree(partials, f.clone(), depth)?;
        merged
            .into_iter()
            .reduce(|a, b| f.call((a, b)))
            .ok_or_else(|| EmberError::Invalid("tree_reduce() of an empty RDD".into()))
    }
}
