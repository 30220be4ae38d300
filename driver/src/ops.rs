//! The shippable bodies of RDD operations: per-partition transformations,
//! aggregators and per-partition action functions. Each is a plain struct holding
//! the user's `Fn!` closures, so it serializes exactly like them.

use ember_core::aggregator::Aggregator;
use ember_core::closure::{SerFn, traits::Fn as ShippedFn};
use ember_core::data::{BoxIter, Data, Key, Ordered};
use ember_core::error::{EmberError, Result, raise};
use ember_core::filesystem::codec::Codec;
use ember_core::filesystem::commit::{ObjectStoreOutputJob, TaskOutputFile};
use ember_core::format::SparkString;
use ember_core::group::{Group, GroupByHash};
use ember_core::key::{HashedKey, OrderedBy};
use ember_core::partitioner::stable_hash;
use ember_core::rdd::PartitionOp;
use ember_core::shuffle::sorter::ExternalSorter;
use ember_core::task::{PartitionFn, TaskContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::sync::Arc;

/// Output type of a shipped one-argument function.
pub type Out<F, A> = <F as ShippedFn<(A,)>>::Output;

// ---- per-partition transformations ----

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct MapOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, U: Data, F: SerFn<(T,), Output = U>> PartitionOp<T, U> for MapOp<F> {
    const NAME: &'static str = "map";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<U> {
        Box::new(input.map(move |x| self.0.call((x,))))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct FilterOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, F: for<'a> SerFn<(&'a T,), Output = bool>> PartitionOp<T, T> for FilterOp<F> {
    const NAME: &'static str = "filter";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<T> {
        Box::new(input.filter(move |x| self.0.call((x,))))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct FlatMapOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, U: Data, F> PartitionOp<T, U> for FlatMapOp<F>
where
    F: SerFn<(T,)>,
    Out<F, T>: IntoIterator<Item = U>,
    <Out<F, T> as IntoIterator>::IntoIter: 'static,
{
    const NAME: &'static str = "flatMap";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<U> {
        Box::new(input.flat_map(move |x| self.0.call((x,))))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct MapPartitionsOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, U: Data, F> PartitionOp<T, U> for MapPartitionsOp<F>
where
    F: SerFn<(BoxIter<T>,)>,
    Out<F, BoxIter<T>>: IntoIterator<Item = U>,
    <Out<F, BoxIter<T>> as IntoIterator>::IntoIter: 'static,
{
    const NAME: &'static str = "mapPartitions";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<U> {
        Box::new(self.0.call((input,)).into_iter())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct MapPartitionsWithIndexOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, U: Data, F> PartitionOp<T, U> for MapPartitionsWithIndexOp<F>
where
    F: SerFn<(usize, BoxIter<T>)>,
    <F as ShippedFn<(usize, BoxIter<T>)>>::Output: IntoIterator<Item = U>,
    <<F as ShippedFn<(usize, BoxIter<T>)>>::Output as IntoIterator>::IntoIter: 'static,
{
    const NAME: &'static str = "mapPartitionsWithIndex";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<U> {
        Box::new(self.0.call((split, input)).into_iter())
    }
}

#[derive(Serialize, Deserialize)]
pub struct GlomOp;
impl<T: Data> PartitionOp<T, Vec<T>> for GlomOp {
    const NAME: &'static str = "glom";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<Vec<T>> {
        Box::new(std::iter::once(input.collect()))
    }
}

/// Bernoulli sampling, or Poisson sampling with replacement; seeded per partition.
#[derive(Serialize, Deserialize)]
pub struct SampleOp {
    pub with_replacement: bool,
    pub fraction: f64,
    pub seed: u64,
}

fn poisson(rng: &mut StdRng, mut mean: f64) -> u32 {
    // Knuth's method needs e^-mean to be representable (it underflows to 0 past
    // ~745, and the draw then stops near 745 whatever the mean). A sum of
    // independent Poisson draws is Poisson with the summed mean, so large means
    // are drawn in chunks.
    const CHUNK: f64 = 32.0;
    let mut total = 0u32;
    while mean > 0.0 {
        let m = mean.min(CHUNK);
        mean -= m;
        let limit = (-m).exp();
        let (mut k, mut p) = (0u32, 1.0f64);
        loop {
            p *= rng.random::<f64>();
            if p <= limit {
                break;
            }
            k += 1;
        }
        total = total.saturating_add(k);
    }
    total
}

impl<T: Data> PartitionOp<T, T> for SampleOp {
    const NAME: &'static str = "sample";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<T> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (split as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if self.with_replacement {
            Box::new(input.flat_map(move |x| {
                let n = poisson(&mut rng, self.fraction);
                std::iter::repeat_n(x, n as usize)
            }))
        } else {
            Box::new(input.filter(move |_| rng.random::<f64>() < self.fraction))
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct KeyByOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, K: Data, F: for<'a> SerFn<(&'a T,), Output = K>> PartitionOp<T, (K, T)> for KeyByOp<F> {
    const NAME: &'static str = "keyBy";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<(K, T)> {
        Box::new(input.map(move |x| (self.0.call((&x,)), x)))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct MapValuesOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<K: Data, V: Data, U: Data, F: SerFn<(V,), Output = U>> PartitionOp<(K, V), (K, U)> for MapValuesOp<F> {
    const NAME: &'static str = "mapValues";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<(K, U)> {
        Box::new(input.map(move |(k, v)| (k, self.0.call((v,)))))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct FlatMapValuesOp<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<K: Data, V: Data, U: Data, F> PartitionOp<(K, V), (K, U)> for FlatMapValuesOp<F>
where
    F: SerFn<(V,)>,
    Out<F, V>: IntoIterator<Item = U>,
    <Out<F, V> as IntoIterator>::IntoIter: 'static,
{
    const NAME: &'static str = "flatMapValues";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<(K, U)> {
        Box::new(input.flat_map(move |(k, v)| self.0.call((v,)).into_iter().map(move |u| (k.clone(), u))))
    }
}

#[derive(Serialize, Deserialize)]
pub struct KeysOp;
impl<K: Data, V: Data> PartitionOp<(K, V), K> for KeysOp {
    const NAME: &'static str = "keys";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<K> {
        Box::new(input.map(|(k, _)| k))
    }
}

#[derive(Serialize, Deserialize)]
pub struct ValuesOp;
impl<K: Data, V: Data> PartitionOp<(K, V), V> for ValuesOp {
    const NAME: &'static str = "values";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<V> {
        Box::new(input.map(|(_, v)| v))
    }
}

/// Pairs each element with a unit value (the key side of distinct, intersection, subtract).
#[derive(Serialize, Deserialize)]
pub struct WithUnitOp;
impl<T: Data> PartitionOp<T, (T, ())> for WithUnitOp {
    const NAME: &'static str = "map";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<(T, ())> {
        Box::new(input.map(|x| (x, ())))
    }
}

