//! Tasks as executors see them: the context a task runs in, the services of the
//! executor it runs on, and the shipped roots of result stages.

use crate::accumulator::AccumulatorSlot;
use crate::config::Conf;
use crate::data::{BoxIter, Data};
use crate::error::{EmberError, FetchFailure, Result};
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::memory::{ExecutionMemory, TaskMemory};
use crate::rdd::{RddNode, StorageLevel, iterate};
use crate::shuffle::sorter::{SpillConfig, SpillStats};
use crate::shuffle::{FetchedBlock, ShuffleWriter};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub type SerializeFn = Arc<dyn Fn() -> Result<Vec<u8>> + Send + Sync>;
pub type AnyValue = Arc<dyn Any + Send + Sync>;

/// A cached partition as the block store keeps it.
#[derive(Clone)]
pub enum CachedPartition {
    /// Deserialized values (an `Arc<Vec<T>>`), with an estimate of their size and
    /// how to serialize them (postcard of `Vec<T>`): to move a MEMORY_AND_DISK
    /// partition to disk, or to serve it to a task on another executor.
    Values { value: AnyValue, size: u64, to_bytes: SerializeFn },
    /// Serialized values (postcard of `Vec<T>`).
    Bytes(Arc<Vec<u8>>),
}

/// The services of the executor a task runs on. Local mode and remote executors
/// implement it over the same block store and shuffle files.
pub trait ExecutorEnv: Send + Sync {
    fn executor_id(&self) -> &str;
    fn conf(&self) -> &Conf;
    fn shuffle_writer(&self, shuffle_id: u32, map_index: u32, num_reduce: usize) -> Result<Box<dyn ShuffleWriter>>;
    /// Every block of one reduce partition, fetched from wherever the map outputs live.
    fn shuffle_blocks(
        &self,
        shuffle_id: u32,
        reduce_index: u32,
    ) -> Result<Box<dyn Iterator<Item = std::result::Result<FetchedBlock, FetchFailure>>>>;
    fn cached_partition(&self, rdd_id: u64, split: usize) -> Option<CachedPartition>;
    /// A cached partition another executor holds, serialized (postcard of
    /// `Vec<T>`), fetched from the first holder the driver names that serves it
    /// (Spark's `BlockManager.getRemoteValues`). `None`: no other executor holds
    /// it, or none could serve it; the caller then computes the partition.
    fn remote_cached_partition(&self, _rdd_id: u64, _split: usize) -> Option<Vec<u8>> {
        None
    }
    fn put_cached_partition(&self, rdd_id: u64, split: usize, level: StorageLevel, block: CachedPartition);
    /// A broadcast value, fetched and decoded once per executor.
    fn broadcast_value(&self, id: u64, decode: &dyn Fn(&[u8]) -> Result<AnyValue>) -> Result<AnyValue>;
    /// Local path of a file shipped with `addFile`.
    fn file_path(&self, name: &str) -> Result<PathBuf>;
    /// The executor's execution memory, shared by the shuffle, aggregation and
    /// sort buffers of all its running tasks.
    fn execution_memory(&self) -> Arc<ExecutionMemory>;
    /// Directory for spill files.
    fn spill_dir(&self) -> PathBuf;
    /// Asks the driver's endpoint `endpoint` (see `crate::endpoint`).
    fn ask_driver(&self, endpoint: &str, message: Vec<u8>) -> Result<Vec<u8>>;
    /// Stores a block a streaming receiver cut (Spark's `StreamBlockId` at
    /// `MEMORY_AND_DISK_SER_2`: serialized records, `block_id` a plain name) on
    /// this executor and, when `replica` gives another executor's block
    /// address, a copy there. Returns whether the copy was made (a replica that
    /// cannot be reached is logged and gives `false`).
    /// Errors: this executor cannot store it.
    fn put_stream_block(&self, block_id: &str, bytes: Arc<Vec<u8>>, replica: Option<&str>) -> Result<bool>;
    /// A stored stream block: from this executor when it holds it, else from the
    /// first of `holders` (block addresses) that serves it.
    /// Errors: no holder has it (each holder's failure is in the message), or a copy is corrupt.
    fn stream_block(&self, block_id: &str, holders: &[String]) -> Result<Arc<Vec<u8>>>;
}

