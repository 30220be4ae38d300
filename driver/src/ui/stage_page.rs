//! The Stages page and a stage attempt's page: Spark's "Summary Metrics for N
//! Completed Tasks" table (min, 25th percentile, median, 75th percentile, max),
//! the event timeline of its tasks, and the task list.

use super::format::{bytes, duration_ms, time};
use super::pages::{layout, progress, span};
use crate::listener::TaskMetrics;
use crate::status::quantiles::{UI_QUANTILES, quantiles};
use crate::status::{AppState, StageData, StageStatus, TaskData};
use axum::response::Response;
use maud::{Markup, html};

/// Tasks drawn in the event timeline at most (the first by launch time).
pub const TIMELINE_MAX_TASKS: usize = 200;

/// A table of stage attempts.
pub fn stages_table(s: &AppState, base: &str, stages: &[&StageData], with_status: bool) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Stage Id" } @if with_status { th { "Status" } } th { "Description" } th { "Submitted" }
                th { "Duration" } th { "Tasks: Succeeded/Total" } th { "Shuffle Read" } th { "Shuffle Write" }
                th { "Spill (Disk)" } th { "Failure Reason" }
            } }
            tbody {
                @for st in stages {
                    tr {
                        td.num { (st.info.stage_id) @if st.info.attempt > 0 { " (retry " (st.info.attempt) ")" } }
                        @if with_status { td { (format!("{:?}", st.status).to_uppercase()) } }
                        td { a href={ (base) "/stages/stage/?id=" (st.info.stage_id) "&attempt=" (st.info.attempt) } {
                            (st.info.name) } " " span.muted { (st.kind_name()) } }
                        td { @if let Some(t) = st.submission_ms { (time(t)) } @else { span.muted { "Unknown" } } }
                        td.num { (span(s, st.submission_ms, st.completion_ms)) }
                        td { (progress(st.completed_indices.len(), st.tasks.active, st.info.num_tasks, "")) }
                        td.num { (bytes(st.totals.shuffle_read_bytes)) }
                        td.num { (bytes(st.totals.shuffle_write_bytes)) }
                        td.num { (bytes(st.totals.spill_bytes)) }
                        td { @if let Some(f) = &st.failure { div.err { (f) } } }
                    }
                }
            }
        }
    }
}

/// The Stages page: attempts by status.
pub fn stages_page(s: &AppState, base: &str, refresh: bool) -> Response {
    let sections = [
        ("Active Stages", StageStatus::Active),
        ("Pending Stages", StageStatus::Pending),
        ("Completed Stages", StageStatus::Complete),
        ("Skipped Stages", StageStatus::Skipped),
        ("Failed Stages", StageStatus::Failed),
    ];
    let body = html! {
        @for (title, status) in sections {
            @let list: Vec<&StageData> = s.stages.values().rev().filter(|st| st.status == status).collect();
            @if !list.is_empty() || status == StageStatus::Active {
                h3 { (title) " (" (list.len()) ")" }
                @if !list.is_empty() { (stages_table(s, base, &list, false)) }
            }
        }
    };
    layout(s, base, "stages", "Stages for All Jobs", refresh, body)
}

