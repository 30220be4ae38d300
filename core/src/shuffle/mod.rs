//! Shuffle dependencies: the map side (partition, optionally combine, write one
//! block per reduce partition) and the read side shared by shuffled RDDs.

pub mod block;
pub mod combiner;
pub mod map_output_buffer;
pub mod sorter;
pub mod spill;

use crate::aggregator::Aggregator;
use crate::data::{BoxIter, Data, Key};
use crate::error::{EmberError, FetchFailure, Result, raise};
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::partitioner::Partitioner;
use crate::rdd::{RddBase, RddNode, iterate};
use crate::task::TaskContext;
use block::BlockRecords;
use combiner::CombineBuffer;
use map_output_buffer::MapOutputBuffer;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_SHUFFLE_ID: AtomicU32 = AtomicU32::new(0);

/// Where a map task's output lives and how large each of its blocks is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapStatus {
    pub executor_id: String,
    /// Address of the executor's block server (empty in local mode).
    pub address: String,
    pub block_sizes: Vec<u64>,
}

/// One block as fetched, before verification.
pub struct FetchedBlock {
    pub map_index: u32,
    pub executor_id: String,
    pub bytes: Vec<u8>,
}

/// Receives a map task's blocks in reduce-partition order and commits them
/// atomically (the first committed attempt of a map task wins).
pub trait ShuffleWriter {
    /// Appends bytes to reduce partition `reduce_index`'s block: partitions come
    /// in non-decreasing order, a block may arrive in several pieces, and
    /// partitions never written are empty.
    fn write_block(&mut self, reduce_index: usize, block: &[u8]) -> Result<()>;
    fn commit(self: Box<Self>) -> Result<MapStatus>;
}

/// How values are combined across the shuffle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CombineMode {
    /// Records pass through (partitionBy, sortByKey, repartition).
    None,
    /// Combined in the map task and again in the reducer (reduceByKey, aggregateByKey).
    MapSide,
    /// Combined only in the reducer (groupByKey, cogroup: map-side combining saves nothing).
    ReduceSide,
}

/// The driver's view of a shuffle dependency: what the DAG scheduler needs to build
/// and run the map stage.
pub trait ShuffleDepBase: Send + Sync + 'static {
    fn shuffle_id(&self) -> u32;
    fn parent(&self) -> Arc<dyn RddBase>;
    fn num_reduce_partitions(&self) -> usize;
    /// The map stage's root, shipped to executors.
    fn as_encode(&self) -> &dyn Encode;
}

/// A map stage's shipped root: runs one map task.
pub trait ShuffleMapFn: Send + Sync {
    fn run_map(&self, map_index: usize, ctx: &TaskContext) -> Result<MapStatus>;
}

pub struct ShuffleDependency<K, V: Data, C, A, P> {
    shuffle_id: u32,
    parent: Arc<dyn RddNode<(K, V)>>,
    partitioner: Arc<P>,
    aggregator: Arc<A>,
    mode: CombineMode,
    _c: PhantomData<fn() -> C>,
}

impl<K, V, C, A, P> ShuffleDependency<K, V, C, A, P>
where
    K: Key,
    V: Data,
    C: Data,
    A: Aggregator<V, C>,
    P: Partitioner<K>,
{
    pub fn new(parent: Arc<dyn RddNode<(K, V)>>, partitioner: P, aggregator: A, mode: CombineMode) -> Self {
        Self {
            shuffle_id: NEXT_SHUFFLE_ID.fetch_add(1, Ordering::Relaxed),
            parent,
            partitioner: Arc::new(partitioner),
            aggregator: Arc::new(aggregator),
            mode,
            _c: PhantomData,
        }
    }

    pub fn partitioner(&self) -> &Arc<P> {
        &self.partitioner
    }

    pub fn aggregator(&self) -> &Arc<A> {
        &self.aggregator
    }

    pub fn mode(&self) -> CombineMode {
        self.mode
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let shuffle_id = r.read()?;
        let partitioner: P = r.read()?;
        let aggregator: A = r.read()?;
        let mode = r.read()?;
        let parent = r.read_rdd::<(K, V)>()?;
        let dep = Self {
            shuffle_id,
            parent,
            partitioner: Arc::new(partitioner),
            aggregator: Arc::new(aggregator),
            mode,
            _c: PhantomData,
        };
        let root: Arc<dyn ShuffleMapFn> = Arc::new(dep);
        Ok(Arc::new(root))
    }
}

