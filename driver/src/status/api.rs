//! JSON views of the status store with the field names of Spark's monitoring REST
//! API (`/api/v1`, Spark's `org.apache.spark.status.api.v1` classes), so tools
//! written for Spark read Ember's. Only what Ember measures is reported: a Spark
//! field Ember has no figure for is left out rather than filled with zero.

use super::quantiles::quantiles;
use super::{AppState, ExecutorData, JobData, RddStorage, StageData, StageStatus, TaskData};
use crate::listener::TaskStatus;
use serde_json::{Value, json};

/// Spark's date format in the REST API: `2015-02-03T16:42:40.429GMT`.
pub fn spark_time(ms: u64) -> String {
    match jiff::Timestamp::from_millisecond(ms as i64) {
        Ok(t) => format!("{}.{:03}GMT", t.strftime("%Y-%m-%dT%H:%M:%S"), ms % 1000),
        Err(_) => String::new(),
    }
}

fn opt_time(ms: Option<u64>) -> Value {
    ms.map(|m| Value::String(spark_time(m))).unwrap_or(Value::Null)
}

/// `/applications` entry (Spark's `ApplicationInfo` with one attempt).
pub fn application(s: &AppState) -> Value {
    let a = &s.app;
    let end = a.end_ms;
    json!({
        "id": a.id,
        "name": a.name,
        "coresGranted": s.executors.values().filter(|x| x.remove_ms.is_none()).map(|x| x.cores).sum::<usize>(),
        "attempts": [{
            "startTime": spark_time(a.start_ms),
            "endTime": end.map(spark_time).unwrap_or_else(|| spark_time(0)),
            "lastUpdated": spark_time(a.last_updated_ms),
            "duration": end.unwrap_or(s.open_end_ms()).saturating_sub(a.start_ms),
            "sparkUser": a.user,
            "completed": s.completed(),
            "appSparkVersion": a.version,
            "startTimeEpoch": a.start_ms,
            "endTimeEpoch": end.map(|e| e as i64).unwrap_or(-1),
            "lastUpdatedEpoch": a.last_updated_ms,
        }],
    })
}

/// `/jobs/[job-id]` (Spark's `JobData`).
pub fn job(s: &AppState, j: &JobData) -> Value {
    let stages: Vec<&StageData> = j.stage_ids.iter().filter_map(|id| s.latest_attempt(*id)).collect();
    let count = |st: StageStatus| stages.iter().filter(|x| x.status == st).count();
    let skipped_tasks: usize =
        stages.iter().filter(|x| x.status == StageStatus::Skipped).map(|x| x.info.num_tasks).sum();
    let mut v = json!({
        "jobId": j.job_id,
        "name": j.name,
        "submissionTime": spark_time(j.submission_ms),
        "completionTime": opt_time(j.completion_ms),
        "stageIds": j.stage_ids,
        "status": j.status,
        "numTasks": j.num_tasks,
        "numActiveTasks": j.tasks.active,
        "numCompletedTasks": j.tasks.completed,
        "numSkippedTasks": skipped_tasks,
        "numFailedTasks": j.tasks.failed,
        "numKilledTasks": j.tasks.killed,
        "numCompletedIndices": j.completed_indices,
        "numActiveStages": count(StageStatus::Active),
        "numCompletedStages": count(StageStatus::Complete),
        "numSkippedStages": count(StageStatus::Skipped),
        "numFailedStages": count(StageStatus::Failed),
    });
    if let Some(e) = &j.error {
        v["errorMessage"] = json!(e);
    }
    v
}

/// `/jobs` (newest first, like Spark).
pub fn jobs(s: &AppState) -> Value {
    Value::Array(s.jobs.values().rev().map(|j| job(s, j)).collect())
}

