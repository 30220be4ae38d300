//! `Rdd<T>`: the user's handle on a distributed collection. Transformations are
//! lazy and return new RDDs; actions run a job and return a value.

use crate::context::{ContextInner, EmberContext};
use crate::ops::*;
use crate::partitioning::Partitioning;
use ember_core::aggregator::Aggregator;
use ember_core::closure::SerFn;
use ember_core::data::{BoxIter, Data, Key, Ordered};
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use ember_core::filesystem::codec::Codec;
use ember_core::filesystem::commit::{ObjectStoreOutputJob, OutputJob};
use ember_core::format::SparkString;
use ember_core::group::Group;
use ember_core::partitioner::{HashPartitioner, Partitioner, RangePartitioner};
use ember_core::rdd::{
    CartesianRdd, CheckpointRdd, CoPartitionedRdd, CoalescedRdd, CombinedRdd, LocallyCombinedRdd, MapPartitionsRdd,
    PartitionOp, RddNode, ShuffledRdd, StorageLevel, UnionRdd, WriteCheckpointFn, ZipRdd,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Rdd<T: Data> {
    pub(crate) node: Arc<dyn RddNode<T>>,
    pub(crate) ctx: Arc<ContextInner>,
    /// How the pairs are known to be partitioned by key (Spark's `RDD.partitioner`).
    partitioner: Option<Partitioning>,
}

impl<T: Data> Clone for Rdd<T> {
    fn clone(&self) -> Self {
        Self { node: self.node.clone(), ctx: self.ctx.clone(), partitioner: self.partitioner.clone() }
    }
}

impl<T: Data> std::fmt::Debug for Rdd<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rdd[{}]({}, {} partitions)", self.id(), self.node.op_name(), self.num_partitions())
    }
}

impl<T: Data> Rdd<T> {
    pub(crate) fn from_node(node: Arc<dyn RddNode<T>>, ctx: Arc<ContextInner>) -> Self {
        Self { node, ctx, partitioner: None }
    }

    pub(crate) fn derive<U: Data>(&self, node: impl RddNode<U>) -> Rdd<U> {
        Rdd { node: Arc::new(node), ctx: self.ctx.clone(), partitioner: None }
    }

    /// `op` over each partition; the partitioner stays when the op keeps keys.
    pub(crate) fn with_op<U: Data, Op: PartitionOp<T, U>>(&self, op: Op) -> Rdd<U> {
        let mut rdd = self.derive(MapPartitionsRdd::new(self.node.clone(), op));
        if Op::PRESERVES_PARTITIONING {
            rdd.partitioner = self.partitioner.clone();
        }
        rdd
    }

    /// How this RDD's pairs are partitioned by key, when known (Spark's
    /// `RDD.partitioner`): set by `partition_by`, `reduce_by_key`,
    /// `group_by_key`, `combine_by_key`, `sort_by_key` (its range partitioner),
    /// `cogroup` and joins; kept by `filter`, `map_values`, `flat_map_values`
    /// and `persist`; dropped by `map` and every operation that may change keys.
    /// Operations that need this partitioning do not shuffle an RDD that
    /// already has it.
    pub fn partitioner(&self) -> Option<Partitioning> {
        self.partitioner.clone()
    }

    pub(crate) fn with_partitioner(mut self, partitioner: Option<Partitioning>) -> Self {
        self.partitioner = partitioner;
        self
    }

    /// Partitions for a shuffle when none is given: `spark.default.parallelism`
    /// when set, else the largest parent's partition count (as Spark does).
    fn shuffle_partitions(&self, others: &[usize]) -> usize {
        if self.ctx.conf.contains("spark.default.parallelism") {
            return self.ctx.default_parallelism();
        }
        others.iter().copied().chain([self.num_partitions()]).max().unwrap_or(1).max(1)
    }

    /// This RDD's node in the graph: for libraries that wrap RDDs in their own
    /// nodes (see [`EmberContext::rdd_from_node`]).
    pub fn node(&self) -> Arc<dyn RddNode<T>> {
        self.node.clone()
    }

    pub fn id(&self) -> u64 {
        self.node.meta().id
    }

    pub fn num_partitions(&self) -> usize {
        self.node.num_partitions()
    }

    pub fn context(&self) -> EmberContext {
        EmberContext { inner: self.ctx.clone() }
    }