impl<K, V, C, A, P> Encode for ShuffleDependency<K, V, C, A, P>
where
    K: Key,
    V: Data,
    C: Data,
    A: Aggregator<V, C>,
    P: Partitioner<K>,
{
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.shuffle_id)?;
        w.write(&*self.partitioner)?;
        w.write(&*self.aggregator)?;
        w.write(&self.mode)?;
        w.write_rdd(&self.parent)
    }
}

impl<K, V, C, A, P> ShuffleDepBase for ShuffleDependency<K, V, C, A, P>
where
    K: Key,
    V: Data,
    C: Data,
    A: Aggregator<V, C>,
    P: Partitioner<K>,
{
    fn shuffle_id(&self) -> u32 {
        self.shuffle_id
    }
    fn parent(&self) -> Arc<dyn RddBase> {
        self.parent.clone()
    }
    fn num_reduce_partitions(&self) -> usize {
        self.partitioner.num_partitions()
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<K, V, C, A, P> ShuffleMapFn for ShuffleDependency<K, V, C, A, P>
where
    K: Key,
    V: Data,
    C: Data,
    A: Aggregator<V, C>,
    P: Partitioner<K>,
{
    fn run_map(&self, map_index: usize, ctx: &TaskContext) -> Result<MapStatus> {
        let input = iterate(&self.parent, map_index, ctx)?;
        let n = self.partitioner.num_partitions();
        let config = ctx.spill_config();
        let mut combined_memory = config.memory.reservation();
        let mut out = MapOutputBuffer::new(n, config);
        if self.mode == CombineMode::MapSide {
            // The combiners and the serialized output reserve from the same
            // task memory. A map the pool refuses to grow is drained into the
            // output: the reducer merges partial combiners.
            let mut combined: CombineBuffer<K, C> = CombineBuffer::default();
            for (i, (k, v)) in input.enumerate() {
                combined.insert_value(&*self.aggregator, k, v);
                if i % 1024 == 1023 && !combined_memory.try_grow_to(combined.estimated_bytes()) {
                    // The combiners' memory passes to the output they move into.
                    combined_memory.release();
                    for (k, c) in combined.drain() {
                        out.write(self.partitioner.partition(&k), &(k, c))?;
                    }
                }
            }
            combined_memory.release();
            for (k, c) in combined.drain() {
                out.write(self.partitioner.partition(&k), &(k, c))?;
            }
        } else {
            for record in input {
                out.write(self.partitioner.partition(&record.0), &record)?;
            }
        }
        ctx.metrics().add_shuffle_records_written(out.records());
        let mut writer = ctx.env().shuffle_writer(self.shuffle_id, map_index as u32, n)?;
        let (written, spilled) = out.write_to(&mut *writer)?;
        ctx.metrics().add_shuffle_bytes_written(written);
        ctx.metrics().add_spill(spilled);
        writer.commit()
    }
}

/// The records of one reduce partition, from every map output: a corrupt or
/// missing block stops the task with a fetch failure, never a plain error.
pub fn read_partition<R: DeserializeOwned + 'static>(
    ctx: &TaskContext,
    shuffle_id: u32,
    reduce_index: usize,
) -> Result<BoxIter<R>> {
    let blocks = ctx.env().shuffle_blocks(shuffle_id, reduce_index as u32)?;
    let metrics = ctx.metrics_handle();
    Ok(Box::new(blocks.flat_map(move |fetched| {
        let fetched = match fetched {
            Ok(b) => b,
            Err(failure) => raise(EmberError::FetchFailed(failure)),
        };
        metrics.add_shuffle_bytes_read(fetched.bytes.len() as u64);
        let (map_index, executor_id) = (fetched.map_index, fetched.executor_id);
        let records = BlockRecords::<R, _>::new(fetched.bytes, move |message| {
            EmberError::FetchFailed(FetchFailure {
                shuffle_id,
                map_index,
                reduce_index: reduce_index as u32,
                executor_id: executor_id.clone(),
                message,
            })
        });
        CountRecords { inner: records, count: 0, metrics: metrics.clone() }
    })))
}

/// Counts the records a block yields and adds them to the task's metrics when
/// the block is done with (one atomic add per block, not per record).
struct CountRecords<I> {
    inner: I,
    count: u64,
    metrics: std::sync::Arc<crate::task::TaskMetrics>,
}

impl<I: Iterator> Iterator for CountRecords<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        self.count += item.is_some() as u64;
        item
    }
}

impl<I> Drop for CountRecords<I> {
    fn drop(&mut self) {
        self.metrics.add_shuffle_records_read(self.count);
    }
}
