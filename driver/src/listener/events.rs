//! The events of the listener bus: what happened to the application, its jobs,
//! stages, tasks and executors. They serialize as one JSON object each, tagged
//! with Spark's event names (`"Event": "SparkListenerJobStart"`), which is the
//! event log's line format (Spark's `JsonProtocol`; field names are Ember's own,
//! camelCase). Times are milliseconds since the Unix epoch.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// One event on the bus (Spark's `SparkListenerEvent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "Event")]
pub enum Event {
    #[serde(rename = "SparkListenerApplicationStart")]
    ApplicationStart(ApplicationStart),
    #[serde(rename = "SparkListenerApplicationEnd")]
    ApplicationEnd(ApplicationEnd),
    #[serde(rename = "SparkListenerEnvironmentUpdate")]
    EnvironmentUpdate(EnvironmentUpdate),
    #[serde(rename = "SparkListenerJobStart")]
    JobStart(JobStart),
    #[serde(rename = "SparkListenerJobEnd")]
    JobEnd(JobEnd),
    #[serde(rename = "SparkListenerStageSubmitted")]
    StageSubmitted(StageSubmitted),
    #[serde(rename = "SparkListenerStageCompleted")]
    StageCompleted(StageCompleted),
    #[serde(rename = "SparkListenerTaskStart")]
    TaskStart(TaskStart),
    #[serde(rename = "SparkListenerTaskEnd")]
    TaskEnd(TaskEnd),
    #[serde(rename = "SparkListenerExecutorAdded")]
    ExecutorAdded(ExecutorAdded),
    #[serde(rename = "SparkListenerExecutorRemoved")]
    ExecutorRemoved(ExecutorRemoved),
    #[serde(rename = "SparkListenerBlockUpdated")]
    BlockUpdated(BlockUpdated),
    #[serde(rename = "SparkListenerUnpersistRDD")]
    UnpersistRdd(UnpersistRdd),
    #[serde(rename = "SparkListenerExecutorMetricsUpdate")]
    ExecutorMetricsUpdate(ExecutorMetricsUpdate),
    /// Ember's own: where an executor serves its logs (Spark sends them with the
    /// executor's registration, in `SparkListenerExecutorAdded`).
    #[serde(rename = "EmberListenerExecutorLogUrls")]
    ExecutorLogUrls(ExecutorLogUrls),
    /// A streaming batch was generated and queued (Spark's `StreamingListenerBatchSubmitted`).
    #[serde(rename = "StreamingListenerBatchSubmitted")]
    StreamingBatchSubmitted(StreamingBatch),
    /// A streaming batch's jobs began (Spark's `StreamingListenerBatchStarted`).
    #[serde(rename = "StreamingListenerBatchStarted")]
    StreamingBatchStarted(StreamingBatch),
    /// A streaming batch's jobs ended (Spark's `StreamingListenerBatchCompleted`).
    #[serde(rename = "StreamingListenerBatchCompleted")]
    StreamingBatchCompleted(StreamingBatch),
}

impl Event {
    /// Spark's name of the event (the `Event` field of its JSON line).
    pub fn name(&self) -> &'static str {
        match self {
            Event::ApplicationStart(_) => "SparkListenerApplicationStart",
            Event::ApplicationEnd(_) => "SparkListenerApplicationEnd",
            Event::EnvironmentUpdate(_) => "SparkListenerEnvironmentUpdate",
            Event::JobStart(_) => "SparkListenerJobStart",
            Event::JobEnd(_) => "SparkListenerJobEnd",
            Event::StageSubmitted(_) => "SparkListenerStageSubmitted",
            Event::StageCompleted(_) => "SparkListenerStageCompleted",
            Event::TaskStart(_) => "SparkListenerTaskStart",
            Event::TaskEnd(_) => "SparkListenerTaskEnd",
            Event::ExecutorAdded(_) => "SparkListenerExecutorAdded",
            Event::ExecutorRemoved(_) => "SparkListenerExecutorRemoved",
            Event::BlockUpdated(_) => "SparkListenerBlockUpdated",
            Event::UnpersistRdd(_) => "SparkListenerUnpersistRDD",
            Event::ExecutorMetricsUpdate(_) => "SparkListenerExecutorMetricsUpdate",
            Event::ExecutorLogUrls(_) => "EmberListenerExecutorLogUrls",
            Event::StreamingBatchSubmitted(_) => "StreamingListenerBatchSubmitted",
            Event::StreamingBatchStarted(_) => "StreamingListenerBatchStarted",
            Event::StreamingBatchCompleted(_) => "StreamingListenerBatchCompleted",
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The context started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStart {
    pub app_id: String,
    pub app_name: String,
    pub time_ms: u64,
    /// The OS user running the driver (Spark's `sparkUser`).
    pub user: String,
    pub master: String,
    /// Ember's version (Spark's `appSparkVersion`).
    pub version: String,
}

/// The context stopped cleanly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationEnd {
    pub time_ms: u64,
}

/// The application's settings, secrets already redacted (`spark.redaction.regex`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentUpdate {
    /// Every `Conf` setting, sorted by key.
    pub spark_properties: Vec<(String, String)>,
    /// The driver process: OS, architecture, process id, working directory.
    pub system_properties: Vec<(String, String)>,
}