type Column = (&'static str, fn(&TaskMetrics) -> u64, fn(u64) -> String);

fn records(n: u64) -> String {
    n.to_string()
}

const SUMMARY_ROWS: [Column; 8] = [
    ("Duration", |m| m.duration_ms, duration_ms),
    ("Scheduler Delay", |m| m.scheduler_delay_ms, duration_ms),
    ("Executor Run Time", |m| m.run_ms, duration_ms),
    ("Shuffle Read Size", |m| m.shuffle_read_bytes, bytes),
    ("Shuffle Read Records", |m| m.shuffle_read_records, records),
    ("Shuffle Write Size", |m| m.shuffle_write_bytes, bytes),
    ("Shuffle Write Records", |m| m.shuffle_write_records, records),
    ("Spill (Disk)", |m| m.spill_bytes, bytes),
];

fn summary_table(ok: &[&TaskMetrics]) -> Markup {
    html! {
        table.summary-metrics {
            thead { tr {
                th { "Metric" } th { "Min" } th { "25th percentile" } th { "Median" }
                th { "75th percentile" } th { "Max" }
            } }
            tbody {
                @for (name, get, show) in SUMMARY_ROWS {
                    @let values: Vec<f64> = ok.iter().map(|m| get(m) as f64).collect();
                    @if let Some(q) = quantiles(&values, &UI_QUANTILES) {
                        tr { td { (name) } @for v in q { td.num { (show(v as u64)) } } }
                    }
                }
            }
        }
    }
}

/// An SVG row per task (launch to end; scheduler delay light, run time dark).
fn timeline(s: &AppState, st: &StageData) -> Markup {
    let mut tasks: Vec<&TaskData> = st.task_list.values().map(|t| &**t).collect();
    tasks.sort_by_key(|t| (t.info.launch_time_ms, t.info.task_id));
    let hidden = tasks.len().saturating_sub(TIMELINE_MAX_TASKS);
    tasks.truncate(TIMELINE_MAX_TASKS);
    let Some(t0) = tasks.iter().map(|t| t.info.launch_time_ms).min() else {
        return html! { p.muted { "No task has started." } };
    };
    let end = |t: &TaskData| t.finish_ms.unwrap_or(s.open_end_ms().max(t.info.launch_time_ms));
    let t1 = tasks.iter().map(|t| end(t)).max().unwrap_or(t0).max(t0 + 1);
    let (label_w, plot_w, row_h) = (150.0, 700.0, 12.0);
    let x = |ms: u64| label_w + (ms.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot_w;
    let height = tasks.len() as f64 * row_h + 24.0;
    html! {
        svg.timeline width=(label_w + plot_w + 10.0) height=(height) xmlns="http://www.w3.org/2000/svg" {
            @for (i, t) in tasks.iter().enumerate() {
                @let y = i as f64 * row_h;
                @let (dark, light) = match t.status_str() {
                    "SUCCESS" => ("#4f9a4f", "#b9dfb9"),
                    "FAILED" => ("#c44", "#f2b8b8"),
                    "KILLED" => ("#888", "#ddd"),
                    _ => ("#3b7fc4", "#b8d4ef"),
                };
                @let start = x(t.info.launch_time_ms);
                @let stop = x(end(t)).max(start + 1.0);
                @let delay = t.metrics.as_ref().map(|m| m.scheduler_delay_ms).unwrap_or(0);
                @let split = x(t.info.launch_time_ms + delay).min(stop);
                text x="0" y=(y + 10.0) font-size="10" { "task " (t.info.task_id) " · exec " (t.info.executor_id) }
                rect x=(start) y=(y + 1.0) width=(split - start) height=(row_h - 2.0) fill=(light) {}
                rect x=(split) y=(y + 1.0) width=(stop - split) height=(row_h - 2.0) fill=(dark) {
                    title { "task " (t.info.task_id) " (partition " (t.info.partition) ", attempt " (t.info.attempt) "): "
                        (t.status_str()) ", " (duration_ms(end(t) - t.info.launch_time_ms)) }
                }
            }
            text x=(label_w) y=(height - 4.0) font-size="10" { (time(t0)) }
            text x=(label_w + plot_w) y=(height - 4.0) font-size="10" text-anchor="end" {
                "+" (duration_ms(t1 - t0)) }
        }
        @if hidden > 0 { p.muted { (hidden) " later tasks are not drawn." } }
        p.muted { "Light: scheduler delay (queueing, shipping the task and its result). Dark: running on the executor. Green succeeded, red failed, grey killed, blue running." }
    }
}

fn task_rows(st: &StageData) -> Markup {
    html! {
        table.tasks {
            thead { tr {
                th { "Index" } th { "Task ID" } th { "Attempt" } th { "Status" } th { "Locality Level" } th { "Speculative" }
                th { "Executor ID" } th { "Host" } th { "Launch Time" } th { "Duration" } th { "Scheduler Delay" }
                th { "Shuffle Read Size / Records" } th { "Shuffle Write Size / Records" } th { "Spill (Disk)" }
                th { "Errors" }
            } }
            tbody {
                @for t in st.task_list.values() {
                    tr {
                        td.num { (t.info.partition) }
                        td.num { (t.info.task_id) }
                        td.num { (t.info.attempt) }
                        td { (t.status_str()) }
                        td { (t.info.locality.as_str()) }
                        td { @if t.info.speculative { "true" } @else { "false" } }
                        td { (t.info.executor_id) }
                        td { (t.info.host) }
                        td { (time(t.info.launch_time_ms)) }
                        @if let Some(m) = &t.metrics {
                            td.num { (duration_ms(m.duration_ms)) }
                            td.num { (duration_ms(m.scheduler_delay_ms)) }
                            td.num { (bytes(m.shuffle_read_bytes)) " / " (m.shuffle_read_records) }
                            td.num { (bytes(m.shuffle_write_bytes)) " / " (m.shuffle_write_records) }
                            td.num { (bytes(m.spill_bytes)) }
                        } @else {
                            td {} td {} td {} td {} td {}
                        }
                        td { @if let Some(e) = &t.error { div.err { (e) } } }
                    }
                }
            }
        }
    }
}

/// A stage attempt's page.
pub fn stage_page(s: &AppState, base: &str, st: &StageData, refresh: bool) -> Response {
    let ok: Vec<&TaskMetrics> =
        st.task_list.values().filter(|t| t.status_str() == "SUCCESS").filter_map(|t| t.metrics.as_ref()).collect();
    let body = html! {
        ul.summary {
            li { b { "Status: " } (format!("{:?}", st.status).to_uppercase()) }
            li { b { "Kind: " } (st.kind_name()) " · " b { "Tasks: " } (st.info.num_tasks)
                 " · " b { "Associated Job Ids: " } (format!("{:?}", st.job_ids)) }
            li { b { "Total Time Across All Tasks: " } (duration_ms(st.totals.run_ms)) }
            li { b { "Shuffle Read Size / Records: " } (bytes(st.totals.shuffle_read_bytes)) " / " (st.totals.shuffle_read_records) }
            li { b { "Shuffle Write Size / Records: " } (bytes(st.totals.shuffle_write_bytes)) " / " (st.totals.shuffle_write_records) }
            li { b { "Spill (Disk): " } (bytes(st.totals.spill_bytes)) }
            @if let Some(f) = &st.failure { li { b { "Failure: " } span.err { (f) } } }
        }
        h3 { "Summary Metrics for " (ok.len()) " Completed Tasks" }
        @if ok.is_empty() { p.muted { "No task has completed yet." } } @else { (summary_table(&ok)) }
        h3 { "Event Timeline" }
        (timeline(s, st))
        h3 { "Tasks (" (st.task_list.len()) ")" }
        (task_rows(st))
    };
    let title = format!("Details for Stage {} (Attempt {})", st.info.stage_id, st.info.attempt);
    layout(s, base, "stages", &title, refresh, body)
}
