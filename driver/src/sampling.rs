//! `random_split` (Spark's `RDD.randomSplit`): disjoint random subsets whose
//! sizes follow given weights. Each split keeps the elements whose uniform draw
//! falls in its share of [0, 1); every split draws the same sequence for a
//! partition (one seed per partition), so the splits never overlap and together
//! hold every element exactly once, however often they are computed.

use crate::rdd::Rdd;
use ember_core::data::{BoxIter, Data};
use ember_core::rdd::PartitionOp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Keeps the elements of one split: those whose draw is in `[lower, upper)`.
#[derive(Serialize, Deserialize)]
pub struct SplitOp {
    pub lower: f64,
    pub upper: f64,
    pub seed: u64,
}

impl<T: Data> PartitionOp<T, T> for SplitOp {
    const NAME: &'static str = "randomSplit";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<T> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (split as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Box::new(input.filter(move |_| {
            let draw = rng.random::<f64>();
            draw >= self.lower && draw < self.upper
        }))
    }
}

impl<T: Data> Rdd<T> {
    /// Splits this RDD at random into one RDD per weight, of sizes in proportion
    /// to the weights (normalized to sum to 1), deterministic for a seed. Every
    /// element lands in exactly one split. Persist the RDD first: each split
    /// computes it.
    ///
    /// # Panics
    /// As Spark refuses them: no weights, a negative or non-finite weight, or
    /// weights summing to 0.
    #[track_caller]
    pub fn random_split(&self, weights: &[f64], seed: u64) -> Vec<Rdd<T>> {
        assert!(!weights.is_empty(), "random_split: give at least one weight");
        assert!(
            weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            "random_split: weights must be 0 or more and finite (got {weights:?})"
        );
        let total: f64 = weights.iter().sum();
        assert!(total > 0.0, "random_split: the weights must not sum to 0 (got {weights:?})");
        let mut lower = 0.0;
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // The last split ends at 1 exactly, whatever the rounding.
                let upper = if i + 1 == weights.len() { 1.0 } else { lower + w / total };
                let rdd = self.with_op(SplitOp { lower, upper, seed });
                lower = upper;
                rdd
            })
            .collect()
    }
}
