//! `StreamingContext`: the entry point of a streaming job (Spark's
//! `StreamingContext`). It holds the stream graph, the batch interval and the
//! clock; `start` begins generating one batch per interval, `stop` ends it, and
//! `get_or_create` resumes a job from its checkpoint directory.

use crate::checkpoint::{self, CheckpointMeta};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::graph::Graph;
use crate::scheduler::{self, Batch, BatchInfo, Threads};
use crate::state_checkpointer::StateCheckpointer;
use crate::time::{Time, millis};
use ember::EmberContext;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Completed batches kept for `batch_infos` (the oldest are dropped first).
const BATCH_INFOS_KEPT: usize = 1000;

/// Where a context is in its life (Spark's `StreamingContextState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingState {
    /// Created; streams and outputs may be added.
    Initialized,
    /// Started: batches are being generated and run.
    Active,
    /// Stopped (by `stop`, or by a failed batch).
    Stopped,
}

pub(crate) struct Status {
    pub state: StreamingState,
    /// A `stop` is under way (the state turns `Stopped` when it is done).
    pub stopping: bool,
    pub error: Option<EmberError>,
    pub last_generated: Option<Time>,
    pub last_completed: Option<Time>,
    pub pending: BTreeSet<Time>,
    pub infos: std::collections::VecDeque<BatchInfo>,
}

pub(crate) struct Inner {
    pub sc: EmberContext,
    pub batch_ms: u64,
    pub graph: Graph,
    pub clock: Arc<dyn Clock>,
    manual: Option<ManualClock>,
    checkpoint_dir: Mutex<Option<Location>>,
    checkpoint_interval_ms: Mutex<Option<u64>>,
    recovered: Mutex<Option<CheckpointMeta>>,
    status: Mutex<Status>,
    changed: Condvar,
    stop_generating: AtomicBool,
    graceful: AtomicBool,
    drop_queued: AtomicBool,
    threads: Mutex<Option<Threads>>,
    /// Threads a stop could not join (it ran on them), joined by a later stop.
    unjoined: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Serializes metadata checkpoint writes (the timer, the runner and the state
    /// checkpoint writer all write).
    checkpoint_writes: Mutex<()>,
    /// Writes state checkpoints off the runner thread.
    state_checkpointer: StateCheckpointer,
}

/// The entry point of a streaming job. Cheap to clone: clones share one context.
#[derive(Clone)]
pub struct StreamingContext {
    pub(crate) inner: Arc<Inner>,
}

impl StreamingContext {
    /// A context generating one batch every `batch_interval` (whole
    /// milliseconds, at least 1 ms; Spark's smallest useful interval is about
    /// 500 ms, Ember's about 100 ms) on `sc`. The clock is the system clock, or
    /// a manual one when `spark.streaming.clock` is `manual` (or Spark's
    /// `org.apache.spark.util.ManualClock`): then [`StreamingContext::manual_clock`]
    /// moves time.
    ///
    /// Errors: an interval of zero or with a sub-millisecond part.
    pub fn new(sc: &EmberContext, batch_interval: Duration) -> Result<Self> {
        let clock_kind = sc.conf().get("spark.streaming.clock").unwrap_or("system").to_string();
        match clock_kind.as_str() {
            "manual" | "org.apache.spark.util.ManualClock" => {
                let clock = ManualClock::new(0);
                Self::build(sc, batch_interval, Arc::new(clock.clone()), Some(clock))
            }
            "system" | "org.apache.spark.util.SystemClock" => {
                Self::build(sc, batch_interval, Arc::new(SystemClock::new()), None)
            }
            other => Err(EmberError::Config(format!("spark.streaming.clock must be system or manual, not {other:?}"))),
        }
    }

    /// A context on a given manual clock (tests advance it batch by batch).
    pub fn with_manual_clock(sc: &EmberContext, batch_interval: Duration, clock: ManualClock) -> Result<Self> {
        Self::build(sc, batch_interval, Arc::new(clock.clone()), Some(clock))
    }