/// A stage attempt (Spark's `StageData`); with `details`, its tasks keyed by id.
pub fn stage(st: &StageData, details: bool) -> Value {
    let t = &st.totals;
    let mut v = json!({
        "status": st.status,
        "stageId": st.info.stage_id,
        "attemptId": st.info.attempt,
        "numTasks": st.info.num_tasks,
        "numActiveTasks": st.tasks.active,
        "numCompleteTasks": st.tasks.completed,
        "numFailedTasks": st.tasks.failed,
        "numKilledTasks": st.tasks.killed,
        "numCompletedIndices": st.completed_indices.len(),
        "submissionTime": opt_time(st.submission_ms),
        "firstTaskLaunchedTime": opt_time(st.first_task_launched_ms),
        "completionTime": opt_time(st.completion_ms),
        "executorRunTime": t.run_ms,
        "shuffleReadBytes": t.shuffle_read_bytes,
        "shuffleReadRecords": t.shuffle_read_records,
        "shuffleWriteBytes": t.shuffle_write_bytes,
        "shuffleWriteRecords": t.shuffle_write_records,
        "diskBytesSpilled": t.spill_bytes,
        "name": st.info.name,
        "details": st.kind_name(),
        "schedulingPool": "default",
        "parentIds": st.info.parent_ids,
        "jobIds": st.job_ids,
    });
    if let Some(f) = &st.failure {
        v["failureReason"] = json!(f);
    }
    if details {
        let tasks: serde_json::Map<String, Value> =
            st.task_list.values().map(|t| (t.info.task_id.to_string(), task(t))).collect();
        v["tasks"] = Value::Object(tasks);
    }
    v
}

/// A task attempt (Spark's `TaskData`).
pub fn task(t: &TaskData) -> Value {
    let i = &t.info;
    let mut v = json!({
        "taskId": i.task_id,
        "index": i.partition,
        "attempt": i.attempt,
        "partitionId": i.partition,
        "launchTime": spark_time(i.launch_time_ms),
        "executorId": i.executor_id,
        "host": i.host,
        "status": t.status_str(),
        "taskLocality": i.locality.as_str(),
        "speculative": i.speculative,
    });
    if let Some(m) = &t.metrics {
        v["duration"] = json!(m.duration_ms);
        v["schedulerDelay"] = json!(m.scheduler_delay_ms);
        v["taskMetrics"] = json!({
            "executorRunTime": m.run_ms,
            "diskBytesSpilled": m.spill_bytes,
            "shuffleReadMetrics": { "readBytes": m.shuffle_read_bytes, "recordsRead": m.shuffle_read_records },
            "shuffleWriteMetrics": { "bytesWritten": m.shuffle_write_bytes, "recordsWritten": m.shuffle_write_records },
        });
    }
    if let Some(e) = &t.error {
        v["errorMessage"] = json!(e);
    }
    v
}

/// The successful tasks' values of each metric the summary shows, by Spark's field path.
fn summary_columns(st: &StageData) -> Vec<(&'static str, Vec<f64>)> {
    let ok: Vec<_> = st
        .task_list
        .values()
        .filter(|t| t.status == Some(TaskStatus::Success))
        .filter_map(|t| t.metrics.as_ref())
        .collect();
    let col = |f: fn(&crate::listener::TaskMetrics) -> u64| ok.iter().map(|m| f(m) as f64).collect::<Vec<_>>();
    vec![
        ("duration", col(|m| m.duration_ms)),
        ("executorRunTime", col(|m| m.run_ms)),
        ("schedulerDelay", col(|m| m.scheduler_delay_ms)),
        ("diskBytesSpilled", col(|m| m.spill_bytes)),
        ("shuffleReadMetrics.readBytes", col(|m| m.shuffle_read_bytes)),
        ("shuffleReadMetrics.readRecords", col(|m| m.shuffle_read_records)),
        ("shuffleWriteMetrics.writeBytes", col(|m| m.shuffle_write_bytes)),
        ("shuffleWriteMetrics.writeRecords", col(|m| m.shuffle_write_records)),
    ]
}