/// `zipWithIndex`: global index from the sizes of earlier partitions.
#[derive(Serialize, Deserialize)]
pub struct ZipWithIndexOp {
    pub starts: Vec<u64>,
}
impl<T: Data> PartitionOp<T, (T, u64)> for ZipWithIndexOp {
    const NAME: &'static str = "zipWithIndex";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<(T, u64)> {
        let start = self.starts[split];
        Box::new(input.enumerate().map(move |(i, x)| (x, start + i as u64)))
    }
}

/// `zipWithUniqueId`: the k-th element of partition p of n gets id k·n + p.
#[derive(Serialize, Deserialize)]
pub struct ZipWithUniqueIdOp {
    pub partitions: u64,
}
impl<T: Data> PartitionOp<T, (T, u64)> for ZipWithUniqueIdOp {
    const NAME: &'static str = "zipWithUniqueId";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<(T, u64)> {
        let n = self.partitions;
        Box::new(input.enumerate().map(move |(k, x)| (x, k as u64 * n + split as u64)))
    }
}

/// Sorts a partition by key (the reduce side of sortByKey).
#[derive(Serialize, Deserialize)]
pub struct SortByKeyOp {
    pub ascending: bool,
}
impl<K: Ordered, V: Data> PartitionOp<(K, V), (K, V)> for SortByKeyOp {
    const NAME: &'static str = "sortByKey";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<(K, V)> {
        let by_key = move |a: &(K, V), b: &(K, V)| if self.ascending { a.0.compare(&b.0) } else { b.0.compare(&a.0) };
        external_sort(input, by_key)
    }
}