    /// Applies a shippable per-partition operation: the extension point for
    /// libraries built on Ember (its streaming crate uses it for its own
    /// operations, as Spark's libraries use `mapPartitionsInternal`).
    pub fn map_partitions_op<U: Data, Op: PartitionOp<T, U>>(&self, op: Op) -> Rdd<U> {
        self.with_op(op)
    }

    // ---- transformations ----

    pub fn map<U: Data, F: SerFn<(T,), Output = U>>(&self, f: F) -> Rdd<U> {
        self.with_op(MapOp(f))
    }

    /// Keeps the elements for which `f(&x)` is true: `filter(Fn!(|x: &T| …))`.
    pub fn filter<F: for<'a> SerFn<(&'a T,), Output = bool>>(&self, f: F) -> Rdd<T> {
        self.with_op(FilterOp(f))
    }

    pub fn flat_map<U: Data, F>(&self, f: F) -> Rdd<U>
    where
        F: SerFn<(T,)>,
        Out<F, T>: IntoIterator<Item = U>,
        <Out<F, T> as IntoIterator>::IntoIter: 'static,
    {
        self.with_op(FlatMapOp(f))
    }

    /// `f` receives a whole partition as an iterator and returns the new partition.
    pub fn map_partitions<U: Data, F>(&self, f: F) -> Rdd<U>
    where
        F: SerFn<(BoxIter<T>,)>,
        Out<F, BoxIter<T>>: IntoIterator<Item = U>,
        <Out<F, BoxIter<T>> as IntoIterator>::IntoIter: 'static,
    {
        self.with_op(MapPartitionsOp(f))
    }

    pub fn map_partitions_with_index<U: Data, F>(&self, f: F) -> Rdd<U>
    where
        F: SerFn<(usize, BoxIter<T>)>,
        <F as ember_core::closure::traits::Fn<(usize, BoxIter<T>)>>::Output: IntoIterator<Item = U>,
        <<F as ember_core::closure::traits::Fn<(usize, BoxIter<T>)>>::Output as IntoIterator>::IntoIter: 'static,
    {
        self.with_op(MapPartitionsWithIndexOp(f))
    }

    /// Each partition as one vector.
    pub fn glom(&self) -> Rdd<Vec<T>> {
        self.with_op(GlomOp)
    }

    /// A random sample: each element kept with probability `fraction`, or (with
    /// replacement) repeated a Poisson(`fraction`) number of times.
    ///
    /// # Panics
    /// As Spark refuses them: a negative or NaN `fraction`, or without replacement
    /// one above 1 (it is a probability then, not a multiple).
    #[track_caller]
    pub fn sample(&self, with_replacement: bool, fraction: f64, seed: u64) -> Rdd<T> {
        assert!(fraction >= 0.0, "sample: the fraction must be 0 or more (got {fraction})");
        assert!(
            with_replacement || fraction <= 1.0,
            "sample: without replacement the fraction is a probability and must be at most 1 (got {fraction}); \
             use with_replacement = true to draw elements more than once"
        );
        self.with_op(SampleOp { with_replacement, fraction, seed })
    }

    pub fn union(&self, other: &Rdd<T>) -> Rdd<T> {
        self.derive(UnionRdd::new(vec![self.node.clone(), other.node.clone()]))
    }

    /// Pairs of every element of this RDD with every element of `other`.
    pub fn cartesian<U: Data>(&self, other: &Rdd<U>) -> Rdd<(T, U)> {
        self.derive(CartesianRdd::new(self.node.clone(), other.node.clone()))
    }

    /// Element-wise pairs; both RDDs must have the same partitions and sizes.
    pub fn zip<U: Data>(&self, other: &Rdd<U>) -> Result<Rdd<(T, U)>> {
        Ok(self.derive(ZipRdd::new(self.node.clone(), other.node.clone())?))
    }

    /// Pairs each element with its global position (runs a job to size the partitions).
    pub fn zip_with_index(&self) -> Result<Rdd<(T, u64)>> {
        let counts: Vec<u64> = self.ctx.run_job(&self.node, CountFn, None)?;
        let mut starts = Vec::with_capacity(counts.len());
        let mut at = 0;
        for c in counts {
            starts.push(at);
            at += c;
        }
        Ok(self.with_op(ZipWithIndexOp { starts }))
    }

    /// Pairs each element with a unique id without running a job (Spark's
    /// `zipWithUniqueId`): the k-th element of partition p of n gets k·n + p, so
    /// ids are unique but not contiguous (use [`Rdd::zip_with_index`] for 0..count).
    pub fn zip_with_unique_id(&self) -> Rdd<(T, u64)> {
        self.with_op(ZipWithUniqueIdOp { partitions: self.num_partitions() as u64 })
    }

    /// Fewer partitions without a shuffle.
    ///
    /// # Panics
    /// When `partitions` is 0 (Spark: "Number of partitions (0) must be positive").
    #[track_caller]
    pub fn coalesce(&self, partitions: usize) -> Rdd<T> {
        assert!(partitions > 0, "coalesce: the number of partitions must be positive (got 0)");
        self.derive(CoalescedRdd::new(self.node.clone(), partitions))
    }

    /// Exactly `partitions` partitions, through a shuffle. Each input partition
    /// deals its elements round-robin from its own starting partition (as Spark
    /// does, without a job to count them first), so output sizes differ by at most
    /// one per non-empty input partition: by at most one when there is one.
    ///
    /// # Panics
    /// When `partitions` is 0, as [`Rdd::coalesce`].
    #[track_caller]
    pub fn repartition(&self, partitions: usize) -> Rdd<T> {
        assert!(partitions > 0, "repartition: the number of partitions must be positive (got 0)");
        let keyed: Rdd<(u32, T)> = self.with_op(RoundRobinKeyOp { partitions: partitions as u32 });
        let shuffled = keyed.derive(ShuffledRdd::new(keyed.node.clone(), ExactPartitioner { partitions }));
        shuffled.values()
    }

    /// The elements grouped by the key `f(&x)` (Spark's `groupBy`): `key_by(f)`
    /// then `group_by_key`.
    pub fn group_by<K: Key, F: for<'a> SerFn<(&'a T,), Output = K>>(&self, f: F) -> Rdd<(K, Group<T>)> {
        self.key_by(f).group_by_key()
    }

    /// Pairs each element with the key `f(&x)`.
    pub fn key_by<K: Data, F: for<'a> SerFn<(&'a T,), Output = K>>(&self, f: F) -> Rdd<(K, T)> {
        self.with_op(KeyByOp(f))
    }

    /// Sorted by `f(&x)` (runs a sampling job to choose partition ranges).
    pub fn sort_by<K: Key + Ordered, F: for<'a> SerFn<(&'a T,), Output = K>>(
        &self,
        f: F,
        ascending: bool,
        partitions: usize,
    ) -> Result<Rdd<T>> {
        Ok(self.key_by(f).sort_by_key_with(ascending, partitions)?.values())
    }

    // ---- persistence ----

    /// Keeps computed partitions at `level` for later jobs.
    pub fn persist(&self, level: StorageLevel) -> Rdd<T> {
        self.node.meta().set_storage_level(level);
        self.clone()
    }

    /// `persist(MemoryOnly)`.
    pub fn cache(&self) -> Rdd<T> {
        self.persist(StorageLevel::MemoryOnly)
    }

    /// Stops keeping partitions and frees the ones kept.
    pub fn unpersist(&self) -> Rdd<T> {
        self.node.meta().set_storage_level(StorageLevel::None);
        self.ctx.remove_rdd_blocks(self.id());
        self.clone()
    }

    pub fn storage_level(&self) -> StorageLevel {
        self.node.meta().storage_level()
    }

    /// Writes every partition to a directory of the context's checkpoint
    /// directory (`EmberContext::set_checkpoint_dir`) and returns an RDD that
    /// reads them: its lineage ends there (Spark's `RDD.checkpoint`, done eagerly:
    /// Spark marks the RDD and writes it after the next job). Persist the RDD
    /// first to avoid computing it twice.
    ///
    /// Errors: no checkpoint directory set; an I/O error writing the files.
    pub fn checkpoint(&self) -> Result<Rdd<T>> {
        let base = self.ctx.checkpoint_dir().ok_or_else(|| {
            EmberError::Config("checkpoint() needs a checkpoint directory: call set_checkpoint_dir first".into())
        })?;
        self.checkpoint_to(&base.join(&format!("rdd-{}", self.id())))
    }

    /// [`Rdd::checkpoint`] into the given directory: a local path (made absolute
    /// against the driver's working directory and created; every process must see
    /// it at that path) or an object-store prefix. It must not hold another checkpoint.
    pub fn checkpoint_to(&self, dir: &Location) -> Result<Rdd<T>> {
        let dir = &match dir {
            Location::Local(path) => ember_core::filesystem::checkpoint_dir(path)?,
            store => store.clone(),
        };
        self.ctx.run_job(&self.node, WriteCheckpointFn { dir: dir.url() }, None)?;
        let node = CheckpointRdd::<T>::open(dir, self.num_partitions(), &self.ctx.conf)?;
        Ok(self.derive(node))
    }

    // ---- actions ----

    pub fn collect(&self) -> Result<Vec<T>> {
        Ok(self.ctx.run_job(&self.node, CollectFn, None)?.into_iter().flatten().collect())
    }

    pub fn count(&self) -> Result<u64> {
        Ok(self.ctx.run_job(&self.node, CountFn, None)?.into_iter().sum())
    }

    /// The first `n` elements, scanning as few partitions as it can.
    pub fn take(&self, n: usize) -> Result<Vec<T>> {
        let total = self.num_partitions();
        let mut out = Vec::new();
        let mut scanned = 0;
        let mut batch = 1;
        while out.len() < n && scanned < total {
            let parts: Vec<usize> = (scanned..(scanned + batch).min(total)).collect();
            scanned += parts.len();
            let left = n - out.len();
            for chunk in self.ctx.run_job(&self.node, TakeFn { n: left }, Some(parts))? {
                let room = n - out.len();
                out.extend(chunk.into_iter().take(room));
            }
            batch *= 4;
        }
        Ok(out)
    }

    /// The first element; an error on an empty RDD.
    pub fn first(&self) -> Result<T> {
        self.take(1)?.into_iter().next().ok_or_else(|| EmberError::Invalid("first() of an empty RDD".into()))
    }

    /// The `n` smallest elements, ascending.
    pub fn take_ordered(&self, n: usize) -> Result<Vec<T>>
    where
        T: Ordered,
    {
        let parts = self.ctx.run_job(&self.node, TakeOrderedFn { n, ascending: true }, None)?;
        Ok(smallest_n_ordered(parts.into_iter().flatten(), n, true))
    }

    /// The `n` largest elements, descending.
    pub fn top(&self, n: usize) -> Result<Vec<T>>
    where
        T: Ordered,
    {
        let parts = self.ctx.run_job(&self.node, TakeOrderedFn { n, ascending: false }, None)?;
        Ok(smallest_n_ordered(parts.into_iter().flatten(), n, false))
    }

    /// `num` elements chosen at random (deterministic for a seed).
    pub fn take_sample(&self, with_replacement: bool, num: usize, seed: u64) -> Result<Vec<T>> {
        if num == 0 {
            return Ok(Vec::new());
        }
        let count = self.count()?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        if !with_replacement && num as u64 >= count {
            let mut all = self.collect()?;
            all.shuffle(&mut rng);
            return Ok(all);
        }
        let n = num as f64;
        let fraction = ((n + 5.0 * n.sqrt() + 10.0) / count as f64).min(if with_replacement { f64::MAX } else { 1.0 });
        let mut attempt_seed = seed;
        loop {
            let mut sample = self.sample(with_replacement, fraction, attempt_seed).collect()?;
            if sample.len() >= num {
                sample.shuffle(&mut rng);
                sample.truncate(num);
                return Ok(sample);
            }
            attempt_seed = attempt_seed.wrapping_add(0x9e37_79b9);
        }
    }

    /// Combines all elements with `f`; an error on an empty RDD.
    pub fn reduce<F: SerFn<(T, T), Output = T> + Clone>(&self, f: F) -> Result<T> {
        let parts = self.ctx.run_job(&self.node, ReduceFn(f.clone()), None)?;
        parts
            .into_iter()
            .flatten()
            .reduce(|a, b| f.call((a, b)))
            .ok_or_else(|| EmberError::Invalid("reduce() of an empty RDD".into()))
    }

    /// Folds each partition from `zero`, then the partition results from `zero`.
    pub fn fold<F: SerFn<(T, T), Output = T> + Clone>(&self, zero: T, f: F) -> Result<T> {
        let parts = self.ctx.run_job(&self.node, FoldFn { zero: zero.clone(), f: f.clone() }, None)?;
        Ok(parts.into_iter().fold(zero, |a, b| f.call((a, b))))
    }

    /// Folds each partition with `seq` from `zero`, then combines the partition results with `comb`.
    pub fn aggregate<U: Data, F2, F3>(&self, zero: U, seq: F2, comb: F3) -> Result<U>
    where
        F2: SerFn<(U, T), Output = U>,
        F3: SerFn<(U, U), Output = U>,
    {
        let parts = self.ctx.run_job(&self.node, FoldFn { zero: zero.clone(), f: seq }, None)?;
        Ok(parts.into_iter().fold(zero, |a, b| comb.call((a, b))))
    }

    pub fn foreach<F: SerFn<(T,), Output = ()>>(&self, f: F) -> Result<()> {
        self.ctx.run_job(&self.node, ForeachFn(f), None).map(|_| ())
    }

    pub fn foreach_partition<F: SerFn<(BoxIter<T>,), Output = ()>>(&self, f: F) -> Result<()> {
        self.ctx.run_job(&self.node, ForeachPartitionFn(f), None).map(|_| ())
    }

    /// How many times each distinct element occurs.
    ///
    /// The answer is a standard `HashMap`, so `T` also needs `Hash + Eq`
    /// (not `f64`: count those with `map(|x| (x, 1u64)).reduce_by_key(...)`).
    pub fn count_by_value(&self) -> Result<HashMap<T, u64>>
    where
        T: Key + std::hash::Hash + Eq,
    {
        Ok(sum_counts(self.ctx.run_job(&self.node, CountByValueFn, None)?.into_iter().flatten()).collect())
    }

    /// Writes each element as one line, as Spark's `toString` shows it
    /// ([`SparkString`]: strings and numbers as they are, pairs `(k,v)`, options
    /// `Some(x)`, `1.0` for a whole `f64`): one `part-NNNNN` file per
    /// partition in the directory `path` (a path or `file://` URL, relative to the
    /// driver's working directory; it must not exist yet), then `_SUCCESS`.
    ///
    /// Output is committed as Spark's `FileOutputCommitter` does
    /// ([`ember_core::filesystem::commit`]): each partition's file is committed by
    /// exactly one attempt, and nothing appears in `path` until every task has
    /// finished; a failed job removes `path` again.
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] when `path` exists or cannot be created, before
    /// any task runs; the job's error when a task fails.
    pub fn save_as_text_file(&self, path: &str) -> Result<()>
    where
        T: SparkString,
    {
        self.save_text(path, None)
    }

    /// [`Rdd::save_as_text_file`] with each part file compressed by `codec` and named
    /// with its extension (`part-00000.gz`), as Spark's
    /// `saveAsTextFile(path, classOf[GzipCodec])`. `text_file` reads such files back.
    pub fn save_as_text_file_with_codec(&self, path: &str, codec: Codec) -> Result<()>
    where
        T: SparkString,
    {
        self.save_text(path, Some(codec))
    }

    fn save_text(&self, path: &str, codec: Option<Codec>) -> Result<()>
    where
        T: SparkString,
    {
        self.save_parts(path, TextParts { codec })
    }

    /// Writes one part file per partition with `writer` under the output
    /// commit protocol (local or `s3a://`), then `_SUCCESS`.
    pub(crate) fn save_parts<W: PartWriter<T>>(&self, path: &str, writer: W) -> Result<()> {
        if let Some(dir) = ember_core::filesystem::s3::S3Path::parse(path) {
            let dir = dir.map_err(|reason| EmberError::OutputPath { path: path.to_string(), reason })?;
            let job = ObjectStoreOutputJob::setup(&dir, &self.ctx.conf)?;
            let save = SavePartsToStoreFn { pending: job.pending_url(), writer };
            return match self.ctx.run_job(&self.node, save, None) {
                Ok(staged) => job.commit(&staged).map(drop),
                Err(e) => {
                    job.abort();
                    Err(e)
                }
            };
        }
        let dir = ember_core::filesystem::local_path(path)
            .map_err(|e| EmberError::OutputPath { path: path.to_string(), reason: e.to_string() })?;
        let job = OutputJob::setup(&dir)?;
        let pending = job.pending_dir().to_string_lossy().into_owned();
        match self.ctx.run_job(&self.node, SavePartsFn { pending, writer }, None) {
            Ok(_) => job.commit().map(drop),
            Err(e) => {
                job.abort();
                Err(e)
            }
        }
    }
}

