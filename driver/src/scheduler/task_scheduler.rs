//! The task scheduler: knows the executors and their free slots, launches pending
//! tasks FIFO (speculative copies queued first, never on the executor they must
//! avoid), and routes every outcome back to the job that submitted it.
//!
//! Locality is delay scheduling (Zaharia et al., "Delay Scheduling", EuroSys
//! 2010; Spark's `TaskSetManager`): a task whose cached input is on some
//! executors waits up to `spark.locality.wait` for a free slot on one of them
//! (`PROCESS_LOCAL`) before it runs anywhere (`ANY`) and reads that input remotely.

use super::cache_locations::CacheLocations;
use crate::listener::{self, Event, ListenerBus, TaskLocality};
use crossbeam_channel::Sender;
use ember_core::protocol::{TaskDescription, TaskOutcome};
use ember_core::storage::BlockHolder;
use ember_core::task::TaskAttempt;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Spark's default `spark.locality.wait`.
pub const DEFAULT_LOCALITY_WAIT: Duration = Duration::from_secs(3);

/// How the scheduler reaches one executor (in-process or over gRPC).
pub trait ExecutorLink: Send + Sync {
    fn launch(&self, task: TaskDescription);
    fn kill(&self, task_id: u64);
    /// The executor's address as the UI shows it (`host:port`; empty in-process).
    fn address(&self) -> String {
        String::new()
    }
}

/// What a job hears about its tasks.
#[derive(Debug)]
pub enum JobEvent {
    TaskEnded {
        task_id: u64,
        executor_id: String,
        outcome: TaskOutcome,
        /// From launch to the outcome's arrival, as the driver saw it.
        duration: Duration,
    },
    /// The task's executor went away before it finished (not the task's fault).
    TaskLost { task_id: u64, executor_id: String, reason: String },
    /// An executor is gone: its map outputs with it.
    ExecutorLost {
        executor_id: String,
        /// Retired on purpose while idle (dynamic allocation), not lost.
        decommissioned: bool,
    },
}

pub struct PendingTask {
    pub desc: TaskDescription,
    pub events: Sender<JobEvent>,
    /// Do not launch on this executor while another one exists (a speculative
    /// copy avoids its original's; a retry, the executor it failed on).
    pub exclude_executor: Option<String>,
    /// A speculative copy of a slow attempt (reported to listeners).
    pub speculative: bool,
    /// Executors holding the task's cached input (empty: no preference).
    pub preferred: Vec<String>,
}

impl PendingTask {
    fn may_run_on(&self, executor_id: &str) -> bool {
        self.exclude_executor.as_deref() != Some(executor_id)
    }
}

/// A pending task and since when it waits.
struct Queued {
    task: PendingTask,
    since: Instant,
}

impl Queued {
    fn prefers(&self, executor_id: &str) -> bool {
        self.task.preferred.iter().any(|p| p == executor_id)
    }

    /// Until when the task holds out for a preferred executor (`None`: it may
    /// run anywhere now: a speculative copy, no preference, none of its
    /// executors is alive and allowed, or it has waited `wait`).
    fn held_until(&self, wait: Duration, executors: &HashMap<String, ExecutorSlot>) -> Option<Instant> {
        if self.task.speculative
            || !self.task.preferred.iter().any(|p| executors.contains_key(p) && self.task.may_run_on(p))
        {
            return None;
        }
        let until = self.since + wait;
        (Instant::now() < until).then_some(until)
    }
}

struct ExecutorSlot {
    cores: usize,
    /// Tasks holding a slot.
    running: usize,
    /// Long-running tasks (receivers): they hold no slot, but the executor is not idle.
    long_running: usize,
    link: Arc<dyn ExecutorLink>,
    /// Its id and address as listener events carry them.
    event_id: compact_str::CompactString,
    event_address: compact_str::CompactString,
    /// Since when no task runs on it (meaningful while it is idle).
    idle_since: Instant,
}

impl ExecutorSlot {
    /// Runs no task at all, long-running ones included.
    fn is_idle(&self) -> bool {
        self.running == 0 && self.long_running == 0
    }
}

/// One executor's load, as dynamic allocation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorLoad {
    pub executor_id: String,
    /// Task slots.
    pub cores: usize,
    /// Tasks running on it now.
    pub running: usize,
    /// How long it has run no task (zero while it runs one).
    pub idle_for: Duration,
}

