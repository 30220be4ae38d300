//! The application status store (Spark's `AppStatusStore`): jobs, stages, tasks,
//! executors and environment, kept up to date from listener-bus events. The live
//! UI reads it while the driver runs; the history server fills one per event log.

pub mod api;
pub mod quantiles;
pub mod streaming;

use crate::listener::{self, Event, Listener, StageKind, TaskStatus};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Status of a job (Spark's `JobExecutionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// Status of a stage attempt (Spark's `StageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StageStatus {
    Active,
    Complete,
    Failed,
    Pending,
    Skipped,
}

/// The application itself.
#[derive(Debug, Clone, Default)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub user: String,
    pub master: String,
    pub version: String,
    pub start_ms: u64,
    /// Set by a clean end (`SparkListenerApplicationEnd`).
    pub end_ms: Option<u64>,
    /// Time of the latest event.
    pub last_updated_ms: u64,
}

/// Task counts of a job or stage.
#[derive(Debug, Clone, Default)]
pub struct TaskCounts {
    pub active: usize,
    pub completed: usize,
    pub failed: usize,
    pub killed: usize,
}

/// One job.
#[derive(Debug, Clone)]
pub struct JobData {
    pub job_id: u64,
    pub name: String,
    pub submission_ms: u64,
    pub completion_ms: Option<u64>,
    pub stage_ids: Vec<u32>,
    pub status: JobStatus,
    pub error: Option<String>,
    /// Tasks of the stages the job may run (skipped stages' tasks included, as Spark counts them).
    pub num_tasks: usize,
    pub tasks: TaskCounts,
    /// Partitions with a successful attempt, over the job's stages.
    pub completed_indices: usize,
}

/// One attempt of one stage.
#[derive(Debug, Clone)]
pub struct StageData {
    pub info: listener::StageInfo,
    pub job_ids: Vec<u64>,
    pub status: StageStatus,
    pub submission_ms: Option<u64>,
    pub first_task_launched_ms: Option<u64>,
    pub completion_ms: Option<u64>,
    pub failure: Option<String>,
    pub tasks: TaskCounts,
    /// Partitions that have a successful attempt.
    pub completed_indices: std::collections::BTreeSet<usize>,
    /// Sums over ended tasks (successful or not).
    pub totals: listener::TaskMetrics,
    /// Attempts by task id.
    /// Boxed: a B-tree node then holds pointers, not tasks, so inserting a task
    /// (once per task launch, on the listener thread) stays cheap.
    pub task_list: BTreeMap<u64, Box<TaskData>>,
}

/// One task attempt.
#[derive(Debug, Clone)]
pub struct TaskData {
    pub info: listener::TaskInfo,
    /// None while running.
    pub status: Option<TaskStatus>,
    pub finish_ms: Option<u64>,
    pub error: Option<String>,
    pub metrics: Option<listener::TaskMetrics>,
}

impl TaskData {
    /// Spark's task status strings: RUNNING, SUCCESS, FAILED, KILLED.
    pub fn status_str(&self) -> &'static str {
        match self.status {
            None => "RUNNING",
            Some(TaskStatus::Success) => "SUCCESS",
            Some(TaskStatus::Failed) => "FAILED",
            Some(TaskStatus::Killed) => "KILLED",
        }
    }
}

/// One executor.
#[derive(Debug, Clone)]
pub struct ExecutorData {
    pub id: String,
    pub host: String,
    pub cores: usize,
    pub add_ms: u64,
    pub remove_ms: Option<u64>,
    pub remove_reason: Option<String>,
    pub tasks: TaskCounts,
    /// Summed task durations (ms).
    pub total_duration_ms: u64,
    pub shuffle_read_bytes: u64,
    pub shuffle_write_bytes: u64,
    pub spill_bytes: u64,
    /// Broadcast and file piece bytes it served to others (as last asked).
    pub broadcast_bytes_uploaded: u64,
    /// Where it serves its logs: name (`stderr`) → URL.
    pub log_urls: BTreeMap<String, String>,
}

/// A persisted RDD and its cached partitions (what Spark's Storage page shows).
#[derive(Debug, Clone, Default)]
pub struct RddStorage {
    pub id: u64,
    /// The operation that made it (`map`, …); `rdd` until a stage told.
    pub name: String,
    /// Partitions of the RDD (0 until a stage told).
    pub num_partitions: usize,
    /// Spark's description of the RDD's storage level.
    pub storage_level: String,
    /// Cached blocks: partition → executor id → block.
    pub blocks: BTreeMap<usize, BTreeMap<String, BlockData>>,
}

/// One cached partition on one executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockData {
    /// Spark's description of where it is (`Memory Deserialized 1x Replicated`, …).
    pub storage_level: String,
    /// Bytes in memory.
    pub memory_size: u64,
    /// Bytes on disk.
    pub disk_size: u64,
}

impl RddStorage {
    /// Partitions cached on at least one executor.
    pub fn num_cached_partitions(&self) -> usize {
        self.blocks.len()
    }

    /// Bytes in memory over all blocks.
    pub fn memory_used(&self) -> u64 {
        self.blocks.values().flat_map(|b| b.values()).map(|b| b.memory_size).sum()
    }

    /// Bytes on disk over all blocks.
    pub fn disk_used(&self) -> u64 {
        self.blocks.values().flat_map(|b| b.values()).map(|b| b.disk_size).sum()
    }

    /// Per executor holding blocks: (memory bytes, disk bytes, blocks).
    pub fn by_executor(&self) -> BTreeMap<&str, (u64, u64, usize)> {
        let mut out: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
        for (executor, b) in self.blocks.values().flat_map(|b| b.iter()) {
            let e = out.entry(executor.as_str()).or_default();
            e.0 += b.memory_size;
            e.1 += b.disk_size;
            e.2 += 1;
        }
        out
    }

    fn remove_executor(&mut self, executor_id: &str) {
        self.blocks.retain(|_, holders| {
            holders.remove(executor_id);
            !holders.is_empty()
        });
    }
}

/// How much a store keeps (Spark's `spark.ui.retainedJobs`, `spark.ui.retainedStages`,
/// `spark.ui.retainedTasks`): past these, the oldest ended jobs, ended stage
/// attempts and ended tasks of a stage are forgotten, so a long application's
/// store stays bounded. Quantiles are taken over the tasks kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub jobs: usize,
    pub stages: usize,
    /// Per stage attempt.
    pub tasks: usize,
    /// Completed streaming batches.
    pub batches: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self { jobs: 1000, stages: 1000, tasks: 100_000, batches: 1000 }
    }
}

impl Retention {
    /// From `spark.ui.retainedJobs`, `spark.ui.retainedStages`, `spark.ui.retainedTasks`
    /// and `spark.streaming.ui.retainedBatches`.
    ///
    /// Errors: a setting that is not a number.
    pub fn from_conf(conf: &ember_core::config::Conf) -> ember_core::error::Result<Self> {
        let d = Self::default();
        Ok(Self {
            jobs: conf.get_usize("spark.ui.retainedJobs", d.jobs)?.max(1),
            stages: conf.get_usize("spark.ui.retainedStages", d.stages)?.max(1),
            tasks: conf.get_usize("spark.ui.retainedTasks", d.tasks)?.max(1),
            batches: conf.get_usize("spark.streaming.ui.retainedBatches", d.batches)?.max(1),
        })
    }
}

/// Everything the UI shows of one application.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    pub app: AppInfo,
    pub jobs: BTreeMap<u64, JobData>,
    /// By (stage id, attempt).
    pub stages: BTreeMap<(u32, u32), StageData>,
    pub executors: BTreeMap<String, ExecutorData>,
    /// Persisted RDDs by id (the Storage page; listed once a partition is cached).
    pub rdds: BTreeMap<u64, RddStorage>,
    pub spark_properties: Vec<(String, String)>,
    pub system_properties: Vec<(String, String)>,
    /// Streaming batches, for a streaming application.
    pub streaming: streaming::StreamingData,
    /// Events applied so far.
    pub events: u64,
    /// The store of the running driver (not one replayed from a log): what has
    /// not ended yet lasts until now, not until the latest event.
    pub live: bool,
    pub retention: Retention,
}

impl AppState {
    /// True when the application ended cleanly.
    pub fn completed(&self) -> bool {
        self.app.end_ms.is_some()
    }

    /// The end of whatever has not ended: now for a live application, else the
    /// time of its latest event (a crashed driver's log stops there).
    pub fn open_end_ms(&self) -> u64 {
        if self.live && !self.completed() {
            listener::now_ms().max(self.app.last_updated_ms)
        } else {
            self.app.last_updated_ms
        }
    }

    /// The latest attempt of a stage.
    pub fn latest_attempt(&self, stage_id: u32) -> Option<&StageData> {
        self.stages.range((stage_id, 0)..=(stage_id, u32::MAX)).next_back().map(|(_, s)| s)
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &Event) {
        self.events += 1;
        match event {
            Event::ApplicationStart(e) => {
                self.app = AppInfo {
                    id: e.app_id.clone(),
                    name: e.app_name.clone(),
                    user: e.user.clone(),
                    master: e.master.clone(),
                    version: e.version.clone(),
                    start_ms: e.time_ms,
                    end_ms: None,
                    last_updated_ms: e.time_ms,
                };
            }
            Event::ApplicationEnd(e) => {
                self.app.end_ms = Some(e.time_ms);
                self.touch(e.time_ms);
                self.close_unfinished(e.time_ms);
            }
            Event::EnvironmentUpdate(e) => {
                self.spark_properties = e.spark_properties.clone();
                self.system_properties = e.system_properties.clone();
            }
            Event::JobStart(e) => {
                self.touch(e.time_ms);
                for s in &e.stages {
                    self.learn_rdds(&s.rdds);
                }
                for s in &e.stages {
                    let stage = self.stages.entry((s.stage_id, s.attempt)).or_insert_with(|| StageData::pending(s));
                    if !stage.job_ids.contains(&e.job_id) {
                        stage.job_ids.push(e.job_id);
                    }
                }
                self.jobs.insert(
                    e.job_id,
                    JobData {
                        job_id: e.job_id,
                        name: e.name.clone(),
                        submission_ms: e.time_ms,
                        completion_ms: None,
                        stage_ids: e.stages.iter().map(|s| s.stage_id).collect(),
                        status: JobStatus::Running,
                        error: None,
                        num_tasks: e.stages.iter().map(|s| s.num_tasks).sum(),
                        tasks: TaskCounts::default(),
                        completed_indices: 0,
                    },
                );
            }
            Event::JobEnd(e) => {
                self.touch(e.time_ms);
                if let Some(job) = self.jobs.get_mut(&e.job_id) {
                    job.completion_ms = Some(e.time_ms);
                    job.status = if e.succeeded { JobStatus::Succeeded } else { JobStatus::Failed };
                    job.error = e.error.clone();
                    let stage_ids = job.stage_ids.clone();
                    self.trim_jobs();
                    for id in stage_ids {
                        // A stage the job never had to run (its output was there) is skipped.
                        if let Some(stage) = self.stages.get_mut(&(id, 0))
                            && stage.status == StageStatus::Pending
                        {
                            stage.status = StageStatus::Skipped;
                        }
                    }
                }
            }
            Event::StageSubmitted(e) => {
                self.touch(e.time_ms);
                self.learn_rdds(&e.stage.rdds);
                let stage = self
                    .stages
                    .entry((e.stage.stage_id, e.stage.attempt))
                    .or_insert_with(|| StageData::pending(&e.stage));
                stage.status = StageStatus::Active;
                stage.submission_ms = Some(e.time_ms);
                if !stage.job_ids.contains(&e.job_id) {
                    stage.job_ids.push(e.job_id);
                }
            }
            Event::StageCompleted(e) => {
                self.touch(e.time_ms);
                if let Some(stage) = self.stages.get_mut(&(e.stage_id, e.attempt)) {
                    stage.completion_ms = Some(e.time_ms);
                    stage.failure = e.failure.clone();
                    stage.status = if e.failure.is_none() { StageStatus::Complete } else { StageStatus::Failed };
                }
                self.trim_stages();
            }
            Event::TaskStart(e) => self.task_started(&e.task),
            Event::TaskEnd(e) => self.task_ended(e),
            Event::ExecutorAdded(e) => {
                self.touch(e.time_ms);
                self.executors.insert(
                    e.executor_id.clone(),
                    ExecutorData {
                        id: e.executor_id.clone(),
                        host: e.host.clone(),
                        cores: e.cores,
                        add_ms: e.time_ms,
                        remove_ms: None,
                        remove_reason: None,
                        tasks: TaskCounts::default(),
                        total_duration_ms: 0,
                        shuffle_read_bytes: 0,
                        shuffle_write_bytes: 0,
                        spill_bytes: 0,
                        broadcast_bytes_uploaded: 0,
                        log_urls: BTreeMap::new(),
                    },
                );
            }
            Event::ExecutorRemoved(e) => {
                self.touch(e.time_ms);
                if let Some(x) = self.executors.get_mut(&e.executor_id) {
                    x.remove_ms = Some(e.time_ms);
                    x.remove_reason = Some(e.reason.clone());
                }
                // Its cached blocks went with it.
                for rdd in self.rdds.values_mut() {
                    rdd.remove_executor(&e.executor_id);
                }
            }
            Event::BlockUpdated(e) => {
                self.touch(e.time_ms);
                let rdd = self.rdds.entry(e.rdd_id).or_insert_with(|| RddStorage {
                    id: e.rdd_id,
                    name: "rdd".into(),
                    storage_level: e.storage_level.clone(),
                    ..Default::default()
                });
                if e.memory_size == 0 && e.disk_size == 0 {
                    if let Some(holders) = rdd.blocks.get_mut(&e.partition) {
                        holders.remove(&e.executor_id);
                        if holders.is_empty() {
                            rdd.blocks.remove(&e.partition);
                        }
                    }
                } else {
                    rdd.blocks.entry(e.partition).or_default().insert(
                        e.executor_id.clone(),
                        BlockData {
                            storage_level: e.storage_level.clone(),
                            memory_size: e.memory_size,
                            disk_size: e.disk_size,
                        },
                    );
                }
            }
            Event::UnpersistRdd(e) => {
                self.touch(e.time_ms);
                self.rdds.remove(&e.rdd_id);
            }
            Event::ExecutorMetricsUpdate(e) => {
                self.touch(e.time_ms);
                if let Some(x) = self.executors.get_mut(&e.executor_id) {
                    x.broadcast_bytes_uploaded = e.broadcast_bytes_uploaded;
                }
            }
            Event::ExecutorLogUrls(e) => {
                if let Some(x) = self.executors.get_mut(&e.executor_id) {
                    x.log_urls = e.log_urls.clone();
                }
            }
            Event::StreamingBatchSubmitted(b) | Event::StreamingBatchStarted(b) | Event::StreamingBatchCompleted(b) => {
                self.streaming.update(b, self.retention.batches);
            }
        }
    }

    /// Names, sizes and levels of persisted RDDs, as stages announce them.
    fn learn_rdds(&mut self, rdds: &[listener::RddInfo]) {
        for info in rdds {
            let rdd = self.rdds.entry(info.id).or_insert_with(|| RddStorage { id: info.id, ..Default::default() });
            rdd.name = info.name.clone();
            rdd.num_partitions = info.num_partitions;
            rdd.storage_level = info.storage_level.clone();
        }
    }

    /// Persisted RDDs with at least one cached partition (Spark's Storage page and
    /// `/storage/rdd`), by id.
    pub fn cached_rdds(&self) -> impl Iterator<Item = &RddStorage> {
        self.rdds.values().filter(|r| r.num_cached_partitions() > 0)
    }

    fn trim_jobs(&mut self) {
        let excess = self.jobs.len().saturating_sub(self.retention.jobs);
        let old: Vec<u64> =
            self.jobs.values().filter(|j| j.status != JobStatus::Running).take(excess).map(|j| j.job_id).collect();
        for id in old {
            self.jobs.remove(&id);
        }
    }

    fn trim_stages(&mut self) {
        let excess = self.stages.len().saturating_sub(self.retention.stages);
        let ended =
            |s: &StageData| matches!(s.status, StageStatus::Complete | StageStatus::Failed | StageStatus::Skipped);
        let old: Vec<(u32, u32)> = self.stages.iter().filter(|(_, s)| ended(s)).take(excess).map(|(k, _)| *k).collect();
        for key in old {
            self.stages.remove(&key);
        }
    }

    fn touch(&mut self, time_ms: u64) {
        self.app.last_updated_ms = self.app.last_updated_ms.max(time_ms);
    }

    fn task_started(&mut self, task: &listener::TaskInfo) {
        self.touch(task.launch_time_ms);
        let Some(stage) = self.stages.get_mut(&(task.stage_id, task.stage_attempt)) else { return };
        stage.tasks.active += 1;
        stage.first_task_launched_ms.get_or_insert(task.launch_time_ms);
        stage.task_list.insert(
            task.task_id,
            Box::new(TaskData { info: task.clone(), status: None, finish_ms: None, error: None, metrics: None }),
        );
        for job_id in &stage.job_ids {
            if let Some(job) = self.jobs.get_mut(job_id).filter(|j| j.status == JobStatus::Running) {
                job.tasks.active += 1;
            }
        }
        if let Some(x) = self.executors.get_mut(&*task.executor_id) {
            x.tasks.active += 1;
        }
    }

    fn task_ended(&mut self, e: &listener::TaskEnd) {
        self.touch(e.finish_time_ms);
        let task = &e.task;
        let Some(stage) = self.stages.get_mut(&(task.stage_id, task.stage_attempt)) else { return };
        let entry = stage.task_list.entry(task.task_id).or_insert_with(|| {
            Box::new(TaskData { info: task.clone(), status: None, finish_ms: None, error: None, metrics: None })
        });
        let was_running = entry.status.is_none();
        entry.status = Some(e.status);
        entry.finish_ms = Some(e.finish_time_ms);
        entry.error = e.error.clone();
        entry.metrics = Some(e.metrics.clone());
        let new_index = e.status == TaskStatus::Success && stage.completed_indices.insert(task.partition);
        let counts = |c: &mut TaskCounts| {
            if was_running {
                c.active = c.active.saturating_sub(1);
            }
            match e.status {
                TaskStatus::Success => c.completed += 1,
                TaskStatus::Failed => c.failed += 1,
                TaskStatus::Killed => c.killed += 1,
            }
        };
        counts(&mut stage.tasks);
        add_metrics(&mut stage.totals, &e.metrics);
        if stage.task_list.len() > self.retention.tasks {
            // Task ids grow with launch order: the first ended ones are the oldest.
            let excess = stage.task_list.len() - self.retention.tasks;
            let old: Vec<u64> =
                stage.task_list.iter().filter(|(_, t)| t.status.is_some()).take(excess).map(|(id, _)| *id).collect();
            for id in old {
                stage.task_list.remove(&id);
            }
        }
        for job_id in &stage.job_ids {
            if let Some(job) = self.jobs.get_mut(job_id).filter(|j| j.status == JobStatus::Running) {
                counts(&mut job.tasks);
                job.completed_indices += new_index as usize;
            }
        }
        if let Some(x) = self.executors.get_mut(&*task.executor_id) {
            counts(&mut x.tasks);
            x.total_duration_ms += e.metrics.duration_ms;
            x.shuffle_read_bytes += e.metrics.shuffle_read_bytes;
            x.shuffle_write_bytes += e.metrics.shuffle_write_bytes;
            x.spill_bytes += e.metrics.spill_bytes;
        }
    }

    /// At a clean end nothing runs any more: a job, stage or task whose end event
    /// never came (dropped, or the job was abandoned) is closed, so a finished
    /// application never shows active jobs.
    fn close_unfinished(&mut self, time_ms: u64) {
        const WHY: &str = "the application ended before this ended";
        for job in self.jobs.values_mut().filter(|j| j.status == JobStatus::Running) {
            job.status = JobStatus::Unknown;
            job.completion_ms = Some(time_ms);
            job.error = Some(WHY.into());
            job.tasks.active = 0;
        }
        for stage in self.stages.values_mut() {
            match stage.status {
                StageStatus::Active => {
                    stage.status = StageStatus::Failed;
                    stage.completion_ms = Some(time_ms);
                    stage.failure = Some(WHY.into());
                }
                StageStatus::Pending => stage.status = StageStatus::Skipped,
                _ => {}
            }
            stage.tasks.active = 0;
            for t in stage.task_list.values_mut().filter(|t| t.status.is_none()) {
                t.status = Some(TaskStatus::Killed);
                t.finish_ms = Some(time_ms);
                t.error = Some(WHY.into());
            }
        }
        for x in self.executors.values_mut() {
            x.tasks.active = 0;
        }
    }
}

fn add_metrics(sum: &mut listener::TaskMetrics, m: &listener::TaskMetrics) {
    sum.duration_ms += m.duration_ms;
    sum.run_ms += m.run_ms;
    sum.scheduler_delay_ms += m.scheduler_delay_ms;
    sum.shuffle_read_bytes += m.shuffle_read_bytes;
    sum.shuffle_read_records += m.shuffle_read_records;
    sum.shuffle_write_bytes += m.shuffle_write_bytes;
    sum.shuffle_write_records += m.shuffle_write_records;
    sum.spill_bytes += m.spill_bytes;
    sum.spill_count += m.spill_count;
}

impl StageData {
    fn pending(info: &listener::StageInfo) -> Self {
        Self {
            info: info.clone(),
            job_ids: Vec::new(),
            status: StageStatus::Pending,
            submission_ms: None,
            first_task_launched_ms: None,
            completion_ms: None,
            failure: None,
            tasks: TaskCounts::default(),
            completed_indices: Default::default(),
            totals: Default::default(),
            task_list: BTreeMap::new(),
        }
    }

    /// Spark's stage kind name.
    pub fn kind_name(&self) -> &'static str {
        match self.info.kind {
            StageKind::ShuffleMapStage => "ShuffleMapStage",
            StageKind::ResultStage => "ResultStage",
        }
    }
}

/// A status store shared between its listener (writer) and the UI (readers).
#[derive(Clone, Default)]
pub struct AppStatusStore {
    state: Arc<RwLock<AppState>>,
}

impl AppStatusStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store keeping what `retention` allows.
    pub fn with_retention(retention: Retention) -> Self {
        let store = Self::default();
        store.state.write().retention = retention;
        store
    }

    /// The store of the running driver (see `AppState::live`).
    pub fn live(retention: Retention) -> Self {
        let store = Self::with_retention(retention);
        store.state.write().live = true;
        store
    }

    /// Reads the current state.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, AppState> {
        self.state.read()
    }

    /// Applies one event.
    pub fn apply(&self, event: &Event) {
        self.state.write().apply(event);
    }

    /// The listener that keeps this store current.
    pub fn listener(&self) -> Box<dyn Listener> {
        Box::new(StoreListener(self.clone()))
    }
}

struct StoreListener(AppStatusStore);

impl Listener for StoreListener {
    fn name(&self) -> &'static str {
        "appStatus"
    }
    fn on_event(&mut self, event: &Event) {
        self.0.apply(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::{ApplicationEnd, JobStart, StageInfo, StageSubmitted, TaskInfo, TaskLocality, TaskStart};

    #[test]
    fn an_ended_application_has_no_active_jobs_even_when_job_ends_were_lost() {
        let mut s = AppState::default();
        let stage = StageInfo {
            stage_id: 0,
            attempt: 0,
            name: "map".into(),
            kind: StageKind::ResultStage,
            num_tasks: 2,
            parent_ids: vec![],
            rdds: vec![],
        };
        s.apply(&Event::JobStart(JobStart {
            job_id: 0,
            time_ms: 1,
            name: "count".into(),
            stages: vec![stage.clone()],
        }));
        s.apply(&Event::StageSubmitted(StageSubmitted { job_id: 0, time_ms: 1, stage }));
        let task = TaskInfo {
            locality: TaskLocality::ProcessLocal,
            task_id: 0,
            stage_id: 0,
            stage_attempt: 0,
            partition: 0,
            attempt: 0,
            executor_id: "1".into(),
            host: Default::default(),
            launch_time_ms: 2,
            speculative: false,
        };
        s.apply(&Event::TaskStart(TaskStart { task }));
        assert_eq!(s.jobs[&0].status, JobStatus::Running);
        assert_eq!(s.jobs[&0].tasks.active, 1);
        s.apply(&Event::ApplicationEnd(ApplicationEnd { time_ms: 9 }));
        assert!(s.completed());
        assert_eq!(s.jobs[&0].status, JobStatus::Unknown);
        assert_eq!(s.jobs[&0].tasks.active, 0);
        assert_eq!(s.stages[&(0, 0)].status, StageStatus::Failed);
        assert_eq!(s.stages[&(0, 0)].task_list[&0].status, Some(TaskStatus::Killed));
        assert!(s.jobs.values().all(|j| j.status != JobStatus::Running));
    }

    #[test]
    fn storage_follows_block_updates_executor_loss_and_unpersist() {
        let mut s = AppState::default();
        let rdd = crate::listener::RddInfo {
            id: 7,
            name: "map".into(),
            num_partitions: 3,
            storage_level: "Disk Memory Deserialized 1x Replicated".into(),
        };
        let stage = StageInfo {
            stage_id: 0,
            attempt: 0,
            name: "map".into(),
            kind: StageKind::ResultStage,
            num_tasks: 3,
            parent_ids: vec![],
            rdds: vec![rdd],
        };
        s.apply(&Event::StageSubmitted(StageSubmitted { job_id: 0, time_ms: 1, stage }));
        assert_eq!(s.cached_rdds().count(), 0, "listed once a partition is cached");
        let block = |executor: &str, partition, memory_size, disk_size| {
            Event::BlockUpdated(crate::listener::BlockUpdated {
                executor_id: executor.into(),
                block_id: format!("rdd_7_{partition}"),
                rdd_id: 7,
                partition,
                storage_level: "Memory Deserialized 1x Replicated".into(),
                memory_size,
                disk_size,
                time_ms: 2,
            })
        };
        s.apply(&block("1", 0, 100, 0));
        s.apply(&block("2", 1, 50, 0));
        s.apply(&block("2", 2, 0, 30));
        let r = s.cached_rdds().next().expect("cached");
        assert_eq!((r.name.as_str(), r.num_partitions, r.num_cached_partitions()), ("map", 3, 3));
        assert_eq!((r.memory_used(), r.disk_used()), (150, 30));
        assert_eq!(r.by_executor()["2"], (50, 30, 2));
        s.apply(&block("2", 2, 0, 0));
        assert_eq!(s.rdds[&7].num_cached_partitions(), 2, "a dropped block is gone");
        s.apply(&Event::ExecutorRemoved(crate::listener::ExecutorRemoved {
            executor_id: "2".into(),
            reason: "lost".into(),
            time_ms: 3,
        }));
        assert_eq!(s.rdds[&7].blocks.keys().copied().collect::<Vec<_>>(), vec![0], "its blocks went with it");
        s.apply(&Event::UnpersistRdd(crate::listener::UnpersistRdd { rdd_id: 7, time_ms: 4 }));
        assert_eq!(s.cached_rdds().count(), 0);
    }

    #[test]
    fn keeps_what_retention_allows() {
        let mut s =
            AppState { retention: Retention { jobs: 2, stages: 2, tasks: 3, batches: 2 }, ..Default::default() };
        for job_id in 0..4u64 {
            let stage = StageInfo {
                stage_id: job_id as u32,
                attempt: 0,
                name: "map".into(),
                kind: StageKind::ResultStage,
                num_tasks: 5,
                parent_ids: vec![],
                rdds: vec![],
            };
            s.apply(&Event::JobStart(JobStart {
                job_id,
                time_ms: 1,
                name: "count".into(),
                stages: vec![stage.clone()],
            }));
            s.apply(&Event::StageSubmitted(StageSubmitted { job_id, time_ms: 1, stage }));
            for partition in 0..5 {
                let task = TaskInfo {
                    locality: TaskLocality::ProcessLocal,
                    task_id: job_id * 10 + partition as u64,
                    stage_id: job_id as u32,
                    stage_attempt: 0,
                    partition,
                    attempt: 0,
                    executor_id: "1".into(),
                    host: Default::default(),
                    launch_time_ms: 2,
                    speculative: false,
                };
                s.apply(&Event::TaskStart(TaskStart { task: task.clone() }));
                s.apply(&Event::TaskEnd(crate::listener::TaskEnd {
                    task,
                    finish_time_ms: 3,
                    status: TaskStatus::Success,
                    error: None,
                    metrics: Default::default(),
                }));
            }
            s.apply(&Event::StageCompleted(crate::listener::StageCompleted {
                job_id,
                stage_id: job_id as u32,
                attempt: 0,
                time_ms: 4,
                failure: None,
            }));
            s.apply(&Event::JobEnd(crate::listener::JobEnd { job_id, time_ms: 5, succeeded: true, error: None }));
        }
        assert_eq!(s.jobs.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(s.stages.keys().copied().collect::<Vec<_>>(), vec![(2, 0), (3, 0)]);
        let stage = &s.stages[&(3, 0)];
        assert_eq!(stage.task_list.keys().copied().collect::<Vec<_>>(), vec![32, 33, 34]);
        assert_eq!(stage.tasks.completed, 5, "counts cover every task, kept or not");
    }
}
