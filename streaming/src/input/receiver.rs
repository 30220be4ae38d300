//! Receivers (Spark's `Receiver` and `ReceiverSupervisor`): a receiver runs as
//! a long-running task on an executor, storing records. Every
//! `spark.streaming.blockInterval` (200 ms) what it stored is cut into a block
//! (serialized records, Spark's `StreamBlockId` `input-<stream>-<epoch>-<n>`),
//! kept in that executor's block store and copied to a second executor when
//! one exists (Spark's `MEMORY_AND_DISK_SER_2`), and reported to the driver's
//! receiver tracker ([`super::receiver_tracker`]), which hands it to the next
//! batch. The batch's tasks read blocks from whichever executor holds them
//! ([`super::received_blocks`]); the records never pass through the driver.
//!
//! With `spark.streaming.receiver.writeAheadLog.enable=true` every block is
//! also written to `<checkpoint>/receivedData/<stream>/<block id>` before it is
//! reported, so a driver that is killed loses nothing it was told about (as in
//! Spark, the checkpoint directory must then be reachable from the executors:
//! a shared volume).
//!
//! Memory is bounded: while the blocks no batch has finished with pass
//! `ember.streaming.receiver.maxBufferedBytes` (256 MiB) the tracker pauses the
//! receiver, which then cuts no blocks; it keeps at most
//! `ember.streaming.receiver.maxBufferedRecords` records, and `store` then
//! blocks, so a source that outruns the engine is slowed (a socket by TCP flow
//! control) instead of filling memory.

use super::received_blocks::StreamBlockId;
use ember_core::data::Data;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use ember_core::rdd::PartitionOp;
use ember_core::task::ExecutorEnv;
use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    bucket: Mutex<TokenBucket>,
}

impl<T> OutputShared<T> {
    /// An empty buffer of at most `max_records`, stored at `max_rate` per second (0: unlimited).
    fn new(max_records: usize, max_rate: u64) -> Self {
        Self {
            buffer: Mutex::new(Vec::new()),
            space: Condvar::new(),
            stopped: AtomicBool::new(false),
            max_records,
            max_rate: AtomicU64::new(max_rate),
            bucket: Mutex::new(TokenBucket::new(Instant::now())),
        }
    }
}

impl<T: Data> ReceiverOutput<T> {
    /// Stores one record: it goes into the next block. Blocks while the
    /// receiver is over its rate or its buffer is full.
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

    /// Stores many records at once (Spark's `store(ArrayBuffer)`): the same as
    /// storing each in turn, with one lock per batch of records instead of one
    /// per record. Blocks while the receiver is over its rate or its buffer is full.
    /// Errors: the receiver was stopped (records not yet stored are dropped).
    pub fn store_many(&self, records: Vec<T>) -> Result<()> {
        if self.shared.max_rate.load(Ordering::Relaxed) != 0 {
            return records.into_iter().try_for_each(|r| self.store(r));
        }
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut buffer = self.shared.buffer.lock();
            while buffer.len() >= self.shared.max_records {
                if self.is_stopped() {
                    return Err(EmberError::Stopped);
                }
                self.shared.space.wait_for(&mut buffer, Duration::from_millis(100));
            }
            let room = self.shared.max_records - buffer.len();
            buffer.extend(records.by_ref().take(room));
        }
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
            let Err(wait) = self.shared.bucket.lock().take(rate, Instant::now()) else { return Ok(()) };
            if self.is_stopped() {
                return Err(EmberError::Stopped);
            }
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
    }
}

/// An output not attached to any task, and what was stored into it (unit tests of receivers).
#[cfg(test)]
pub(crate) fn detached_output<T: Data>(max_records: usize) -> ReceiverOutput<T> {
    ReceiverOutput { shared: Arc::new(OutputShared::new(max_records, 0)) }
}

#[cfg(test)]
impl<T: Data> ReceiverOutput<T> {
    /// Takes what was stored so far.
    pub(crate) fn take_stored(&self) -> Vec<T> {
        std::mem::take(&mut *self.shared.buffer.lock())
    }
}