/// The scheduler's load at one instant: what dynamic allocation sizes the
/// executors by (Spark's `ExecutorAllocationManager` listens for the same counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerLoad {
    /// Tasks waiting for a slot (speculative copies included).
    pub pending: usize,
    /// Tasks running.
    pub running: usize,
    /// Every executor, in registration order.
    pub executors: Vec<ExecutorLoad>,
}

struct RunningTask {
    executor_id: String,
    /// Holds no slot (`TaskDescription::long_running`).
    long_running: bool,
    events: Sender<JobEvent>,
    started: Instant,
    /// What listeners were told at launch, for the end event.
    info: Option<listener::TaskInfo>,
}

#[derive(Default)]
struct State {
    executors: HashMap<String, ExecutorSlot>,
    /// Registration order, so launches spread over executors the same way every run.
    order: Vec<String>,
    pending: VecDeque<Queued>,
    running: HashMap<u64, RunningTask>,
    /// Jobs to tell when an executor is lost.
    listeners: Vec<Sender<JobEvent>>,
    next_executor: usize,
    /// Pending tasks with preferred executors (when 0, launching skips the
    /// search for a local task).
    preferring: usize,
    /// Pending long-running tasks (when 0, launching skips the search for them).
    long_running_pending: usize,
    /// Set by `stop`: the locality timer ends.
    stopped: bool,
}

impl State {
    fn enqueue(&mut self, task: PendingTask, front: bool) {
        if !task.preferred.is_empty() {
            self.preferring += 1;
        }
        self.long_running_pending += task.desc.long_running as usize;
        let queued = Queued { task, since: Instant::now() };
        if front { self.pending.push_front(queued) } else { self.pending.push_back(queued) }
    }

    fn dequeue(&mut self, pos: usize) -> Option<PendingTask> {
        let q = self.pending.remove(pos)?;
        if !q.task.preferred.is_empty() {
            self.preferring -= 1;
        }
        self.long_running_pending -= q.task.desc.long_running as usize;
        Some(q.task)
    }

    fn drop_pending(&mut self, keep: impl Fn(&PendingTask) -> bool) {
        self.pending.retain(|q| keep(&q.task));
        self.preferring = self.pending.iter().filter(|q| !q.task.preferred.is_empty()).count();
        self.long_running_pending = self.pending.iter().filter(|q| q.task.desc.long_running).count();
    }
}

pub struct TaskScheduler {
    state: Mutex<State>,
    /// Told of every executor added or removed and every task started or ended.
    bus: Arc<ListenerBus>,
    /// Where cached partitions are.
    cache: CacheLocations,
    /// `spark.locality.wait`: how long a task waits for an executor holding its input.
    locality_wait: Duration,
    /// Wakes the locality timer when tasks are queued.
    queued: Condvar,
}

impl TaskScheduler {
    /// A scheduler without listeners, waiting `DEFAULT_LOCALITY_WAIT` for locality.
    pub fn new() -> Arc<Self> {
        Self::with_bus(Arc::default(), DEFAULT_LOCALITY_WAIT)
    }

    /// A scheduler that posts executor and task events on `bus` and lets a task
    /// wait up to `locality_wait` for an executor holding its cached input
    /// (zero: launch anywhere at once).
    pub fn with_bus(bus: Arc<ListenerBus>, locality_wait: Duration) -> Arc<Self> {
        let scheduler = Arc::new(Self {
            state: Mutex::default(),
            bus,
            cache: CacheLocations::default(),
            locality_wait,
            queued: Condvar::new(),
        });
        if !locality_wait.is_zero() {
            let weak = Arc::downgrade(&scheduler);
            std::thread::Builder::new()
                .name("locality-timer".into())
                .spawn(move || locality_timer(weak))
                .expect("spawn the locality timer");
        }
        scheduler
    }

    /// Where cached partitions are (fed by executors' block updates).
    pub fn cache_locations(&self) -> &CacheLocations {
        &self.cache
    }

    /// The live executors other than `requester` holding a cached partition,
    /// with their block-server addresses (the `BlockLocations` endpoint).
    pub fn block_holders(&self, rdd_id: u64, split: usize, requester: &str) -> Vec<BlockHolder> {
        let holders = self.cache.holders(rdd_id, split);
        let st = self.state.lock();
        holders
            .into_iter()
            .filter(|id| id != requester)
            .filter_map(|id| {
                let address = st.executors.get(&id)?.link.address();
                (!address.is_empty()).then_some(BlockHolder { executor_id: id, block_address: address })
            })
            .collect()
    }

