//! The driver side of a receiver stream (Spark's `ReceiverTracker` and
//! `ReceivedBlockTracker`): starts the receiver's long-running task and
//! restarts it when it ends or its executor dies, takes the receiver's block
//! reports, hands every block that arrived before a batch's time to that
//! batch, pauses the receiver while too much received data waits, and removes
//! blocks from the executors once no batch needs them.
//!
//! Each (re)start of the receiver gets a new epoch; reports from an older
//! epoch (a receiver the driver gave up on) are refused and that receiver is
//! told to stop, so two receivers never feed one stream.
//!
//! With the write-ahead log, the metadata checkpoint records which blocks each
//! remembered batch took and the newest block any batch took; a restarted
//! driver gives the pending batches their blocks back from the log and the
//! logged blocks newer than that to the next batches.

use super::InputSource;
use super::received_blocks::{BlockSource, ReadBlocks, StreamBlockId, record_count};
use super::receiver::{FromTracker, Receiver, RunReceiver, ToTracker};
use crate::context::StreamingContext;
use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::time::Time;
use ember::Rdd;
use ember_core::config::Conf;
use ember_core::data::Data;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long `stop` waits for a receiver's task to end.
const RECEIVER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// One received block, as the tracker knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BlockInfo {
    id: StreamBlockId,
    records: u64,
    bytes: u64,
    /// Executor ids holding it (none after a driver restart: read from the log).
    #[serde(skip)]
    holders: Vec<String>,
}

#[derive(Default)]
struct TrackerState {
    unallocated: VecDeque<BlockInfo>,
    /// Blocks of each generated batch still remembered, by batch time (ms).
    allocated: BTreeMap<u64, Vec<BlockInfo>>,
    /// The newest block any batch took.
    allocated_upto: Option<StreamBlockId>,
    /// The newest batch (time, ms) that completed: blocks of batches up to it
    /// are processed, though still remembered for recomputation.
    processed_upto: Option<u64>,
    /// The running receiver's epoch, and the next start's.
    epoch: u64,
    next_epoch: u64,
    /// Records received since this driver started (restored ones included).
    received: u64,
    /// True once blocks were taken back from the write-ahead log.
    restored: bool,
}

impl TrackerState {
    /// Bytes of received blocks waiting for processing: those no batch took yet
    /// and those of batches not completed. Blocks of completed batches still
    /// remembered for recomputation do not count: they wait for nothing, and the
    /// executors' block stores move them to disk past their memory budget.
    fn unprocessed_bytes(&self) -> u64 {
        use std::ops::Bound::{Excluded, Unbounded};
        let waiting: u64 = self.unallocated.iter().map(|b| b.bytes).sum();
        let from = self.processed_upto.map_or(Unbounded, Excluded);
        let queued: u64 = self.allocated.range((from, Unbounded)).flat_map(|(_, blocks)| blocks).map(|b| b.bytes).sum();
        waiting + queued
    }
}

type StartJob = Box<dyn Fn(Option<String>) -> Result<()> + Send + Sync>;

/// The driver side of one receiver stream.
pub(crate) struct ReceiverInput {
    name: String,
    endpoint: String,
    ssc: StreamingContext,
    start_job: StartJob,
    state: Mutex<TrackerState>,
    stopped: Arc<AtomicBool>,
    /// `ember.streaming.receiver.maxBufferedBytes`: unprocessed bytes past which
    /// the receiver is paused.
    max_unprocessed_bytes: u64,
    /// `spark.streaming.receiver.maxRate` (0: none).
    max_rate: u64,
    /// The backpressure controller, when `spark.streaming.backpressure.enabled`.
    estimator: Option<Mutex<crate::rate::PidRateEstimator>>,
    /// The rate backpressure allows now (records/s; 0: none yet).
    estimated_rate: AtomicU64,
    wal_dir: Mutex<Option<Location>>,
    supervisor: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the checkpoint keeps of a receiver stream (with the write-ahead log).
#[derive(Serialize, Deserialize, Default)]
struct LogRecord {
    /// Blocks of each remembered batch.
    batches: BTreeMap<u64, Vec<BlockInfo>>,
    /// The newest block any batch took: logged blocks after it are unallocated.
    allocated_upto: Option<StreamBlockId>,
}

impl ReceiverInput {
    fn handle(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        let message: ToTracker = postcard::from_bytes(&message)?;
        let stop = self.stopped.load(Ordering::Acquire);
        let mut state = self.state.lock();
        let epoch = match message {
            ToTracker::Register { executor_id } => {
                state.epoch = state.next_epoch;
                state.next_epoch += 1;
                tracing::info!(stream = %self.name, epoch = state.epoch, %executor_id, "receiver registered");
                let epoch = state.epoch;
                return self.reply(&state, epoch, stop, Some(&executor_id));
            }
            ToTracker::Heartbeat { epoch } => epoch,
            ToTracker::Block { id, records, bytes, holders } => {
                let epoch = id.epoch;
                if epoch != state.epoch {
                    // A receiver the driver replaced: its block is dropped, and it stops.
                    drop(state);
                    tracing::warn!(stream = %self.name, block = %id.name(), "a block from a replaced receiver; dropping it");
                    self.drop_blocks(&[id]);
                    return self.reply_stop(epoch);
                }
                // While stopping, a receiver's last blocks are still taken: a graceful stop processes them.
                state.received += records;
                tracing::debug!(stream = %self.name, block = %id.name(), records, holders = holders.len(), total_records = state.received, "block received");
                let executor = holders.first().cloned();
                state.unallocated.push_back(BlockInfo { id, records, bytes, holders });
                return self.reply(&state, epoch, stop, executor.as_deref());
            }
        };
        if epoch != state.epoch {
            return self.reply_stop(epoch);
        }
        self.reply(&state, epoch, stop, None)
    }

