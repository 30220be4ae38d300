//! Receivers (Spark's `Receiver` and `ReceiverTracker`): a receiver runs as a
//! long-running task on an executor, storing records; every
//! `spark.streaming.blockInterval` (200 ms) what it stored is cut into a block
//! and sent to the driver's receiver tracker, which keeps it until a batch
//! takes it (each batch takes every block that arrived before its time). A
//! batch's blocks reach its tasks as broadcast values, fetched peer to peer.
//!
//! A receiver whose executor dies is started again on another one (its task
//! is re-run, as for any lost task); one that fails or ends is restarted after
//! `spark.streaming.receiverRestartDelay` (2 s) until the context stops. With
//! `spark.streaming.receiver.writeAheadLog.enable=true` every block is written
//! to `<checkpoint>/receivedData/<stream>/` before it is acknowledged, so a
//! driver that is killed loses nothing it acknowledged: on recovery the batches
//! that were pending get their blocks back and unallocated blocks go to the
//! next batches.
//!
//! Memory is bounded: when the blocks held by the tracker pass
//! `ember.streaming.receiver.maxBufferedBytes` (256 MiB), it refuses new ones
//! until batches have taken some, the receiver keeps at most
//! `ember.streaming.receiver.maxBufferedRecords` records, and `store` then
//! blocks, so a source that outruns the engine is slowed (a socket by TCP flow
//! control) instead of filling the driver's memory.

use super::InputSource;
use crate::context::StreamingContext;
use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::time::Time;
use ember::{Broadcast, Rdd};
use ember_core::data::Data;
use ember_core::error::{EmberError, Result};
use ember_core::rdd::PartitionOp;
use ember_core::task::ExecutorEnv;
use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long `stop` waits for a receiver's task to end.
const RECEIVER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A source of records that runs on an executor (Spark's `Receiver`).
/// Serializable: it is shipped to the executor with its task.
pub trait Receiver: Serialize + DeserializeOwned + Send + Sync + 'static {
    type Item: Data;
    /// Receives until `out.is_stopped()` (check it at least every few hundred
    /// milliseconds), handing records to [`ReceiverOutput::store`]. Returning —
    /// with `Ok` when the source ended, with an error when it failed — gets the
    /// receiver restarted after the restart delay unless the context stopped.
    fn receive(&self, out: &ReceiverOutput<Self::Item>) -> Result<()>;
}

/// Where a running receiver puts its records.
pub struct ReceiverOutput<T: Data> {
    shared: Arc<OutputShared<T>>,
}

struct OutputShared<T> {
    buffer: Mutex<Vec<T>>,
    space: Condvar,
    stopped: AtomicBool,
    max_records: usize,
    /// Records per second this receiver may store (0: unlimited), and the
    /// token bucket enforcing it.
    max_rate: AtomicU64,
    bucket: Mutex<(f64, Instant)>,
}

impl<T: Data> ReceiverOutput<T> {
    /// Stores one record: it goes to the driver with the next block. Blocks
    /// while the receiver is over its rate or its buffer is full.
    /// Errors: the receiver was stopped.
    pub fn store(&self, record: T) -> Result<()> {
        self.throttle()?;
        let mut buffer = self.shared.buffer.lock();
        while buffer.len() >= self.shared.max_records {
            if self.is_stopped() {
                return Err(EmberError::Stopped);
            }
            self.shared.space.wait_for(&mut buffer, Duration::from_millis(100));
        }
        buffer.push(record);
        Ok(())
    }

    /// True once the context stops this receiver: `receive` should return.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    fn throttle(&self) -> Result<()> {
        let rate = self.shared.max_rate.load(Ordering::Relaxed);
        if rate == 0 {
            return Ok(());
        }
        loop {
            let wait = {
                let mut bucket = self.shared.bucket.lock();
                let now = Instant::now();
                let (tokens, at) = *bucket;
                let tokens = (tokens + now.duration_since(at).as_secs_f64() * rate as f64).min(rate as f64);
                if tokens >= 1.0 {
                    *bucket = (tokens - 1.0, now);
                    return Ok(());
                }
                *bucket = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / rate as f64)
            };
            if self.is_stopped() {
                return Err(EmberError::Stopped);
            }
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
    }
}

