//! Messages between the driver and executors, the same in local mode (channels)
//! and distributed mode (gRPC): what a task is, and how it ended.

use crate::error::EmberError;
use crate::shuffle::MapStatus;
use crate::task::{TaskAttempt, TaskMetricsSnapshot};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// Runs a result stage's function (`Arc<dyn ResultTaskFn>` root).
    Result,
    /// Writes a shuffle map output (`Arc<dyn ShuffleMapFn>` root).
    ShuffleMap,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDescription {
    pub job_id: u64,
    pub attempt: TaskAttempt,
    pub kind: TaskKind,
    /// The stage's serialized root and lineage; decoded once per executor and stage attempt.
    pub stage_binary: Arc<Vec<u8>>,
    /// The W3C `traceparent` of the stage attempt's span, when traces are exported
    /// (see `crate::telemetry`): the task's span on the executor is its child.
    pub trace_parent: Option<String>,
    /// A task that lives as long as the application (a streaming receiver): it
    /// runs on a thread of its own and holds none of its executor's task slots,
    /// so it does not take a core from the jobs (Spark's receiver holds one core
    /// for its whole life, and `local[1]` with a receiver processes nothing).
    /// Set for every task of a job submitted under the local property
    /// `ember.job.longRunning=true`.
    #[serde(default)]
    pub long_running: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskValue {
    Result(Vec<u8>),
    MapOutput(MapStatus),
    /// A result too large to send inline: the driver fetches it from the
    /// executor's block server (`spark.task.maxDirectResultSize`).
    Stored {
        size: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskOutcome {
    Success { value: TaskValue, accumulator_updates: Vec<(u64, Vec<u8>)>, metrics: TaskMetricsSnapshot, run_ms: u64 },
    Failed { error: EmberError, run_ms: u64 },
    Killed { reason: String },
}