    fn reply(&self, state: &TrackerState, epoch: u64, stop: bool, executor: Option<&str>) -> Result<Vec<u8>> {
        let pause = !stop && state.unprocessed_bytes() > self.max_unprocessed_bytes;
        let replica = executor.and_then(|own| self.pick_replica(own));
        Ok(postcard::to_allocvec(&FromTracker { epoch, stop, pause, max_rate: self.rate_limit(), replica })?)
    }

    fn reply_stop(&self, epoch: u64) -> Result<Vec<u8>> {
        Ok(postcard::to_allocvec(&FromTracker { epoch, stop: true, pause: false, max_rate: 0, replica: None })?)
    }

    /// Another live executor to copy blocks of `own`'s receiver to: the next
    /// one after it by id, so replicas spread when there are many.
    fn pick_replica(&self, own: &str) -> Option<(String, String)> {
        let mut peers = self.ssc.spark_context().executor_block_addresses();
        peers.retain(|(id, address)| id != own && !address.is_empty());
        peers.sort();
        let after = peers.iter().position(|(id, _)| id.as_str() > own).unwrap_or(0);
        peers.get(after).cloned()
    }

    /// Records per second the receiver may take: the lower of
    /// `spark.streaming.receiver.maxRate` and the backpressure rate (0: unlimited).
    fn rate_limit(&self) -> u64 {
        match (self.max_rate, self.estimated_rate.load(Ordering::Relaxed)) {
            (0, r) | (r, 0) => r,
            (a, b) => a.min(b),
        }
    }

    /// Removes blocks from the executors and the write-ahead log.
    fn drop_blocks(&self, ids: &[StreamBlockId]) {
        self.ssc.spark_context().remove_stream_blocks(ids.iter().map(StreamBlockId::name).collect());
        if let Some(dir) = self.wal_dir.lock().clone() {
            let conf = self.ssc.spark_context().conf();
            for id in ids {
                if let Err(e) = dir.join(&id.name()).remove(conf) {
                    tracing::warn!(stream = %self.name, error = %e, "could not remove a logged block");
                }
            }
        }
    }

    fn supervise(self: Arc<Self>, restart_delay: Duration) {
        let wal_dir = self.wal_dir.lock().as_ref().map(Location::url);
        while !self.stopped.load(Ordering::Acquire) {
            match (self.start_job)(wal_dir.clone()) {
                Ok(()) => tracing::info!(stream = %self.name, "receiver ended"),
                Err(e) => tracing::warn!(stream = %self.name, error = %e, "receiver failed"),
            }
            let deadline = Instant::now() + restart_delay;
            while !self.stopped.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20).min(restart_delay));
            }
            if !self.stopped.load(Ordering::Acquire) {
                tracing::info!(stream = %self.name, "restarting the receiver");
            }
        }
    }

    /// Where a batch's block can be read: its holders' block addresses (live executors only).
    fn sources(&self, blocks: &[BlockInfo]) -> Vec<BlockSource> {
        let addresses: HashMap<String, String> =
            self.ssc.spark_context().executor_block_addresses().into_iter().collect();
        let wal = self.wal_dir.lock().clone();
        blocks
            .iter()
            .map(|b| BlockSource {
                name: b.id.name(),
                holders: b.holders.iter().filter_map(|h| addresses.get(h).cloned()).collect(),
                wal: wal.as_ref().map(|d| d.join(&b.id.name()).url()),
            })
            .collect()
    }
}

