//! Dynamic allocation: the driver sizes its executors by its pending tasks (Spark's
//! `ExecutorAllocationManager`, `spark.dynamicAllocation.*`).
//!
//! Every [`TICK`] the driver reads the task scheduler's load and computes a target
//! number of executors with Spark's rules ([`Allocator::step`]):
//!
//! - the most executors the tasks can use is `ceil((pending + running) × ratio /
//!   cores per executor)`; a target above it drops to it at once (never below
//!   `minExecutors`);
//! - while tasks have waited `schedulerBacklogTimeout`, the target grows by 1, then
//!   every `sustainedSchedulerBacklogTimeout` by 2, 4, 8, … (up to that most and to
//!   `maxExecutors`);
//! - an executor that ran no task for `executorIdleTimeout` is removed, as long as
//!   more than `max(minExecutors, target)` remain. One holding cached blocks waits
//!   `cachedExecutorIdleTimeout` instead, and one holding map outputs of a shuffle a
//!   live RDD may still read waits `shuffleTracking.timeout` (both unbounded by
//!   default, as in Spark): Ember has no external shuffle service, so this is Spark's
//!   shuffle tracking. Outputs of an executor removed after that timeout are
//!   recomputed by the stage that needs them, like those of a lost executor.
//!
//! The driver removes an idle executor itself: it stops scheduling on it and tells
//! it to exit with code 0 ([`DriverService::decommission`]). Adding executors is the
//! cluster manager's part: with a `local-cluster` master the driver starts the
//! processes; with an `ember://` master (Kubernetes) it publishes its demand
//! ([`AllocationDemand`], served by the web UI at [`DEMAND_PATH`]) and the operator,
//! which alone has Kubernetes rights, creates or deletes executor pods to match.

use crate::driver_service::DriverService;
use crate::scheduler::task_scheduler::SchedulerLoad;
use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the allocation is reconsidered (Spark's 100 ms).
pub const TICK: Duration = Duration::from_millis(100);

/// Where the driver's web UI serves its [`AllocationDemand`] as JSON (404 while
/// dynamic allocation is off).
pub const DEMAND_PATH: &str = "/ember/v1/allocation";

/// Set by the Kubernetes operator in the driver's configuration: whether it follows
/// this driver's demand (`true`) or not (`false`, dynamic allocation is then refused).
pub const OPERATOR_MANAGED_KEY: &str = "ember.kubernetes.dynamicAllocation.managed";

/// Decommissioned executor ids kept in the published demand.
const DECOMMISSIONED_KEPT: usize = 1000;

/// `spark.dynamicAllocation.*`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationConf {
    /// `minExecutors` (default 0).
    pub min: usize,
    /// `maxExecutors` (default unbounded), capped by the cluster's size when it has one.
    pub max: usize,
    /// Executors at the start: the largest of `initialExecutors`, `minExecutors` and
    /// `spark.executor.instances`, at most `max` (Spark's
    /// `getDynamicAllocationInitialExecutors`).
    pub initial: usize,
    /// `executorIdleTimeout` (default 60 s).
    pub idle_timeout: Duration,
    /// `cachedExecutorIdleTimeout` (None: unbounded, the default).
    pub cached_idle_timeout: Option<Duration>,
    /// `shuffleTracking.timeout` (None: unbounded, the default; a bare number is
    /// milliseconds, as in Spark).
    pub shuffle_timeout: Option<Duration>,
    /// `schedulerBacklogTimeout` (default 1 s).
    pub backlog_timeout: Duration,
    /// `sustainedSchedulerBacklogTimeout` (default: `schedulerBacklogTimeout`).
    pub sustained_backlog_timeout: Duration,
    /// `executorAllocationRatio` in (0, 1] (default 1).
    pub ratio: f64,
    /// Task slots of one executor (`spark.executor.cores`, or a `local-cluster`
    /// master's cores per executor; at least 1).
    pub tasks_per_executor: usize,
}