impl<T: Key> Rdd<T> {
    fn with_unit(&self) -> Rdd<(T, ())> {
        self.with_op(WithUnitOp)
    }

    /// The distinct elements.
    pub fn distinct(&self) -> Rdd<T> {
        self.distinct_with(self.shuffle_partitions(&[]))
    }

    pub fn distinct_with(&self, partitions: usize) -> Rdd<T> {
        let unit = self.with_unit();
        let combined: Rdd<(T, ())> =
            unit.derive(CombinedRdd::new(unit.node.clone(), HashPartitioner::new(partitions), FirstAgg, true));
        combined.keys()
    }

    /// Distinct elements present in both RDDs.
    pub fn intersection(&self, other: &Rdd<T>) -> Rdd<T> {
        self.with_unit().cogroup(&other.with_unit()).with_op(IntersectOp)
    }

    /// Elements not in `other` (duplicates on this side are kept).
    pub fn subtract(&self, other: &Rdd<T>) -> Rdd<T> {
        self.with_unit().subtract_by_key(&other.with_unit()).keys()
    }
}

impl<K: Key, V: Data> Rdd<(K, V)> {
    pub fn map_values<U: Data, F: SerFn<(V,), Output = U>>(&self, f: F) -> Rdd<(K, U)> {
        self.with_op(MapValuesOp(f))
    }

