//! `take_ordered_by` and `top_by`: Spark's `takeOrdered(n)(ordering)` and
//! `top(n)(ordering)` with the ordering given as a key function, for elements
//! that have no order of their own (or should be ranked by another one).
//! Each task keeps its partition's `n` best in a bounded heap; the driver merges
//! them. Which of several elements with equal keys are kept when not all fit
//! is not specified (nor is it in Spark).

use crate::ops::{TakeOrderedFn, smallest_n_ordered};
use crate::rdd::Rdd;
use ember_core::closure::SerFn;
use ember_core::data::{BoxIter, Data, Ordered};
use ember_core::error::Result;
use ember_core::rdd::PartitionOp;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::sync::Arc;

/// An element ranked by its key alone.
#[derive(Clone, Serialize, Deserialize)]
pub struct ByKey<K, T>(pub K, pub T);

impl<K: Ordered, T: Data> Ordered for ByKey<K, T> {
    fn compare(&self, other: &Self) -> Ordering {
        self.0.compare(&other.0)
    }
}

/// Each element with its key `f(&x)`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct RankOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);

impl<T: Data, K: Ordered, F: for<'a> SerFn<(&'a T,), Output = K>> PartitionOp<T, ByKey<K, T>> for RankOp<F> {
    const NAME: &'static str = "takeOrdered";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<ByKey<K, T>> {
        Box::new(input.map(move |x| ByKey(self.0.call((&x,)), x)))
    }
}

impl<T: Data> Rdd<T> {
    /// The `n` elements with the smallest keys `f(&x)`, by ascending key.
    pub fn take_ordered_by<K: Ordered, F: for<'a> SerFn<(&'a T,), Output = K>>(
        &self,
        n: usize,
        f: F,
    ) -> Result<Vec<T>> {
        self.ranked(n, f, true)
    }

    /// The `n` elements with the largest keys `f(&x)`, by descending key.
    pub fn top_by<K: Ordered, F: for<'a> SerFn<(&'a T,), Output = K>>(&self, n: usize, f: F) -> Result<Vec<T>> {
        self.ranked(n, f, false)
    }

    fn ranked<K: Ordered, F: for<'a> SerFn<(&'a T,), Output = K>>(
        &self,
        n: usize,
        f: F,
        ascending: bool,
    ) -> Result<Vec<T>> {
        let keyed: Rdd<ByKey<K, T>> = self.with_op(RankOp(f));
        let parts = keyed.ctx.run_job(&keyed.node, TakeOrderedFn { n, ascending }, None)?;
        Ok(smallest_n_ordered(parts.into_iter().flatten(), n, ascending).into_iter().map(|ByKey(_, x)| x).collect())
    }
}