    /// The bus executor and task events go to.
    pub fn bus(&self) -> &Arc<ListenerBus> {
        &self.bus
    }

    pub fn add_executor(&self, executor_id: &str, cores: usize, link: Arc<dyn ExecutorLink>) {
        let mut st = self.state.lock();
        if !st.executors.contains_key(executor_id) {
            st.order.push(executor_id.to_string());
        }
        let address = link.address();
        if self.bus.is_active() {
            self.bus.post(Event::ExecutorAdded(listener::ExecutorAdded {
                executor_id: executor_id.to_string(),
                host: address.clone(),
                cores: cores.max(1),
                time_ms: listener::now_ms(),
            }));
        }
        st.executors.insert(
            executor_id.to_string(),
            ExecutorSlot {
                cores: cores.max(1),
                running: 0,
                long_running: 0,
                event_id: executor_id.into(),
                event_address: address.into(),
                link,
                idle_since: Instant::now(),
            },
        );
        self.launch_ready(&mut st);
    }

    pub fn executor_count(&self) -> usize {
        self.state.lock().executors.len()
    }

    pub fn total_cores(&self) -> usize {
        self.state.lock().executors.values().map(|e| e.cores).sum()
    }

    pub fn executor_ids(&self) -> Vec<String> {
        self.state.lock().order.clone()
    }

    /// Subscribes a job to executor-loss notices for as long as its receiver lives.
    pub fn listen(&self, events: Sender<JobEvent>) {
        self.state.lock().listeners.push(events);
    }

    pub fn submit(&self, tasks: Vec<PendingTask>) {
        let mut st = self.state.lock();
        st.pending.reserve(tasks.len());
        for task in tasks {
            st.enqueue(task, false);
        }
        self.launch_ready(&mut st);
        self.queued.notify_all();
    }

    /// The application stopped: the locality timer ends.
    pub fn stop(&self) {
        self.state.lock().stopped = true;
        self.queued.notify_all();
    }

    /// Queues a speculative copy ahead of the ordinary pending tasks: it stands for
    /// a task that is already holding its stage up.
    pub fn submit_speculative(&self, task: PendingTask) {
        let mut st = self.state.lock();
        st.enqueue(task, true);
        self.launch_ready(&mut st);
        self.queued.notify_all();
    }

    /// Where a launched task runs and for how long it has (None: pending or ended).
    pub fn running_task(&self, task_id: u64) -> Option<(String, Duration)> {
        self.state.lock().running.get(&task_id).map(|r| (r.executor_id.clone(), r.started.elapsed()))
    }

    /// Called by executors (through their links) when a task ends.
    pub fn task_finished(&self, task_id: u64, outcome: TaskOutcome) {
        let mut st = self.state.lock();
        if let Some(run) = st.running.remove(&task_id) {
            if let Some(e) = st.executors.get_mut(&run.executor_id) {
                if run.long_running {
                    e.long_running = e.long_running.saturating_sub(1);
                } else {
                    e.running = e.running.saturating_sub(1);
                }
                if e.is_idle() {
                    e.idle_since = Instant::now();
                }
            }
            let duration = run.started.elapsed();
            if let Some(info) = run.info {
                self.bus.post(Event::TaskEnd(task_end(info, &outcome, duration)));
            }
            let _ = run.events.send(JobEvent::TaskEnded { task_id, executor_id: run.executor_id, outcome, duration });
        }
        self.launch_ready(&mut st);
    }

    /// Kills a task: a pending one is dropped without running (and without an
    /// outcome); a running one is told to stop and reports its outcome as usual.
    pub fn kill_task(&self, task_id: u64) {
        let mut st = self.state.lock();
        if let Some(pos) = st.pending.iter().position(|q| q.task.desc.attempt.task_id == task_id) {
            st.dequeue(pos);
            return;
        }
        if let Some(run) = st.running.get(&task_id)
            && let Some(e) = st.executors.get(&run.executor_id)
        {
            e.link.kill(task_id);
        }
    }

    /// Drops tasks of a finished job that were never launched.
    pub fn cancel_pending(&self, job_id: u64) {
        self.state.lock().drop_pending(|t| t.desc.job_id != job_id);
    }