/// Counters of one task attempt, reported with its result.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    shuffle_bytes_written: AtomicU64,
    shuffle_records_written: AtomicU64,
    shuffle_bytes_read: AtomicU64,
    shuffle_records_read: AtomicU64,
    spill_count: AtomicU64,
    spill_bytes: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMetricsSnapshot {
    pub shuffle_bytes_written: u64,
    pub shuffle_records_written: u64,
    pub shuffle_bytes_read: u64,
    /// Records deserialized from fetched shuffle blocks.
    pub shuffle_records_read: u64,
    /// Times a buffer passed the task's memory budget and was written to disk.
    pub spill_count: u64,
    /// Bytes written to spill files (compressed).
    pub spill_bytes: u64,
}

impl TaskMetricsSnapshot {
    /// Adds another task's counters (a job's or application's totals).
    pub fn add(&mut self, other: &TaskMetricsSnapshot) {
        self.shuffle_bytes_written += other.shuffle_bytes_written;
        self.shuffle_records_written += other.shuffle_records_written;
        self.shuffle_bytes_read += other.shuffle_bytes_read;
        self.shuffle_records_read += other.shuffle_records_read;
        self.spill_count += other.spill_count;
        self.spill_bytes += other.spill_bytes;
    }
}

impl TaskMetrics {
    pub fn add_shuffle_bytes_written(&self, n: u64) {
        self.shuffle_bytes_written.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_shuffle_records_written(&self, n: u64) {
        self.shuffle_records_written.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_shuffle_bytes_read(&self, n: u64) {
        self.shuffle_bytes_read.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_shuffle_records_read(&self, n: u64) {
        self.shuffle_records_read.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_spill(&self, stats: SpillStats) {
        self.spill_count.fetch_add(stats.spills, Ordering::Relaxed);
        self.spill_bytes.fetch_add(stats.bytes, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> TaskMetricsSnapshot {
        TaskMetricsSnapshot {
            shuffle_bytes_written: self.shuffle_bytes_written.load(Ordering::Relaxed),
            shuffle_records_written: self.shuffle_records_written.load(Ordering::Relaxed),
            shuffle_bytes_read: self.shuffle_bytes_read.load(Ordering::Relaxed),
            shuffle_records_read: self.shuffle_records_read.load(Ordering::Relaxed),
            spill_count: self.spill_count.load(Ordering::Relaxed),
            spill_bytes: self.spill_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Identifies one task attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskAttempt {
    pub task_id: u64,
    pub stage_id: u32,
    pub stage_attempt: u32,
    pub partition: usize,
    /// Attempt number of this partition within the stage attempt (0 first, speculative copies and retries after).
    pub attempt: u32,
}

/// What a running task can see of itself and of its executor.
pub struct TaskContext {
    env: Arc<dyn ExecutorEnv>,
    pub attempt: TaskAttempt,
    metrics: Arc<TaskMetrics>,
    accumulators: RefCell<BTreeMap<u64, Box<dyn AccumulatorSlot>>>,
    shuffle_compress: bool,
    /// Set by the executor when the driver kills this attempt (e.g. the losing
    /// copy of a speculated task); checked by `iterate` and by long-running user code.
    killed: Arc<AtomicBool>,
    /// How many partitions `crate::rdd::iterate` has begun computing in this
    /// attempt: a narrow RDD whose compute began its parent's has its records
    /// checked for a kill there, at the source (see `iterate`).
    iterations: std::cell::Cell<u64>,
    /// This attempt's share of the executor's execution memory, released when
    /// the context is dropped.
    memory: TaskMemory,
}

impl Drop for TaskContext {
    fn drop(&mut self) {
        self.memory.release_all();
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<TaskContext>>> = const { RefCell::new(None) };
}

/// Clears the thread's current task when the task ends, however it ends.
pub struct CurrentTaskGuard(());

impl Drop for CurrentTaskGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

impl TaskContext {
    pub fn new(env: Arc<dyn ExecutorEnv>, attempt: TaskAttempt) -> Self {
        Self::with_kill_flag(env, attempt, Arc::new(AtomicBool::new(false)))
    }

    /// A context whose attempt stops when `killed` is set.
    pub fn with_kill_flag(env: Arc<dyn ExecutorEnv>, attempt: TaskAttempt, killed: Arc<AtomicBool>) -> Self {
        let shuffle_compress = env.conf().get_bool("spark.shuffle.compress", true).unwrap_or(true);
        let memory = TaskMemory::new(env.execution_memory(), attempt.task_id);
        Self {
            memory,
            env,
            attempt,
            metrics: Arc::new(TaskMetrics::default()),
            accumulators: RefCell::new(BTreeMap::new()),
            shuffle_compress,
            killed,
            iterations: std::cell::Cell::new(0),
        }
    }

    /// Counts one more partition begun by `iterate`; returns the count so far,
    /// for [`TaskContext::iterated_since`].
    pub(crate) fn begin_iteration(&self) -> u64 {
        let n = self.iterations.get() + 1;
        self.iterations.set(n);
        n
    }

    /// True when `iterate` began another partition after `mark` (a value of
    /// [`TaskContext::begin_iteration`]).
    pub(crate) fn iterated_since(&self, mark: u64) -> bool {
        self.iterations.get() > mark
    }

    /// Makes `ctx` the current task of this thread until the guard drops.
    pub fn enter(ctx: Rc<TaskContext>) -> CurrentTaskGuard {
        CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
        CurrentTaskGuard(())
    }

    /// Runs `f` with the task running on this thread, if any (Spark's `TaskContext.get`).
    pub fn with_current<R>(f: impl FnOnce(Option<&TaskContext>) -> R) -> R {
        let ctx = CURRENT.with(|c| c.borrow().clone());
        f(ctx.as_deref())
    }

    /// Asks the driver's endpoint `endpoint` and waits for its answer (see
    /// `crate::endpoint`). Errors: no such endpoint, the endpoint's error, or
    /// the driver cannot be reached.
    pub fn ask_driver(&self, endpoint: &str, message: Vec<u8>) -> Result<Vec<u8>> {
        self.env.ask_driver(endpoint, message)
    }

    pub fn env(&self) -> &Arc<dyn ExecutorEnv> {
        &self.env
    }
    pub fn partition(&self) -> usize {
        self.attempt.partition
    }
    pub fn stage_id(&self) -> u32 {
        self.attempt.stage_id
    }
    pub fn attempt_number(&self) -> u32 {
        self.attempt.attempt
    }
    pub fn executor_id(&self) -> &str {
        self.env.executor_id()
    }
    pub fn metrics(&self) -> &TaskMetrics {
        &self.metrics
    }
    pub fn metrics_handle(&self) -> Arc<TaskMetrics> {
        self.metrics.clone()
    }
    pub fn shuffle_compress(&self) -> bool {
        self.shuffle_compress
    }

    /// Where this task's buffers spill, and the memory they reserve from.
    pub fn spill_config(&self) -> SpillConfig {
        SpillConfig { memory: self.memory.clone(), dir: self.env.spill_dir(), compress: self.shuffle_compress }
    }

    /// Whether the driver asked this attempt to stop (Spark's `TaskContext.isInterrupted`).
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// `Err(TaskKilled)` once the attempt has been killed: long-running code calls
    /// this between units of work so a killed attempt frees its slot promptly.
    pub fn check_killed(&self) -> Result<()> {
        if self.is_killed() {
            return Err(EmberError::TaskKilled(format!(
                "task {} (partition {}, attempt {}) was killed by the driver",
                self.attempt.task_id, self.attempt.partition, self.attempt.attempt
            )));
        }
        Ok(())
    }

    pub(crate) fn kill_flag(&self) -> Arc<AtomicBool> {
        self.killed.clone()
    }

    pub(crate) fn add_to_accumulator(
        &self,
        id: u64,
        make: impl FnOnce() -> Box<dyn AccumulatorSlot>,
        merge: impl FnOnce(&mut dyn AccumulatorSlot),
    ) {
        let mut accs = self.accumulators.borrow_mut();
        let slot = accs.entry(id).or_insert_with(make);
        merge(slot.as_mut());
    }

    /// This attempt's accumulator updates, serialized, for the driver to merge.
    pub fn take_accumulator_updates(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let accs = std::mem::take(&mut *self.accumulators.borrow_mut());
        accs.into_iter().map(|(id, slot)| Ok((id, slot.to_bytes()?))).collect()
    }

    pub(crate) fn cached<T: Data>(&self, rdd_id: u64, split: usize) -> Result<Option<Arc<Vec<T>>>> {
        match self.env.cached_partition(rdd_id, split) {
            None => Ok(None),
            Some(CachedPartition::Values { value, .. }) => match value.downcast::<Vec<T>>() {
                Ok(values) => Ok(Some(values)),
                Err(_) => Err(EmberError::Internal(format!("cached rdd {rdd_id} has another element type"))),
            },
            Some(CachedPartition::Bytes(bytes)) => Ok(Some(Arc::new(postcard::from_bytes(&bytes)?))),
        }
    }

    /// A cached partition read from the executor holding it, when another one
    /// does; a copy that does not decode is logged and left to be recomputed.
    pub(crate) fn remote_cached<T: Data>(&self, rdd_id: u64, split: usize) -> Option<Arc<Vec<T>>> {
        let bytes = self.env.remote_cached_partition(rdd_id, split)?;
        match postcard::from_bytes::<Vec<T>>(&bytes) {
            Ok(values) => Some(Arc::new(values)),
            Err(e) => {
                tracing::warn!(rdd_id, partition = split, error = %e, "a remote cached block does not decode; recomputing it");
                None
            }
        }
    }

    pub(crate) fn cache<T: Data>(
        &self,
        rdd_id: u64,
        split: usize,
        level: StorageLevel,
        values: Arc<Vec<T>>,
    ) -> Result<()> {
        let block = match level {
            StorageLevel::None => return Ok(()),
            StorageLevel::MemoryOnlySer | StorageLevel::DiskOnly => {
                CachedPartition::Bytes(Arc::new(postcard::to_allocvec(&*values)?))
            }
            StorageLevel::MemoryOnly | StorageLevel::MemoryAndDisk => {
                let size = estimate_size(&values);
                let shared = values.clone();
                let to_bytes: SerializeFn = Arc::new(move || Ok(postcard::to_allocvec(&*shared)?));
                CachedPartition::Values { value: values, size, to_bytes }
            }
        };
        self.env.put_cached_partition(rdd_id, split, level, block);
        Ok(())
    }
}

/// Rough in-memory size of a partition: its serialized size measured on a sample,
/// plus the element headers.
fn estimate_size<T: Data>(values: &[T]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let step = (values.len() / 64).max(1);
    let (mut bytes, mut n) = (0u64, 0u64);
    for v in values.iter().step_by(step) {
        bytes += postcard::experimental::serialized_size(v).unwrap_or(0) as u64;
        n += 1;
    }
    values.len() as u64 * (bytes / n + std::mem::size_of::<T>() as u64)
}

/// A result stage's per-partition function (count, collect, reduce, save, …).
pub trait PartitionFn<T, R>: Serialize + DeserializeOwned + Send + Sync + 'static {
    fn apply(&self, ctx: &TaskContext, input: BoxIter<T>) -> Result<R>;
}

/// A result stage's shipped root: computes one partition and serializes its result.
pub trait ResultTaskFn: Send + Sync {
    fn run(&self, split: usize, ctx: &TaskContext) -> Result<Vec<u8>>;
}

pub struct ResultStage<T: Data, R, F> {
    rdd: Arc<dyn RddNode<T>>,
    func: F,
    _r: PhantomData<fn() -> R>,
}

impl<T: Data, R: Data, F: PartitionFn<T, R>> ResultStage<T, R, F> {
    pub fn new(rdd: Arc<dyn RddNode<T>>, func: F) -> Self {
        Self { rdd, func, _r: PhantomData }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let func: F = r.read()?;
        let rdd = r.read_rdd::<T>()?;
        let root: Arc<dyn ResultTaskFn> = Arc::new(Self { rdd, func, _r: PhantomData });
        Ok(Arc::new(root))
    }
}

impl<T: Data, R: Data, F: PartitionFn<T, R>> Encode for ResultStage<T, R, F> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.func)?;
        w.write_rdd(&self.rdd)
    }
}

impl<T: Data, R: Data, F: PartitionFn<T, R>> ResultTaskFn for ResultStage<T, R, F> {
    fn run(&self, split: usize, ctx: &TaskContext) -> Result<Vec<u8>> {
        let input = iterate(&self.rdd, split, ctx)?;
        let result = self.func.apply(ctx, input)?;
        Ok(postcard::to_allocvec(&result)?)
    }
}