/// The records of a partition in `cmp` order, sorted within the task's memory
/// budget (spilling sorted runs when they do not fit).
fn external_sort<T: Data>(input: BoxIter<T>, cmp: impl Fn(&T, &T) -> Ordering + Clone + 'static) -> BoxIter<T> {
    let config = current_task(|ctx| ctx.spill_config());
    let mut sorter = ExternalSorter::new(cmp, config);
    let sorted = sorter.extend(input).and_then(|_| sorter.finish());
    match sorted {
        Ok((records, spilled)) => {
            current_task(|ctx| ctx.metrics().add_spill(spilled));
            records
        }
        Err(e) => raise(e),
    }
}

/// Runs `f` with the task this thread runs (partition operations run inside one).
fn current_task<R>(f: impl FnOnce(&TaskContext) -> R) -> R {
    TaskContext::with_current(|ctx| f(ctx.expect("partition operations run inside a task")))
}

/// The reduce side of groupByKey: records ordered by key hash (sorted within
/// the memory budget), then each key's values gathered into a `Group`, which
/// moves to a spill file when it alone passes the budget.
#[derive(Serialize, Deserialize)]
pub struct GroupByKeyOp;
impl<K: Key, V: Data> PartitionOp<(K, V), (K, Group<V>)> for GroupByKeyOp {
    const NAME: &'static str = "groupByKey";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, V)>) -> BoxIter<(K, Group<V>)> {
        let hashed: BoxIter<(u64, K, V)> = Box::new(input.map(|(k, v)| (stable_hash(&k), k, v)));
        let by_hash = external_sort(hashed, |a: &(u64, K, V), b: &(u64, K, V)| a.0.cmp(&b.0));
        Box::new(GroupByHash::new(by_hash, current_task(|ctx| ctx.spill_config())))
    }
}

/// Spreads elements evenly over `partitions` keys, starting at a per-partition
/// offset (the map side of repartition).
#[derive(Serialize, Deserialize)]
pub struct RoundRobinKeyOp {
    pub partitions: u32,
}
impl<T: Data> PartitionOp<T, (u32, T)> for RoundRobinKeyOp {
    const NAME: &'static str = "repartition";
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<(u32, T)> {
        let n = self.partitions.max(1);
        let start = (ember_core::partitioner::stable_std_hash(&split) % n as u64) as u32;
        Box::new(input.enumerate().map(move |(i, x)| ((start + i as u32) % n, x)))
    }
}

/// Routes key `k` to partition `k` (with RoundRobinKeyOp).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ExactPartitioner {
    pub partitions: usize,
}
impl ember_core::partitioner::Partitioner<u32> for ExactPartitioner {
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn partition(&self, key: &u32) -> usize {
        *key as usize % self.partitions
    }
}

type Grouped<K, V, W> = (K, (Vec<V>, Vec<W>));

/// Which pairs a join keeps from the two groups of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinKind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

#[derive(Serialize, Deserialize)]
pub struct JoinOp {
    pub kind: JoinKind,
}
impl<K: Data, V: Data, W: Data> PartitionOp<Grouped<K, V, W>, (K, (Option<V>, Option<W>))> for JoinOp {
    const NAME: &'static str = "join";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<Grouped<K, V, W>>) -> BoxIter<(K, (Option<V>, Option<W>))> {
        let kind = self.kind;
        Box::new(input.flat_map(move |(k, (vs, ws))| {
            let mut out = Vec::new();
            match (vs.is_empty(), ws.is_empty()) {
                (false, false) => {
                    for v in &vs {
                        for w in &ws {
                            out.push((k.clone(), (Some(v.clone()), Some(w.clone()))));
                        }
                    }
                }
                (false, true) if matches!(kind, JoinKind::LeftOuter | JoinKind::FullOuter) => {
                    out.extend(vs.into_iter().map(|v| (k.clone(), (Some(v), None))));
                }
                (true, false) if matches!(kind, JoinKind::RightOuter | JoinKind::FullOuter) => {
                    out.extend(ws.into_iter().map(|w| (k.clone(), (None, Some(w)))));
                }
                _ => {}
            }
            out
        }))
    }
}