/// The ids of the blocks of `stream` logged in `dir`, in arrival order.
fn logged_ids(dir: &Location, conf: &Conf, stream: &str) -> Result<Vec<StreamBlockId>> {
    let mut ids: Vec<StreamBlockId> =
        dir.list(conf)?.into_iter().filter_map(|name| StreamBlockId::parse(stream, &name)).collect();
    ids.sort();
    Ok(ids)
}

fn logged_block(dir: &Location, conf: &Conf, id: StreamBlockId) -> Result<BlockInfo> {
    let bytes = ember_core::framed::read_framed_at(&dir.join(&id.name()), conf)?;
    Ok(BlockInfo { records: record_count(&bytes), bytes: bytes.len() as u64, id, holders: Vec::new() })
}

impl ReceiverInput {
    /// Takes the logged blocks after `after` as not yet given to any batch.
    fn load_unallocated(&self, dir: &Location, state: &mut TrackerState, after: Option<&StreamBlockId>) -> Result<()> {
        let conf = self.ssc.spark_context().conf();
        let ids = logged_ids(dir, conf, &self.name)?;
        // Ids sort by epoch first: the last one has the newest.
        if let Some(last) = ids.last() {
            state.next_epoch = state.next_epoch.max(last.epoch + 1);
        }
        for id in ids.into_iter().filter(|id| after.is_none_or(|a| id > a)) {
            let block = logged_block(dir, conf, id)?;
            state.received += block.records;
            state.unallocated.push_back(block);
        }
        state.restored = true;
        Ok(())
    }
}