impl AllocationConf {
    /// The settings when `spark.dynamicAllocation.enabled` is true, else None.
    /// `cluster_size` caps `maxExecutors` (a `local-cluster[N,…]` has room for N).
    /// Bare numbers of the timeouts are seconds, except `shuffleTracking.timeout`'s
    /// (milliseconds), as in Spark.
    ///
    /// Errors: a malformed value, `maxExecutors` 0, `minExecutors` above
    /// `maxExecutors`, a zero backlog timeout, a ratio outside (0, 1].
    pub fn from_conf(conf: &Conf, cluster_size: Option<usize>) -> Result<Option<Self>> {
        if !conf.get_bool("spark.dynamicAllocation.enabled", false)? {
            return Ok(None);
        }
        let bad = |m: String| Err(EmberError::Config(m));
        let key = |k: &str| format!("spark.dynamicAllocation.{k}");
        let min = conf.get_usize(&key("minExecutors"), 0)?;
        let max = conf.get_usize(&key("maxExecutors"), usize::MAX)?;
        if max == 0 {
            return bad("spark.dynamicAllocation.maxExecutors cannot be 0".into());
        }
        if min > max {
            return bad(format!(
                "spark.dynamicAllocation.minExecutors ({min}) must not exceed spark.dynamicAllocation.maxExecutors ({max})"
            ));
        }
        let capped = cluster_size.map_or(max, |n| max.min(n.max(1)));
        if capped < max && conf.contains(&key("maxExecutors")) {
            tracing::warn!(max_executors = max, cluster_size = capped, "maxExecutors lowered to the cluster's size");
        }
        let max = capped;
        let wanted =
            conf.get_usize(&key("initialExecutors"), min)?.max(min).max(conf.get_usize("spark.executor.instances", 0)?);
        if wanted > max {
            tracing::warn!(
                initial_executors = wanted,
                max_executors = max,
                "initial executors lowered to maxExecutors"
            );
        }
        let initial = wanted.min(max);
        // Spark declares cachedExecutorIdleTimeout in seconds and
        // shuffleTracking.timeout in milliseconds (bare numbers read so).
        let cached_idle_timeout = conf
            .get(&key("cachedExecutorIdleTimeout"))
            .map(|_| conf.get_duration_secs(&key("cachedExecutorIdleTimeout"), Duration::ZERO))
            .transpose()?;
        let shuffle_timeout = conf
            .get(&key("shuffleTracking.timeout"))
            .map(|_| conf.get_duration(&key("shuffleTracking.timeout"), Duration::ZERO))
            .transpose()?;
        let backlog_timeout = conf.get_duration_secs(&key("schedulerBacklogTimeout"), Duration::from_secs(1))?;
        let sustained_backlog_timeout =
            conf.get_duration_secs(&key("sustainedSchedulerBacklogTimeout"), backlog_timeout)?;
        if backlog_timeout.is_zero() || sustained_backlog_timeout.is_zero() {
            return bad(
                "spark.dynamicAllocation.schedulerBacklogTimeout and sustainedSchedulerBacklogTimeout must be above 0"
                    .into(),
            );
        }
        let ratio = conf.get_f64(&key("executorAllocationRatio"), 1.0)?;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return bad(format!("spark.dynamicAllocation.executorAllocationRatio ({ratio}) must be in (0, 1]"));
        }
        let cores = conf.get_usize("spark.executor.cores", 1)?.max(1);
        Ok(Some(Self {
            min,
            max,
            initial,
            idle_timeout: conf.get_duration_secs(&key("executorIdleTimeout"), Duration::from_secs(60))?,
            cached_idle_timeout,
            shuffle_timeout,
            backlog_timeout,
            sustained_backlog_timeout,
            ratio,
            tasks_per_executor: cores,
        }))
    }

    /// How long `executor` may stay idle before it is removed (None: for ever), by
    /// what it holds (Spark's `ExecutorMonitor`: the shorter of the cached-block and
    /// shuffle timeouts that apply, else the plain idle timeout).
    pub fn timeout_for(&self, holds_cache: bool, holds_shuffle: bool) -> Option<Duration> {
        self.timeout_and_key(holds_cache, holds_shuffle).0
    }

    /// [`Self::timeout_for`] and the setting it comes from (for the log).
    fn timeout_and_key(&self, holds_cache: bool, holds_shuffle: bool) -> (Option<Duration>, &'static str) {
        const IDLE: &str = "executorIdleTimeout";
        const CACHED: &str = "cachedExecutorIdleTimeout";
        const SHUFFLE: &str = "shuffleTracking.timeout";
        if !holds_cache && !holds_shuffle {
            return (Some(self.idle_timeout), IDLE);
        }
        let cache = if holds_cache { self.cached_idle_timeout } else { None };
        let shuffle = if holds_shuffle { self.shuffle_timeout } else { None };
        match (cache, shuffle) {
            (Some(a), Some(b)) if a <= b => (Some(a), CACHED),
            (_, Some(b)) => (Some(b), SHUFFLE),
            (Some(a), None) => (Some(a), CACHED),
            (None, None) => (None, if holds_shuffle { SHUFFLE } else { CACHED }),
        }
    }
}

/// What the executors hold, by executor id: removal waits longer for these.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    /// Executors holding cached RDD blocks.
    pub cache: HashSet<String>,
    /// Executors holding map outputs of registered shuffles.
    pub shuffle: HashSet<String>,
}

