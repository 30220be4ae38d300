//! Windowed operations (Spark's `WindowedDStream`, `ReducedWindowedDStream`):
//! every `slide`, the batches of the last `length`. Both must be multiples of
//! the parent stream's slide duration; anything else is an error from `start`.

use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::ops::{CountOne, CountedReduce, DropCount, FinishWindow, PairWithOne, TagWindow, WindowAgg, WindowPart};
use crate::state::{StateStore, register_stateful};
use crate::time::{Time, millis};
use ember::{Group, Rdd, StorageLevel};
use ember_core::closure::SerFn;
use ember_core::data::{Data, Key};
use ember_core::error::{EmberError, Result};
use std::sync::Arc;
use std::time::Duration;

fn check_window(op: &str, length: u64, slide: u64, parent_slide: u64) -> Result<()> {
    for (what, d) in [("window duration", length), ("slide duration", slide)] {
        if d == 0 || !d.is_multiple_of(parent_slide) {
            return Err(EmberError::Invalid(format!(
                "{op}: the {what} ({d} ms) must be a positive multiple of the parent stream's slide duration ({parent_slide} ms)"
            )));
        }
    }
    Ok(())
}

/// The union of a parent's RDDs over the window ending at each time.
struct Windowed<T: Data> {
    parent: Arc<Node<T>>,
    length: u64,
    slide: u64,
}

impl<T: Data> Compute<T> for Windowed<T> {
    fn name(&self) -> String {
        format!("window({} ms, {} ms)", self.length, self.slide)
    }
    fn slide_ms(&self) -> u64 {
        self.slide
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        vec![self.parent.clone()]
    }
    fn parent_remember_ms(&self, own: u64) -> u64 {
        own + self.length
    }
    fn validate(&self) -> Result<()> {
        check_window("window", self.length, self.slide, self.parent.slide())
    }
    fn compute(&self, node: &Node<T>, time: Time) -> Result<Option<Rdd<T>>> {
        let rdds = DStream { node: self.parent.clone() }.slice(time.minus(self.length).plus(1), time)?;
        let sc = node.ssc.spark_context();
        Ok(Some(if rdds.is_empty() { sc.empty_rdd() } else { sc.union(&rdds) }))
    }
}

impl<T: Data> DStream<T> {
    /// Every `slide`, all records of the last `length` (Spark's `window`).
    pub fn window(&self, length: Duration, slide: Duration) -> DStream<T> {
        DStream::from_compute(
            self.context(),
            Windowed { parent: self.node.clone(), length: millis(length), slide: millis(slide) },
        )
    }

    /// Every `slide`, the records of the last `length` reduced with `f` (one
    /// record; none for an empty window).
    pub fn reduce_by_window<F: SerFn<(T, T), Output = T> + Clone>(
        &self,
        f: F,
        length: Duration,
        slide: Duration,
    ) -> DStream<T> {
        self.reduce(f.clone()).window(length, slide).reduce(f)
    }

    /// Every `slide`, the number of records in the last `length` (Spark's
    /// `countByWindow`; 0 for an empty window).
    pub fn count_by_window(&self, length: Duration, slide: Duration) -> DStream<u64> {
        self.window(length, slide).count()
    }
}

impl<T: Key> DStream<T> {
    /// Every `slide`, each distinct record of the last `length` with its count
    /// (Spark's `countByValueAndWindow`; records no longer in the window are
    /// dropped, not kept at 0).
    pub fn count_by_value_and_window(&self, length: Duration, slide: Duration) -> DStream<(T, u64)> {
        let pairs = self.derive("pairWithOne", |rdd| Ok(rdd.map_partitions_op(PairWithOne)));
        pairs.reduce_by_key_and_window_inv(
            ember::Fn!(|a: u64, b: u64| a + b),
            ember::Fn!(|a: u64, b: u64| a - b),
            length,
            slide,
        )
    }
}

/// The window reduced incrementally: previous window ⊕ entering ⊖ leaving.
struct ReducedWindowed<K: Key, V: Data, F, G> {
    /// The parent's values per batch, reduced and counted.
    counted: Arc<Node<(K, (V, u64))>>,
    length: u64,
    slide: u64,
    partitions: usize,
    reduce: F,
    inverse: G,
    store: Arc<StateStore<(K, (V, u64))>>,
}