    pub fn flat_map_values<U: Data, F>(&self, f: F) -> Rdd<(K, U)>
    where
        F: SerFn<(V,)>,
        Out<F, V>: IntoIterator<Item = U>,
        <Out<F, V> as IntoIterator>::IntoIter: 'static,
    {
        self.with_op(FlatMapValuesOp(f))
    }

    pub fn keys(&self) -> Rdd<K> {
        self.with_op(KeysOp)
    }

    pub fn values(&self) -> Rdd<V> {
        self.with_op(ValuesOp)
    }

    /// The general per-key aggregation every *ByKey operation is built on.
    pub fn combine_by_key_with_aggregator<C: Data, A: Aggregator<V, C>>(
        &self,
        aggregator: A,
        partitions: usize,
        map_side_combine: bool,
    ) -> Rdd<(K, C)> {
        let partitioner = HashPartitioner::new(partitions);
        let target = Partitioning::hash(partitions);
        if self.partitioner.as_ref() == Some(&target) {
            // Already partitioned this way: combine within partitions (narrow).
            return self.derive(LocallyCombinedRdd::new(self.node.clone(), aggregator)).with_partitioner(Some(target));
        }
        self.derive(CombinedRdd::new(self.node.clone(), partitioner, aggregator, map_side_combine))
            .with_partitioner(Some(target))
    }