/// An idle executor [`Allocator::step`] retires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub executor_id: String,
    /// The idle timeout that applies to it: it is retired only if it is still idle
    /// for at least this long when the scheduler removes it.
    pub idle_timeout: Duration,
    /// Why, for the log.
    pub reason: String,
}

/// One decision of [`Allocator::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Executors wanted in total.
    pub target: usize,
    /// Idle executors to retire now, longest idle first.
    pub remove: Vec<Removal>,
}

/// The allocation state between ticks; [`Allocator::step`] is pure in its inputs
/// (the clock is an argument).
#[derive(Debug, Clone)]
pub struct Allocator {
    conf: AllocationConf,
    target: usize,
    /// Executors the next backlog step adds (Spark's `numExecutorsToAdd`).
    to_add: usize,
    /// When the backlog next adds executors (None: no task waits).
    add_at: Option<Instant>,
    /// Until the first task or the first idle timeout, the target stays at least the
    /// initial number (Spark's `initializing`): executors still starting are not
    /// given up before the application had a chance to use them.
    initializing: bool,
    /// Executors the log said were kept for what they hold.
    kept: HashSet<String>,
}

impl Allocator {
    /// Starts at `conf.initial` executors.
    pub fn new(conf: AllocationConf) -> Self {
        Self { target: conf.initial, conf, to_add: 1, add_at: None, initializing: true, kept: HashSet::new() }
    }

    /// The settings.
    pub fn conf(&self) -> &AllocationConf {
        &self.conf
    }

    /// The current target.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The target and the removals for `load` at `now`.
    pub fn step(&mut self, load: &SchedulerLoad, holdings: &Holdings, now: Instant) -> Step {
        let c = &self.conf;
        let demand = load.pending + load.running;
        let max_needed = ((demand as f64 * c.ratio) / c.tasks_per_executor as f64).ceil() as usize;
        if load.pending == 0 {
            self.add_at = None;
            self.to_add = 1;
        } else if self.add_at.is_none() {
            self.add_at = Some(now + c.backlog_timeout);
        }
        if self.initializing
            && (demand > 0 || load.executors.iter().any(|e| e.running == 0 && e.idle_for >= c.idle_timeout))
        {
            self.initializing = false;
        }
        if self.initializing {
            // Nothing asked yet: keep the initial executors.
        } else if self.target > max_needed {
            self.target = max_needed.max(c.min);
            self.to_add = 1;
        } else if self.add_at.is_some_and(|at| now >= at) {
            // No point ramping up to executors already there (Spark does the same).
            let before = self.target.max(load.executors.len());
            self.target = (before + self.to_add).min(max_needed).min(c.max).max(c.min);
            self.to_add = if self.target > before { self.to_add.saturating_mul(2) } else { 1 };
            self.add_at = Some(now + c.sustained_backlog_timeout);
        }
        self.target = self.target.clamp(c.min, c.max);

        // Idle executors past their timeout, longest idle first.
        let mut idle: Vec<(&str, Duration, Duration, &str)> = load
            .executors
            .iter()
            .filter(|e| e.running == 0)
            .filter_map(|e| {
                let (timeout, key) = c.timeout_and_key(
                    holdings.cache.contains(&e.executor_id),
                    holdings.shuffle.contains(&e.executor_id),
                );
                let Some(timeout) = timeout else {
                    // Kept for what it holds: said once per executor.
                    if e.idle_for >= c.idle_timeout && self.kept.insert(e.executor_id.clone()) {
                        tracing::info!(
                            executor_id = %e.executor_id,
                            "idle executor kept: it holds {} and spark.dynamicAllocation.{key} is unbounded",
                            if key == "shuffleTracking.timeout" { "shuffle outputs a live RDD may read" } else { "cached blocks" }
                        );
                    }
                    return None;
                };
                (e.idle_for >= timeout).then_some((e.executor_id.as_str(), e.idle_for, timeout, key))
            })
            .collect();
        idle.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let keep = c.min.max(self.target);
        let removable = load.executors.len().saturating_sub(keep);
        let remove = idle
            .into_iter()
            .take(removable)
            .map(|(id, idle_for, timeout, key)| Removal {
                executor_id: id.to_string(),
                idle_timeout: timeout,
                reason: format!("idle for {:.1}s ({key} {:.1}s)", idle_for.as_secs_f64(), timeout.as_secs_f64()),
            })
            .collect();
        Step { target: self.target, remove }
    }
}

/// One executor in the published demand.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorDemand {
    /// Executor id (on Kubernetes, the executor pod's id).
    pub id: String,
    /// Tasks running on it.
    pub running_tasks: usize,
    /// How long it has been idle, in milliseconds (0 while busy).
    pub idle_ms: u64,
}