/// What a receiver's task sends the tracker.
#[derive(Serialize, Deserialize)]
enum ToTracker {
    /// A block: postcard `Vec<T>` of `count` records. An empty block is a heartbeat.
    Block { count: u64, records: Vec<u8> },
}

/// The tracker's answer.
#[derive(Serialize, Deserialize)]
struct FromTracker {
    /// False: the tracker holds too much; send the block again later.
    accepted: bool,
    /// Stop receiving (the context is stopping).
    stop: bool,
    /// Records per second this receiver may store (0: unlimited).
    max_rate: u64,
}

/// The shipped task of a receiver: runs it, and a thread that cuts and sends blocks.
#[derive(Serialize, Deserialize)]
struct RunReceiver<R> {
    receiver: R,
    endpoint: String,
    block_interval_ms: u64,
    max_buffered_records: usize,
    max_rate: u64,
}

impl<R: Receiver> RunReceiver<R> {
    fn run(&self, env: Arc<dyn ExecutorEnv>) -> Result<()> {
        tracing::info!(
            endpoint = %self.endpoint,
            executor_id = env.executor_id(),
            pid = std::process::id(),
            "receiver started"
        );
        let shared = Arc::new(OutputShared {
            buffer: Mutex::new(Vec::new()),
            space: Condvar::new(),
            stopped: AtomicBool::new(false),
            max_records: self.max_buffered_records.max(1),
            max_rate: AtomicU64::new(self.max_rate),
            bucket: Mutex::new((0.0, Instant::now())),
        });
        let pusher = {
            let shared = shared.clone();
            let endpoint = self.endpoint.clone();
            let interval = Duration::from_millis(self.block_interval_ms.max(1));
            std::thread::Builder::new()
                .name("receiver-block-pusher".into())
                .spawn(move || push_blocks(shared, env, endpoint, interval))
                .map_err(|e| EmberError::Internal(format!("cannot start a receiver's block pusher: {e}")))?
        };
        let out = ReceiverOutput { shared: shared.clone() };
        let result = self.receiver.receive(&out);
        // Whatever was stored goes out before the task ends.
        shared.stopped.store(true, Ordering::Release);
        let pushed = pusher.join().map_err(|_| EmberError::Internal("a receiver's block pusher panicked".into()))?;
        result.and(pushed)
    }
}

fn push_blocks<T: Data>(
    shared: Arc<OutputShared<T>>,
    env: Arc<dyn ExecutorEnv>,
    endpoint: String,
    interval: Duration,
) -> Result<()> {
    loop {
        let stopping = shared.stopped.load(Ordering::Acquire);
        if !stopping {
            std::thread::sleep(interval);
        }
        let records = std::mem::take(&mut *shared.buffer.lock());
        shared.space.notify_all();
        let message = postcard::to_allocvec(&ToTracker::Block {
            count: records.len() as u64,
            records: postcard::to_allocvec(&records)?,
        })?;
        loop {
            let reply: FromTracker = postcard::from_bytes(&env.ask_driver(&endpoint, message.clone())?)?;
            shared.max_rate.store(reply.max_rate, Ordering::Relaxed);
            if reply.stop {
                shared.stopped.store(true, Ordering::Release);
            }
            if reply.accepted || reply.stop {
                break;
            }
            std::thread::sleep(interval);
        }
        if stopping || shared.stopped.load(Ordering::Acquire) && shared.buffer.lock().is_empty() {
            return Ok(());
        }
    }
}