/// A token bucket limiting records per second (Spark's receiver `RateLimiter`):
/// tokens accrue at the rate, at most one second's worth is kept, and each
/// record takes one.
struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(now: Instant) -> Self {
        Self { tokens: 0.0, at: now }
    }

    /// Takes a token at `now` under `rate` per second; `Err(wait)`: none is
    /// there yet, and one will be after `wait`.
    fn take(&mut self, rate: u64, now: Instant) -> std::result::Result<(), Duration> {
        let rate = rate.max(1) as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// What a receiver's task tells the tracker.
#[derive(Serialize, Deserialize)]
pub(crate) enum ToTracker {
    /// A receiver (re)started on `executor_id`: the tracker answers with its epoch.
    Register { executor_id: String },
    /// A block was stored on `holders` (executor ids, the receiver's first).
    Block { id: StreamBlockId, records: u64, bytes: u64, holders: Vec<String> },
    /// Nothing new (sent every block interval while paused or idle).
    Heartbeat { epoch: u64 },
}

/// The tracker's answer.
#[derive(Serialize, Deserialize)]
pub(crate) struct FromTracker {
    /// The epoch of this receiver's blocks (set by `Register`).
    pub epoch: u64,
    /// Stop receiving: the context is stopping, or a newer receiver took over.
    pub stop: bool,
    /// Cut no blocks for now: too much received data waits for batches.
    pub pause: bool,
    /// Records per second this receiver may store (0: unlimited).
    pub max_rate: u64,
    /// Where to copy blocks: `(executor id, block address)` of another executor.
    pub replica: Option<(String, String)>,
}

/// The shipped task of a receiver: runs it, and a thread that cuts and stores blocks.
#[derive(Serialize, Deserialize)]
pub(crate) struct RunReceiver<R> {
    pub receiver: R,
    /// The stream's name (block ids and the write-ahead log's directory).
    pub stream: String,
    pub endpoint: String,
    pub block_interval_ms: u64,
    pub max_buffered_records: usize,
    pub max_rate: u64,
    /// `<checkpoint>/receivedData/<stream>` (a path or URL) with the write-ahead log on.
    pub wal_dir: Option<String>,
}

impl<R: Receiver> RunReceiver<R> {
    fn run(&self, env: Arc<dyn ExecutorEnv>) -> Result<()> {
        let registered = ask(&*env, &self.endpoint, &ToTracker::Register { executor_id: env.executor_id().into() })?;
        if registered.stop {
            return Ok(());
        }
        tracing::info!(
            stream = %self.stream,
            epoch = registered.epoch,
            executor_id = env.executor_id(),
            pid = std::process::id(),
            replica = ?registered.replica.as_ref().map(|r| &r.0),
            "receiver started"
        );
        let max_rate = if registered.max_rate > 0 { registered.max_rate } else { self.max_rate };
        let shared = Arc::new(OutputShared::new(self.max_buffered_records.max(1), max_rate));
        let wal_dir = match &self.wal_dir {
            Some(dir) => {
                Some(Location::parse(dir).map_err(|e| EmberError::Config(format!("write-ahead log {dir}: {e}")))?)
            }
            None => None,
        };
        let pusher = {
            let pusher = BlockPusher {
                shared: shared.clone(),
                env,
                stream: self.stream.clone(),
                endpoint: self.endpoint.clone(),
                interval: Duration::from_millis(self.block_interval_ms.max(1)),
                wal_dir,
                epoch: registered.epoch,
                replica: registered.replica,
                paused: registered.pause,
                spare: Vec::new(),
            };
            std::thread::Builder::new()
                .name("receiver-block-pusher".into())
                .spawn(move || pusher.run())
                .map_err(|e| EmberError::Internal(format!("cannot start a receiver's block pusher: {e}")))?
        };
        let out = ReceiverOutput { shared: shared.clone() };
        let result = self.receiver.receive(&out);
        // Whatever was stored goes out before the task ends.
        shared.stopped.store(true, Ordering::Release);
        shared.space.notify_all();
        let pushed = pusher.join().map_err(|_| EmberError::Internal("a receiver's block pusher panicked".into()))?;
        result.and(pushed)
    }
}

fn ask(env: &dyn ExecutorEnv, endpoint: &str, message: &ToTracker) -> Result<FromTracker> {
    Ok(postcard::from_bytes(&env.ask_driver(endpoint, postcard::to_allocvec(message)?)?)?)
}

/// How long from `now` until the next block cut. Cuts fall on wall-clock
/// multiples of the block interval (as Spark's `RecurringTimer` fires), not one
/// interval after the last block was stored: storing takes time, and blocks cut
/// "interval after the last" drift, so batches got four to seven blocks of
/// uneven sizes instead of the same number every batch. A cut that is late
/// (storing took longer than an interval) waits for the next multiple.
fn until_next_cut(now: std::time::SystemTime, interval: Duration) -> Duration {
    let period = interval.as_nanos().max(1);
    let since_epoch = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    Duration::from_nanos((period - since_epoch % period) as u64)
}

/// Cuts the receiver's buffer into blocks every block interval and stores them.
struct BlockPusher<T> {
    shared: Arc<OutputShared<T>>,
    env: Arc<dyn ExecutorEnv>,
    stream: String,
    endpoint: String,
    interval: Duration,
    wal_dir: Option<Location>,
    epoch: u64,
    replica: Option<(String, String)>,
    paused: bool,
    /// The buffer of the last block, when the block store did not keep it in
    /// memory (it went to disk): the next block is encoded into it. A fresh
    /// buffer for every block had the kernel zero its pages anew each time (7 % of
    /// the streaming benchmark's CPU time at 1.2 M lines/s).
    spare: Vec<u8>,
}

impl<T: Data> BlockPusher<T> {
    fn run(mut self) -> Result<()> {
        let mut next = 0u64;
        loop {
            let stopping = self.shared.stopped.load(Ordering::Acquire);
            if !stopping {
                std::thread::sleep(until_next_cut(std::time::SystemTime::now(), self.interval));
            }
            // A stopping receiver's last records are still taken (a graceful stop processes them).
            let records = if self.paused && !stopping {
                Vec::new()
            } else {
                let records = std::mem::take(&mut *self.shared.buffer.lock());
                self.shared.space.notify_all();
                records
            };
            let message = if records.is_empty() {
                ToTracker::Heartbeat { epoch: self.epoch }
            } else {
                let id = StreamBlockId::new(&self.stream, self.epoch, next);
                next += 1;
                self.store(&id, &records)?
            };
            let reply = ask(&*self.env, &self.endpoint, &message)?;
            self.shared.max_rate.store(reply.max_rate, Ordering::Relaxed);
            if reply.pause != self.paused {
                if reply.pause {
                    tracing::info!(stream = %self.stream, "receiver paused: the received data waiting for batches passed ember.streaming.receiver.maxBufferedBytes");
                } else {
                    tracing::info!(stream = %self.stream, "receiver resumed");
                }
            }
            self.paused = reply.pause;
            self.replica = reply.replica;
            if reply.stop {
                self.shared.stopped.store(true, Ordering::Release);
                self.shared.space.notify_all();
            }
            if stopping || reply.stop && self.shared.buffer.lock().is_empty() {
                return Ok(());
            }
        }
    }

    /// Logs (when on) and stores one block, here and on the replica; returns its report.
    fn store(&mut self, id: &StreamBlockId, records: &[T]) -> Result<ToTracker> {
        // Sized once: growing by doubling copied each block and touched twice its pages.
        let size = postcard::serialize_with_flavor(records, postcard::ser_flavors::Size::default())?;
        let mut buffer = std::mem::take(&mut self.spare);
        // A block kept in memory is counted at its length: a spare much larger than
        // this block would hold memory that nothing counts.
        if buffer.capacity() > size + size / 4 {
            buffer = Vec::new();
        }
        buffer.clear();
        buffer.reserve_exact(size);
        let bytes = Arc::new(postcard::to_extend(records, buffer)?);
        if let Some(dir) = &self.wal_dir {
            ember_core::framed::write_framed_at(&dir.join(&id.name()), self.env.conf(), &bytes)?;
        }
        let name = id.name();
        let replica = self.replica.as_ref().map(|(_, address)| address.as_str());
        let mut holders = vec![self.env.executor_id().to_string()];
        if self.env.put_stream_block(&name, bytes.clone(), replica)? {
            holders.extend(self.replica.as_ref().map(|(executor_id, _)| executor_id.clone()));
        }
        tracing::trace!(block = %name, records = records.len(), bytes = bytes.len(), "block stored");
        let report =
            ToTracker::Block { id: id.clone(), records: records.len() as u64, bytes: bytes.len() as u64, holders };
        if let Ok(buffer) = Arc::try_unwrap(bytes) {
            self.spare = buffer;
        }
        Ok(report)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_cuts_fall_on_multiples_of_the_interval() {
        let at = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let interval = Duration::from_millis(200);
        assert_eq!(until_next_cut(at(1_000_000), interval), interval);
        assert_eq!(until_next_cut(at(1_000_001), interval), Duration::from_millis(199));
        assert_eq!(until_next_cut(at(1_000_150), interval), Duration::from_millis(50));
        // Storing the last block took 1.3 intervals: the next cut is the next multiple.
        assert_eq!(until_next_cut(at(1_000_260), interval), Duration::from_millis(140));
    }

    #[test]
    fn the_token_bucket_lets_through_the_rate_and_no_more() {
        // 128/s: a token every 7.8125 ms, exact in binary floating point.
        let step = Duration::from_nanos(7_812_500);
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0);
        // Empty at the start: the first token comes after 1/rate.
        assert_eq!(bucket.take(128, t0), Err(step));
        assert_eq!(bucket.take(128, t0 + step), Ok(()));
        // Over one simulated second, polled every step, exactly the rate passes.
        let mut passed = 0;
        for i in 2..=129u32 {
            while bucket.take(128, t0 + step * i).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 128);
        // An idle stretch saves at most one second's worth.
        let later = t0 + Duration::from_secs(60);
        let burst = std::iter::from_fn(|| bucket.take(128, later).ok()).count();
        assert_eq!(burst, 128);
        assert!(bucket.take(128, later).is_err());
        // A clock that goes back does not mint tokens.
        assert!(bucket.take(128, t0).is_err());
    }
}
