//! The shippable bodies of the streaming operations: per-partition operations
//! and aggregators holding the user's `Fn!` closures, serialized with the tasks
//! exactly like the batch engine's own.

use ember::BoxIter;
use ember_core::aggregator::Aggregator;
use ember_core::closure::SerFn;
use ember_core::data::Data;
use ember_core::error::{EmberError, raise};
use ember_core::format::SparkString;
use ember_core::rdd::PartitionOp;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::Arc;

/// Records as text for `save_as_text_files`.
#[derive(Serialize, Deserialize)]
pub(crate) struct ToSparkStringOp;
impl<T: Data + SparkString> PartitionOp<T, String> for ToSparkStringOp {
    const NAME: &'static str = "toString";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<String> {
        Box::new(input.map(|x| x.spark_string()))
    }
}

/// `x` → `(x, 1)`.
#[derive(Serialize, Deserialize)]
pub(crate) struct PairWithOne;
impl<T: Data> PartitionOp<T, (T, u64)> for PairWithOne {
    const NAME: &'static str = "pairWithOne";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<(T, u64)> {
        Box::new(input.map(|x| (x, 1)))
    }
}

/// `x` → `((), x)`: one key for a whole-batch reduction.
#[derive(Serialize, Deserialize)]
pub(crate) struct UnitKey;
impl<T: Data> PartitionOp<T, ((), T)> for UnitKey {
    const NAME: &'static str = "unitKey";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<((), T)> {
        Box::new(input.map(|x| ((), x)))
    }
}

/// A partition → `((), its record count)`.
#[derive(Serialize, Deserialize)]
pub(crate) struct CountPartition;
impl<T: Data> PartitionOp<T, ((), u64)> for CountPartition {
    const NAME: &'static str = "count";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<((), u64)> {
        Box::new(std::iter::once(((), input.count() as u64)))
    }
}

/// Sums counts.
#[derive(Serialize, Deserialize, Clone, Copy)]
pub(crate) struct SumAgg;
impl Aggregator<u64, u64> for SumAgg {
    fn create_combiner(&self, v: u64) -> u64 {
        v
    }
    fn merge_value(&self, c: u64, v: u64) -> u64 {
        c + v
    }
    fn merge_combiners(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

// ---- updateStateByKey ----

/// A record entering a state update: the previous state or a new value.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) enum StateIn<S, V> {
    State(S),
    Value(V),
}

/// Tags records as previous state or new values, ready to be grouped by key.
#[derive(Serialize, Deserialize)]
pub(crate) struct TagState<S, V> {
    pub is_state: bool,
    _p: PhantomData<fn() -> (S, V)>,
}

impl<S, V> TagState<S, V> {
    pub fn new(is_state: bool) -> Self {
        Self { is_state, _p: PhantomData }
    }
}

impl<K: Data, S: Data, V: Data> PartitionOp<(K, S), (K, StateIn<S, V>)> for TagState<S, V> {
    const NAME: &'static str = "tagState";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, S)>) -> BoxIter<(K, StateIn<S, V>)> {
        Box::new(input.map(|(k, s)| (k, StateIn::State(s))))
    }
}

/// Tags a batch's values (the `V` side of [`TagState`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct TagValue<S, V> {
    _p: PhantomData<fn() -> (S, V)>,
}

impl<S, V> TagValue<S, V> {
    pub fn new() -> Self {
        Self { _p: PhantomData }
    }
}

impl<K: Data, S: Data, V: Data> PartitionOp<(K, V), (K, StateIn<S, V>)> for TagValue<S, V> {
    const NAME: &'static str = "tagValue";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<(K, StateIn<S, V>)> {
        Box::new(input.map(|(k, v)| (k, StateIn::Value(v))))
    }
}

/// Gathers a key's previous state and its new values.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateAgg<S, V> {
    _p: PhantomData<fn() -> (S, V)>,
}

impl<S, V> StateAgg<S, V> {
    pub fn new() -> Self {
        Self { _p: PhantomData }
    }
}

fn add_in<S, V>(mut c: (Option<S>, Vec<V>), x: StateIn<S, V>) -> (Option<S>, Vec<V>) {
    match x {
        StateIn::State(s) => c.0 = Some(s),
        StateIn::Value(v) => c.1.push(v),
    }
    c
}

impl<S: Data, V: Data> Aggregator<StateIn<S, V>, (Option<S>, Vec<V>)> for StateAgg<S, V> {
    fn create_combiner(&self, x: StateIn<S, V>) -> (Option<S>, Vec<V>) {
        add_in((None, Vec::new()), x)
    }
    fn merge_value(&self, c: (Option<S>, Vec<V>), x: StateIn<S, V>) -> (Option<S>, Vec<V>) {
        add_in(c, x)
    }
    fn merge_combiners(&self, mut a: (Option<S>, Vec<V>), b: (Option<S>, Vec<V>)) -> (Option<S>, Vec<V>) {
        if b.0.is_some() {
            a.0 = b.0;
        }
        a.1.extend(b.1);
        a
    }
}

/// Calls the user's update function for every key: new values (possibly
/// none) and the previous state (possibly none) → the new state, or `None` to
/// drop the key.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub(crate) struct UpdateState<F>(#[serde(with = "ember_core::closure::shipped")] pub F);

impl<K: Data, S: Data, V: Data, F> PartitionOp<(K, (Option<S>, Vec<V>)), (K, S)> for UpdateState<F>
where
    F: SerFn<(Vec<V>, Option<S>), Output = Option<S>>,
{
    const NAME: &'static str = "updateStateByKey";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, (Option<S>, Vec<V>))>) -> BoxIter<(K, S)> {
        Box::new(input.filter_map(move |(k, (state, values))| self.0.call((values, state)).map(|s| (k, s))))
    }
}

