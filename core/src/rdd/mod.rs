//! The RDD graph: nodes, their dependencies, and how a partition is computed.

mod checkpoint;
mod co_partitioned;
mod narrow;
mod parent;
mod shuffled;
mod sources;
mod zip_partitions;

pub use checkpoint::{CheckpointRdd, CutLineageRdd, FrameReader, WriteCheckpointFn, partition_file, write_frames};
pub use co_partitioned::{CoPartitionedRdd, LocallyCombinedRdd};
pub use narrow::{CartesianRdd, CoalescedRdd, MapPartitionsRdd, PartitionOp, UnionRdd, ZipRdd};
pub use parent::Parent;
pub use shuffled::{CombinedRdd, ShuffledRdd};
pub use sources::{BinaryRecordsRdd, EmptyRdd, ParallelCollectionRdd, RangeRdd, TextFileRdd, WholeTextFilesRdd};
pub use zip_partitions::{ZipPartitionsOp, ZipPartitionsRdd};

use crate::data::{BoxIter, Data};
use crate::error::{EmberError, Result, raise};
use crate::lineage::Encode;
use crate::shuffle::ShuffleDepBase;
use crate::task::TaskContext;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// How a persisted RDD's partitions are kept (Spark's StorageLevel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageLevel {
    None,
    /// Deserialized values in memory; a partition that does not fit is recomputed.
    MemoryOnly,
    /// Serialized bytes in memory.
    MemoryOnlySer,
    /// In memory, moved to disk when memory is short.
    MemoryAndDisk,
    /// Serialized on local disk only.
    DiskOnly,
}

impl StorageLevel {
    fn to_u8(self) -> u8 {
        match self {
            StorageLevel::None => 0,
            StorageLevel::MemoryOnly => 1,
            StorageLevel::MemoryOnlySer => 2,
            StorageLevel::MemoryAndDisk => 3,
            StorageLevel::DiskOnly => 4,
        }
    }
    /// Spark's `StorageLevel.description` (`Memory Deserialized 1x Replicated`,
    /// `Disk Memory Deserialized 1x Replicated`, …; `None` for an unpersisted RDD),
    /// as the Storage page and Spark's REST API show it.
    pub fn description(self) -> &'static str {
        match self {
            StorageLevel::None => "None",
            StorageLevel::MemoryOnly => "Memory Deserialized 1x Replicated",
            StorageLevel::MemoryOnlySer => "Memory Serialized 1x Replicated",
            StorageLevel::MemoryAndDisk => "Disk Memory Deserialized 1x Replicated",
            StorageLevel::DiskOnly => "Disk Serialized 1x Replicated",
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            1 => StorageLevel::MemoryOnly,
            2 => StorageLevel::MemoryOnlySer,
            3 => StorageLevel::MemoryAndDisk,
            4 => StorageLevel::DiskOnly,
            _ => StorageLevel::None,
        }
    }
}

static NEXT_RDD_ID: AtomicU64 = AtomicU64::new(1);

/// What every RDD node carries: its id and its (mutable, Spark-style) storage level.
#[derive(Debug)]
pub struct RddMeta {
    pub id: u64,
    storage: AtomicU8,
}

impl RddMeta {
    pub fn new() -> Self {
        Self { id: NEXT_RDD_ID.fetch_add(1, Ordering::Relaxed), storage: AtomicU8::new(0) }
    }
    pub fn storage_level(&self) -> StorageLevel {
        StorageLevel::from_u8(self.storage.load(Ordering::Relaxed))
    }
    pub fn set_storage_level(&self, level: StorageLevel) {
        self.storage.store(level.to_u8(), Ordering::Relaxed);
    }
}

impl Default for RddMeta {
    fn default() -> Self {
        Self::new()
    }
}

impl Serialize for RddMeta {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (self.id, self.storage_level()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RddMeta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (id, level): (u64, StorageLevel) = Deserialize::deserialize(d)?;
        Ok(Self { id, storage: AtomicU8::new(level.to_u8()) })
    }
}

/// A parent edge: narrow (partition-local) or a shuffle (a stage boundary).
#[derive(Clone)]
pub enum Dependency {
    Narrow(Arc<dyn RddBase>),
    Shuffle(Arc<dyn ShuffleDepBase>),
}