impl<K: Key, V: Data, F, G> Compute<(K, (V, u64))> for ReducedWindowed<K, V, F, G>
where
    F: SerFn<(V, V), Output = V> + Clone,
    G: SerFn<(V, V), Output = V> + Clone,
{
    fn name(&self) -> String {
        format!("reduceByKeyAndWindow({} ms, {} ms, with inverse)", self.length, self.slide)
    }
    fn slide_ms(&self) -> u64 {
        self.slide
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        vec![self.counted.clone()]
    }
    fn parent_remember_ms(&self, own: u64) -> u64 {
        own + self.length + self.slide
    }
    fn validate(&self) -> Result<()> {
        check_window("reduceByKeyAndWindow", self.length, self.slide, self.counted.slide())
    }
    fn compute(&self, node: &Node<(K, (V, u64))>, time: Time) -> Result<Option<Rdd<(K, (V, u64))>>> {
        let counted = DStream { node: self.counted.clone() };
        let sc = node.ssc.spark_context();
        let prev_time = time.minus(self.slide);
        let previous = if node.is_time_valid(prev_time) { node.get_or_compute(prev_time)? } else { None };
        let mut parts: Vec<Rdd<(K, (WindowPart, V, u64))>> = Vec::new();
        let (entering, leaving) = match &previous {
            // The first window: everything in it enters.
            None => (counted.slice(time.minus(self.length).plus(1), time)?, Vec::new()),
            Some(prev) => {
                parts.push(prev.map_partitions_op(TagWindow(WindowPart::Previous)));
                (
                    counted.slice(prev_time.plus(1), time)?,
                    counted.slice(prev_time.minus(self.length).plus(1), time.minus(self.length))?,
                )
            }
        };
        for rdd in entering {
            parts.push(rdd.map_partitions_op(TagWindow(WindowPart::Entering)));
        }
        for rdd in leaving {
            parts.push(rdd.map_partitions_op(TagWindow(WindowPart::Leaving)));
        }
        let all = if parts.is_empty() { sc.empty_rdd() } else { sc.union(&parts) };
        let window = all
            .combine_by_key_with_aggregator(WindowAgg(self.reduce.clone()), self.partitions, true)
            .map_partitions_op(FinishWindow { reduce: self.reduce.clone(), inverse: self.inverse.clone() });
        Ok(Some(self.store.wrap(time, &window)))
    }
}

impl<K: Key, V: Data> DStream<(K, V)> {
    /// Every `slide`, the values of each key over the last `length` merged
    /// with `f` (Spark's `reduceByKeyAndWindow` without an inverse: each window
    /// reduces all its batches).
    pub fn reduce_by_key_and_window<F: SerFn<(V, V), Output = V> + Clone>(
        &self,
        f: F,
        length: Duration,
        slide: Duration,
    ) -> DStream<(K, V)> {
        let partitions = self.context().spark_context().default_parallelism();
        self.reduce_by_key_with(f.clone(), partitions).window(length, slide).reduce_by_key_with(f, partitions)
    }

    /// [`DStream::reduce_by_key_and_window`] computed incrementally: the
    /// previous window's values, plus the batches that entered (with `f`), minus
    /// those that left (with the inverse `inv`, `inv(f(a, b), b) == a`). Keys
    /// with no value left in the window are dropped, so both forms give the same
    /// result (Spark keeps them at their "zero" unless given a filter). Keeps
    /// state: needs a checkpoint directory.
    pub fn reduce_by_key_and_window_inv<F, G>(&self, f: F, inv: G, length: Duration, slide: Duration) -> DStream<(K, V)>
    where
        F: SerFn<(V, V), Output = V> + Clone,
        G: SerFn<(V, V), Output = V> + Clone,
    {
        let partitions = self.context().spark_context().default_parallelism();
        let reduce = f.clone();
        let counted = self.derive("reduceByKey", move |rdd| {
            Ok(rdd.map_partitions_op(CountOne).combine_by_key_with_aggregator(
                CountedReduce(reduce.clone()),
                partitions,
                true,
            ))
        });
        let ssc = self.context();
        let store = register_stateful::<(K, (V, u64))>(ssc, "reduceByKeyAndWindow", None);
        let window = DStream::from_compute(
            ssc,
            ReducedWindowed {
                counted: counted.node.clone(),
                length: millis(length),
                slide: millis(slide),
                partitions,
                reduce: f,
                inverse: inv,
                store: store.clone(),
            },
        );
        store.attach(&window.node);
        window.derive("dropCount", |rdd| Ok(rdd.map_partitions_op(DropCount)))
    }

    /// Every `slide`, the values of each key over the last `length`.
    pub fn group_by_key_and_window(&self, length: Duration, slide: Duration) -> DStream<(K, Group<V>)> {
        self.window(length, slide).group_by_key()
    }
}

/// Persisted window and state RDDs are kept serialized, as Spark keeps them.
pub(crate) const STATE_STORAGE: StorageLevel = StorageLevel::MemoryOnlySer;