    /// Merges the values of each key with `f` (combining in map tasks first).
    pub fn reduce_by_key<F: SerFn<(V, V), Output = V> + Clone>(&self, f: F) -> Rdd<(K, V)> {
        self.reduce_by_key_with(f, self.shuffle_partitions(&[]))
    }

    pub fn reduce_by_key_with<F: SerFn<(V, V), Output = V> + Clone>(&self, f: F, partitions: usize) -> Rdd<(K, V)> {
        self.combine_by_key_with_aggregator(ReduceAgg(f), partitions, true)
    }

    /// All values of each key, as a `Group` (iterable; spilled to local disk
    /// when one key's values do not fit the task's memory budget).
    pub fn group_by_key(&self) -> Rdd<(K, Group<V>)> {
        self.group_by_key_with(self.shuffle_partitions(&[]))
    }

    pub fn group_by_key_with(&self, partitions: usize) -> Rdd<(K, Group<V>)> {
        // Map-side combining would not shrink the data, so records are shuffled
        // as they are (as in Spark) and grouped by the reducer.
        self.partition_by(HashPartitioner::new(partitions)).with_op(GroupByKeyOp)
    }

    /// Per key: `create` on the first value, `merge_value` for more, `merge_combiners` across partitions.
    pub fn combine_by_key<C: Data, F1, F2, F3>(&self, create: F1, merge_value: F2, merge_combiners: F3) -> Rdd<(K, C)>
    where
        F1: SerFn<(V,), Output = C> + Clone,
        F2: SerFn<(C, V), Output = C> + Clone,
        F3: SerFn<(C, C), Output = C> + Clone,
    {
        self.combine_by_key_with(create, merge_value, merge_combiners, self.shuffle_partitions(&[]))
    }