impl<R: Receiver> PartitionOp<(), ()> for RunReceiver<R> {
    const NAME: &'static str = "receiver";
    fn apply(self: Arc<Self>, _split: usize, _input: ember::BoxIter<()>) -> ember::BoxIter<()> {
        let env =
            ember_core::task::TaskContext::with_current(|ctx| ctx.map(|c| c.env().clone())).unwrap_or_else(|| {
                ember_core::error::raise(EmberError::Internal("a receiver runs only inside a task".into()))
            });
        if let Err(e) = self.run(env) {
            ember_core::error::raise(e);
        }
        Box::new(std::iter::empty())
    }
}

/// One received block held by the tracker.
struct Block<T> {
    seq: u64,
    records: Arc<Vec<T>>,
    bytes: u64,
}

struct TrackerState<T> {
    unallocated: VecDeque<Block<T>>,
    /// Blocks of each generated batch still remembered, by batch time (ms).
    allocated: BTreeMap<u64, Vec<Block<T>>>,
    /// Broadcasts made for each batch's blocks.
    broadcasts: BTreeMap<u64, Vec<Broadcast<Vec<T>>>>,
    held_bytes: u64,
    next_seq: u64,
    /// Records received since this driver started (restored ones included).
    received: u64,
    /// True once blocks were taken back from the write-ahead log.
    restored: bool,
}

/// The driver side of one receiver stream.
pub(crate) struct ReceiverInput<T: Data> {
    name: String,
    endpoint: String,
    ssc: StreamingContext,
    start_job: Box<dyn Fn() -> Result<()> + Send + Sync>,
    state: Mutex<TrackerState<T>>,
    stopped: Arc<AtomicBool>,
    max_held_bytes: u64,
    /// `spark.streaming.receiver.maxRate` (0: none).
    max_rate: u64,
    /// The backpressure controller, when `spark.streaming.backpressure.enabled`.
    estimator: Option<Mutex<crate::rate::PidRateEstimator>>,
    /// The rate backpressure allows now (records/s; 0: none yet).
    estimated_rate: AtomicU64,
    wal_dir: Mutex<Option<PathBuf>>,
    supervisor: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the checkpoint keeps of a receiver stream (with the write-ahead log).
#[derive(Serialize, Deserialize, Default)]
struct LogRecord {
    /// Block sequence numbers of each remembered batch.
    batches: BTreeMap<u64, Vec<u64>>,
    /// The first sequence number no batch took.
    next_unallocated: u64,
}

impl<T: Data> ReceiverInput<T> {
    fn handle(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        let ToTracker::Block { count, records } = postcard::from_bytes(&message)?;
        let reply = |accepted: bool, stop: bool| {
            Ok(postcard::to_allocvec(&FromTracker { accepted, stop, max_rate: self.rate_limit() })?)
        };
        // While stopping, a receiver's last blocks are still taken: a graceful
        // stop processes them.
        let stop = self.stopped.load(Ordering::Acquire);
        if count == 0 {
            return reply(true, stop);
        }
        let bytes = records.len() as u64;
        let mut state = self.state.lock();
        if !stop && state.held_bytes > 0 && state.held_bytes + bytes > self.max_held_bytes {
            return reply(false, false);
        }
        let values: Vec<T> = postcard::from_bytes(&records)
            .map_err(|e| EmberError::Codec(format!("a block of receiver stream {}: {e}", self.name)))?;
        let seq = state.next_seq;
        if let Some(dir) = self.wal_dir.lock().clone() {
            write_log_block(&dir, seq, &records)?;
        }
        state.next_seq += 1;
        state.held_bytes += bytes;
        state.received += count;
        tracing::debug!(stream = %self.name, seq, records = count, total_records = state.received, "block received");
        state.unallocated.push_back(Block { seq, records: Arc::new(values), bytes });
        reply(true, stop)
    }

    /// Records per second the receiver may take: the lower of
    /// `spark.streaming.receiver.maxRate` and the backpressure rate (0: unlimited).
    fn rate_limit(&self) -> u64 {
        match (self.max_rate, self.estimated_rate.load(Ordering::Relaxed)) {
            (0, r) | (r, 0) => r,
            (a, b) => a.min(b),
        }
    }

