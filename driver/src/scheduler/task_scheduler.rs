//! The task scheduler: knows the executors and their free slots, launches pending
//! tasks FIFO (speculative copies first, never on the executor they must avoid),
//! and routes every outcome back to the job that submitted it.

use crate::listener::{self, Event, ListenerBus};
use crossbeam_channel::Sender;
use ember_core::protocol::{TaskDescription, TaskOutcome};
use ember_core::task::TaskAttempt;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    TaskLost {
        task_id: u64,
        executor_id: String,
        reason: String,
    },
    ExecutorLost {
        executor_id: String,
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
}

impl PendingTask {
    fn may_run_on(&self, executor_id: &str) -> bool {
        self.exclude_executor.as_deref() != Some(executor_id)
    }
}

struct ExecutorSlot {
    cores: usize,
    running: usize,
    link: Arc<dyn ExecutorLink>,
}

struct RunningTask {
    executor_id: String,
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
    pending: VecDeque<PendingTask>,
    running: HashMap<u64, RunningTask>,
    /// Jobs to tell when an executor is lost.
    listeners: Vec<Sender<JobEvent>>,
    next_executor: usize,
}

#[derive(Default)]
pub struct TaskScheduler {
    state: Mutex<State>,
    /// Told of every executor added or removed and every task started or ended.
    bus: Arc<ListenerBus>,
}

impl TaskScheduler {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A scheduler that posts executor and task events on `bus`.
    pub fn with_bus(bus: Arc<ListenerBus>) -> Arc<Self> {
        Arc::new(Self { state: Mutex::default(), bus })
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
        if self.bus.is_active() {
            self.bus.post(Event::ExecutorAdded(listener::ExecutorAdded {
                executor_id: executor_id.to_string(),
                host: link.address(),
                cores: cores.max(1),
                time_ms: listener::now_ms(),
            }));
        }
        st.executors.insert(executor_id.to_string(), ExecutorSlot { cores: cores.max(1), running: 0, link });
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
        st.pending.extend(tasks);
        self.launch_ready(&mut st);
    }

    /// Queues a speculative copy ahead of the ordinary pending tasks: it stands for
    /// a task that is already holding its stage up.
    pub fn submit_speculative(&self, task: PendingTask) {
        let mut st = self.state.lock();
        st.pending.push_front(task);
        self.launch_ready(&mut st);
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
                e.running = e.running.saturating_sub(1);
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
        if let Some(pos) = st.pending.iter().position(|t| t.desc.attempt.task_id == task_id) {
            st.pending.remove(pos);
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
        self.state.lock().pending.retain(|t| t.desc.job_id != job_id);
    }

    /// An executor is gone: its running tasks are reported lost (they will be
    /// re-run without counting as failures) and every job is told.
    pub fn remove_executor(&self, executor_id: &str, reason: &str) {
        let mut st = self.state.lock();
        if st.executors.remove(executor_id).is_none() {
            return;
        }
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
        st.listeners.retain(|l| l.send(JobEvent::ExecutorLost { executor_id: executor_id.to_string() }).is_ok());
        self.bus.post(Event::ExecutorRemoved(listener::ExecutorRemoved {
            executor_id: executor_id.to_string(),
            reason: reason.to_string(),
            time_ms: listener::now_ms(),
        }));
        self.launch_ready(&mut st);
    }

    fn launch_ready(&self, st: &mut State) {
        while !st.pending.is_empty() {
            let n = st.order.len();
            if n == 0 {
                return;
            }
            // Round-robin over executors with a free slot; each takes the first
            // pending task allowed to run on it.
            let pick = (0..n).map(|i| (st.next_executor + i) % n).find_map(|i| {
                let executor_id = &st.order[i];
                let e = &st.executors[executor_id];
                if e.running >= e.cores {
                    return None;
                }
                // With one executor left, exclusions cannot be honoured: run there
                // rather than wait for an executor that may never come.
                st.pending.iter().position(|t| n == 1 || t.may_run_on(executor_id)).map(|pos| (i, pos))
            });
            let Some((i, pos)) = pick else { return };
            st.next_executor = (i + 1) % n;
            let executor_id = st.order[i].clone();
            let task = st.pending.remove(pos).expect("found above");
            let exec = st.executors.get_mut(&executor_id).expect("listed executor");
            exec.running += 1;
            let link = exec.link.clone();
            let info = self
                .bus
                .is_active()
                .then(|| task_info(task.desc.attempt, &executor_id, link.address(), task.speculative));
            if let Some(info) = &info {
                self.bus.post(Event::TaskStart(listener::TaskStart { task: info.clone() }));
            }
            st.running.insert(
                task.desc.attempt.task_id,
                RunningTask { executor_id, events: task.events, started: Instant::now(), info },
            );
            link.launch(task.desc);
        }
    }
}

fn task_info(attempt: TaskAttempt, executor_id: &str, host: String, speculative: bool) -> listener::TaskInfo {
    listener::TaskInfo {
        task_id: attempt.task_id,
        stage_id: attempt.stage_id,
        stage_attempt: attempt.stage_attempt,
        partition: attempt.partition,
        attempt: attempt.attempt,
        executor_id: executor_id.to_string(),
        host,
        launch_time_ms: listener::now_ms(),
        speculative,
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
