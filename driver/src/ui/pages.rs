//! The HTML pages, with Spark's names: Jobs, Stages, Storage, Environment, Executors, a
//! job's page (with the DAG of its stages), a stage's page (summary quantiles,
//! event timeline, tasks), and the history server's application list. Rendered
//! on the server with maud; no JavaScript; a running application's pages reload
//! themselves every 2 s.

use super::format::{bytes, duration_ms, time};
use super::{respond, stage_page};
use crate::status::{AppState, AppStatusStore, JobData, JobStatus, StageData, StageStatus, TaskCounts};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::collections::HashMap;

const CSS: &str = r#"
body{font-family:sans-serif;font-size:14px;margin:0;color:#222}
nav{background:#2d3e50;padding:6px 12px;display:flex;gap:16px;align-items:center}
nav a{color:#fff;text-decoration:none;padding:4px 8px;border-radius:3px}
nav a.on{background:#4a6583}
nav .app{color:#ffd27f;margin-left:auto}
main{padding:8px 16px}
h3{margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0;min-width:40%}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
ul.summary{list-style:none;padding:0}
ul.summary li{margin:2px 0}
.progress{position:relative;width:220px;height:18px;background:#eee;border-radius:3px;overflow:hidden}
.progress .done{position:absolute;left:0;top:0;bottom:0;background:#7bc67b}
.progress .running{position:absolute;top:0;bottom:0;background:#9cc7ef}
.progress span{position:relative;display:block;text-align:center;font-size:12px;line-height:18px}
.err{color:#b00;white-space:pre-wrap;max-width:600px}
.muted{color:#777}
"#;

/// A whole page: navigation, title, body; `refresh` reloads it every 2 s.
pub(crate) fn layout(s: &AppState, base: &str, tab: &str, title: &str, refresh: bool, body: Markup) -> Response {
    let mut tabs = vec![
        ("jobs", "Jobs"),
        ("stages", "Stages"),
        ("storage", "Storage"),
        ("environment", "Environment"),
        ("executors", "Executors"),
    ];
    if s.streaming.is_streaming() {
        tabs.push(("streaming", "Streaming"));
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if refresh { meta http-equiv="refresh" content="2"; }
                title { (s.app.name) " - " (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                nav {
                    @for (path, name) in tabs {
                        a class=@if path == tab { "on" } href={ (base) "/" (path) "/" } { (name) }
                    }
                    span.app { (s.app.name) " application UI" @if !s.completed() && refresh { " (running)" } }
                }
                main {
                    h2 { (title) }
                    (body)
                }
            }
        }
    };
    html_response(page)
}

pub(crate) fn html_response(page: Markup) -> Response {
    respond(StatusCode::OK, "text/html; charset=utf-8", page.into_string())
}

/// Completed and running tasks of `total` as a bar with `completed/total`.
pub(crate) fn progress(completed: usize, active: usize, total: usize, extra: &str) -> Markup {
    let pct = |n: usize| if total == 0 { 0.0 } else { (n.min(total) as f64) * 100.0 / total as f64 };
    let done = pct(completed);
    let running = pct(active).min(100.0 - done);
    html! {
        div.progress {
            div.done style=(format!("width:{done:.1}%")) {}
            div.running style=(format!("left:{done:.1}%;width:{running:.1}%")) {}
            span { (completed) "/" (total) @if active > 0 { " (" (active) " running)" } (extra) }
        }
    }
}

fn failed_killed(t: &TaskCounts) -> String {
    let mut parts = Vec::new();
    if t.failed > 0 {
        parts.push(format!("{} failed", t.failed));
    }
    if t.killed > 0 {
        parts.push(format!("{} killed", t.killed));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}

/// The duration from `start` to `end`, or to the latest event while running.
pub(crate) fn span(s: &AppState, start: Option<u64>, end: Option<u64>) -> String {
    match start {
        Some(start) => duration_ms(end.unwrap_or(s.open_end_ms().max(start)) - start),
        None => String::new(),
    }
}

/// Serves one page of an application; `page` is the path after `base`.
pub fn app_page(
    store: &AppStatusStore,
    base: &str,
    page: &[&str],
    query: &HashMap<String, String>,
    live: bool,
) -> Response {
    let s = store.read();
    let refresh = live && !s.completed();
    let id = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
    match page {
        [] => (StatusCode::FOUND, [(header::LOCATION, format!("{base}/jobs/"))]).into_response(),
        ["jobs"] => jobs_page(&s, base, refresh),
        ["jobs", "job"] => match id("id").and_then(|i| s.jobs.get(&i)) {
            Some(job) => job_page(&s, base, job, refresh),
            None => respond(StatusCode::NOT_FOUND, "text/plain", "no such job\n".into()),
        },
        ["stages"] => stage_page::stages_page(&s, base, refresh),
        ["stages", "stage"] => {
            let attempt = id("attempt").unwrap_or(0) as u32;
            match id("id").and_then(|i| s.stages.get(&(i as u32, attempt))) {
                Some(stage) => stage_page::stage_page(&s, base, stage, refresh),
                None => respond(StatusCode::NOT_FOUND, "text/plain", "no such stage attempt\n".into()),
            }
        }
        ["storage"] => super::storage_page::storage_page(&s, base, refresh),
        ["storage", "rdd"] => match id("id").and_then(|i| s.cached_rdds().find(|r| r.id == i)) {
            Some(rdd) => super::storage_page::rdd_page(&s, base, rdd, refresh),
            None => respond(StatusCode::NOT_FOUND, "text/plain", "no such cached RDD\n".into()),
        },
        ["executors"] => executors_page(&s, base, refresh),
        ["environment"] => environment_page(&s, base, refresh),
        ["streaming"] => super::streaming_page::streaming_page(&s, base, refresh),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "no such page\n".into()),
    }
}

fn stage_counts(s: &AppState, job: &JobData) -> (usize, usize) {
    let stages: Vec<&StageData> = job.stage_ids.iter().filter_map(|id| s.latest_attempt(*id)).collect();
    let done = stages.iter().filter(|st| st.status == StageStatus::Complete).count();
    let skipped = stages.iter().filter(|st| st.status == StageStatus::Skipped).count();
    (done, stages.len() - skipped)
}

fn jobs_table(s: &AppState, base: &str, jobs: &[&JobData]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Job Id" } th { "Description" } th { "Submitted" } th { "Duration" }
                th { "Stages: Succeeded/Total" } th { "Tasks (for all stages): Succeeded/Total" }
            } }
            tbody {
                @for j in jobs {
                    @let (done, total) = stage_counts(s, j);
                    tr {
                        td.num { (j.job_id) }
                        td { a href={ (base) "/jobs/job/?id=" (j.job_id) } { (j.name) }
                             @if let Some(e) = &j.error { div.err { (e) } } }
                        td { (time(j.submission_ms)) }
                        td.num { (span(s, Some(j.submission_ms), j.completion_ms)) }
                        td.num { (done) "/" (total) }
                        td { (progress(j.tasks.completed, j.tasks.active, j.num_tasks, &failed_killed(&j.tasks))) }
                    }
                }
            }
        }
    }
}

fn jobs_page(s: &AppState, base: &str, refresh: bool) -> Response {
    let by = |st: JobStatus| s.jobs.values().rev().filter(|j| j.status == st).collect::<Vec<_>>();
    let (active, done, failed, unknown) =
        (by(JobStatus::Running), by(JobStatus::Succeeded), by(JobStatus::Failed), by(JobStatus::Unknown));
    let body = html! {
        ul.summary {
            li { b { "User: " } (s.app.user) }
            li { b { "Application: " } (s.app.id) " (" (s.app.master) ")" }
            li { b { "Started: " } (time(s.app.start_ms)) }
            li { b { "Total Uptime: " } (span(s, Some(s.app.start_ms), s.app.end_ms)) }
            li { b { "Status: " } @if s.completed() { "completed" } @else { "running (or ended without a clean stop)" } }
            li { b { "Active Jobs: " } (active.len()) " · " b { "Completed Jobs: " } (done.len())
                 " · " b { "Failed Jobs: " } (failed.len()) }
        }
        @for (title, list) in [("Active Jobs", &active), ("Completed Jobs", &done), ("Failed Jobs", &failed), ("Jobs Whose End Was Not Recorded", &unknown)] {
            @if !list.is_empty() || title == "Active Jobs" {
                h3 { (title) " (" (list.len()) ")" }
                @if !list.is_empty() { (jobs_table(s, base, list)) }
            }
        }
    };
    layout(s, base, "jobs", "Spark Jobs", refresh, body)
}

fn job_page(s: &AppState, base: &str, job: &JobData, refresh: bool) -> Response {
    let stages: Vec<&StageData> = job.stage_ids.iter().rev().filter_map(|id| s.latest_attempt(*id)).collect();
    let body = html! {
        ul.summary {
            li { b { "Status: " } (format!("{:?}", job.status).to_uppercase()) }
            li { b { "Submitted: " } (time(job.submission_ms)) }
            li { b { "Duration: " } (span(s, Some(job.submission_ms), job.completion_ms)) }
            @if let Some(e) = &job.error { li { b { "Error: " } span.err { (e) } } }
        }
        h3 { "DAG Visualization" }
        (super::dag_svg::job_dag(s, base, job))
        h3 { "Stages (" (stages.len()) ")" }
        (stage_page::stages_table(s, base, &stages, true))
    };
    layout(s, base, "jobs", &format!("Details for Job {}", job.job_id), refresh, body)
}

fn executors_page(s: &AppState, base: &str, refresh: bool) -> Response {
    let alive = s.executors.values().filter(|x| x.remove_ms.is_none()).count();
    let body = html! {
        ul.summary {
            li { b { "Active executors: " } (alive) " · " b { "Dead: " } (s.executors.len() - alive) }
            li { b { "Cores: " } (s.executors.values().filter(|x| x.remove_ms.is_none()).map(|x| x.cores).sum::<usize>()) }
        }
        h3 { "Executors" }
        table {
            thead { tr {
                th { "Executor ID" } th { "Address" } th { "Status" } th { "Cores" } th { "Active Tasks" }
                th { "Failed Tasks" } th { "Complete Tasks" } th { "Total Tasks" } th { "Task Time" }
                th { "Shuffle Read" } th { "Shuffle Write" } th { "Spill (Disk)" } th { "Broadcast Uploaded" }
                th { "Logs" } th { "Added" } th { "Removed" }
            } }
            tbody {
                @for x in s.executors.values() {
                    tr {
                        td { (x.id) }
                        td { @if x.host.is_empty() { span.muted { "in-process" } } @else { (x.host) } }
                        td { @if x.remove_ms.is_none() { "Active" } @else { "Dead" }
                             @if let Some(r) = &x.remove_reason { div.err { (r) } } }
                        td.num { (x.cores) }
                        td.num { (x.tasks.active) }
                        td.num { (x.tasks.failed) }
                        td.num { (x.tasks.completed) }
                        td.num { (x.tasks.active + x.tasks.failed + x.tasks.completed + x.tasks.killed) }
                        td.num { (duration_ms(x.total_duration_ms)) }
                        td.num { (bytes(x.shuffle_read_bytes)) }
                        td.num { (bytes(x.shuffle_write_bytes)) }
                        td.num { (bytes(x.spill_bytes)) }
                        td.num { (bytes(x.broadcast_bytes_uploaded)) }
                        td { @for (name, url) in &x.log_urls {
                            a href={ (url) "?bytes=" (LOG_PAGE_BYTES) } { (name) } " "
                        } }
                        td { (time(x.add_ms)) }
                        td { @if let Some(r) = x.remove_ms { (time(r)) } }
                    }
                }
            }
        }
    };
    layout(s, base, "executors", "Executors", refresh, body)
}

/// Bytes of an executor's log its Executors-page link asks for (Spark's log page default).
const LOG_PAGE_BYTES: usize = 100 << 10;

fn pairs_table(pairs: &[(String, String)]) -> Markup {
    html! {
        table {
            thead { tr { th { "Name" } th { "Value" } } }
            tbody { @for (k, v) in pairs { tr { td { (k) } td { (v) } } } }
        }
    }
}

fn environment_page(s: &AppState, base: &str, refresh: bool) -> Response {
    let runtime = vec![
        ("Ember Version".to_string(), s.app.version.clone()),
        ("Application ID".to_string(), s.app.id.clone()),
        ("Master".to_string(), s.app.master.clone()),
    ];
    let body = html! {
        h3 { "Runtime Information" }
        (pairs_table(&runtime))
        h3 { "Spark Properties" }
        p.muted { "Values of settings whose name or value matches spark.redaction.regex are hidden." }
        (pairs_table(&s.spark_properties))
        h3 { "System Properties" }
        (pairs_table(&s.system_properties))
    };
    layout(s, base, "environment", "Environment", refresh, body)
}

/// The history server's front page: complete and incomplete applications apart;
/// links start with `base` (the proxy base, or empty).
pub fn history_index(apps: &[AppStatusStore], base: &str) -> Response {
    let states: Vec<_> = apps.iter().map(|a| a.read()).collect();
    let (complete, incomplete): (Vec<_>, Vec<_>) = states.iter().partition(|s| s.completed());
    let table = |list: &[&parking_lot::RwLockReadGuard<'_, AppState>], complete: bool| {
        html! {
            table {
                thead { tr {
                    th { "App ID" } th { "App Name" } th { "Started" }
                    th { @if complete { "Completed" } @else { "Last Updated" } }
                    th { "Duration" } th { "Spark User" } th { "Active Jobs" }
                } }
                tbody {
                    @for s in list {
                        tr {
                            td { a href={ (base) "/history/" (s.app.id) "/jobs/" } { (s.app.id) } }
                            td { (s.app.name) }
                            td { (time(s.app.start_ms)) }
                            td { (time(s.app.end_ms.unwrap_or(s.app.last_updated_ms))) }
                            td.num { (span(s, Some(s.app.start_ms), s.app.end_ms)) }
                            td { (s.app.user) }
                            td.num { (s.jobs.values().filter(|j| j.status == JobStatus::Running).count()) }
                        }
                    }
                }
            }
        }
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "History Server" } style { (PreEscaped(CSS)) } }
            body {
                nav { span.app { "Ember History Server" } }
                main {
                    h3 { "Completed applications (" (complete.len()) ")" }
                    (table(&complete, true))
                    h3 { "Incomplete applications (" (incomplete.len()) ")" }
                    p.muted { "Still running, or their driver ended without a clean stop (the event log is in progress)." }
                    (table(&incomplete, false))
                }
            }
        }
    };
    html_response(page)
}