    pub fn combine_by_key_with<C: Data, F1, F2, F3>(
        &self,
        create: F1,
        merge_value: F2,
        merge_combiners: F3,
        partitions: usize,
    ) -> Rdd<(K, C)>
    where
        F1: SerFn<(V,), Output = C> + Clone,
        F2: SerFn<(C, V), Output = C> + Clone,
        F3: SerFn<(C, C), Output = C> + Clone,
    {
        self.combine_by_key_with_aggregator(CombineAgg { create, merge_value, merge_combiners }, partitions, true)
    }

    /// Per key: fold values with `seq` from `zero`, combine partial results with `comb`.
    pub fn aggregate_by_key<U: Data, F2, F3>(&self, zero: U, seq: F2, comb: F3) -> Rdd<(K, U)>
    where
        F2: SerFn<(U, V), Output = U> + Clone,
        F3: SerFn<(U, U), Output = U> + Clone,
    {
        let partitions = self.shuffle_partitions(&[]);
        self.combine_by_key_with_aggregator(AggregateAgg { zero, seq, comb }, partitions, true)
    }

    /// Per key: fold values with `f` from `zero`.
    pub fn fold_by_key<F: SerFn<(V, V), Output = V> + Clone>(&self, zero: V, f: F) -> Rdd<(K, V)> {
        let partitions = self.shuffle_partitions(&[]);
        self.combine_by_key_with_aggregator(AggregateAgg { zero, seq: f.clone(), comb: f }, partitions, true)
    }