impl InputSource for ReceiverInput {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(self: Arc<Self>) -> Result<()> {
        let conf = self.ssc.spark_context().conf();
        if conf.get_bool("spark.streaming.receiver.writeAheadLog.enable", false)? {
            let ckpt = self.ssc.checkpoint_dir().ok_or_else(|| {
                EmberError::Config(
                    "spark.streaming.receiver.writeAheadLog.enable needs a checkpoint directory: call checkpoint(dir)"
                        .into(),
                )
            })?;
            let dir = ckpt.join("receivedData").join(&self.name);
            dir.create_dir_all()?;
            // A driver killed before its first metadata checkpoint leaves blocks
            // no batch took: they are the first batches' data.
            let mut state = self.state.lock();
            if !state.restored {
                self.load_unallocated(&dir, &mut state, None)?;
                if !state.unallocated.is_empty() {
                    tracing::info!(stream = %self.name, blocks = state.unallocated.len(), "received blocks taken back from the write-ahead log");
                }
            }
            drop(state);
            *self.wal_dir.lock() = Some(dir);
        }
        let delay = conf.get_duration("spark.streaming.receiverRestartDelay", Duration::from_secs(2))?;
        let me = self.clone();
        let endpoint_me = self.clone();
        self.ssc.spark_context().register_endpoint(&self.endpoint, Arc::new(move |m| endpoint_me.handle(m)));
        let handle = std::thread::Builder::new()
            .name(format!("receiver-supervisor-{}", self.name))
            .spawn(move || me.supervise(delay))
            .map_err(|e| EmberError::Internal(format!("cannot start receiver {}: {e}", self.name)))?;
        *self.supervisor.lock() = Some(handle);
        Ok(())
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        // The receiver task learns it at its next block (at most one block
        // interval). A receiver task that never got a core (every executor
        // busy or gone) cannot learn it: the wait is bounded.
        if let Some(handle) = self.supervisor.lock().take()
            && handle.thread().id() != std::thread::current().id()
        {
            let deadline = Instant::now() + RECEIVER_STOP_TIMEOUT;
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                tracing::warn!(stream = %self.name, timeout = ?RECEIVER_STOP_TIMEOUT, "the receiver did not stop in time; going on without it");
            }
        }
        self.ssc.spark_context().unregister_endpoint(&self.endpoint);
    }

    fn allocate(&self, time: Time) -> Result<u64> {
        let mut state = self.state.lock();
        let blocks: Vec<BlockInfo> = state.unallocated.drain(..).collect();
        let count = blocks.iter().map(|b| b.records).sum();
        if let Some(last) = blocks.last() {
            state.allocated_upto = Some(last.id.clone());
        }
        state.allocated.insert(time.0, blocks);
        Ok(count)
    }

    fn has_unallocated(&self) -> bool {
        !self.state.lock().unallocated.is_empty()
    }

    fn batch_completed(&self, info: &crate::BatchInfo) {
        let records = {
            let mut state = self.state.lock();
            state.processed_upto = state.processed_upto.max(Some(info.batch_time.0));
            state.allocated.get(&info.batch_time.0).map_or(0, |b| b.iter().map(|b| b.records).sum())
        };
        let Some(estimator) = &self.estimator else { return };
        if let Some(rate) = estimator.lock().compute(
            info.processing_end_ms,
            records,
            info.processing_delay_ms(),
            info.scheduling_delay_ms(),
        ) {
            self.estimated_rate.store(rate.ceil() as u64, Ordering::Relaxed);
            tracing::debug!(stream = %self.name, rate_per_s = rate, "backpressure rate");
        }
    }

    fn checkpoint_state(&self) -> Option<serde_json::Value> {
        self.wal_dir.lock().as_ref()?;
        let state = self.state.lock();
        let record = LogRecord { batches: state.allocated.clone(), allocated_upto: state.allocated_upto.clone() };
        serde_json::to_value(record).ok()
    }

    fn restore(&self, value: &serde_json::Value) -> Result<()> {
        let record: LogRecord = serde_json::from_value(value.clone())
            .map_err(|e| EmberError::Codec(format!("checkpoint record of receiver stream {}: {e}", self.name)))?;
        let conf = self.ssc.spark_context().conf();
        if !conf.get_bool("spark.streaming.receiver.writeAheadLog.enable", false)? {
            return Ok(());
        }
        let ckpt = self.ssc.checkpoint_dir().ok_or_else(|| EmberError::Internal("no checkpoint directory".into()))?;
        let dir = ckpt.join("receivedData").join(&self.name);
        // One listing, not a request per block (on an object store).
        let logged: std::collections::HashSet<String> = dir.list(conf)?.into_iter().collect();
        let mut state = self.state.lock();
        for (time, blocks) in &record.batches {
            // The pending batches' blocks come back from the log (their executors are gone).
            for b in blocks {
                if !logged.contains(&b.id.name()) {
                    return Err(EmberError::StreamBlock {
                        id: b.id.name(),
                        reason: format!("batch {time} ms needs it but the write-ahead log in {dir} lacks it"),
                    });
                }
                state.next_epoch = state.next_epoch.max(b.id.epoch + 1);
            }
            state.allocated.insert(*time, blocks.clone());
        }
        // Blocks logged after the last allocation go to the next batches.
        state.allocated_upto = record.allocated_upto.clone();
        self.load_unallocated(&dir, &mut state, record.allocated_upto.as_ref())?;
        tracing::info!(
            stream = %self.name,
            batches = record.batches.len(),
            unallocated = state.unallocated.len(),
            "received blocks restored from the write-ahead log"
        );
        Ok(())
    }

    fn forget_before(&self, time: Time) {
        let ids: Vec<StreamBlockId> = {
            let mut state = self.state.lock();
            let keep = state.allocated.split_off(&time.0);
            let old = std::mem::replace(&mut state.allocated, keep);
            old.into_values().flatten().map(|b| b.id).collect()
        };
        self.drop_blocks(&ids);
    }
}

struct ReceiverCompute(Arc<ReceiverInput>);

impl<T: Data> Compute<T> for ReceiverCompute {
    fn name(&self) -> String {
        format!("receiverStream {}", self.0.name)
    }
    fn slide_ms(&self) -> u64 {
        self.0.ssc.inner.batch_ms
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        Vec::new()
    }
    fn compute(&self, _node: &Node<T>, time: Time) -> Result<Option<Rdd<T>>> {
        let sc = self.0.ssc.spark_context();
        let blocks = self.0.state.lock().allocated.get(&time.0).cloned().unwrap_or_default();
        if blocks.is_empty() {
            return Ok(Some(sc.empty_rdd()));
        }
        let blocks = self.0.sources(&blocks);
        let n = blocks.len();
        let read = ReadBlocks { stream: self.0.name.clone(), blocks, _records: std::marker::PhantomData };
        Ok(Some(sc.parallelize((0..n).collect(), n).map_partitions_op(read)))
    }
}

impl StreamingContext {
    /// A stream of what `receiver` stores, received on an executor (see the
    /// module docs of `receiver`). Its long-running task holds no task slot.
    pub fn receiver_stream<R: Receiver>(&self, receiver: R) -> DStream<R::Item> {
        self.receiver_stream_named(receiver, None)
    }

