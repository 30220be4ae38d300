//! The DAG scheduler: cuts a job into stages at shuffle dependencies, runs the
//! stages whose parents are available, and recovers: failed tasks are retried up
//! to `spark.task.maxFailures`, lost map outputs are recomputed, and a stage that
//! keeps failing to fetch its input is given up after a bounded number of attempts.
//! With `spark.speculation` on, slow attempts get a copy on another executor; the
//! first attempt of a partition to succeed wins and the other is killed.

use super::speculation::{RunningAttempt, SpeculationConf, SpeculationCounters, select_speculatable};
use super::task_scheduler::{JobEvent, PendingTask, TaskScheduler};
use crate::listener::{self, Event, ListenerBus};
use crate::map_output::MapOutputTracker;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use ember_core::error::{EmberError, Result};
use ember_core::lineage::encode_root;
use ember_core::protocol::{TaskDescription, TaskKind, TaskOutcome, TaskValue};
use ember_core::rdd::{Dependency, RddBase};
use ember_core::shuffle::ShuffleDepBase;
use ember_core::task::{TaskAttempt, TaskMetricsSnapshot};
use ember_core::telemetry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT_STAGE_ID: AtomicU32 = AtomicU32::new(0);
static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(0);

/// What the DAG scheduler needs from the context.
/// Spark's default for `spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout`.
pub const DEFAULT_UNSCHEDULABLE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct DagContext<'a> {
    pub scheduler: &'a Arc<TaskScheduler>,
    pub tracker: &'a Arc<MapOutputTracker>,
    pub max_task_failures: u32,
    pub max_stage_attempts: u32,
    /// How long a job waits with no executor at all before it fails
    /// (`spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout`).
    pub unschedulable_timeout: Duration,
    /// Whether a task's retry avoids the executor its last attempt failed on
    /// (`spark.excludeOnFailure.enabled`).
    pub exclude_on_failure: bool,
    pub stopped: &'a AtomicBool,
    /// Merges a successful task's accumulator updates (once per partition).
    pub merge_accumulators: &'a dyn Fn(&[(u64, Vec<u8>)]),
    /// Told of every shuffle a job uses, so its files can go when it is no longer referenced.
    pub track_shuffle: &'a dyn Fn(&Arc<dyn ShuffleDepBase>),
    pub speculation: &'a SpeculationConf,
    pub speculation_counters: &'a SpeculationCounters,
    /// The application's task counters, added to by each partition's first success.
    pub task_metrics: &'a parking_lot::Mutex<TaskMetricsSnapshot>,
    /// Told when the job and each of its stage attempts start and end.
    pub bus: &'a ListenerBus,
    /// The application's span, parent of the job's when traces are exported
    /// (`ember_core::telemetry`; `Span::none()` otherwise).
    pub trace: &'a tracing::Span,
    /// The job's tasks are long-running (see `TaskDescription::long_running`).
    pub long_running: bool,
}

enum StageKind {
    Result { partitions: Vec<usize> },
    ShuffleMap { dep: Arc<dyn ShuffleDepBase> },
}

struct Stage {
    id: u32,
    kind: StageKind,
    parents: Vec<usize>,
    binary: Arc<Vec<u8>>,
    attempt: u32,
    failed_attempts: u32,
    rdd_name: &'static str,
    /// Tasks of the stage (the quantile of speculation is taken of it).
    num_tasks: usize,
    /// The stage's last RDD (its persisted RDDs are announced to listeners).
    rdd: Arc<dyn RddBase>,
}

impl Stage {
    fn shuffle_id(&self) -> Option<u32> {
        match &self.kind {
            StageKind::ShuffleMap { dep } => Some(dep.shuffle_id()),
            StageKind::Result { .. } => None,
        }
    }
}