    /// Redistributes the pairs with `partitioner`; an RDD already partitioned by
    /// an equal partitioner is returned as it is (no shuffle), as in Spark.
    pub fn partition_by<P: Partitioner<K>>(&self, partitioner: P) -> Rdd<(K, V)> {
        let partitioning = Partitioning::of::<K, P>(&partitioner);
        if partitioning.is_some() && partitioning == self.partitioner {
            return self.clone();
        }
        self.derive(ShuffledRdd::new(self.node.clone(), partitioner)).with_partitioner(partitioning)
    }

    /// This RDD partitioned as `target` says: itself when it already is; None
    /// when it is not and `target` is not hash partitioning (a range or custom
    /// partitioner, which needs more of `K` than a by-key operation has).
    fn partitioned_like(&self, target: &Partitioning) -> Option<Rdd<(K, V)>> {
        if self.partitioner.as_ref() == Some(target) {
            return Some(self.clone());
        }
        target.partitioner::<HashPartitioner>().map(|hash| self.partition_by(hash))
    }

    /// Sorted by key, range-partitioned (runs a sampling job to pick the ranges).
    pub fn sort_by_key(&self, ascending: bool) -> Result<Rdd<(K, V)>>
    where
        K: Ordered,
    {
        self.sort_by_key_with(ascending, self.num_partitions())
    }

    pub fn sort_by_key_with(&self, ascending: bool, partitions: usize) -> Result<Rdd<(K, V)>>
    where
        K: Ordered,
    {
        let partitioner = self.range_partitioner(partitions, ascending)?;
        let shuffled = self.partition_by(partitioner);
        Ok(shuffled.with_op(SortByKeyOp { ascending }))
    }

    /// A range partitioner for this RDD's keys, from a sample of them (Spark's
    /// `RangePartitioner`: 3 × 20 keys per output partition, sampled evenly from
    /// the input partitions, each weighing its partition's size over its sample's).
    pub fn range_partitioner(&self, partitions: usize, ascending: bool) -> Result<RangePartitioner<K>>
    where
        K: Ordered,
    {
        let partitions = partitions.max(1);
        if partitions == 1 || self.num_partitions() == 0 {
            // One range, or nothing to sample: no sampling job (as Spark).
            return Ok(RangePartitioner { bounds: Vec::new(), ascending });
        }
        let per_partition = (60 * partitions).div_ceil(self.num_partitions().max(1)).clamp(20, 100_000);
        let samples = self.ctx.run_job(&self.node, SampleKeysFn { size: per_partition, seed: 0x5eed }, None)?;
        // Each sampled key stands for (its partition's size / its sample's size) keys.
        let keys: Vec<(K, f64)> = samples
            .into_iter()
            .flat_map(|(seen, ks)| {
                let weight = seen as f64 / ks.len().max(1) as f64;
                ks.into_iter().map(move |k| (k, weight))
            })
            .collect();
        Ok(RangePartitioner::from_weighted_sample(keys, partitions, ascending))
    }

