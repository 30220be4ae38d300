//! How values of one key are combined (Spark's Aggregator): create a combiner
//! from the first value, merge further values into it, merge combiners from
//! different map tasks.

use serde::{Serialize, de::DeserializeOwned};

pub trait Aggregator<V, C>: Serialize + DeserializeOwned + Send + Sync + 'static {
    fn create_combiner(&self, v: V) -> C;
    fn merge_value(&self, c: C, v: V) -> C;
    fn merge_combiners(&self, a: C, b: C) -> C;
}

/// Folds `v` into the slot of its key: combiners live in `Option`s so a by-value
/// user function can take them without an extra map lookup.
#[inline]
pub fn fold_value<V, C, A: Aggregator<V, C>>(agg: &A, slot: &mut Option<C>, v: V) {
    *slot = Some(match slot.take() {
        None => agg.create_combiner(v),
        Some(c) => agg.merge_value(c, v),
    });
}

#[inline]
pub fn fold_combiner<V, C, A: Aggregator<V, C>>(agg: &A, slot: &mut Option<C>, c: C) {
    *slot = Some(match slot.take() {
        None => c,
        Some(a) => agg.merge_combiners(a, c),
    });
}

/// Used where no aggregation happens (partitionBy, sortByKey); never called.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Default)]
pub struct NoAggregation;

impl<V> Aggregator<V, V> for NoAggregation {
    fn create_combiner(&self, v: V) -> V {
        v
    }
    fn merge_value(&self, _c: V, v: V) -> V {
        v
    }
    fn merge_combiners(&self, _a: V, b: V) -> V {
        b
    }
}