    /// Pending and running tasks and every executor's load (dynamic allocation).
    pub fn load(&self) -> SchedulerLoad {
        let st = self.state.lock();
        let now = Instant::now();
        let executors = st
            .order
            .iter()
            .filter_map(|id| {
                let e = st.executors.get(id)?;
                let idle_for = if e.is_idle() { now.saturating_duration_since(e.idle_since) } else { Duration::ZERO };
                Some(ExecutorLoad { executor_id: id.clone(), cores: e.cores, running: e.running, idle_for })
            })
            .collect();
        SchedulerLoad { pending: st.pending.len(), running: st.running.len(), executors }
    }

    /// Removes an executor only if it has run no task for at least `min_idle`,
    /// atomically with respect to launches: after `true`, no task is or will be
    /// launched on it, and every job was told as by [`Self::remove_executor`].
    /// `false`: unknown, busy, or idle for less than `min_idle`.
    pub fn remove_idle_executor(&self, executor_id: &str, reason: &str, min_idle: Duration) -> bool {
        let mut st = self.state.lock();
        if st.executors.get(executor_id).is_none_or(|e| !e.is_idle() || e.idle_since.elapsed() < min_idle) {
            return false;
        }
        self.remove_locked(&mut st, executor_id, reason, true);
        true
    }

    /// An executor is gone: its running tasks are reported lost (they will be
    /// re-run without counting as failures) and every job is told.
    pub fn remove_executor(&self, executor_id: &str, reason: &str) {
        let mut st = self.state.lock();
        self.remove_locked(&mut st, executor_id, reason, false);
    }

    /// Forgets an executor; `decommissioned` when it was retired on purpose.
    fn remove_locked(&self, st: &mut State, executor_id: &str, reason: &str, decommissioned: bool) {
        if st.executors.remove(executor_id).is_none() {
            return;
        }
        self.cache.remove_executor(executor_id);
        st.order.retain(|e| e != executor_id);
        let lost: Vec<u64> =
            st.running.iter().filter(|(_, r)| r.executor_id == executor_id).map(|(id, _)| *id).collect();
        for task_id in lost {
            if let Some(run) = st.running.remove(&task_id) {
                if let Some(info) = run.info {
                    let error = format!("executor {executor_id} lost: {reason}");
                    let outcome =
                        TaskOutcome::Failed { error: ember_core::error::EmberError::Internal(error), run_ms: 0 };
                    self.bus.post(Event::TaskEnd(task_end(info, &outcome, run.started.elapsed())));
                }
                let _ = run.events.send(JobEvent::TaskLost {
                    task_id,
                    executor_id: executor_id.to_string(),
                    reason: reason.to_string(),
                });
            }
        }
        st.listeners.retain(|l| {
            l.send(JobEvent::ExecutorLost { executor_id: executor_id.to_string(), decommissioned }).is_ok()
        });
        self.bus.post(Event::ExecutorRemoved(listener::ExecutorRemoved {
            executor_id: executor_id.to_string(),
            reason: reason.to_string(),
            time_ms: listener::now_ms(),
        }));
        self.launch_ready(st);
    }

    fn launch_ready(&self, st: &mut State) {
        self.launch_long_running(st);
        while !st.pending.is_empty() {
            let n = st.order.len();
            if n == 0 {
                return;
            }
            // Round-robin over executors with a free slot; each takes the first
            // pending task allowed to run on it that prefers it, else the first
            // allowed one not holding out for another executor.
            let wait = self.locality_wait;
            let pick = (0..n).map(|i| (st.next_executor + i) % n).find_map(|i| {
                let executor_id = &st.order[i];
                let e = &st.executors[executor_id];
                if e.running >= e.cores {
                    return None;
                }
                // With one executor left, exclusions cannot be honoured: run there
                // rather than wait for an executor that may never come.
                let allowed = |q: &Queued| n == 1 || q.task.may_run_on(executor_id);
                let local = (st.preferring > 0)
                    .then(|| {
                        st.pending.iter().position(|q| allowed(q) && (q.task.speculative || q.prefers(executor_id)))
                    })
                    .flatten();
                local
                    .or_else(|| {
                        st.pending.iter().position(|q| allowed(q) && q.held_until(wait, &st.executors).is_none())
                    })
                    .map(|pos| (i, pos))
            });
            let Some((i, pos)) = pick else { return };
            st.next_executor = (i + 1) % n;
            let executor_id = st.order[i].clone();
            let task = st.dequeue(pos).expect("found above");
            self.launch_on(st, executor_id, task);
        }
    }