/// What the driver publishes for the cluster manager, as JSON at [`DEMAND_PATH`]:
///
/// ```json
/// {"target": 4, "minExecutors": 1, "maxExecutors": 4, "pendingTasks": 12,
///  "runningTasks": 4, "executors": [{"id": "1", "runningTasks": 1, "idleMs": 0}],
///  "decommissioned": ["2"]}
/// ```
///
/// The operator keeps `target` executor pods, not counting those whose id is in
/// `decommissioned` (told to exit; their pods end `Succeeded`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AllocationDemand {
    /// Executors wanted in total.
    pub target: usize,
    /// `minExecutors`.
    pub min_executors: usize,
    /// `maxExecutors` (None: unbounded).
    pub max_executors: Option<usize>,
    /// Tasks waiting for a slot.
    pub pending_tasks: usize,
    /// Tasks running.
    pub running_tasks: usize,
    /// Registered executors.
    pub executors: Vec<ExecutorDemand>,
    /// Executors the driver told to exit (the most recent 1000).
    pub decommissioned: Vec<String>,
}

/// The latest [`AllocationDemand`], shared with the web UI.
#[derive(Default)]
pub struct AllocationBoard {
    demand: Mutex<Option<AllocationDemand>>,
}

impl AllocationBoard {
    /// The demand as last published (None: dynamic allocation is off).
    pub fn demand(&self) -> Option<AllocationDemand> {
        self.demand.lock().clone()
    }

    fn publish(&self, demand: AllocationDemand) {
        *self.demand.lock() = Some(demand);
    }
}

/// The running allocation loop; stops when dropped or on [`Self::stop`].
pub struct AllocationManager {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AllocationManager {
    /// Starts the loop over `service`'s scheduler and executors, publishing on
    /// `board`. With `launch_locally` (a `local-cluster` master) it also starts
    /// executor processes up to the target.
    ///
    /// Errors: the thread cannot start.
    pub fn start(
        conf: AllocationConf,
        service: DriverService,
        board: Arc<AllocationBoard>,
        launch_locally: bool,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tracing::info!(
            min = conf.min,
            max = conf.max,
            initial = conf.initial,
            idle_timeout_s = conf.idle_timeout.as_secs_f64(),
            "dynamic allocation on"
        );
        let thread = std::thread::Builder::new()
            .name("ember-allocation".into())
            .spawn(move || run(Allocator::new(conf), &service, &board, launch_locally, &flag))
            .map_err(|e| EmberError::Internal(format!("cannot start the dynamic allocation thread: {e}")))?;
        Ok(Self { stop, thread: Mutex::new(Some(thread)) })
    }

    /// Ends the loop (before the executors are told to shut down) and waits for it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for AllocationManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    mut allocator: Allocator,
    service: &DriverService,
    board: &AllocationBoard,
    launch_locally: bool,
    stop: &AtomicBool,
) {
    let mut decommissioned: VecDeque<String> = VecDeque::new();
    let mut requested = None;
    while !stop.load(Ordering::SeqCst) {
        let load = service.scheduler.load();
        let holdings = Holdings {
            cache: service.scheduler.cache_locations().executors(),
            shuffle: service.tracker.executors_with_outputs(),
        };
        let step = allocator.step(&load, &holdings, Instant::now());
        if requested != Some(step.target) {
            tracing::info!(
                target = step.target,
                registered = load.executors.len(),
                pending_tasks = load.pending,
                running_tasks = load.running,
                "executor target changed"
            );
            requested = Some(step.target);
        }
        for r in &step.remove {
            let reason = format!("removed by dynamic allocation: {}", r.reason);
            if service.decommission(&r.executor_id, &reason, r.idle_timeout) {
                decommissioned.push_back(r.executor_id.clone());
                if decommissioned.len() > DECOMMISSIONED_KEPT {
                    decommissioned.pop_front();
                }
            }
        }
        if launch_locally && let Err(e) = service.worker.request_total(step.target) {
            tracing::error!(error = %e, "cannot start the executors dynamic allocation asks for");
        }
        let c = allocator.conf();
        board.publish(AllocationDemand {
            target: step.target,
            min_executors: c.min,
            max_executors: (c.max != usize::MAX).then_some(c.max),
            pending_tasks: load.pending,
            running_tasks: load.running,
            executors: load
                .executors
                .iter()
                .filter(|e| !decommissioned.contains(&e.executor_id))
                .map(|e| ExecutorDemand {
                    id: e.executor_id.clone(),
                    running_tasks: e.running,
                    idle_ms: e.idle_for.as_millis() as u64,
                })
                .collect(),
            decommissioned: decommissioned.iter().cloned().collect(),
        });
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
mod tests;