/// `/stages/{id}/{attempt}/taskSummary` (Spark's `TaskMetricDistributions`), or
/// None when no task of the attempt has succeeded yet.
pub fn task_summary(st: &StageData, qs: &[f64]) -> Option<Value> {
    let mut v = json!({ "quantiles": qs });
    for (path, values) in summary_columns(st) {
        let q = quantiles(&values, qs)?;
        match path.split_once('.') {
            Some((group, field)) => {
                if v.get(group).is_none() {
                    v[group] = json!({});
                }
                v[group][field] = json!(q);
            }
            None => v[path] = json!(q),
        }
    }
    Some(v)
}

/// `/executors` (Spark's `ExecutorSummary`; `executorLogs` maps `stderr` to the URL
/// of the executor's log tail; `broadcastBytesUploaded` is Ember's own).
pub fn executor(x: &ExecutorData) -> Value {
    let mut v = json!({
        "id": x.id,
        "hostPort": x.host,
        "isActive": x.remove_ms.is_none(),
        "totalCores": x.cores,
        "maxTasks": x.cores,
        "activeTasks": x.tasks.active,
        "failedTasks": x.tasks.failed,
        "completedTasks": x.tasks.completed,
        "totalTasks": x.tasks.active + x.tasks.failed + x.tasks.completed + x.tasks.killed,
        "totalDuration": x.total_duration_ms,
        "totalShuffleRead": x.shuffle_read_bytes,
        "totalShuffleWrite": x.shuffle_write_bytes,
        "addTime": spark_time(x.add_ms),
        "broadcastBytesUploaded": x.broadcast_bytes_uploaded,
        "executorLogs": x.log_urls,
    });
    if let Some(r) = x.remove_ms {
        v["removeTime"] = json!(spark_time(r));
    }
    if let Some(r) = &x.remove_reason {
        v["removeReason"] = json!(r);
    }
    v
}

/// `/environment` (Spark's `ApplicationEnvironmentInfo`).
pub fn environment(s: &AppState) -> Value {
    json!({
        "runtime": { "emberVersion": s.app.version },
        "sparkProperties": s.spark_properties,
        "systemProperties": s.system_properties,
    })
}

/// `/storage/rdd` and `/storage/rdd/{rddId}` (Spark's `RDDStorageInfo`): with
/// `details`, `dataDistribution` (per executor: `address`, `memoryUsed`,
/// `diskUsed`) and `partitions` (`blockName`, `storageLevel`, `memoryUsed`,
/// `diskUsed`, `executors`), which Spark's list leaves out too.
pub fn rdd_storage(s: &AppState, rdd: &RddStorage, details: bool) -> Value {
    let mut v = json!({
        "id": rdd.id,
        "name": rdd.name,
        "numPartitions": rdd.num_partitions,
        "numCachedPartitions": rdd.num_cached_partitions(),
        "storageLevel": rdd.storage_level,
        "memoryUsed": rdd.memory_used(),
        "diskUsed": rdd.disk_used(),
    });
    if details {
        let address = |id: &str| s.executors.get(id).map(|x| x.host.clone()).filter(|h| !h.is_empty());
        v["dataDistribution"] = rdd
            .by_executor()
            .into_iter()
            .map(|(id, (memory, disk, _))| {
                json!({
                    "address": address(id).unwrap_or_else(|| id.to_string()),
                    "memoryUsed": memory,
                    "diskUsed": disk,
                })
            })
            .collect();
        v["partitions"] = rdd
            .blocks
            .iter()
            .map(|(partition, holders)| {
                let level = holders.values().next().map(|b| b.storage_level.clone()).unwrap_or_default();
                json!({
                    "blockName": format!("rdd_{}_{partition}", rdd.id),
                    "storageLevel": level,
                    "memoryUsed": holders.values().map(|b| b.memory_size).sum::<u64>(),
                    "diskUsed": holders.values().map(|b| b.disk_size).sum::<u64>(),
                    "executors": holders.keys().collect::<Vec<_>>(),
                })
            })
            .collect();
    }
    v
}