/// The shuffle dependencies reachable from `rdd` through narrow dependencies only.
fn parent_shuffles(rdd: &Arc<dyn RddBase>) -> Vec<Arc<dyn ShuffleDepBase>> {
    let mut out = Vec::new();
    let mut seen_rdds = HashSet::new();
    let mut seen_shuffles = HashSet::new();
    let mut stack = vec![rdd.clone()];
    while let Some(r) = stack.pop() {
        if !seen_rdds.insert(r.meta().id) {
            continue;
        }
        for dep in r.dependencies() {
            match dep {
                Dependency::Narrow(p) => stack.push(p),
                Dependency::Shuffle(s) => {
                    if seen_shuffles.insert(s.shuffle_id()) {
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

/// The persisted RDDs a stage computes: `rdd` and its ancestors through narrow
/// dependencies (Spark's `StageInfo.rddInfos`, cached ones only), by id.
fn persisted_rdds(rdd: &Arc<dyn RddBase>) -> Vec<listener::RddInfo> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![rdd.clone()];
    while let Some(r) = stack.pop() {
        if !seen.insert(r.meta().id) {
            continue;
        }
        let level = r.meta().storage_level();
        if level != ember_core::rdd::StorageLevel::None {
            out.push(listener::RddInfo {
                id: r.meta().id,
                name: r.op_name().to_string(),
                num_partitions: r.num_partitions(),
                storage_level: level.description().to_string(),
            });
        }
        for dep in r.dependencies() {
            if let Dependency::Narrow(p) = dep {
                stack.push(p);
            }
        }
    }
    out.sort_by_key(|r| r.id);
    out
}

pub struct JobRunner<'a> {
    job_id: u64,
    cx: DagContext<'a>,
    stages: Vec<Stage>,
    stage_of_shuffle: HashMap<u32, usize>,
    result_stage: usize,
    results: Vec<Option<Vec<u8>>>,
    /// Result stage: position of each RDD partition in `results`.
    position: HashMap<usize, usize>,
    /// Attempts whose outcome counts: task id → (stage, partition, stage attempt).
    outstanding: HashMap<u64, (usize, usize, u32)>,
    /// The outstanding attempts of each (stage, partition): one, or two while a
    /// speculative copy races its original.
    running: HashMap<(usize, usize), Vec<u64>>,
    failures: HashMap<(usize, usize), u32>,
    /// The executor each (stage, partition)'s last failed attempt ran on.
    failed_on: HashMap<(usize, usize), String>,
    attempts: HashMap<(usize, usize), u32>,
    events_sender: Sender<JobEvent>,
    /// Result partitions still without a result.
    results_missing: usize,
    /// Something happened that may let more tasks run (see `run`).
    dirty: bool,
    /// Attempt number of each outstanding attempt, for logs.
    attempt_no: HashMap<u64, u32>,
    /// Speculative copies among the outstanding attempts.
    copies: HashSet<u64>,
    /// (stage, partition, stage attempt) that already got their one copy.
    copied: HashSet<(usize, usize, u32)>,
    /// Driver-seen durations of each stage's successful tasks.
    finished: HashMap<usize, Vec<Duration>>,
    /// Attempts killed because the other attempt of their partition won, and when.
    losers: HashMap<u64, Instant>,
    /// Stage attempts (stage index, attempt) announced to listeners and not yet ended.
    active_stages: HashSet<(usize, u32)>,
    /// The job's span (traces exported only), parent of its stage attempts' spans.
    job_span: tracing::Span,
    /// Spans of the stage attempts that launched tasks, with the `traceparent`
    /// their tasks carry (traces exported only).
    stage_spans: HashMap<(usize, u32), (tracing::Span, Option<String>)>,
}

impl<'a> JobRunner<'a> {
    pub fn new(
        job_id: u64,
        cx: DagContext<'a>,
        final_rdd: Arc<dyn RddBase>,
        result_binary: Vec<u8>,
        partitions: Vec<usize>,
        events_sender: Sender<JobEvent>,
    ) -> Result<Self> {
        let mut runner = Self {
            job_id,
            cx,
            stages: Vec::new(),
            stage_of_shuffle: HashMap::new(),
            result_stage: 0,
            results: vec![None; partitions.len()],
            position: partitions.iter().enumerate().map(|(i, p)| (*p, i)).collect(),
            outstanding: HashMap::new(),
            running: HashMap::new(),
            failures: HashMap::new(),
            failed_on: HashMap::new(),
            attempts: HashMap::new(),
            events_sender,
            results_missing: partitions.len(),
            dirty: true,
            attempt_no: HashMap::new(),
            copies: HashSet::new(),
            copied: HashSet::new(),
            finished: HashMap::new(),
            losers: HashMap::new(),
            active_stages: HashSet::new(),
            job_span: tracing::Span::none(),
            stage_spans: HashMap::new(),
        };
        let parents =
            parent_shuffles(&final_rdd).into_iter().map(|dep| runner.map_stage(dep)).collect::<Result<Vec<_>>>()?;
        runner.result_stage = runner.stages.len();
        let num_tasks = partitions.len();
        runner.stages.push(Stage {
            id: NEXT_STAGE_ID.fetch_add(1, Ordering::Relaxed),
            kind: StageKind::Result { partitions },
            parents,
            binary: Arc::new(result_binary),
            attempt: 0,
            failed_attempts: 0,
            rdd_name: final_rdd.op_name(),
            num_tasks,
            rdd: final_rdd.clone(),
        });
        Ok(runner)
    }

    fn map_stage(&mut self, dep: Arc<dyn ShuffleDepBase>) -> Result<usize> {
        if let Some(&i) = self.stage_of_shuffle.get(&dep.shuffle_id()) {
            return Ok(i);
        }
        let parent_rdd = dep.parent();
        let parents =
            parent_shuffles(&parent_rdd).into_iter().map(|d| self.map_stage(d)).collect::<Result<Vec<_>>>()?;
        self.cx.tracker.register_shuffle(dep.shuffle_id(), parent_rdd.num_partitions());
        (self.cx.track_shuffle)(&dep);
        let binary = Arc::new(encode_root(dep.as_encode(), &parent_rdd)?);
        let index = self.stages.len();
        self.stages.push(Stage {
            id: NEXT_STAGE_ID.fetch_add(1, Ordering::Relaxed),
            kind: StageKind::ShuffleMap { dep: dep.clone() },
            parents,
            binary,
            attempt: 0,
            failed_attempts: 0,
            rdd_name: parent_rdd.op_name(),
            num_tasks: parent_rdd.num_partitions(),
            rdd: parent_rdd.clone(),
        });
        self.stage_of_shuffle.insert(dep.shuffle_id(), index);
        Ok(index)
    }

    fn is_available(&self, stage: usize) -> bool {
        match self.stages[stage].shuffle_id() {
            Some(sid) => self.cx.tracker.is_complete(sid),
            None => self.results_missing == 0,
        }
    }

    fn missing_partitions(&self, stage: usize) -> Vec<usize> {
        match &self.stages[stage].kind {
            StageKind::ShuffleMap { dep } => self.cx.tracker.missing(dep.shuffle_id()),
            StageKind::Result { partitions } => {
                partitions.iter().zip(&self.results).filter(|(_, r)| r.is_none()).map(|(p, _)| *p).collect()
            }
        }
    }

    /// Launches what can run now: a stage's missing partitions once its parents are available.
    fn submit(&mut self, stage: usize) {
        if self.is_available(stage) {
            // Completed by another job sharing the shuffle while this job's own
            // attempts failed, were lost or are still running: end it here.
            if self.active_stages.contains(&(stage, self.stages[stage].attempt)) {
                self.stage_completed(stage);
            }
            return;
        }
        let missing_parents: Vec<usize> =
            self.stages[stage].parents.iter().copied().filter(|&p| !self.is_available(p)).collect();
        if !missing_parents.is_empty() {
            for p in missing_parents {
                self.submit(p);
            }
            return;
        }
        let missing = self.missing_partitions(stage);
        // Sized once: growing by doubling copied a stage of 10^5 tasks into fresh
        // pages about 17 times (a quarter of the DAG thread's time, in page faults).
        let mut tasks = Vec::with_capacity(missing.len());
        for partition in missing {
            if self.running.contains_key(&(stage, partition)) {
                continue;
            }
            let desc = self.new_attempt(stage, partition);
            let preferred = self.cx.scheduler.cache_locations().preferred_executors(&self.stages[stage].rdd, partition);
            tasks.push(PendingTask {
                desc,
                events: self.events_sender.clone(),
                exclude_executor: if self.cx.exclude_on_failure {
                    self.failed_on.get(&(stage, partition)).cloned()
                } else {
                    None
                },
                speculative: false,
                preferred,
            });
        }
        if !tasks.is_empty() {
            let attempt = self.stages[stage].attempt;
            if self.active_stages.insert((stage, attempt)) {
                self.cx.bus.post(Event::StageSubmitted(listener::StageSubmitted {
                    job_id: self.job_id,
                    time_ms: listener::now_ms(),
                    stage: self.stage_info(stage),
                }));
            }
            tracing::debug!(
                job_id = self.job_id,
                stage_id = self.stages[stage].id,
                tasks = tasks.len(),
                binary_bytes = self.stages[stage].binary.len(),
                "submitting tasks"
            );
            self.cx.scheduler.submit(tasks);
        }
    }

    /// Registers a new attempt of `partition` of `stage` as outstanding and describes it.
    fn new_attempt(&mut self, stage: usize, partition: usize) -> TaskDescription {
        let attempt_no = self.attempts.entry((stage, partition)).or_insert(0);
        let attempt = *attempt_no;
        *attempt_no += 1;
        let st = &self.stages[stage];
        let kind = match st.kind {
            StageKind::Result { .. } => TaskKind::Result,
            StageKind::ShuffleMap { .. } => TaskKind::ShuffleMap,
        };
        let task_id = NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed);
        let (stage_id, stage_attempt, stage_binary) = (st.id, st.attempt, st.binary.clone());
        let trace_parent = if telemetry::enabled() { self.stage_trace_parent(stage) } else { None };
        let desc = TaskDescription {
            job_id: self.job_id,
            attempt: TaskAttempt { task_id, stage_id, stage_attempt, partition, attempt },
            kind,
            stage_binary,
            trace_parent,
            long_running: self.cx.long_running,
        };
        self.running.entry((stage, partition)).or_default().push(task_id);
        self.outstanding.insert(task_id, (stage, partition, stage_attempt));
        self.attempt_no.insert(task_id, attempt);
        desc
    }

    /// The `traceparent` of the current attempt of `stage`, whose span starts with
    /// its first task (traces exported only).
    fn stage_trace_parent(&mut self, stage: usize) -> Option<String> {
        let st = &self.stages[stage];
        let key = (stage, st.attempt);
        if let Some((_, parent)) = self.stage_spans.get(&key) {
            return parent.clone();
        }
        let span = tracing::info_span!(
            target: telemetry::TARGET,
            parent: &self.job_span,
            "stage",
            job_id = self.job_id,
            stage_id = st.id,
            stage_attempt = st.attempt,
            rdd = st.rdd_name,
            kind = match st.kind {
                StageKind::Result { .. } => "ResultStage",
                StageKind::ShuffleMap { .. } => "ShuffleMapStage",
            },
            num_tasks = st.num_tasks,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        let parent = telemetry::traceparent(&span);
        self.stage_spans.insert(key, (span, parent.clone()));
        parent
    }

    /// Forgets an attempt that ended or was abandoned.
    fn forget(&mut self, task_id: u64) -> Option<(usize, usize, u32)> {
        let (stage, partition, stage_attempt) = self.outstanding.remove(&task_id)?;
        if let Some(ids) = self.running.get_mut(&(stage, partition)) {
            ids.retain(|id| *id != task_id);
            if ids.is_empty() {
                self.running.remove(&(stage, partition));
            }
        }
        self.attempt_no.remove(&task_id);
        self.copies.remove(&task_id);
        Some((stage, partition, stage_attempt))
    }

    fn run(&mut self, rx: &Receiver<JobEvent>) -> Result<Vec<Vec<u8>>> {
        let speculation = self.cx.speculation.enabled;
        let wait = if speculation { self.cx.speculation.interval } else { Duration::from_millis(500) };
        let mut last_check = Instant::now();
        // Since when the application has had no executor to run this job's tasks on.
        let mut no_executors_since: Option<Instant> = None;
        loop {
            // Only events that can make new tasks runnable trigger a scan of the
            // stages: re-scanning after every success would cost O(tasks²) per job.
            if std::mem::take(&mut self.dirty) {
                self.submit(self.result_stage);
            }
            if self.results_missing == 0 {
                return Ok(self.results.iter_mut().map(|r| r.take().expect("complete")).collect());
            }
            let mut timeout = if speculation { wait.saturating_sub(last_check.elapsed()) } else { wait };
            if self.cx.scheduler.executor_count() == 0 {
                let since = *no_executors_since.get_or_insert_with(Instant::now);
                let waited = since.elapsed();
                if waited >= self.cx.unschedulable_timeout {
                    return Err(self.abort(format!(
                        "no executor to run its tasks on for {:.1} s (every executor was lost and none came back; spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout is {:.1} s)",
                        waited.as_secs_f64(),
                        self.cx.unschedulable_timeout.as_secs_f64()
                    )));
                }
                timeout = timeout.min(self.cx.unschedulable_timeout - waited);
            } else {
                no_executors_since = None;
            }
            match rx.recv_timeout(timeout) {
                Ok(event) => self.handle(event)?,
                // Jobs sharing a shuffle change each other's stages (outputs registered
                // or lost) without an event to this job: look again now and then.
                Err(RecvTimeoutError::Timeout) => self.dirty = true,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(EmberError::Internal("task scheduler went away".into()));
                }
            }
            if self.cx.stopped.load(Ordering::Acquire) {
                return Err(EmberError::Stopped);
            }
            if speculation && last_check.elapsed() >= wait {
                last_check = Instant::now();
                self.speculate();
            }
        }
    }

    /// Gives each running attempt that is slow compared with its stage's finished
    /// tasks one copy on another executor.
    fn speculate(&mut self) {
        let executors = self.cx.scheduler.executor_ids();
        if executors.len() < 2 {
            return;
        }
        let mut by_stage: HashMap<usize, Vec<RunningAttempt>> = HashMap::new();
        for (&task_id, &(stage, partition, stage_attempt)) in &self.outstanding {
            if stage_attempt != self.stages[stage].attempt {
                continue;
            }
            let Some((executor_id, elapsed)) = self.cx.scheduler.running_task(task_id) else { continue };
            let copied = self.copied.contains(&(stage, partition, stage_attempt));
            by_stage.entry(stage).or_default().push(RunningAttempt {
                task_id,
                partition,
                executor_id,
                elapsed,
                copied,
            });
        }
        for (stage, running) in by_stage {
            let finished = self.finished.get(&stage).map(Vec::as_slice).unwrap_or(&[]);
            let total = self.stages[stage].num_tasks;
            let chosen = select_speculatable(self.cx.speculation, total, finished, &running, &executors);
            for task_id in chosen {
                let original = running.iter().find(|r| r.task_id == task_id).expect("selected from running").clone();
                self.launch_copy(stage, &original);
            }
        }
    }

    fn launch_copy(&mut self, stage: usize, original: &RunningAttempt) {
        let partition = original.partition;
        let stage_attempt = self.stages[stage].attempt;
        self.copied.insert((stage, partition, stage_attempt));
        let desc = self.new_attempt(stage, partition);
        let copy_id = desc.attempt.task_id;
        self.copies.insert(copy_id);
        self.cx.speculation_counters.launched();
        tracing::info!(
            job_id = self.job_id,
            stage_id = self.stages[stage].id,
            partition,
            task_id = original.task_id,
            attempt = self.attempt_no.get(&original.task_id).copied().unwrap_or(0),
            executor_id = %original.executor_id,
            running_ms = original.elapsed.as_millis() as u64,
            copy_task_id = copy_id,
            copy_attempt = desc.attempt.attempt,
            "speculation: launching a copy of a slow task on another executor"
        );
        self.cx.scheduler.submit_speculative(PendingTask {
            desc,
            events: self.events_sender.clone(),
            exclude_executor: Some(original.executor_id.clone()),
            speculative: true,
            // Not waited for (a copy runs at the first free slot); it says
            // whether the copy ran where its cached input is.
            preferred: self.cx.scheduler.cache_locations().preferred_executors(&self.stages[stage].rdd, partition),
        });
    }

    /// `winner` was the first attempt of its partition to succeed: the other
    /// attempts are killed and their outcomes will be ignored.
    fn kill_losers(&mut self, stage: usize, partition: usize, winner: (u64, u32, bool), executor_id: &str) {
        let (winner, winner_attempt, winner_is_copy) = winner;
        let others: Vec<u64> = self.running.get(&(stage, partition)).cloned().unwrap_or_default();
        for loser in others.into_iter().filter(|id| *id != winner) {
            let loser_is_copy = self.copies.contains(&loser);
            let loser_attempt = self.attempt_no.get(&loser).copied().unwrap_or(0);
            let loser_executor = self.cx.scheduler.running_task(loser).map(|(e, _)| e).unwrap_or_default();
            self.forget(loser);
            self.losers.insert(loser, Instant::now());
            self.cx.scheduler.kill_task(loser);
            if loser_is_copy {
                self.cx.speculation_counters.copy_killed();
            } else {
                self.cx.speculation_counters.original_killed();
            }
            tracing::info!(
                job_id = self.job_id,
                stage_id = self.stages[stage].id,
                partition,
                winner_task_id = winner,
                winner_attempt,
                winner_executor = executor_id,
                winner = if winner_is_copy { "speculative copy" } else { "original" },
                loser_task_id = loser,
                loser_attempt,
                loser_executor = %loser_executor,
                "speculation: first attempt finished; killing the other"
            );
        }
    }

    /// The listeners' view of a stage.
    fn stage_info(&self, stage: usize) -> listener::StageInfo {
        let st = &self.stages[stage];
        listener::StageInfo {
            stage_id: st.id,
            attempt: st.attempt,
            name: st.rdd_name.to_string(),
            kind: match st.kind {
                StageKind::Result { .. } => listener::StageKind::ResultStage,
                StageKind::ShuffleMap { .. } => listener::StageKind::ShuffleMapStage,
            },
            num_tasks: st.num_tasks,
            parent_ids: st.parents.iter().map(|&p| self.stages[p].id).collect(),
            rdds: persisted_rdds(&st.rdd),
        }
    }

    /// A stage whose outputs are all there: its failure count reset, logged, and
    /// its current attempt ended for listeners.
    fn stage_completed(&mut self, stage: usize) {
        self.stages[stage].failed_attempts = 0;
        let st = &self.stages[stage];
        tracing::info!(job_id = self.job_id, stage_id = st.id, rdd = st.rdd_name, "stage completed");
        self.end_stage(stage, st.attempt, None);
    }

    /// Tells listeners that an announced stage attempt ended (`failure`: why it did not complete).
    fn end_stage(&mut self, stage: usize, attempt: u32, failure: Option<String>) {
        if let Some((span, _)) = self.stage_spans.remove(&(stage, attempt))
            && let Some(why) = &failure
        {
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", why.as_str());
        }
        if self.active_stages.remove(&(stage, attempt)) {
            self.cx.bus.post(Event::StageCompleted(listener::StageCompleted {
                job_id: self.job_id,
                stage_id: self.stages[stage].id,
                attempt,
                time_ms: listener::now_ms(),
                failure,
            }));
        }
    }

    fn abort(&self, reason: String) -> EmberError {
        tracing::error!(job_id = self.job_id, %reason, "job aborted");
        EmberError::JobAborted { job_id: self.job_id, reason }
    }

    fn handle(&mut self, event: JobEvent) -> Result<()> {
        if !matches!(&event, JobEvent::TaskEnded { outcome: TaskOutcome::Success { .. }, .. }) {
            self.dirty = true;
        }
        match event {
            JobEvent::ExecutorLost { executor_id, decommissioned } => {
                let removed = self.cx.tracker.remove_executor(&executor_id);
                if decommissioned {
                    // Idle and retired by dynamic allocation: expected, not a fault.
                    // How many is logged by the decommission, which may drop them first.
                    tracing::info!(
                        job_id = self.job_id,
                        executor_id,
                        "a decommissioned executor's map outputs are dropped"
                    );
                } else {
                    tracing::warn!(job_id = self.job_id, executor_id, lost_map_outputs = removed, "executor lost");
                }
            }
            JobEvent::TaskLost { task_id, executor_id, reason } => {
                self.losers.remove(&task_id);
                let attempt = self.attempt_no.get(&task_id).copied().unwrap_or(0);
                if let Some((stage, partition, _)) = self.forget(task_id) {
                    // Spark's ExecutorLostFailure: the loss counts toward the task's
                    // failures (`exitCausedByApp`), so a task that keeps taking its
                    // executor down fails the job instead of killing executors forever.
                    let count = self.failures.entry((stage, partition)).or_insert(0);
                    *count += 1;
                    let count = *count;
                    self.failed_on.insert((stage, partition), executor_id.clone());
                    let (stage_id, name) = (self.stages[stage].id, self.stages[stage].rdd_name);
                    tracing::warn!(job_id = self.job_id, stage_id, partition, task_id, executor_id, failures = count, %reason, "task lost with its executor");
                    if count >= self.cx.max_task_failures {
                        return Err(self.abort(format!(
                            "task for partition {partition} of stage {stage_id} ({name}) failed {count} times; most recent failure: ExecutorLostFailure of attempt {attempt} (task {task_id}): executor {executor_id} was lost while running it: {reason}"
                        )));
                    }
                }
            }
            JobEvent::TaskEnded { task_id, executor_id, outcome, duration } => {
                let attempt = self.attempt_no.get(&task_id).copied().unwrap_or(0);
                let is_copy = self.copies.contains(&task_id);
                let Some((stage, partition, stage_attempt)) = self.forget(task_id) else {
                    if let Some(killed_at) = self.losers.remove(&task_id) {
                        let ended = match &outcome {
                            TaskOutcome::Success { .. } => "succeeded (result and accumulator updates discarded)",
                            TaskOutcome::Failed { .. } => "failed (not counted)",
                            TaskOutcome::Killed { .. } => "killed",
                        };
                        tracing::info!(
                            job_id = self.job_id,
                            task_id,
                            executor_id,
                            after_kill_ms = killed_at.elapsed().as_millis() as u64,
                            "speculation: losing attempt {ended}"
                        );
                    }
                    return Ok(());
                };
                let success = matches!(outcome, TaskOutcome::Success { .. });
                let first = self.task_ended(stage, partition, stage_attempt, task_id, &executor_id, outcome)?;
                if success && first {
                    self.finished.entry(stage).or_default().push(duration);
                    if is_copy {
                        self.cx.speculation_counters.won();
                    }
                    self.kill_losers(stage, partition, (task_id, attempt, is_copy), &executor_id);
                }
            }
        }
        Ok(())
    }

    fn task_ended(
        &mut self,
        stage: usize,
        partition: usize,
        stage_attempt: u32,
        task_id: u64,
        executor_id: &str,
        outcome: TaskOutcome,
    ) -> Result<bool> {
        let stage_id = self.stages[stage].id;
        match outcome {
            TaskOutcome::Success { value, accumulator_updates, metrics, .. } => {
                let first = match (value, &self.stages[stage].kind) {
                    (TaskValue::Result(bytes), StageKind::Result { .. }) => {
                        let pos = self.position[&partition];
                        let first = self.results[pos].is_none();
                        if first {
                            self.results[pos] = Some(bytes);
                            self.results_missing -= 1;
                        }
                        first
                    }
                    (TaskValue::MapOutput(status), StageKind::ShuffleMap { dep }) => {
                        self.cx.tracker.register_output(dep.shuffle_id(), partition, status)
                    }
                    _ => {
                        return Err(EmberError::Internal(format!("task {task_id} returned the wrong kind of value")));
                    }
                };
                if first {
                    (self.cx.merge_accumulators)(&accumulator_updates);
                    self.cx.task_metrics.lock().add(&metrics);
                }
                // A map output that is not `first` may still complete the stage: another
                // job sharing the shuffle registered the other partitions (or this one)
                // while this job's attempts ran. Not noticing would leave this job
                // waiting for an event that never comes.
                let announced = self.active_stages.contains(&(stage, self.stages[stage].attempt));
                if (first || announced) && self.is_available(stage) {
                    self.dirty = true;
                    self.stage_completed(stage);
                }
                return Ok(first);
            }
            TaskOutcome::Failed { error: EmberError::FetchFailed(failure), .. } => {
                tracing::warn!(job_id = self.job_id, stage_id, partition, %failure, "shuffle fetch failed; recomputing the lost map output");
                let lost_executor =
                    !failure.executor_id.is_empty() && !self.cx.scheduler.executor_ids().contains(&failure.executor_id);
                if lost_executor {
                    self.cx.tracker.remove_executor(&failure.executor_id);
                } else {
                    self.cx.tracker.unregister_output(
                        failure.shuffle_id,
                        failure.map_index as usize,
                        &failure.executor_id,
                    );
                }
                if stage_attempt == self.stages[stage].attempt {
                    self.end_stage(stage, stage_attempt, Some(format!("shuffle fetch failed: {failure}")));
                }
                let st = &mut self.stages[stage];
                if stage_attempt == st.attempt {
                    st.attempt += 1;
                    st.failed_attempts += 1;
                    let (name, failed) = (st.rdd_name, st.failed_attempts);
                    if failed >= self.cx.max_stage_attempts {
                        return Err(self.abort(format!(
                            "stage {stage_id} ({name}) failed {failed} consecutive attempts because its shuffle input could not be fetched; most recent failure: {failure}"
                        )));
                    }
                }
            }
            TaskOutcome::Failed { error, .. } => {
                let count = self.failures.entry((stage, partition)).or_insert(0);
                *count += 1;
                let count = *count;
                self.failed_on.insert((stage, partition), executor_id.to_string());
                tracing::warn!(job_id = self.job_id, stage_id, partition, task_id, executor_id, failures = count, %error, "task failed");
                if count >= self.cx.max_task_failures {
                    let name = self.stages[stage].rdd_name;
                    return Err(self.abort(format!(
                        "task for partition {partition} of stage {stage_id} ({name}) failed {count} times; most recent failure on executor {executor_id}: {error}"
                    )));
                }
            }
            TaskOutcome::Killed { reason } => {
                tracing::debug!(task_id, %reason, "task killed");
            }
        }
        Ok(false)
    }
}

/// Runs a job to the end and returns the serialized result of each requested
/// partition, in the order requested.
pub fn run_job(
    job_id: u64,
    cx: DagContext<'_>,
    final_rdd: Arc<dyn RddBase>,
    result_binary: Vec<u8>,
    partitions: Vec<usize>,
) -> Result<Vec<Vec<u8>>> {
    let span = if telemetry::enabled() {
        tracing::info_span!(
            target: telemetry::TARGET,
            parent: cx.trace,
            "job",
            job_id,
            rdd = final_rdd.op_name(),
            partitions = partitions.len(),
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        )
    } else {
        tracing::info_span!("job", job_id, rdd = final_rdd.op_name(), partitions = partitions.len())
    };
    let _enter = span.enter();
    let (tx, rx) = unbounded();
    let name = final_rdd.op_name();
    let mut runner = JobRunner::new(job_id, cx, final_rdd, result_binary, partitions, tx.clone())?;
    runner.job_span = span.clone();
    if runner.cx.bus.is_active() {
        let stages = (0..runner.stages.len()).map(|i| runner.stage_info(i)).collect();
        let time_ms = listener::now_ms();
        runner.cx.bus.post(Event::JobStart(listener::JobStart { job_id, time_ms, name: name.to_string(), stages }));
    }
    runner.cx.scheduler.listen(tx);
    let outcome = runner.run(&rx);
    let error = outcome.as_ref().err().map(|e| e.to_string());
    if let Some(e) = error.as_deref().filter(|_| telemetry::enabled()) {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_message", e);
    }
    let mut still_active: Vec<(usize, u32)> = runner.active_stages.iter().copied().collect();
    still_active.sort_unstable();
    for (stage, attempt) in still_active {
        let why = error.clone().unwrap_or_else(|| "the job no longer needs it".into());
        runner.end_stage(stage, attempt, Some(why));
    }
    runner.cx.bus.post(Event::JobEnd(listener::JobEnd {
        job_id,
        time_ms: listener::now_ms(),
        succeeded: outcome.is_ok(),
        error,
    }));
    // Whatever happened, nothing of this job keeps running.
    runner.cx.scheduler.cancel_pending(job_id);
    for task_id in runner.outstanding.keys() {
        runner.cx.scheduler.kill_task(*task_id);
    }
    outcome
}