/// Kind of a stage (Spark's `ShuffleMapStage` / `ResultStage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageKind {
    ShuffleMapStage,
    ResultStage,
}

/// A stage as a job plans it (Spark's `StageInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInfo {
    pub stage_id: u32,
    pub attempt: u32,
    /// The operation of the stage's last RDD (`map`, `reduceByKey`, …).
    pub name: String,
    pub kind: StageKind,
    pub num_tasks: usize,
    pub parent_ids: Vec<u32>,
    /// The persisted RDDs the stage computes (Spark's `rddInfos`, cached ones only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdds: Vec<RddInfo>,
}

/// A persisted RDD as a stage plans it (Spark's `RDDInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RddInfo {
    /// The RDD's id.
    pub id: u64,
    /// The operation that made it (`map`, `reduceByKey`, …).
    pub name: String,
    pub num_partitions: usize,
    /// Spark's description of its storage level (`Memory Deserialized 1x Replicated`, …).
    pub storage_level: String,
}

/// A job was submitted: all the stages it may run, parents before children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStart {
    pub job_id: u64,
    pub time_ms: u64,
    /// The operation of the job's final RDD.
    pub name: String,
    pub stages: Vec<StageInfo>,
}

/// A job ended; `error` says why when it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEnd {
    pub job_id: u64,
    pub time_ms: u64,
    pub succeeded: bool,
    pub error: Option<String>,
}

/// An attempt of a stage launched its first tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSubmitted {
    pub job_id: u64,
    pub time_ms: u64,
    pub stage: StageInfo,
}

/// An attempt of a stage ended: complete, or failed with `failure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageCompleted {
    pub job_id: u64,
    pub stage_id: u32,
    pub attempt: u32,
    pub time_ms: u64,
    pub failure: Option<String>,
}

/// Identity of a task attempt and where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    pub task_id: u64,
    pub stage_id: u32,
    pub stage_attempt: u32,
    /// The partition the task computes (Spark's task `index`).
    pub partition: usize,
    /// Attempt number of this partition within the stage attempt (0 first).
    pub attempt: u32,
    /// Inline up to 24 bytes: a task's events copy it without allocating.
    pub executor_id: CompactString,
    /// The executor's address (`host:port` of its block server; empty in local mode).
    pub host: CompactString,
    pub launch_time_ms: u64,
    /// A speculative copy of a slow attempt.
    pub speculative: bool,
    /// Whether it ran where its cached input is (event logs written before
    /// this field read as `ANY`).
    #[serde(default)]
    pub locality: TaskLocality,
}

/// Spark's `TaskLocality` as far as Ember schedules it: `PROCESS_LOCAL` (on an
/// executor holding the task's cached input, or a task with no preference)
/// or `ANY` (elsewhere, after `spark.locality.wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskLocality {
    ProcessLocal,
    #[default]
    Any,
}

impl TaskLocality {
    /// Spark's name: `PROCESS_LOCAL` or `ANY`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskLocality::ProcessLocal => "PROCESS_LOCAL",
            TaskLocality::Any => "ANY",
        }
    }
}

/// A task attempt was launched on an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStart {
    pub task: TaskInfo,
}

/// How a task attempt ended (Spark's task `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    Success,
    Failed,
    Killed,
}

