//! The task scheduler: knows the executors and their free slots, launches pending
//! tasks FIFO (speculative copies first, never on the executor they must avoid),
//! and routes every outcome back to the job that submitted it.

use crossbeam_channel::Sender;
use ember_core::protocol::{TaskDescription, TaskOutcome};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the scheduler reaches one executor (in-process or over gRPC).
pub trait ExecutorLink: Send + Sync {
    fn launch(&self, task: TaskDescription);
    fn kill(&self, task_id: u64);
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
    /// Never launch on this executor (a speculative copy avoids its original's).
    pub exclude_executor: Option<String>,
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
}

impl TaskScheduler {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn add_executor(&self, executor_id: &str, cores: usize, link: Arc<dyn ExecutorLink>) {
        let mut st = self.state.lock();
        if !st.executors.contains_key(executor_id) {
            st.order.push(executor_id.to_string());
        }
        st.executors.insert(executor_id.to_string(), ExecutorSlot { cores: cores.max(1), running: 0, link });
        Self::launch_ready(&mut st);
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
        Self::launch_ready(&mut st);
    }

    /// Queues a speculative copy ahead of the ordinary pending tasks: it stands for
    /// a task that is already holding its stage up.
    pub fn submit_speculative(&self, task: PendingTask) {
        let mut st = self.state.lock();
        st.pending.push_front(task);
        Self::launch_ready(&mut st);
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
            let _ = run.events.send(JobEvent::TaskEnded { task_id, executor_id: run.executor_id, outcome, duration });
        }
        Self::launch_ready(&mut st);
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
                let _ = run.events.send(JobEvent::TaskLost {
                    task_id,
                    executor_id: executor_id.to_string(),
                    reason: reason.to_string(),
                });
            }
        }
        st.listeners.retain(|l| l.send(JobEvent::ExecutorLost { executor_id: executor_id.to_string() }).is_ok());
        Self::launch_ready(&mut st);
    }

    fn launch_ready(st: &mut State) {
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
                st.pending.iter().position(|t| t.may_run_on(executor_id)).map(|pos| (i, pos))
            });
            let Some((i, pos)) = pick else { return };
            st.next_executor = (i + 1) % n;
            let executor_id = st.order[i].clone();
            let task = st.pending.remove(pos).expect("found above");
            let exec = st.executors.get_mut(&executor_id).expect("listed executor");
            exec.running += 1;
            let link = exec.link.clone();
            st.running.insert(
                task.desc.attempt.task_id,
                RunningTask { executor_id, events: task.events, started: Instant::now() },
            );
            link.launch(task.desc);
        }
    }
}