    /// [`StreamingContext::receiver_stream`] with the name its blocks, its
    /// write-ahead log and its checkpoint record use (default `receiverStream-N`).
    pub fn receiver_stream_named<R: Receiver>(&self, receiver: R, name: Option<&str>) -> DStream<R::Item> {
        let name = self.inner.graph.unique_name("receiverStream", name);
        let conf = self.spark_context().conf().clone();
        let read = |key: &str, default: u64| -> u64 {
            match conf.get_bytes(key, default) {
                Ok(v) => v,
                Err(e) => {
                    self.inner.graph.record_error(format!("{key}: {e}"));
                    default
                }
            }
        };
        let block_interval_ms = conf
            .get_duration("spark.streaming.blockInterval", Duration::from_millis(200))
            .map(|d| d.as_millis() as u64)
            .unwrap_or(200);
        let max_rate = conf.get_usize("spark.streaming.receiver.maxRate", 0).unwrap_or(0) as u64;
        let max_records = read("ember.streaming.receiver.maxBufferedRecords", 1_000_000) as usize;
        let max_unprocessed_bytes = read("ember.streaming.receiver.maxBufferedBytes", 256 << 20);
        let endpoint = format!("ember.streaming.receiver.{name}");
        let estimator = match conf.get_bool("spark.streaming.backpressure.enabled", false) {
            Ok(false) => None,
            Ok(true) => match crate::rate::PidRateEstimator::from_conf(&conf, self.inner.batch_ms) {
                Ok(e) => Some(Mutex::new(e)),
                Err(e) => {
                    self.inner.graph.record_error(format!("spark.streaming.backpressure.pid: {e}"));
                    None
                }
            },
            Err(e) => {
                self.inner.graph.record_error(format!("spark.streaming.backpressure.enabled: {e}"));
                None
            }
        };
        let sc = self.spark_context().clone();
        // The receiver is shipped anew with each start (a task consumes its op).
        let shipped = match postcard::to_allocvec(&receiver) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.inner.graph.record_error(format!("receiver of {name} cannot be serialized: {e}"));
                Vec::new()
            }
        };
        let (stream, job_endpoint) = (name.clone(), endpoint.clone());
        let start_job: StartJob = Box::new(move |wal_dir| {
            let op = RunReceiver {
                receiver: postcard::from_bytes::<R>(&shipped)?,
                stream: stream.clone(),
                endpoint: job_endpoint.clone(),
                block_interval_ms,
                max_buffered_records: max_records,
                max_rate,
                wal_dir,
            };
            // A receiver holds no task slot: batches get every core (this thread
            // only ever submits receiver jobs).
            sc.set_local_property(ember::context::local_properties::LONG_RUNNING, Some("true"))?;
            sc.parallelize(vec![()], 1).map_partitions_op(op).count().map(|_| ())
        });
        let input = Arc::new(ReceiverInput {
            name,
            endpoint,
            ssc: self.clone(),
            start_job,
            state: Mutex::new(TrackerState::default()),
            stopped: Arc::new(AtomicBool::new(false)),
            max_unprocessed_bytes,
            max_rate,
            estimator,
            estimated_rate: AtomicU64::new(0),
            wal_dir: Mutex::new(None),
            supervisor: Mutex::new(None),
        });
        self.inner.graph.add_input(input.clone());
        DStream::from_compute(self, ReceiverCompute(input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64, bytes: u64) -> BlockInfo {
        BlockInfo { id: StreamBlockId::new("s", 0, n), records: 1, bytes, holders: Vec::new() }
    }

    #[test]
    fn only_blocks_waiting_for_a_batch_count_toward_the_pause() {
        let mut state = TrackerState {
            unallocated: VecDeque::from([block(5, 7)]),
            allocated: BTreeMap::from([
                (1000, vec![block(0, 100), block(1, 100)]),
                (2000, vec![block(2, 10)]),
                (3000, vec![block(3, 1), block(4, 2)]),
            ]),
            ..TrackerState::default()
        };
        // No batch completed yet: everything waits.
        assert_eq!(state.unprocessed_bytes(), 7 + 200 + 10 + 3);
        // Batch 2000 completed (and 1000 before it): their blocks are only remembered.
        state.processed_upto = Some(2000);
        assert_eq!(state.unprocessed_bytes(), 7 + 3);
        state.processed_upto = Some(3000);
        assert_eq!(state.unprocessed_bytes(), 7);
        state.unallocated.clear();
        assert_eq!(state.unprocessed_bytes(), 0);
    }
}
