//! An executor: a pool of task threads (one per core) over one set of services.

use crate::env::{ExecutorConfig, ExecutorServices};
use crate::links::{BlockFetcher, DriverLink, StatusSink};
use crate::runner::{StageCache, run_task};
use crossbeam_channel::{Sender, unbounded};
use ember_core::error::Result;
use ember_core::protocol::{TaskDescription, TaskOutcome};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Stack of each task thread, in bytes: 64 MiB of address space, touched only
/// as deep as a task's lineage goes (Linux maps thread stacks lazily).
///
/// Computing a partition nests one call per narrow RDD of the stage (each
/// `map` wraps its parent's iterator), so a 2 MiB default stack overflowed at a
/// few thousand chained `map`s. 64 MiB keeps lineages of 20,000 chained
/// operations (the depth iterative and streaming jobs reach before they
/// checkpoint) well inside the bound, in unoptimized builds too; the
/// JVM's equivalent knob is `-Xss` in `spark.executor.extraJavaOptions`.
pub const TASK_THREAD_STACK_BYTES: usize = 64 << 20;

/// Tasks killed before they started, and running tasks with their start time and
/// kill flag; one lock so a kill never slips between "queued" and "running".
#[derive(Default)]
struct TaskTable {
    killed: HashSet<u64>,
    running: HashMap<u64, (Instant, Arc<AtomicBool>)>,
}

pub struct Executor {
    services: Arc<ExecutorServices>,
    queue: Mutex<Option<Sender<TaskDescription>>>,
    /// The task threads, and the threads of long-running tasks (ended ones are
    /// joined when the next one starts).
    workers: Mutex<Vec<JoinHandle<()>>>,
    tasks: Arc<Mutex<TaskTable>>,
    stages: Arc<StageCache>,
    sink: Arc<dyn StatusSink>,
}

/// Runs one task and reports how it ended: what a task thread does with each
/// task it takes.
fn run_and_report(
    services: &Arc<ExecutorServices>,
    stages: &StageCache,
    tasks: &Mutex<TaskTable>,
    sink: &dyn StatusSink,
    desc: TaskDescription,
) {
    let task_id = desc.attempt.task_id;
    let flag = {
        let mut table = tasks.lock();
        if table.killed.remove(&task_id) {
            None
        } else {
            let flag = Arc::new(AtomicBool::new(false));
            table.running.insert(task_id, (Instant::now(), flag.clone()));
            Some(flag)
        }
    };
    let outcome = match flag {
        None => TaskOutcome::Killed { reason: "killed before it started".into() },
        Some(flag) => {
            let outcome = run_task(services, stages, &desc, flag.clone());
            tasks.lock().running.remove(&task_id);
            match outcome {
                // A killed attempt that stopped (with whatever error its
                // interruption caused) is reported killed, not failed.
                TaskOutcome::Failed { error, .. } if flag.load(Ordering::Relaxed) => {
                    TaskOutcome::Killed { reason: error.to_string() }
                }
                outcome => outcome,
            }
        }
    };
    sink.task_finished(task_id, outcome);
}

impl Executor {
    pub fn start(
        config: ExecutorConfig,
        driver: Arc<dyn DriverLink>,
        fetcher: Arc<dyn BlockFetcher>,
        sink: Arc<dyn StatusSink>,
    ) -> Result<Arc<Self>> {
        let cores = config.cores.max(1);
        let services = ExecutorServices::new(config, driver, fetcher)?;
        let (tx, rx) = unbounded::<TaskDescription>();
        let stages = Arc::new(StageCache::default());
        let tasks: Arc<Mutex<TaskTable>> = Arc::default();
        let mut workers = Vec::with_capacity(cores);
        for i in 0..cores {
            let rx = rx.clone();
            let services = services.clone();
            let stages = stages.clone();
            let sink = sink.clone();
            let tasks = tasks.clone();
            let name = format!("ember-task-{}-{i}", services.config().executor_id);
            let handle = std::thread::Builder::new()
                .name(name)
                .stack_size(TASK_THREAD_STACK_BYTES)
                .spawn(move || {
                    for desc in rx.iter() {
                        run_and_report(&services, &stages, &tasks, &*sink, desc);
                    }
                })
                .map_err(|e| ember_core::error::EmberError::Internal(format!("cannot start task thread: {e}")))?;
            workers.push(handle);
        }
        Ok(Arc::new(Self { services, queue: Mutex::new(Some(tx)), workers: Mutex::new(workers), tasks, stages, sink }))
    }

    pub fn services(&self) -> &Arc<ExecutorServices> {
        &self.services
    }

    /// Queues a task for the task threads; a long-running one
    /// (`TaskDescription::long_running`) gets a thread of its own instead.
    /// After [`Self::stop`], tasks are ignored.
    pub fn launch(&self, task: TaskDescription) {
        let queue = self.queue.lock();
        let Some(q) = &*queue else { return };
        if !task.long_running {
            let _ = q.send(task);
            return;
        }
        let (services, stages, tasks, sink) =
            (self.services.clone(), self.stages.clone(), self.tasks.clone(), self.sink.clone());
        // The task goes back to the queue if no thread can be started (it then
        // holds a task thread, as in Spark); this runs under the scheduler's
        // lock, so it cannot report a failure from here.
        let shared = Arc::new(Mutex::new(Some(task)));
        let taken = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("ember-long-running-task".into())
            .stack_size(TASK_THREAD_STACK_BYTES)
            .spawn(move || {
                if let Some(task) = taken.lock().take() {
                    run_and_report(&services, &stages, &tasks, &*sink, task);
                }
            });
        match spawned {
            Ok(handle) => {
                let mut workers = self.workers.lock();
                workers.retain(|w| !w.is_finished());
                workers.push(handle);
            }
            Err(e) => {
                if let Some(task) = shared.lock().take() {
                    tracing::warn!(task_id = task.attempt.task_id, error = %e, "cannot start a thread for a long-running task; it takes a task thread");
                    let _ = q.send(task);
                }
            }
        }
    }

    /// Tasks running now and for how long.
    pub fn running_tasks(&self) -> Vec<(u64, Duration)> {
        self.tasks.lock().running.iter().map(|(id, (start, _))| (*id, start.elapsed())).collect()
    }

    /// Stops a task: a task not yet started never runs; a running one stops at its
    /// next kill check (`iterate` looks every few records) and is reported killed.
    /// Killing a task this executor does not know (already ended) does nothing.
    pub fn kill(&self, task_id: u64) {
        let mut table = self.tasks.lock();
        match table.running.get(&task_id) {
            Some((_, flag)) => flag.store(true, Ordering::Relaxed),
            None => {
                table.killed.insert(task_id);
            }
        }
    }

    /// Stops accepting tasks, waits for the running ones to end, and removes the
    /// work directories (shuffle files, spills, broadcast pieces): the services may
    /// outlive this call through the driver's links, so their `Drop` cannot be relied on.
    pub fn stop(&self) {
        self.queue.lock().take();
        let workers = std::mem::take(&mut *self.workers.lock());
        for w in workers {
            let _ = w.join();
        }
        for d in self.services.work_dirs() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.queue.lock().take();
    }
}