/// Keeps the left values of keys absent on the right (subtractByKey, subtract).
#[derive(Serialize, Deserialize)]
pub struct SubtractOp;
impl<K: Data, V: Data, W: Data> PartitionOp<Grouped<K, V, W>, (K, V)> for SubtractOp {
    const NAME: &'static str = "subtractByKey";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<Grouped<K, V, W>>) -> BoxIter<(K, V)> {
        Box::new(
            input
                .filter(|(_, (_, ws))| ws.is_empty())
                .flat_map(|(k, (vs, _))| vs.into_iter().map(move |v| (k.clone(), v))),
        )
    }
}

/// Keeps keys present on both sides, once (intersection).
#[derive(Serialize, Deserialize)]
pub struct IntersectOp;
impl<K: Data, V: Data, W: Data> PartitionOp<Grouped<K, V, W>, K> for IntersectOp {
    const NAME: &'static str = "intersection";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<Grouped<K, V, W>>) -> BoxIter<K> {
        Box::new(input.filter(|(_, (vs, ws))| !vs.is_empty() && !ws.is_empty()).map(|(k, _)| k))
    }
}

// ---- aggregators ----

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct ReduceAgg<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<V: Data, F: SerFn<(V, V), Output = V>> Aggregator<V, V> for ReduceAgg<F> {
    fn create_combiner(&self, v: V) -> V {
        v
    }
    fn merge_value(&self, c: V, v: V) -> V {
        self.0.call((c, v))
    }
    fn merge_combiners(&self, a: V, b: V) -> V {
        self.0.call((a, b))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F1: ember_core::closure::Ship, F2: ember_core::closure::Ship, F3: ember_core::closure::Ship")]
pub struct CombineAgg<F1, F2, F3> {
    #[serde(with = "ember_core::closure::shipped")]
    pub create: F1,
    #[serde(with = "ember_core::closure::shipped")]
    pub merge_value: F2,
    #[serde(with = "ember_core::closure::shipped")]
    pub merge_combiners: F3,
}
impl<V: Data, C: Data, F1, F2, F3> Aggregator<V, C> for CombineAgg<F1, F2, F3>
where
    F1: SerFn<(V,), Output = C>,
    F2: SerFn<(C, V), Output = C>,
    F3: SerFn<(C, C), Output = C>,
{
    fn create_combiner(&self, v: V) -> C {
        self.create.call((v,))
    }
    fn merge_value(&self, c: C, v: V) -> C {
        self.merge_value.call((c, v))
    }
    fn merge_combiners(&self, a: C, b: C) -> C {
        self.merge_combiners.call((a, b))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "U: Serialize, F2: ember_core::closure::Ship, F3: ember_core::closure::Ship",
    deserialize = "U: Data, F2: ember_core::closure::Ship, F3: ember_core::closure::Ship"
))]
pub struct AggregateAgg<U, F2, F3> {
    pub zero: U,
    #[serde(with = "ember_core::closure::shipped")]
    pub seq: F2,
    #[serde(with = "ember_core::closure::shipped")]
    pub comb: F3,
}
impl<V: Data, U: Data, F2, F3> Aggregator<V, U> for AggregateAgg<U, F2, F3>
where
    F2: SerFn<(U, V), Output = U>,
    F3: SerFn<(U, U), Output = U>,
{
    fn create_combiner(&self, v: V) -> U {
        self.seq.call((self.zero.clone(), v))
    }
    fn merge_value(&self, c: U, v: V) -> U {
        self.seq.call((c, v))
    }
    fn merge_combiners(&self, a: U, b: U) -> U {
        self.comb.call((a, b))
    }
}

/// Keeps the first value of each key (distinct).
#[derive(Serialize, Deserialize, Clone, Copy)]
pub struct FirstAgg;
impl<V: Data> Aggregator<V, V> for FirstAgg {
    fn create_combiner(&self, v: V) -> V {
        v
    }
    fn merge_value(&self, c: V, _v: V) -> V {
        c
    }
    fn merge_combiners(&self, a: V, _b: V) -> V {
        a
    }
}

// ---- actions: per-partition functions ----

#[derive(Serialize, Deserialize)]
pub struct CountFn;
impl<T: Data> PartitionFn<T, u64> for CountFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<u64> {
        Ok(input.count() as u64)
    }
}

