//! Join of a large and a small pair dataset generated from a seed.

use crate::mix;
use ember::prelude::*;
use serde_json::{Value, json};

/// Row i of the large side: (key, value) with keys spread over `keys`.
pub fn large_row(i: u64, keys: u64, seed: u64) -> (u64, u64) {
    (mix(i ^ seed) % keys, mix(i.wrapping_add(seed)))
}

/// Row j of the small side: one value per key for keys below `small`.
pub fn small_row(j: u64, seed: u64) -> (u64, u64) {
    (j, mix(j ^ seed.rotate_left(17)))
}

/// Order-independent checksum of a joined row.
pub fn row_checksum(k: u64, v: u64, w: u64) -> u64 {
    mix(k ^ mix(v ^ mix(w)))
}

/// Join parameters.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub large: u64,
    pub small: u64,
    pub keys: u64,
    pub partitions: usize,
    pub seed: u64,
    /// When set, the job first runs every stage once, then waits for this file to
    /// exist before its final job: a fixed point between stages for fault tests.
    pub pause_file: Option<String>,
    /// Each task of the large side's map stage first sleeps this many milliseconds:
    /// a slow wide stage, for dynamic allocation tests (0: none).
    pub task_ms: u64,
}

pub fn run(sc: &EmberContext, p: &JoinParams) -> ember::Result<Value> {
    let JoinParams { large, small, keys, partitions, seed, task_ms, .. } = *p;
    let keys = keys.max(1);
    let mut big = sc.range(0, large as i64, 1, partitions)?.map(Fn!(move |i: i64| large_row(i as u64, keys, seed)));
    if task_ms > 0 {
        big = big.map_partitions(Fn!(move |rows: ember::BoxIter<(u64, u64)>| {
            std::thread::sleep(std::time::Duration::from_millis(task_ms));
            rows
        }));
    }
    let little = sc.range(0, small as i64, 1, partitions.min(8))?.map(Fn!(move |j: i64| small_row(j as u64, seed)));
    let joined = big.join(&little);
    if let Some(path) = &p.pause_file {
        joined.count()?;
        crate::wait_for_file(path, std::time::Duration::from_secs(300))?;
    }
    let (rows, checksum) = joined.aggregate(
        (0u64, 0u64),
        Fn!(|acc: (u64, u64), r: (u64, (u64, u64))| (acc.0 + 1, acc.1.wrapping_add(row_checksum(r.0, r.1.0, r.1.1)))),
        Fn!(|a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1.wrapping_add(b.1))),
    )?;
    Ok(json!({ "rows": rows, "checksum": checksum.to_string() }))
}
