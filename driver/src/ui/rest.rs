//! Spark's monitoring REST API under `/api/v1` (paths, parameters and JSON
//! field names as Spark's; see `status::api` for the shapes).
//!
//! | path | answer |
//! |---|---|
//! | `/applications[?status=completed\|running]` | applications |
//! | `/applications/{app}` | one application |
//! | `/applications/{app}/jobs[?status=running\|succeeded\|failed\|unknown]`, `/jobs/{job}` | jobs |
//! | `/applications/{app}/stages[?status=active\|complete\|pending\|failed\|skipped]` | stage attempts |
//! | `/applications/{app}/stages/{stage}[/{attempt}][?details=true\|false]` | a stage's attempts, with tasks |
//! | `/applications/{app}/stages/{stage}/{attempt}/taskSummary[?quantiles=0.05,0.25,0.5,0.75,0.95]` | quantiles of task metrics |
//! | `/applications/{app}/stages/{stage}/{attempt}/taskList[?offset=0&length=20]` | tasks by id |
//! | `/applications/{app}/executors`, `/allexecutors` | active / all executors |
//! | `/applications/{app}/environment` | settings |
//! | `/applications/{app}/storage/rdd`, `/storage/rdd/{rddId}` | cached RDDs, one with where its partitions are |
//! | `/applications/{app}/streaming/statistics`, `/streaming/batches[?status=queued\|processing\|completed]`, `/streaming/batches/{batch}` | streaming batches |

use super::{AppSource, respond};
use crate::status::quantiles::parse_quantiles;
use crate::status::{AppState, StageData, api, streaming};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;

/// Spark's default quantiles of `taskSummary`.
pub const DEFAULT_QUANTILES: &str = "0.05,0.25,0.5,0.75,0.95";

/// A request that cannot be answered: its status and why.
struct ApiError(StatusCode, String);

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        error(e.0, e.1)
    }
}

fn json(v: &Value) -> Response {
    let body = serde_json::to_string_pretty(v).unwrap_or_default();
    respond(StatusCode::OK, "application/json", body)
}

fn error(status: StatusCode, message: String) -> Response {
    respond(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

fn missing(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("bad {what}: {s:?}")))
}

fn matches_status(status: &impl serde::Serialize, wanted: Option<&String>) -> bool {
    let Some(wanted) = wanted else { return true };
    let name = serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    name.eq_ignore_ascii_case(wanted)
}

/// Answers one REST request; `path` is what follows `/api/v1/`.
pub fn handle(apps: &dyn AppSource, path: &[&str], query: &HashMap<String, String>) -> Response {
    match path {
        ["applications"] => {
            let list: Vec<Value> = apps
                .list()
                .iter()
                .map(|s| s.read())
                .filter(|s| match query.get("status").map(|s| s.to_ascii_lowercase()).as_deref() {
                    Some("completed") => s.completed(),
                    Some("running") => !s.completed(),
                    _ => true,
                })
                .map(|s| api::application(&s))
                .collect();
            json(&Value::Array(list))
        }
        ["applications", app_id, rest @ ..] => match apps.get(app_id) {
            Some(store) => app_request(&store.read(), rest, query).unwrap_or_else(Response::from),
            None => missing(format!("application {app_id}")).into(),
        },
        _ => missing("endpoint".into()).into(),
    }
}

fn stage_or_missing<'a>(s: &'a AppState, stage: &str, attempt: &str) -> Result<&'a StageData, ApiError> {
    let (id, at): (u32, u32) = (parse("stage id", stage)?, parse("attempt id", attempt)?);
    s.stages.get(&(id, at)).ok_or_else(|| missing(format!("stage {id} attempt {at}")))
}