#[derive(Serialize, Deserialize)]
pub struct CollectFn;
impl<T: Data> PartitionFn<T, Vec<T>> for CollectFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Vec<T>> {
        Ok(input.collect())
    }
}

#[derive(Serialize, Deserialize)]
pub struct TakeFn {
    pub n: usize,
}
impl<T: Data> PartitionFn<T, Vec<T>> for TakeFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Vec<T>> {
        Ok(input.take(self.n).collect())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct ReduceFn<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, F: SerFn<(T, T), Output = T>> PartitionFn<T, Option<T>> for ReduceFn<F> {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Option<T>> {
        Ok(input.reduce(|a, b| self.0.call((a, b))))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "U: Serialize, F: ember_core::closure::Ship",
    deserialize = "U: Data, F: ember_core::closure::Ship"
))]
pub struct FoldFn<U, F> {
    pub zero: U,
    #[serde(with = "ember_core::closure::shipped")]
    pub f: F,
}
impl<T: Data, U: Data, F: SerFn<(U, T), Output = U>> PartitionFn<T, U> for FoldFn<U, F> {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<U> {
        Ok(input.fold(self.zero.clone(), |acc, x| self.f.call((acc, x))))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct ForeachFn<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, F: SerFn<(T,), Output = ()>> PartitionFn<T, ()> for ForeachFn<F> {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<()> {
        input.for_each(|x| self.0.call((x,)));
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
pub struct ForeachPartitionFn<F>(#[serde(with = "ember_core::closure::shipped")] pub F);
impl<T: Data, F: SerFn<(BoxIter<T>,), Output = ()>> PartitionFn<T, ()> for ForeachPartitionFn<F> {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<()> {
        self.0.call((input,));
        Ok(())
    }
}

/// The `n` smallest (or largest) elements of a partition, sorted.
#[derive(Serialize, Deserialize)]
pub struct TakeOrderedFn {
    pub n: usize,
    pub ascending: bool,
}
impl<T: Ordered> PartitionFn<T, Vec<T>> for TakeOrderedFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Vec<T>> {
        Ok(smallest_n_ordered(input, self.n, self.ascending))
    }
}

/// [`smallest_n`] by [`Ordered`] (Spark's `Ordering`: doubles as `Double.compare`).
pub fn smallest_n_ordered<T: Ordered>(input: impl Iterator<Item = T>, n: usize, ascending: bool) -> Vec<T> {
    smallest_n(input.map(OrderedBy), n, ascending).into_iter().map(|x| x.0).collect()
}

/// Keeps the `n` first elements in the requested order using a bounded heap.
pub fn smallest_n<T: Ord>(input: impl Iterator<Item = T>, n: usize, ascending: bool) -> Vec<T> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if n == 0 {
        return Vec::new();
    }
    if ascending {
        let mut heap: BinaryHeap<T> = BinaryHeap::with_capacity(n + 1);
        for x in input {
            if heap.len() < n {
                heap.push(x);
            } else if heap.peek().is_some_and(|top| x < *top) {
                heap.pop();
                heap.push(x);
            }
        }
        heap.into_sorted_vec()
    } else {
        let mut heap: BinaryHeap<Reverse<T>> = BinaryHeap::with_capacity(n + 1);
        for x in input {
            if heap.len() < n {
                heap.push(Reverse(x));
            } else if heap.peek().is_some_and(|Reverse(top)| x > *top) {
                heap.pop();
                heap.push(Reverse(x));
            }
        }
        heap.into_sorted_vec().into_iter().map(|Reverse(x)| x).collect()
    }
}

/// Counts of each distinct element of a partition.
#[derive(Serialize, Deserialize)]
pub struct CountByValueFn;
impl<T: Key> PartitionFn<T, Vec<(T, u64)>> for CountByValueFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<T>) -> Result<Vec<(T, u64)>> {
        Ok(sum_counts(input.map(|x| (x, 1))).collect())
    }
}

/// Counts of each key of a partition.
#[derive(Serialize, Deserialize)]
pub struct CountByKeyFn;
impl<K: Key, V: Data> PartitionFn<(K, V), Vec<(K, u64)>> for CountByKeyFn {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<(K, V)>) -> Result<Vec<(K, u64)>> {
        Ok(sum_counts(input.map(|(k, _)| (k, 1))).collect())
    }
}