    /// For each key, its values here and its values in `other`.
    pub fn cogroup<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        self.cogroup_into(other, self.default_partitioner(other))
    }

    /// The partitioning of a binary operation given no partition count (Spark's
    /// `Partitioner.defaultPartitioner`): an existing partitioner of either side
    /// (the one with more partitions), so that side is not shuffled; else hash
    /// partitioning into [`Self::shuffle_partitions`].
    fn default_partitioner<W: Data>(&self, other: &Rdd<(K, W)>) -> Partitioning {
        self.default_partitioning(&[(other.partitioner.as_ref(), other.num_partitions())])
    }

    /// [`Self::default_partitioner`] with any number of others, each given by its
    /// partitioner and partition count.
    pub(crate) fn default_partitioning(&self, others: &[(Option<&Partitioning>, usize)]) -> Partitioning {
        let existing =
            self.partitioner.iter().chain(others.iter().filter_map(|(p, _)| *p)).max_by_key(|p| p.num_partitions());
        match existing {
            Some(p) => p.clone(),
            None => Partitioning::hash(self.shuffle_partitions(&others.iter().map(|(_, n)| *n).collect::<Vec<_>>())),
        }
    }

    /// How the pairs are known to be partitioned (Spark's `RDD.partitioner`).
    pub(crate) fn partitioning(&self) -> Option<&Partitioning> {
        self.partitioner.as_ref()
    }

    /// `cogroup` into `partitions` hash partitions.
    pub fn cogroup_with<W: Data>(&self, other: &Rdd<(K, W)>, partitions: usize) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        self.cogroup_into(other, Partitioning::hash(partitions))
    }

    /// `cogroup` partitioned as `target`: each side is shuffled unless it is
    /// already partitioned that way, then partition i of both is grouped with
    /// no further shuffle.
    pub(crate) fn cogroup_into<W: Data>(
        &self,
        other: &Rdd<(K, W)>,
        target: Partitioning,
    ) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        let sides = self.partitioned_like(&target).zip(other.partitioned_like(&target));
        let Some((left, right)) = sides else {
            // A partitioner of a type that cannot be rebuilt here: hash instead.
            return self.cogroup_with(other, target.num_partitions());
        };
        let grouped = CoPartitionedRdd::new(left.node.clone(), right.node.clone())
            .expect("both sides were partitioned into the same partitions");
        self.derive(grouped).with_partitioner(Some(target))
    }

    fn outer_join<W: Data>(
        &self,
        other: &Rdd<(K, W)>,
        kind: JoinKind,
        target: Partitioning,
    ) -> Rdd<(K, (Option<V>, Option<W>))> {
        self.cogroup_into(other, target).with_op(JoinOp { kind })
    }

    /// Pairs of values for keys present on both sides.
    pub fn join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, W))> {
        self.outer_join(other, JoinKind::Inner, self.default_partitioner(other))
            .with_op(JoinShapeOp { kind: JoinKind::Inner })
    }

    pub fn join_with<W: Data>(&self, other: &Rdd<(K, W)>, partitions: usize) -> Rdd<(K, (V, W))> {
        self.outer_join(other, JoinKind::Inner, Partitioning::hash(partitions))
            .with_op(JoinShapeOp { kind: JoinKind::Inner })
    }

    pub fn left_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, Option<W>))> {
        let n = self.default_partitioner(other);
        self.outer_join(other, JoinKind::LeftOuter, n).with_op(LeftShapeOp)
    }

    pub fn right_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Option<V>, W))> {
        let n = self.default_partitioner(other);
        self.outer_join(other, JoinKind::RightOuter, n).with_op(RightShapeOp)
    }

    pub fn full_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Option<V>, Option<W>))> {
        let n = self.default_partitioner(other);
        self.outer_join(other, JoinKind::FullOuter, n)
    }

    /// Pairs whose key is absent from `other`.
    pub fn subtract_by_key<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, V)> {
        let n = self.default_partitioner(other);
        self.cogroup_into(other, n).with_op(SubtractOp)
    }

    /// How many pairs each key has. A standard `HashMap`: `K` also needs `Hash + Eq`.
    pub fn count_by_key(&self) -> Result<HashMap<K, u64>>
    where
        K: std::hash::Hash + Eq,
    {
        Ok(sum_counts(self.ctx.run_job(&self.node, CountByKeyFn, None)?.into_iter().flatten()).collect())
    }

    /// The pairs as a map (a later value of a key wins). A standard
    /// `HashMap`: `K` also needs `Hash + Eq`.
    pub fn collect_as_map(&self) -> Result<HashMap<K, V>>
    where
        K: std::hash::Hash + Eq,
    {
        Ok(self.collect()?.into_iter().collect())
    }

    /// All values of `key`.
    pub fn lookup(&self, key: K) -> Result<Vec<V>> {
        Ok(self.ctx.run_job(&self.node, LookupFn { key }, None)?.into_iter().flatten().collect())
    }
}