    /// Launches every pending long-running task at once, whatever the free slots:
    /// each on the allowed executor running the fewest of them (receivers spread
    /// over executors, as Spark's receiver scheduling spreads them).
    fn launch_long_running(&self, st: &mut State) {
        while st.long_running_pending > 0 {
            let Some(pos) = st.pending.iter().position(|q| q.task.desc.long_running) else { return };
            let n = st.order.len();
            let task = &st.pending[pos].task;
            let Some(executor_id) = st
                .order
                .iter()
                .filter(|id| n == 1 || task.may_run_on(id))
                .min_by_key(|id| st.executors[*id].long_running)
                .cloned()
            else {
                return;
            };
            let task = st.dequeue(pos).expect("found above");
            self.launch_on(st, executor_id, task);
        }
    }

    /// Marks `task` running on `executor_id`, tells the listeners and launches it there.
    fn launch_on(&self, st: &mut State, executor_id: String, task: PendingTask) {
        let locality = if task.preferred.is_empty() || task.preferred.contains(&executor_id) {
            TaskLocality::ProcessLocal
        } else {
            TaskLocality::Any
        };
        let long_running = task.desc.long_running;
        let exec = st.executors.get_mut(&executor_id).expect("listed executor");
        if long_running {
            exec.long_running += 1;
        } else {
            exec.running += 1;
        }
        let link = exec.link.clone();
        let info = self
            .bus
            .is_active()
            .then(|| task_info(task.desc.attempt, &exec.event_id, &exec.event_address, task.speculative, locality));
        if let Some(info) = &info {
            self.bus.post(Event::TaskStart(listener::TaskStart { task: info.clone() }));
        }
        st.running.insert(
            task.desc.attempt.task_id,
            RunningTask { executor_id, long_running, events: task.events, started: Instant::now(), info },
        );
        link.launch(task.desc);
    }
}

/// Launches tasks whose locality wait ran out while no event came; ends with the scheduler.
fn locality_timer(scheduler: Weak<TaskScheduler>) {
    // Long enough to cost nothing, short enough that a dropped scheduler's
    // thread ends soon after.
    const IDLE: Duration = Duration::from_secs(1);
    while let Some(s) = scheduler.upgrade() {
        let mut st = s.state.lock();
        if st.stopped {
            return;
        }
        let next = st.pending.iter().filter_map(|q| q.held_until(s.locality_wait, &st.executors)).min();
        let until = next.unwrap_or_else(|| Instant::now() + IDLE).min(Instant::now() + IDLE);
        s.queued.wait_until(&mut st, until);
        s.launch_ready(&mut st);
    }
}

fn task_info(
    attempt: TaskAttempt,
    executor_id: &compact_str::CompactString,
    host: &compact_str::CompactString,
    speculative: bool,
    locality: TaskLocality,
) -> listener::TaskInfo {
    listener::TaskInfo {
        task_id: attempt.task_id,
        stage_id: attempt.stage_id,
        stage_attempt: attempt.stage_attempt,
        partition: attempt.partition,
        attempt: attempt.attempt,
        executor_id: executor_id.clone(),
        host: host.clone(),
        launch_time_ms: listener::now_ms(),
        speculative,
        locality,
    }
}

/// The listener event of an ended attempt: its status, error and metrics.
fn task_end(task: listener::TaskInfo, outcome: &TaskOutcome, duration: Duration) -> listener::TaskEnd {
    let duration_ms = duration.as_millis() as u64;
    let (status, error, run_ms, m) = match outcome {
        TaskOutcome::Success { metrics, run_ms, .. } => (listener::TaskStatus::Success, None, *run_ms, metrics.clone()),
        TaskOutcome::Failed { error, run_ms } => {
            (listener::TaskStatus::Failed, Some(error.to_string()), *run_ms, Default::default())
        }
        TaskOutcome::Killed { reason } => (listener::TaskStatus::Killed, Some(reason.clone()), 0, Default::default()),
    };
    let run_ms = run_ms.min(duration_ms);
    listener::TaskEnd {
        finish_time_ms: task.launch_time_ms + duration_ms,
        task,
        status,
        error,
        metrics: listener::TaskMetrics {
            duration_ms,
            run_ms,
            scheduler_delay_ms: duration_ms - run_ms,
            shuffle_read_bytes: m.shuffle_bytes_read,
            shuffle_read_records: m.shuffle_records_read,
            shuffle_write_bytes: m.shuffle_bytes_written,
            shuffle_write_records: m.shuffle_records_written,
            spill_bytes: m.spill_bytes,
            spill_count: m.spill_count,
        },
    }
}
