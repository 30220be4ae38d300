//! The DAG of a job's stages as a server-drawn SVG (Spark's "DAG Visualization"):
//! one column per depth, parents left of children, a box per stage coloured by
//! status and linked to the stage's page.

use crate::status::{AppState, JobData, StageStatus};
use maud::{Markup, html};
use std::collections::HashMap;

const BOX_W: f64 = 170.0;
const BOX_H: f64 = 46.0;
const GAP_X: f64 = 60.0;
const GAP_Y: f64 = 16.0;

/// The SVG of `job`'s stages.
pub fn job_dag(s: &AppState, base: &str, job: &JobData) -> Markup {
    let stages: Vec<_> = job.stage_ids.iter().filter_map(|id| s.latest_attempt(*id)).collect();
    let in_job: HashMap<u32, usize> = stages.iter().enumerate().map(|(i, st)| (st.info.stage_id, i)).collect();
    // Depth: longest path from a stage without parents in the job (stages come parents first).
    let mut depth = vec![0usize; stages.len()];
    for _ in 0..stages.len() {
        for (i, st) in stages.iter().enumerate() {
            let d = st.info.parent_ids.iter().filter_map(|p| in_job.get(p)).map(|&p| depth[p] + 1).max().unwrap_or(0);
            depth[i] = depth[i].max(d);
        }
    }
    let mut row_in_column: HashMap<usize, usize> = HashMap::new();
    let pos: Vec<(f64, f64)> = depth
        .iter()
        .map(|&d| {
            let row = row_in_column.entry(d).or_insert(0);
            let p = (10.0 + d as f64 * (BOX_W + GAP_X), 10.0 + *row as f64 * (BOX_H + GAP_Y));
            *row += 1;
            p
        })
        .collect();
    let width = pos.iter().map(|p| p.0 + BOX_W + 10.0).fold(0.0, f64::max);
    let height = pos.iter().map(|p| p.1 + BOX_H + 10.0).fold(0.0, f64::max);
    html! {
        svg.dag width=(width) height=(height) xmlns="http://www.w3.org/2000/svg" {
            defs { marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto" {
                path d="M0,0 L8,4 L0,8 z" fill="#555" {} } }
            @for (i, st) in stages.iter().enumerate() {
                @for p in st.info.parent_ids.iter().filter_map(|p| in_job.get(p)) {
                    line x1=(pos[*p].0 + BOX_W) y1=(pos[*p].1 + BOX_H / 2.0) x2=(pos[i].0) y2=(pos[i].1 + BOX_H / 2.0)
                        stroke="#555" stroke-width="1.5" marker-end="url(#arrow)" {}
                }
            }
            @for (i, st) in stages.iter().enumerate() {
                @let fill = match st.status {
                    StageStatus::Complete => "#d7efd7",
                    StageStatus::Active => "#d6e6f7",
                    StageStatus::Failed => "#f6d3d3",
                    StageStatus::Skipped => "#eeeeee",
                    StageStatus::Pending => "#fff8dc",
                };
                a href={ (base) "/stages/stage/?id=" (st.info.stage_id) "&attempt=" (st.info.attempt) } {
                    rect x=(pos[i].0) y=(pos[i].1) width=(BOX_W) height=(BOX_H) rx="4" fill=(fill) stroke="#666" {}
                    text x=(pos[i].0 + 8.0) y=(pos[i].1 + 18.0) font-size="12" font-weight="bold" {
                        "Stage " (st.info.stage_id) @if st.status == StageStatus::Skipped { " (skipped)" } }
                    text x=(pos[i].0 + 8.0) y=(pos[i].1 + 36.0) font-size="11" {
                        (st.info.name) " · " (st.info.num_tasks) " tasks" }
                }
            }
        }
    }
}
