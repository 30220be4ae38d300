//! Spark's Storage page: the cached RDDs (storage level, cached partitions of all,
//! sizes in memory and on disk), and an RDD's page with its data distribution
//! over executors and where each cached partition is.

use super::format::bytes;
use super::pages::layout;
use crate::status::{AppState, RddStorage};
use axum::response::Response;
use maud::html;

/// `/storage/`: every RDD with a cached partition.
pub fn storage_page(s: &AppState, base: &str, refresh: bool) -> Response {
    let rdds: Vec<&RddStorage> = s.cached_rdds().collect();
    let body = html! {
        h3 { "RDDs (" (rdds.len()) ")" }
        @if rdds.is_empty() {
            p.muted { "No RDD is cached. Persist one (cache, persist) and run a job that computes it." }
        } @else {
            table {
                thead { tr {
                    th { "ID" } th { "RDD Name" } th { "Storage Level" } th { "Cached Partitions" }
                    th { "Fraction Cached" } th { "Size in Memory" } th { "Size on Disk" }
                } }
                tbody {
                    @for r in &rdds {
                        tr {
                            td.num { (r.id) }
                            td { a href={ (base) "/storage/rdd/?id=" (r.id) } { (r.name) } }
                            td { (r.storage_level) }
                            td.num { (r.num_cached_partitions()) }
                            td.num { (fraction(r)) }
                            td.num { (bytes(r.memory_used())) }
                            td.num { (bytes(r.disk_used())) }
                        }
                    }
                }
            }
        }
    };
    layout(s, base, "storage", "Storage", refresh, body)
}

fn fraction(r: &RddStorage) -> String {
    if r.num_partitions == 0 {
        return String::new();
    }
    format!("{:.0}%", r.num_cached_partitions() as f64 * 100.0 / r.num_partitions as f64)
}

/// `/storage/rdd/?id=N`: one cached RDD, by executor and by partition.
pub fn rdd_page(s: &AppState, base: &str, rdd: &RddStorage, refresh: bool) -> Response {
    let by_executor = rdd.by_executor();
    let address = |id: &str| s.executors.get(id).map(|x| x.host.clone()).unwrap_or_default();
    let body = html! {
        ul.summary {
            li { b { "Storage Level: " } (rdd.storage_level) }
            li { b { "Cached Partitions: " } (rdd.num_cached_partitions()) }
            li { b { "Total Partitions: " } (rdd.num_partitions) }
            li { b { "Memory Size: " } (bytes(rdd.memory_used())) }
            li { b { "Disk Size: " } (bytes(rdd.disk_used())) }
        }
        h3 { "Data Distribution on " (by_executor.len()) " Executors" }
        table {
            thead { tr {
                th { "Executor ID" } th { "Address" } th { "Blocks" } th { "Memory Usage" } th { "Disk Usage" }
            } }
            tbody {
                @for (id, (memory, disk, blocks)) in &by_executor {
                    tr {
                        td { (id) }
                        td { @let a = address(id); @if a.is_empty() { span.muted { "in-process" } } @else { (a) } }
                        td.num { (blocks) }
                        td.num { (bytes(*memory)) }
                        td.num { (bytes(*disk)) }
                    }
                }
            }
        }
        h3 { (rdd.num_cached_partitions()) " Partitions" }
        table {
            thead { tr {
                th { "Block Name" } th { "Storage Level" } th { "Size in Memory" } th { "Size on Disk" } th { "Executors" }
            } }
            tbody {
                @for (partition, holders) in &rdd.blocks {
                    tr {
                        td { "rdd_" (rdd.id) "_" (partition) }
                        td { (holders.values().next().map(|b| b.storage_level.as_str()).unwrap_or_default()) }
                        td.num { (bytes(holders.values().map(|b| b.memory_size).sum())) }
                        td.num { (bytes(holders.values().map(|b| b.disk_size).sum())) }
                        td { (holders.keys().map(String::as_str).collect::<Vec<_>>().join(", ")) }
                    }
                }
            }
        }
    };
    layout(s, base, "storage", &format!("RDD Storage Info for {} (RDD {})", rdd.name, rdd.id), refresh, body)
}