    fn build(
        sc: &EmberContext,
        batch_interval: Duration,
        clock: Arc<dyn Clock>,
        manual: Option<ManualClock>,
    ) -> Result<Self> {
        let batch_ms = millis(batch_interval);
        if batch_ms == 0 || !batch_interval.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(EmberError::Config(format!(
                "batch interval must be a whole number of milliseconds, at least 1 ms (got {batch_interval:?})"
            )));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                sc: sc.clone(),
                batch_ms,
                graph: Graph::default(),
                clock,
                manual,
                checkpoint_dir: Mutex::new(None),
                checkpoint_interval_ms: Mutex::new(None),
                recovered: Mutex::new(None),
                status: Mutex::new(Status {
                    state: StreamingState::Initialized,
                    stopping: false,
                    error: None,
                    last_generated: None,
                    last_completed: None,
                    pending: BTreeSet::new(),
                    infos: std::collections::VecDeque::new(),
                }),
                changed: Condvar::new(),
                stop_generating: AtomicBool::new(false),
                graceful: AtomicBool::new(false),
                drop_queued: AtomicBool::new(false),
                threads: Mutex::new(None),
                unjoined: Mutex::new(Vec::new()),
                checkpoint_writes: Mutex::new(()),
                state_checkpointer: StateCheckpointer::default(),
            }),
        })
    }

    /// Resumes the job checkpointed in `checkpoint_dir`, or creates it.
    ///
    /// `create` builds the context and its stream graph from the job's code. It
    /// is called first, in both cases (its configuration says how to reach an
    /// object-store checkpoint; a malformed `checkpoint_dir` is refused before it) (Ember rebuilds the graph from the code instead of
    /// deserializing an old one, so a rebuilt job can resume); when a checkpoint
    /// exists, `start` then restores from it the zero time, the batches that were
    /// generated but not finished (run again first), the batches missed while
    /// the driver was down, each stateful operation's state by name, and each
    /// file stream's record of the files it took. The checkpoint directory is
    /// set on the context when `create` did not set it.
    ///
    /// Errors: those of `create`; a checkpoint written with another batch
    /// interval; unreadable checkpoint files.
    pub fn get_or_create(
        checkpoint_dir: impl AsRef<Path>,
        create: impl FnOnce() -> Result<StreamingContext>,
    ) -> Result<StreamingContext> {
        let given = checkpoint_dir.as_ref();
        // A malformed directory is refused before `create` starts anything.
        ember_core::filesystem::Location::from_path(given)
            .map_err(|e| EmberError::Config(format!("checkpoint directory {}: {e}", given.display())))?;
        // The context first: its configuration says how to reach an object store.
        let ssc = create()?;
        let dir = ember_core::filesystem::checkpoint_dir(given)?;
        let found = checkpoint::read_latest(&dir, ssc.spark_context().conf())?;
        if ssc.inner.checkpoint_dir.lock().is_none() {
            *ssc.inner.checkpoint_dir.lock() = Some(dir.clone());
        }
        if let Some(meta) = found {
            if meta.batch_interval_ms != ssc.inner.batch_ms {
                return Err(EmberError::Config(format!(
                    "the checkpoint in {} was written with a batch interval of {} ms and the job now uses {} ms: \
                     use the old interval, or start afresh with an empty checkpoint directory",
                    dir, meta.batch_interval_ms, ssc.inner.batch_ms
                )));
            }
            tracing::info!(
                dir = %dir,
                last_completed_ms = ?meta.last_completed_ms,
                pending = meta.pending_ms.len(),
                "recovering the streaming context from its checkpoint"
            );
            *ssc.inner.recovered.lock() = Some(meta);
        }
        Ok(ssc)
    }

    /// True when this context will resume from a checkpoint (`get_or_create` found one).
    pub fn is_recovering(&self) -> bool {
        self.inner.recovered.lock().is_some()
    }

    /// Checkpoints the job into `dir`: the metadata of every batch, and every
    /// checkpoint interval the state of stateful operations (cutting their
    /// lineage). Needed by `update_state_by_key`, `map_with_state` and windowed
    /// reductions with an inverse function. `dir` is an `s3a://` prefix or a
    /// local directory every executor must see at the same path. Errors: an
    /// unsupported scheme; a local directory that cannot be created.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let abs = ember_core::filesystem::checkpoint_dir(dir.as_ref())?;
        *self.inner.checkpoint_dir.lock() = Some(abs);
        Ok(())
    }

    /// The checkpoint directory, when set.
    pub fn checkpoint_dir(&self) -> Option<Location> {
        self.inner.checkpoint_dir.lock().clone()
    }

    /// How often stateful operations write their state (default: the smallest
    /// multiple of the batch interval that is at least 10 s, as Spark). Must be a
    /// multiple of the batch interval (checked by `start`).
    pub fn set_checkpoint_interval(&self, interval: Duration) {
        *self.inner.checkpoint_interval_ms.lock() = Some(millis(interval));
    }

    pub(crate) fn checkpoint_interval_ms(&self) -> u64 {
        let batch = self.inner.batch_ms;
        self.inner.checkpoint_interval_ms.lock().unwrap_or_else(|| 10_000u64.div_ceil(batch).max(1) * batch)
    }

    /// The batch context's Spark-side context.
    pub fn spark_context(&self) -> &EmberContext {
        &self.inner.sc
    }

    /// The batch interval.
    pub fn batch_interval(&self) -> Duration {
        Duration::from_millis(self.inner.batch_ms)
    }

    /// The manual clock, when this context runs on one.
    pub fn manual_clock(&self) -> Option<ManualClock> {
        self.inner.manual.clone()
    }

    /// Where the context is in its life.
    pub fn state(&self) -> StreamingState {
        self.inner.status.lock().state
    }

    /// Starts generating and running batches.
    ///
    /// Errors: already started or stopped; no output operation; a window or
    /// slide that is not a multiple of its parent's slide; a stateful operation
    /// without a checkpoint directory; a checkpoint whose state does not fit the
    /// job's code (the operation is named).
    pub fn start(&self) -> Result<()> {
        {
            let status = self.inner.status.lock();
            match status.state {
                StreamingState::Initialized => {}
                StreamingState::Active => {
                    return Err(EmberError::Invalid("the streaming context is already started".into()));
                }
                StreamingState::Stopped => {
                    return Err(EmberError::Invalid("a stopped streaming context cannot be started again".into()));
                }
            }
        }
        let batch = self.inner.batch_ms;
        self.inner.graph.validate(batch)?;
        let ckpt_interval = self.checkpoint_interval_ms();
        if !ckpt_interval.is_multiple_of(batch) {
            return Err(EmberError::Config(format!(
                "checkpoint interval {ckpt_interval} ms is not a multiple of the batch interval {batch} ms"
            )));
        }
        let stateful = self.inner.graph.stateful();
        if !stateful.is_empty() && self.checkpoint_dir().is_none() {
            let names: Vec<&str> = stateful.iter().map(|s| s.name()).collect();
            return Err(EmberError::Config(format!(
                "{} keep state across batches and need a checkpoint directory: call checkpoint(dir) before start",
                names.join(", ")
            )));
        }
        let (replay, first) = match self.inner.recovered.lock().take() {
            Some(meta) => self.restore(&meta)?,
            None => {
                let now = self.inner.clock.now_ms();
                let first = (now / batch + 1) * batch;
                self.inner.graph.set_zero_ms(first - batch);
                (Vec::new(), Time(first))
            }
        };
        if self.inner.sc.conf().get_bool("spark.streaming.stopGracefullyOnShutdown", false)? {
            crate::shutdown::stop_gracefully_on_signal(self)?;
        }
        for input in self.inner.graph.inputs() {
            input.start()?;
        }
        self.inner.status.lock().state = StreamingState::Active;
        match scheduler::start(self, replay, first) {
            Ok(threads) => *self.inner.threads.lock() = Some(threads),
            Err(e) => {
                self.fail("starting".into(), e.clone());
                return Err(e);
            }
        }
        tracing::info!(batch_interval_ms = batch, first_batch_ms = first.0, "streaming context started");
        Ok(())
    }

    /// Restores what a checkpoint holds; returns the batches to run again and
    /// the first batch time to generate.
    fn restore(&self, meta: &CheckpointMeta) -> Result<(Vec<Time>, Time)> {
        let graph = &self.inner.graph;
        graph.set_zero_ms(meta.zero_ms);
        let mut claimed = BTreeSet::new();
        for op in graph.stateful() {
            match meta.states.get(op.name()) {
                Some(ck) => {
                    op.restore(ck)?;
                    claimed.insert(op.name().to_string());
                }
                None => tracing::info!(
                    operation = op.name(),
                    "no state checkpoint for this operation yet: its state is recomputed from the recorded input"
                ),
            }
        }
        for name in meta.states.keys().filter(|n| !claimed.contains(*n)) {
            tracing::warn!(operation = %name, "the checkpoint holds state for an operation the job no longer has: ignored");
        }
        for input in graph.inputs() {
            if let Some(state) = meta.inputs.get(input.name()) {
                input.restore(state)?;
            }
        }
        let replay: Vec<Time> = meta.pending_ms.iter().copied().map(Time).collect();
        let first = Time(meta.last_generated_ms.unwrap_or(meta.zero_ms) + self.inner.batch_ms);
        let mut status = self.inner.status.lock();
        status.last_generated = meta.last_generated_ms.map(Time);
        status.last_completed = meta.last_completed_ms.map(Time);
        Ok((replay, first))
    }

    /// Stops generating batches. With `graceful`, every batch already generated
    /// (and the data receivers already took in) is processed first; without it,
    /// the running batch finishes and queued ones are dropped. With
    /// `stop_spark_context`, the batch context is stopped too. Stopping twice, or
    /// a context never started, is harmless.
    pub fn stop(&self, stop_spark_context: bool, graceful: bool) {
        let was_active = {
            let mut status = self.inner.status.lock();
            match status.state {
                StreamingState::Active if !status.stopping => {
                    status.stopping = true;
                    true
                }
                StreamingState::Initialized => {
                    status.state = StreamingState::Stopped;
                    false
                }
                _ => false,
            }
        };
        if was_active {
            self.inner.graceful.store(graceful, Ordering::Release);
            self.inner.drop_queued.store(!graceful, Ordering::Release);
            for input in self.inner.graph.inputs() {
                input.stop();
            }
            self.inner.stop_generating.store(true, Ordering::Release);
            self.inner.clock.interrupt();
            self.join_threads();
            // The last state checkpoint asked for is written before the stop returns.
            self.inner.state_checkpointer.finish();
            self.inner.status.lock().state = StreamingState::Stopped;
            tracing::info!(graceful, "streaming context stopped");
        }
        // A stopped context cannot start again (Spark's rule): once none of its
        // threads can still read the graph, it is let go.
        if self.inner.status.lock().state == StreamingState::Stopped && self.join_threads() {
            let _writing = self.inner.checkpoint_writes.lock();
            self.inner.graph.release();
        }
        self.inner.changed.notify_all();
        if stop_spark_context {
            self.inner.sc.stop();
        }
    }

    /// Joins the context's generator and runner threads. Returns false when one
    /// of them is the calling thread (a stop from inside a batch, e.g. a
    /// `foreach_rdd` function), which cannot wait for itself: that one is kept
    /// for a later stop to join.
    fn join_threads(&self) -> bool {
        let mut handles = std::mem::take(&mut *self.inner.unjoined.lock());
        if let Some(threads) = self.inner.threads.lock().take() {
            handles.extend([threads.generator, threads.runner]);
        }
        let me = std::thread::current().id();
        let mut left = Vec::new();
        for handle in handles {
            if handle.thread().id() == me {
                left.push(handle);
            } else {
                let _ = handle.join();
            }
        }
        let all_joined = left.is_empty();
        self.inner.unjoined.lock().extend(left);
        all_joined
    }

    /// Waits until the context is stopped. Errors: the error that stopped it
    /// (a failed batch).
    pub fn await_termination(&self) -> Result<()> {
        let mut status = self.inner.status.lock();
        while status.state != StreamingState::Stopped {
            self.inner.changed.wait(&mut status);
        }
        status.error.clone().map_or(Ok(()), Err)
    }

    /// Waits at most `timeout` for the context to stop: `Ok(true)` when it
    /// stopped, `Ok(false)` when time ran out. Errors: as `await_termination`.
    pub fn await_termination_or_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = std::time::Instant::now() + timeout;
        let mut status = self.inner.status.lock();
        while status.state != StreamingState::Stopped {
            if self.inner.changed.wait_until(&mut status, deadline).timed_out() {
                return Ok(status.state == StreamingState::Stopped);
            }
        }
        status.error.clone().map_or(Ok(true), Err)
    }

    /// Waits at most `timeout` until the batch at `time` has completed and
    /// returns what happened to it: with a manual clock, a test advances the
    /// clock and then waits here, never sleeping.
    ///
    /// Errors: the context stopped (with its error when a batch failed) or the
    /// timeout passed first.
    pub fn await_batch(&self, time: Time, timeout: Duration) -> Result<BatchInfo> {
        let deadline = std::time::Instant::now() + timeout;
        let mut status = self.inner.status.lock();
        loop {
            if let Some(info) = status.infos.iter().find(|i| i.batch_time == time) {
                return Ok(info.clone());
            }
            if status.last_completed.is_some_and(|t| t >= time) {
                return Err(EmberError::Invalid(format!("batch {time} is not a batch time of this context")));
            }
            if status.state == StreamingState::Stopped {
                return Err(status.error.clone().unwrap_or(EmberError::Stopped));
            }
            if self.inner.changed.wait_until(&mut status, deadline).timed_out() {
                return Err(EmberError::Internal(format!("batch {time} did not complete within {timeout:?}")));
            }
        }
    }

    /// The most recent completed batches, oldest first (at most 1000).
    pub fn batch_infos(&self) -> Vec<BatchInfo> {
        self.inner.status.lock().infos.iter().cloned().collect()
    }

    /// The first batch time (known once started).
    pub fn first_batch_time(&self) -> Option<Time> {
        match self.state() {
            StreamingState::Initialized => None,
            _ => Some(Time(self.inner.graph.zero_ms() + self.inner.batch_ms)),
        }
    }

    // ---- used by the scheduler ----

    /// Set when batch generation must stop (the timer's wait checks it).
    pub(crate) fn stop_flag(&self) -> &AtomicBool {
        &self.inner.stop_generating
    }

    pub(crate) fn generation_stopped(&self) -> bool {
        self.inner.stop_generating.load(Ordering::Acquire)
    }

    pub(crate) fn graceful_stop_requested(&self) -> bool {
        self.inner.graceful.load(Ordering::Acquire)
    }

    pub(crate) fn queued_batches_dropped(&self) -> bool {
        self.inner.drop_queued.load(Ordering::Acquire)
    }

    pub(crate) fn has_unallocated_input(&self) -> bool {
        self.inner.graph.inputs().iter().any(|i| i.has_unallocated())
    }

    /// Stops the context because of `error` (a failed batch): `await_termination` returns it.
    pub(crate) fn fail(&self, what: String, error: EmberError) {
        tracing::error!(%error, "streaming context failed while {what}");
        {
            let mut status = self.inner.status.lock();
            if status.error.is_none() {
                status.error = Some(error);
            }
            status.state = StreamingState::Stopped;
        }
        self.inner.drop_queued.store(true, Ordering::Release);
        self.inner.stop_generating.store(true, Ordering::Release);
        self.inner.clock.interrupt();
        for input in self.inner.graph.inputs() {
            input.stop();
        }
        self.inner.state_checkpointer.finish();
        self.inner.changed.notify_all();
    }

    /// Generates batch `time`: input assigned to it, every output's RDDs built.
    pub(crate) fn generate_batch(&self, time: Time) -> Result<Batch> {
        let mut input_records = 0;
        for input in self.inner.graph.inputs() {
            input_records += input.allocate(time)?;
        }
        let mut jobs = Vec::new();
        for op in self.inner.graph.outputs() {
            if let Some(job) = op.generate(time)? {
                jobs.push(job);
            }
        }
        {
            let mut status = self.inner.status.lock();
            status.pending.insert(time);
            status.last_generated = Some(status.last_generated.map_or(time, |t| t.max(time)));
        }
        self.write_checkpoint()?;
        let outputs = jobs.len();
        Ok(Batch { time, jobs, submission_ms: self.inner.clock.now_ms(), input_records, outputs })
    }

    /// After a batch's jobs: state checkpoints, forgetting old RDDs, metadata.
    pub(crate) fn batch_completed(&self, info: &BatchInfo) -> Result<()> {
        let time = info.batch_time;
        if let Some(dir) = self.checkpoint_dir() {
            let zero = self.inner.graph.zero_ms();
            let interval = self.checkpoint_interval_ms();
            if (time.0 - zero).is_multiple_of(interval) && !self.inner.graph.stateful().is_empty() {
                self.inner.state_checkpointer.request(self, time, dir)?;
            }
        }
        for input in self.inner.graph.inputs() {
            input.batch_completed(info);
        }
        self.inner.graph.clear_old(time);
        let horizon = self.input_horizon(time);
        for input in self.inner.graph.inputs() {
            input.forget_before(horizon);
        }
        {
            let mut status = self.inner.status.lock();
            status.pending.remove(&time);
            status.last_completed = Some(status.last_completed.map_or(time, |t| t.max(time)));
            status.infos.push_back(info.clone());
            if status.infos.len() > BATCH_INFOS_KEPT {
                status.infos.pop_front();
            }
        }
        self.write_checkpoint()?;
        self.inner.changed.notify_all();
        Ok(())
    }

    /// The oldest batch time a recovery may have to recompute after `time`:
    /// the oldest last state checkpoint, and the longest window.
    fn input_horizon(&self, time: Time) -> Time {
        let zero = Time(self.inner.graph.zero_ms());
        let mut horizon = time.minus(self.inner.graph.max_remember_ms());
        for op in self.inner.graph.stateful() {
            horizon = horizon.min(op.last_checkpoint().map_or(zero, |c| Time(c.time_ms)));
        }
        horizon
    }

    /// Writes the state of every stateful operation at batch `time` under `dir`, then
    /// the metadata checkpoint that names it (on the state checkpoint writer's thread).
    pub(crate) fn write_state_checkpoint(&self, time: Time, dir: &Location) -> Result<()> {
        for op in self.inner.graph.stateful() {
            op.checkpoint(time, dir)?;
        }
        self.write_checkpoint()
    }

    /// Writes the metadata checkpoint (when a checkpoint directory is set).
    fn write_checkpoint(&self) -> Result<()> {
        let Some(dir) = self.checkpoint_dir() else { return Ok(()) };
        let _writing = self.inner.checkpoint_writes.lock();
        // A released graph lists no state: a checkpoint written now would lose it.
        if self.inner.graph.is_released() {
            return Ok(());
        }
        let (last_generated, last_completed, pending) = {
            let status = self.inner.status.lock();
            (status.last_generated, status.last_completed, status.pending.iter().map(|t| t.0).collect())
        };
        let meta = CheckpointMeta {
            format: checkpoint::FORMAT,
            batch_interval_ms: self.inner.batch_ms,
            zero_ms: self.inner.graph.zero_ms(),
            last_generated_ms: last_generated.map(|t| t.0),
            last_completed_ms: last_completed.map(|t| t.0),
            pending_ms: pending,
            states: self
                .inner
                .graph
                .stateful()
                .iter()
                .filter_map(|op| op.last_checkpoint().map(|c| (op.name().to_string(), c)))
                .collect(),
            inputs: self
                .inner
                .graph
                .inputs()
                .iter()
                .filter_map(|i| i.checkpoint_state().map(|s| (i.name().to_string(), s)))
                .collect(),
        };
        checkpoint::write(&dir, self.spark_context().conf(), &meta)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_generating.store(true, Ordering::Release);
        self.clock.interrupt();
    }
}