// ---- reduceByKeyAndWindow with an inverse function ----

/// `(k, v)` → `(k, (v, 1))`: values counted, so a key whose every value left
/// the window can be dropped exactly.
#[derive(Serialize, Deserialize)]
pub(crate) struct CountOne;
impl<K: Data, V: Data> PartitionOp<(K, V), (K, (V, u64))> for CountOne {
    const NAME: &'static str = "countOne";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<(K, (V, u64))> {
        Box::new(input.map(|(k, v)| (k, (v, 1))))
    }
}

/// Reduces counted values with the user's function, adding the counts.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub(crate) struct CountedReduce<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<V: Data, F: SerFn<(V, V), Output = V>> Aggregator<(V, u64), (V, u64)> for CountedReduce<F> {
    fn create_combiner(&self, v: (V, u64)) -> (V, u64) {
        v
    }
    fn merge_value(&self, c: (V, u64), v: (V, u64)) -> (V, u64) {
        (self.0.call((c.0, v.0)), c.1 + v.1)
    }
    fn merge_combiners(&self, a: (V, u64), b: (V, u64)) -> (V, u64) {
        self.merge_value(a, b)
    }
}

/// Which part of a window update a record is.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowPart {
    /// The previous window's value.
    Previous,
    /// Batches that left the window.
    Leaving,
    /// Batches that entered it.
    Entering,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct TagWindow(pub WindowPart);
impl<K: Data, V: Data> PartitionOp<(K, (V, u64)), (K, (WindowPart, V, u64))> for TagWindow {
    const NAME: &'static str = "tagWindow";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, (V, u64))>) -> BoxIter<(K, (WindowPart, V, u64))> {
        let part = self.0;
        Box::new(input.map(move |(k, (v, n))| (k, (part, v, n))))
    }
}

/// A key's parts of a window update, each reduced.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct WindowAcc<V> {
    previous: Option<(V, u64)>,
    leaving: Option<(V, u64)>,
    entering: Option<(V, u64)>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub(crate) struct WindowAgg<F>(#[serde(with = "ember_core::closure::shipped")] pub F);

impl<F> WindowAgg<F> {
    fn merge<V>(&self, slot: &mut Option<(V, u64)>, x: (V, u64))
    where
        F: SerFn<(V, V), Output = V>,
    {
        *slot = Some(match slot.take() {
            None => x,
            Some(a) => (self.0.call((a.0, x.0)), a.1 + x.1),
        });
    }
}

impl<V: Data, F: SerFn<(V, V), Output = V>> Aggregator<(WindowPart, V, u64), WindowAcc<V>> for WindowAgg<F> {
    fn create_combiner(&self, x: (WindowPart, V, u64)) -> WindowAcc<V> {
        self.merge_value(WindowAcc { previous: None, leaving: None, entering: None }, x)
    }
    fn merge_value(&self, mut c: WindowAcc<V>, (part, v, n): (WindowPart, V, u64)) -> WindowAcc<V> {
        let slot = match part {
            WindowPart::Previous => &mut c.previous,
            WindowPart::Leaving => &mut c.leaving,
            WindowPart::Entering => &mut c.entering,
        };
        self.merge(slot, (v, n));
        c
    }
    fn merge_combiners(&self, mut a: WindowAcc<V>, b: WindowAcc<V>) -> WindowAcc<V> {
        for (slot, x) in [(&mut a.previous, b.previous), (&mut a.leaving, b.leaving), (&mut a.entering, b.entering)] {
            if let Some(x) = x {
                self.merge(slot, x);
            }
        }
        a
    }
}

/// New window = previous ⊕ entering ⊖ leaving (with the inverse function);
/// keys with no value left in the window are dropped.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship, G: ember_core::closure::Ship")]
pub(crate) struct FinishWindow<F, G> {
    #[serde(with = "ember_core::closure::shipped")]
    pub reduce: F,
    #[serde(with = "ember_core::closure::shipped")]
    pub inverse: G,
}

impl<K: Data, V: Data, F, G> PartitionOp<(K, WindowAcc<V>), (K, (V, u64))> for FinishWindow<F, G>
where
    F: SerFn<(V, V), Output = V>,
    G: SerFn<(V, V), Output = V>,
{
    const NAME: &'static str = "reduceByKeyAndWindow";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, WindowAcc<V>)>) -> BoxIter<(K, (V, u64))> {
        Box::new(input.filter_map(move |(k, acc)| {
            let mut value = acc.previous;
            if let Some((v, n)) = acc.entering {
                value = Some(match value {
                    None => (v, n),
                    Some((p, m)) => (self.reduce.call((p, v)), m + n),
                });
            }
            if let Some((v, n)) = acc.leaving {
                let Some((p, m)) = value else {
                    raise(EmberError::Internal("a value left a window it was never in".into()))
                };
                value = if m > n { Some((self.inverse.call((p, v)), m - n)) } else { None };
            }
            value.map(|v| (k, v))
        }))
    }
}

/// `(k, (v, n))` → `(k, v)`.
#[derive(Serialize, Deserialize)]
pub(crate) struct DropCount;
impl<K: Data, V: Data> PartitionOp<(K, (V, u64)), (K, V)> for DropCount {
    const NAME: &'static str = "dropCount";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, (V, u64))>) -> BoxIter<(K, V)> {
        Box::new(input.map(|(k, (v, _))| (k, v)))
    }
}