/// The untyped face of an RDD node, enough for the DAG scheduler.
pub trait RddBase: Send + Sync + 'static {
    fn meta(&self) -> &RddMeta;
    fn num_partitions(&self) -> usize;
    fn dependencies(&self) -> Vec<Dependency>;
    /// The partitions of its narrow parents that partition `split` reads, as
    /// (index into `dependencies()`, parent partition) (Spark's
    /// `NarrowDependency.getParents`). The default is one-to-one: partition
    /// `split` of every narrow parent that has one. The scheduler follows these
    /// to find where a task's cached input lives.
    fn narrow_parent_partitions(&self, split: usize) -> Vec<(usize, usize)> {
        self.dependencies()
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match d {
                Dependency::Narrow(p) if split < p.num_partitions() => Some((i, split)),
                _ => None,
            })
            .collect()
    }
    /// Operation name for logs and the UI (`map`, `textFile`, `reduceByKey`, …).
    fn op_name(&self) -> &'static str;
    fn as_encode(&self) -> &dyn Encode;
}

/// A typed RDD node: computes one partition as an iterator.
pub trait RddNode<T: Data>: RddBase {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<T>>;
}

/// Computes a partition, going through the executor's block store when the RDD is
/// persisted (Spark's `RDD.iterator`).
///
/// A killed attempt stops here: before computing, and every `KILL_CHECK_RECORDS`
/// records read from a stage's sources (Spark's `InterruptibleIterator`, which
/// wraps what an RDD reads from outside the task: input splits, shuffle blocks,
/// cached blocks). A narrow RDD whose compute began its parent's partition is not
/// wrapped again: its records are drawn from that source, and a check per
/// record at every level of a chain of maps cost a tenth of a word count.
pub fn iterate<T: Data>(rdd: &Arc<dyn RddNode<T>>, split: usize, ctx: &TaskContext) -> Result<BoxIter<T>> {
    ctx.check_killed()?;
    let level = rdd.meta().storage_level();
    if level == StorageLevel::None {
        let mark = ctx.begin_iteration();
        let records = rdd.compute(split, ctx)?;
        return Ok(if ctx.iterated_since(mark) { records } else { killable(records, ctx) });
    }
    let id = rdd.meta().id;
    if let Some(values) = ctx.cached::<T>(id, split)? {
        return Ok(killable(iter_shared(values), ctx));
    }
    // Held by another executor: read it from there, as Spark does, rather
    // than compute it a second time (it is not cached here too).
    if let Some(values) = ctx.remote_cached::<T>(id, split) {
        return Ok(killable(iter_shared(values), ctx));
    }
    let values: Vec<T> = rdd.compute(split, ctx)?.collect();
    let values = Arc::new(values);
    ctx.cache(id, split, level, values.clone())?;
    Ok(killable(iter_shared(values), ctx))
}

/// How many records a task may produce between two looks at its kill flag.
pub const KILL_CHECK_RECORDS: u32 = 1024;

/// Wraps `inner` so that it raises `TaskKilled` at its next check once the task is killed.
fn killable<T: Data>(inner: BoxIter<T>, ctx: &TaskContext) -> BoxIter<T> {
    let flag = ctx.kill_flag();
    let (task_id, partition) = (ctx.attempt.task_id, ctx.attempt.partition);
    let mut until_check = KILL_CHECK_RECORDS;
    Box::new(inner.inspect(move |_| {
        until_check -= 1;
        if until_check == 0 {
            until_check = KILL_CHECK_RECORDS;
            if flag.load(Ordering::Relaxed) {
                raise(EmberError::TaskKilled(format!(
                    "task {task_id} (partition {partition}) was killed by the driver"
                )));
            }
        }
    }))
}

/// Type-erases a freshly decoded node for the lineage reader.
pub fn into_any_node<T: Data>(node: impl RddNode<T>) -> crate::lineage::AnyNode {
    let node: Arc<dyn RddNode<T>> = Arc::new(node);
    Arc::new(node)
}

fn iter_shared<T: Data>(values: Arc<Vec<T>>) -> BoxIter<T> {
    Box::new((0..values.len()).map(move |i| values[i].clone()))
}

/// The partition of `parents` (given their partition counts) that global split `split` falls in.
pub(crate) fn locate_split(counts: impl Iterator<Item = usize>, split: usize) -> Result<(usize, usize)> {
    let mut offset = 0;
    for (i, n) in counts.enumerate() {
        if split < offset + n {
            return Ok((i, split - offset));
        }
        offset += n;
    }
    Err(EmberError::Internal(format!("partition {split} out of range")))
}