fn app_request(s: &AppState, path: &[&str], query: &HashMap<String, String>) -> Result<Response, ApiError> {
    let details = |default: bool| query.get("details").map(|d| d == "true").unwrap_or(default);
    Ok(match path {
        [] => json(&api::application(s)),
        ["jobs"] => {
            let jobs: Vec<Value> = s
                .jobs
                .values()
                .rev()
                .filter(|j| matches_status(&j.status, query.get("status")))
                .map(|j| api::job(s, j))
                .collect();
            json(&Value::Array(jobs))
        }
        ["jobs", id] => {
            let id: u64 = parse("job id", id)?;
            let job = s.jobs.get(&id).ok_or_else(|| missing(format!("job {id}")))?;
            json(&api::job(s, job))
        }
        ["stages"] => {
            let stages: Vec<Value> = s
                .stages
                .values()
                .rev()
                .filter(|st| matches_status(&st.status, query.get("status")))
                .map(|st| api::stage(st, details(false)))
                .collect();
            json(&Value::Array(stages))
        }
        ["stages", id] => {
            let id: u32 = parse("stage id", id)?;
            let attempts: Vec<Value> =
                s.stages.range((id, 0)..=(id, u32::MAX)).map(|(_, st)| api::stage(st, details(true))).collect();
            if attempts.is_empty() {
                return Err(missing(format!("stage {id}")));
            }
            json(&Value::Array(attempts))
        }
        ["stages", id, attempt] => json(&api::stage(stage_or_missing(s, id, attempt)?, details(true))),
        ["stages", id, attempt, "taskSummary"] => {
            let stage = stage_or_missing(s, id, attempt)?;
            let text = query.get("quantiles").map(String::as_str).unwrap_or(DEFAULT_QUANTILES);
            let qs = parse_quantiles(text).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
            match api::task_summary(stage, &qs) {
                Some(v) => json(&v),
                None => return Err(missing(format!("successful tasks of stage {id} attempt {attempt}"))),
            }
        }
        ["stages", id, attempt, "taskList"] => {
            let stage = stage_or_missing(s, id, attempt)?;
            let offset: usize = parse("offset", query.get("offset").map(String::as_str).unwrap_or("0"))?;
            let length: usize = parse("length", query.get("length").map(String::as_str).unwrap_or("20"))?;
            let tasks: Vec<Value> = stage.task_list.values().skip(offset).take(length).map(|t| api::task(t)).collect();
            json(&Value::Array(tasks))
        }
        ["executors"] => {
            let list: Vec<Value> = s.executors.values().filter(|x| x.remove_ms.is_none()).map(api::executor).collect();
            json(&Value::Array(list))
        }
        ["allexecutors"] => json(&Value::Array(s.executors.values().map(api::executor).collect())),
        ["environment"] => json(&api::environment(s)),
        ["storage", "rdd"] => json(&Value::Array(s.cached_rdds().map(|r| api::rdd_storage(s, r, false)).collect())),
        ["storage", "rdd", id] => {
            let id: u64 = parse("rdd id", id)?;
            let rdd = s.cached_rdds().find(|r| r.id == id).ok_or_else(|| missing(format!("rdd {id}")))?;
            json(&api::rdd_storage(s, rdd, true))
        }
        ["streaming", ..] if !s.streaming.is_streaming() => return Err(missing("streaming statistics".into())),
        ["streaming", "statistics"] => json(&streaming::statistics_json(&s.streaming, s.app.start_ms)),
        ["streaming", "batches"] => {
            let wanted = query.get("status").map(|w| w.to_ascii_uppercase());
            let list: Vec<Value> = s
                .streaming
                .batches
                .values()
                .rev()
                .map(streaming::batch_json)
                .filter(|b| wanted.as_deref().is_none_or(|w| b["status"] == w))
                .collect();
            json(&Value::Array(list))
        }
        ["streaming", "batches", id] => {
            let id: u64 = parse("batch id", id)?;
            let batch = s.streaming.batches.get(&id).ok_or_else(|| missing(format!("batch {id}")))?;
            json(&streaming::batch_json(batch))
        }
        _ => return Err(missing("endpoint".into())),
    })
}