/// Per-task metrics of an ended attempt. Durations in milliseconds, sizes in
/// bytes (shuffle bytes as stored: serialized and compressed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetrics {
    /// From launch to the outcome's arrival, as the driver saw it.
    pub duration_ms: u64,
    /// Time the executor spent running the task.
    pub run_ms: u64,
    /// `duration - run`: queueing, shipping the task and its result (Spark's scheduler delay).
    pub scheduler_delay_ms: u64,
    pub shuffle_read_bytes: u64,
    pub shuffle_read_records: u64,
    pub shuffle_write_bytes: u64,
    pub shuffle_write_records: u64,
    /// Bytes written to spill files (Spark's `diskBytesSpilled`).
    pub spill_bytes: u64,
    /// Times a buffer went past its budget and was spilled.
    pub spill_count: u64,
}

/// A task attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEnd {
    pub task: TaskInfo,
    pub finish_time_ms: u64,
    pub status: TaskStatus,
    /// Why it failed or was killed.
    pub error: Option<String>,
    pub metrics: TaskMetrics,
}

/// An executor registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorAdded {
    pub executor_id: String,
    pub host: String,
    pub cores: usize,
    pub time_ms: u64,
}

/// An executor was lost or stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorRemoved {
    pub executor_id: String,
    pub reason: String,
    pub time_ms: u64,
}

/// A cached partition changed on an executor: stored, moved to disk, or dropped
/// (both sizes 0). Spark's `SparkListenerBlockUpdated` for `rdd_<rddId>_<partition>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockUpdated {
    /// The executor whose block changed.
    pub executor_id: String,
    /// Spark's block id, `rdd_<rddId>_<partition>`.
    pub block_id: String,
    pub rdd_id: u64,
    pub partition: usize,
    /// Spark's description of where the block is (`Memory Deserialized 1x Replicated`,
    /// `Disk Serialized 1x Replicated`, …; `None` once dropped).
    pub storage_level: String,
    /// Bytes in memory (deserialized values: an estimate).
    pub memory_size: u64,
    /// Bytes on the executor's disk.
    pub disk_size: u64,
    pub time_ms: u64,
}

/// An RDD was unpersisted: none of its partitions is cached any more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpersistRdd {
    pub rdd_id: u64,
    pub time_ms: u64,
}

/// An executor's figures as the driver last asked them (Spark's
/// `SparkListenerExecutorMetricsUpdate`; Ember's are asked over the executor's
/// block server every `spark.executor.heartbeatInterval` and when the
/// application stops, and posted when they changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorMetricsUpdate {
    pub executor_id: String,
    /// Bytes of broadcast and file pieces the executor served to others so far.
    pub broadcast_bytes_uploaded: u64,
    pub time_ms: u64,
}

/// Where an executor serves its logs: log name (`stderr`) → URL (its
/// `/logs/stderr`, the tail of its stderr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorLogUrls {
    pub executor_id: String,
    pub log_urls: std::collections::BTreeMap<String, String>,
    pub time_ms: u64,
}

/// One streaming batch (Spark's streaming `BatchInfo`). Times are milliseconds
/// on the streaming context's clock (the wall clock unless a test set
/// `spark.streaming.clock=manual`); the processing times are unset until the
/// batch reaches that point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamingBatch {
    /// The batch's time: a multiple of the batch interval (Spark's `batchTime`).
    pub batch_time_ms: u64,
    /// The context's batch interval.
    pub batch_duration_ms: u64,
    /// Records its receiver inputs took (Spark's `numRecords`; queue and file streams are not counted).
    pub input_records: u64,
    /// When it was generated and queued.
    pub submission_time_ms: u64,
    pub processing_start_time_ms: Option<u64>,
    pub processing_end_time_ms: Option<u64>,
    /// Output operations that run a job in it.
    pub output_operations: u64,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

impl StreamingBatch {
    /// Time it waited for earlier batches: processing start − submission.
    pub fn scheduling_delay_ms(&self) -> Option<u64> {
        Some(self.processing_start_time_ms?.saturating_sub(self.submission_time_ms))
    }
    /// Time its jobs took: processing end − start.
    pub fn processing_time_ms(&self) -> Option<u64> {
        Some(self.processing_end_time_ms?.saturating_sub(self.processing_start_time_ms?))
    }
    /// From the batch's time to the end of its jobs.
    pub fn total_delay_ms(&self) -> Option<u64> {
        Some(self.processing_end_time_ms?.saturating_sub(self.batch_time_ms))
    }
}