    fn supervise(self: Arc<Self>, restart_delay: Duration) {
        while !self.stopped.load(Ordering::Acquire) {
            match (self.start_job)() {
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
}

/// Takes the logged blocks from `first` on as not yet allocated to a batch.
fn load_unallocated<T: Data>(dir: &std::path::Path, first: u64, state: &mut TrackerState<T>) -> Result<()> {
    let mut seq = first;
    while log_file(dir, seq).exists() {
        let (values, bytes) = read_log_block::<T>(dir, seq)?;
        state.held_bytes += bytes;
        state.received += values.len() as u64;
        state.unallocated.push_back(Block { seq, records: Arc::new(values), bytes });
        seq += 1;
    }
    state.next_seq = state.next_seq.max(seq);
    state.restored = true;
    Ok(())
}

fn log_file(dir: &std::path::Path, seq: u64) -> PathBuf {
    dir.join(format!("block-{seq:012}"))
}

/// Writes one block to the write-ahead log, durably: `[crc32 LE][bytes]`.
fn write_log_block(dir: &std::path::Path, seq: u64, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = log_file(dir, seq);
    let tmp = dir.join(format!(".block-{seq:012}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&crc32fast::hash(bytes).to_le_bytes())?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| EmberError::io(path.display(), e))
}

fn read_log_block<T: Data>(dir: &std::path::Path, seq: u64) -> Result<(Vec<T>, u64)> {
    let path = log_file(dir, seq);
    let data = std::fs::read(&path).map_err(|e| EmberError::io(path.display(), e))?;
    if data.len() < 4 || crc32fast::hash(&data[4..]) != u32::from_le_bytes(data[..4].try_into().expect("4 bytes")) {
        return Err(EmberError::Codec(format!("write-ahead log block {} is corrupt", path.display())));
    }
    let values = postcard::from_bytes(&data[4..])
        .map_err(|e| EmberError::Codec(format!("write-ahead log block {}: {e}", path.display())))?;
    Ok((values, data.len() as u64 - 4))
}

impl<T: Data> InputSource for ReceiverInput<T> {
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
            std::fs::create_dir_all(&dir).map_err(|e| EmberError::io(dir.display(), e))?;
            // A driver killed before its first metadata checkpoint leaves blocks
            // no batch took: they are the first batches' data.
            let mut state = self.state.lock();
            if !state.restored {
                load_unallocated(&dir, 0, &mut state)?;
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
        let blocks: Vec<Block<T>> = state.unallocated.drain(..).collect();
        let count = blocks.iter().map(|b| b.records.len() as u64).sum();
        state.allocated.insert(time.0, blocks);
        Ok(count)
    }

    fn has_unallocated(&self) -> bool {
        !self.state.lock().unallocated.is_empty()
    }

    fn batch_completed(&self, info: &crate::BatchInfo) {
        let Some(estimator) = &self.estimator else { return };
        let records = self
            .state
            .lock()
            .allocated
            .get(&info.batch_time.0)
            .map_or(0, |b| b.iter().map(|b| b.records.len() as u64).sum());
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
        let record = LogRecord {
            batches: state.allocated.iter().map(|(t, blocks)| (*t, blocks.iter().map(|b| b.seq).collect())).collect(),
            next_unallocated: state.unallocated.front().map_or(state.next_seq, |b| b.seq),
        };
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
        let mut state = self.state.lock();
        for (time, seqs) in &record.batches {
            let mut blocks = Vec::new();
            for &seq in seqs {
                let (values, bytes) = read_log_block::<T>(&dir, seq)?;
                state.held_bytes += bytes;
                blocks.push(Block { seq, records: Arc::new(values), bytes });
            }
            state.allocated.insert(*time, blocks);
        }
        // Blocks acknowledged after the last allocation go to the next batches.
        load_unallocated(&dir, record.next_unallocated, &mut state)?;
        tracing::info!(
            stream = %self.name,
            batches = record.batches.len(),
            unallocated = state.unallocated.len(),
            "received blocks restored from the write-ahead log"
        );
        Ok(())
    }

    fn forget_before(&self, time: Time) {
        let mut state = self.state.lock();
        let keep = state.allocated.split_off(&time.0);
        let old = std::mem::replace(&mut state.allocated, keep);
        let keep = state.broadcasts.split_off(&time.0);
        let old_broadcasts = std::mem::replace(&mut state.broadcasts, keep);
        let wal = self.wal_dir.lock().clone();
        for block in old.into_values().flatten() {
            state.held_bytes -= block.bytes;
            if let Some(dir) = &wal {
                let _ = std::fs::remove_file(log_file(dir, block.seq));
            }
        }
        drop(state);
        for b in old_broadcasts.into_values().flatten() {
            b.destroy();
        }
    }
}

/// Reads a batch's blocks from their broadcasts.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct ReadBlocks<T: Data> {
    blocks: Vec<Broadcast<Vec<T>>>,
}

impl<T: Data> PartitionOp<usize, T> for ReadBlocks<T> {
    const NAME: &'static str = "receivedBlocks";
    fn apply(self: Arc<Self>, _split: usize, input: ember::BoxIter<usize>) -> ember::BoxIter<T> {
        let me = self.clone();
        Box::new(input.flat_map(move |i| me.blocks[i].value().clone()))
    }
}

struct ReceiverCompute<T: Data>(Arc<ReceiverInput<T>>);

impl<T: Data> Compute<T> for ReceiverCompute<T> {
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
        let records: Vec<Arc<Vec<T>>> = {
            let state = self.0.state.lock();
            state.allocated.get(&time.0).map(|b| b.iter().map(|b| b.records.clone()).collect()).unwrap_or_default()
        };
        if records.is_empty() {
            return Ok(Some(sc.empty_rdd()));
        }
        let mut blocks = Vec::with_capacity(records.len());
        for r in records {
            blocks.push(sc.broadcast((*r).clone())?);
        }
        self.0.state.lock().broadcasts.insert(time.0, blocks.clone());
        let n = blocks.len();
        Ok(Some(sc.parallelize((0..n).collect(), n).map_partitions_op(ReadBlocks { blocks })))
    }
}

impl StreamingContext {
    /// A stream of what `receiver` stores, received on an executor (see the
    /// module docs). Takes one task slot for as long as the context runs.
    pub fn receiver_stream<R: Receiver>(&self, receiver: R) -> DStream<R::Item> {
        self.receiver_stream_named(receiver, None)
    }

    /// [`StreamingContext::receiver_stream`] with the name its write-ahead
    /// log and checkpoint record use (default `receiverStream-N`).
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
        let max_held_bytes = read("ember.streaming.receiver.maxBufferedBytes", 256 << 20);
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
        let task = Arc::new(RunReceiver {
            receiver,
            endpoint: endpoint.clone(),
            block_interval_ms,
            max_buffered_records: max_records,
            max_rate,
        });
        let start_job = Box::new(move || -> Result<()> {
            let op = RunReceiver {
                receiver: postcard::from_bytes::<R>(&postcard::to_allocvec(&task.receiver)?)?,
                endpoint: task.endpoint.clone(),
                block_interval_ms: task.block_interval_ms,
                max_buffered_records: task.max_buffered_records,
                max_rate: task.max_rate,
            };
            sc.parallelize(vec![()], 1).map_partitions_op(op).count().map(|_| ())
        });
        let input = Arc::new(ReceiverInput {
            name,
            endpoint,
            ssc: self.clone(),
            start_job,
            state: Mutex::new(TrackerState {
                unallocated: VecDeque::new(),
                allocated: BTreeMap::new(),
                broadcasts: BTreeMap::new(),
                held_bytes: 0,
                next_seq: 0,
                received: 0,
                restored: false,
            }),
            stopped: Arc::new(AtomicBool::new(false)),
            max_held_bytes,
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