/// The counts of equal keys ([`Key::key_eq`]) summed: each key once, in no
/// particular order. Counts a partition in a task, and merges the partitions'
/// counts on the driver.
pub fn sum_counts<K: Key>(counts: impl Iterator<Item = (K, u64)>) -> impl Iterator<Item = (K, u64)> {
    let mut sums: FxHashMap<HashedKey<K>, u64> = FxHashMap::default();
    for (k, n) in counts {
        *sums.entry(HashedKey(k)).or_insert(0) += n;
    }
    sums.into_iter().map(|(k, n)| (k.0, n))
}

/// The values of one key in a partition.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "K: Serialize", deserialize = "K: Data"))]
pub struct LookupFn<K> {
    pub key: K,
}
impl<K: Key, V: Data> PartitionFn<(K, V), Vec<V>> for LookupFn<K> {
    fn apply(&self, _ctx: &TaskContext, input: BoxIter<(K, V)>) -> Result<Vec<V>> {
        Ok(input.filter(|(k, _)| k.key_eq(&self.key)).map(|(_, v)| v).collect())
    }
}

/// A uniform sample of up to `size` keys of a partition and the partition's size
/// (for range partitioning).
#[derive(Serialize, Deserialize)]
pub struct SampleKeysFn {
    pub size: usize,
    pub seed: u64,
}
impl<K: Data, V: Data> PartitionFn<(K, V), (u64, Vec<K>)> for SampleKeysFn {
    fn apply(&self, ctx: &TaskContext, input: BoxIter<(K, V)>) -> Result<(u64, Vec<K>)> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ ctx.partition() as u64);
        let mut reservoir = Vec::with_capacity(self.size);
        let mut seen = 0u64;
        for (k, _) in input {
            seen += 1;
            if reservoir.len() < self.size {
                reservoir.push(k);
            } else {
                let j = rng.random_range(0..seen);
                if (j as usize) < self.size {
                    reservoir[j as usize] = k;
                }
            }
        }
        Ok((seen, reservoir))
    }
}

/// How a partition's records become the bytes of its part file: text lines
/// ([`TextParts`]) or framed binary records (`crate::object_file::ObjectParts`).
pub trait PartWriter<T>: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The part file's name for `partition`: `part-NNNNN[.ext]`.
    fn name(&self, partition: usize) -> String;
    /// Writes the records to `out`; returns how many.
    fn write(&self, out: &mut dyn std::io::Write, input: BoxIter<T>) -> std::io::Result<u64>;
}

/// Text part files: one element per line, as [`SparkString`] shows it, through
/// `codec` when given.
#[derive(Serialize, Deserialize)]
pub struct TextParts {
    /// Compression of the part files.
    pub codec: Option<Codec>,
}

impl<T: SparkString> PartWriter<T> for TextParts {
    fn name(&self, partition: usize) -> String {
        match self.codec {
            Some(codec) => format!("part-{partition:05}.{}", codec.extension()),
            None => format!("part-{partition:05}"),
        }
    }
    fn write(&self, out: &mut dyn std::io::Write, input: BoxIter<T>) -> std::io::Result<u64> {
        write_text(out, input, self.codec)
    }
}

