//! The Streaming page (Spark's Streaming tab): the batch interval, statistics
//! over the kept batches (input rate, scheduling delay, processing time, total
//! delay), the batches waiting or running, and the completed ones.

use super::format::{duration_ms, time};
use super::pages::layout;
use crate::listener::StreamingBatch;
use crate::status::AppState;
use axum::response::Response;
use maud::{Markup, html};

fn or_dash(ms: Option<u64>) -> String {
    ms.map(duration_ms).unwrap_or_else(|| "-".into())
}

fn batches_table(batches: &[&StreamingBatch]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Batch Time" } th { "Records" } th { "Scheduling Delay" } th { "Processing Time" }
                th { "Total Delay" } th { "Output Ops" } th { "Status" }
            } }
            tbody {
                @for b in batches {
                    tr {
                        td title=(b.batch_time_ms) { (time(b.batch_time_ms)) }
                        td.num { (b.input_records) }
                        td.num { (or_dash(b.scheduling_delay_ms())) }
                        td.num { (or_dash(b.processing_time_ms())) }
                        td.num { (or_dash(b.total_delay_ms())) }
                        td.num { (b.output_operations) }
                        td {
                            @match (&b.failure, b.processing_start_time_ms, b.processing_end_time_ms) {
                                (Some(f), _, _) => span.err { "failed: " (f) },
                                (None, _, Some(_)) => "completed",
                                (None, Some(_), None) => "processing",
                                (None, None, None) => "queued",
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page; `refresh` reloads it every 2 s.
pub(crate) fn streaming_page(s: &AppState, base: &str, refresh: bool) -> Response {
    let st = &s.streaming;
    let completed: Vec<&StreamingBatch> = st.completed_batches().collect();
    let active: Vec<&StreamingBatch> = st.active_batches().collect();
    let rate = st.average_input_rate().map_or_else(|| "-".into(), |r| format!("{r:.1} records/s"));
    let avg_max = |delay| match st.delay_average_max(delay) {
        Some((avg, max)) => (duration_ms(avg), duration_ms(max)),
        None => ("-".into(), "-".into()),
    };
    let (sched_avg, sched_max) = avg_max(StreamingBatch::scheduling_delay_ms);
    let (proc_avg, proc_max) = avg_max(StreamingBatch::processing_time_ms);
    let (total_avg, total_max) = avg_max(StreamingBatch::total_delay_ms);
    let body = html! {
        @if !st.is_streaming() {
            p.muted { "This application has run no streaming batch." }
        } @else {
            ul.summary {
                li { strong { "Batch interval: " } (duration_ms(st.batch_duration_ms)) }
                li { strong { "Completed batches: " } (st.completed) " (" (completed.len()) " kept)" }
                li { strong { "Records received by completed batches: " } (st.completed_records) }
                li { strong { "Waiting or running batches: " } (active.len()) }
            }
            h3 { "Statistics over the kept completed batches" }
            table {
                thead { tr { th { "" } th { "Average" } th { "Maximum" } } }
                tbody {
                    tr { td { "Input rate" } td.num { (rate) } td { "" } }
                    tr { td { "Scheduling delay" } td.num { (sched_avg) } td.num { (sched_max) } }
                    tr { td { "Processing time" } td.num { (proc_avg) } td.num { (proc_max) } }
                    tr { td { "Total delay" } td.num { (total_avg) } td.num { (total_max) } }
                }
            }
            h3 { "Active batches (" (active.len()) ")" }
            (batches_table(&active))
            h3 { "Completed batches (last " (completed.len()) " of " (st.completed) ")" }
            (batches_table(&completed))
        }
    };
    layout(s, base, "streaming", "Streaming", refresh, body)
}