/// Writes each element's [`SparkString`] and a newline, through `codec` when given.
fn write_text<T: SparkString>(
    out: impl std::io::Write,
    input: BoxIter<T>,
    codec: Option<Codec>,
) -> std::io::Result<u64> {
    use std::io::Write;
    fn write_lines<T: SparkString>(out: &mut impl Write, input: BoxIter<T>) -> std::io::Result<u64> {
        let mut lines = 0u64;
        for x in input {
            x.write_spark_string(out)?;
            out.write_all(b"\n")?;
            lines += 1;
        }
        Ok(lines)
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let lines = match codec {
        None => write_lines(&mut out, input)?,
        Some(codec) => {
            let mut encoder = codec.encoder(&mut out)?;
            let lines = write_lines(&mut encoder, input)?;
            encoder.finish()?;
            lines
        }
    };
    out.flush()?;
    Ok(lines)
}

/// Writes a partition as a part file of the job's output (`save_as_text_file`,
/// `save_as_object_file`). The attempt writes a temporary file and renames it:
/// the first attempt to finish commits, and the part file is written exactly once.
#[derive(Serialize, Deserialize)]
pub struct SavePartsFn<W> {
    /// The job's staging directory
    /// ([`ember_core::filesystem::commit::OutputJob::pending_dir`]).
    pub pending: String,
    /// How records become bytes.
    pub writer: W,
}

impl<T: Data, W: PartWriter<T>> PartitionFn<T, u64> for SavePartsFn<W> {
    fn apply(&self, ctx: &TaskContext, input: BoxIter<T>) -> Result<u64> {
        let name = self.writer.name(ctx.partition());
        // A failed or killed attempt (killing unwinds out of the loop) drops
        // `output`, which removes its file.
        let (output, mut file) =
            TaskOutputFile::create(std::path::Path::new(&self.pending), &name, ctx.attempt.task_id)?;
        let records = self.writer.write(&mut file, input).map_err(|e| EmberError::io(output.path().display(), e))?;
        output.commit()?;
        Ok(records)
    }
}

/// [`SavePartsFn`] to an object store: writes the partition to a local
/// temporary file, uploads it under the job's staging prefix, and returns the
/// staged object's URL for the driver's job commit
/// ([`ember_core::filesystem::commit::ObjectStoreOutputJob`]).
#[derive(Serialize, Deserialize)]
pub struct SavePartsToStoreFn<W> {
    /// [`ember_core::filesystem::commit::ObjectStoreOutputJob::pending_url`].
    pub pending: String,
    /// How records become bytes.
    pub writer: W,
}

impl<T: Data, W: PartWriter<T>> PartitionFn<T, String> for SavePartsToStoreFn<W> {
    fn apply(&self, ctx: &TaskContext, input: BoxIter<T>) -> Result<String> {
        let name = self.writer.name(ctx.partition());
        // Removed when dropped, also when the attempt fails or is killed.
        let local = tempfile::Builder::new()
            .prefix("ember-upload-")
            .tempfile()
            .map_err(|e| EmberError::io(std::env::temp_dir().display(), e))?;
        let mut file = local.as_file();
        self.writer.write(&mut file, input).map_err(|e| EmberError::io(local.path().display(), e))?;
        ObjectStoreOutputJob::upload_attempt(&self.pending, &name, ctx.attempt.task_id, local.path(), ctx.env().conf())
    }
}

/// Narrows the outer-join shape to what each join returns.
#[derive(Serialize, Deserialize)]
pub struct JoinShapeOp {
    pub kind: JoinKind,
}

impl<K: Data, V: Data, W: Data> PartitionOp<(K, (Option<V>, Option<W>)), (K, (V, W))> for JoinShapeOp {
    const NAME: &'static str = "join";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, (Option<V>, Option<W>))>) -> BoxIter<(K, (V, W))> {
        Box::new(input.filter_map(|(k, (v, w))| Some((k, (v?, w?)))))
    }
}

#[derive(Serialize, Deserialize)]
pub struct LeftShapeOp;
impl<K: Data, V: Data, W: Data> PartitionOp<(K, (Option<V>, Option<W>)), (K, (V, Option<W>))> for LeftShapeOp {
    const NAME: &'static str = "leftOuterJoin";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(
        self: Arc<Self>,
        _split: usize,
        input: BoxIter<(K, (Option<V>, Option<W>))>,
    ) -> BoxIter<(K, (V, Option<W>))> {
        Box::new(input.filter_map(|(k, (v, w))| Some((k, (v?, w)))))
    }
}

#[derive(Serialize, Deserialize)]
pub struct RightShapeOp;
impl<K: Data, V: Data, W: Data> PartitionOp<(K, (Option<V>, Option<W>)), (K, (Option<V>, W))> for RightShapeOp {
    const NAME: &'static str = "rightOuterJoin";
    const PRESERVES_PARTITIONING: bool = true;
    fn apply(
        self: Arc<Self>,
        _split: usize,
        input: BoxIter<(K, (Option<V>, Option<W>))>,
    ) -> BoxIter<(K, (Option<V>, W))> {
        Box::new(input.filter_map(|(k, (v, w))| Some((k, (v, w?)))))
    }
}
