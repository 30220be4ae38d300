//! A cached RDD read by several actions, the way Spark users check that
//! `cache()` works: every computation of one of its partitions is counted in an
//! accumulator, and its `map` is not deterministic, so a partition computed
//! twice shows as a changed checksum too.

use ember::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;

/// What [`cache_reuse`] runs.
#[derive(Debug, Clone)]
pub struct CacheReuseParams {
    pub partitions: usize,
    pub records: u64,
    /// Actions run over the cached RDD (the first one computes and caches it).
    pub actions: usize,
    pub level: StorageLevel,
    /// In the second action, the first attempt of this partition fails (its
    /// retry runs on another executor than the one holding the partition).
    pub fail_first_attempt_of: Option<usize>,
    /// Waits for this file to exist before the last action.
    pub pause_file: Option<String>,
}

/// A salt no two computations of a partition share.
fn fresh_salt(partition: usize) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    crate::mix(nanos as u64 ^ (u64::from(std::process::id()) << 32) ^ partition as u64)
}

/// Runs the job. Output: `{"rdd_id", "partitions", "computed", "actions":
/// [{"count", "checksum"}…], "same"}`: `computed` is how many times a
/// partition of the cached RDD was computed (`partitions` when the cache held),
/// `same` whether every action saw the same checksum.
pub fn cache_reuse(sc: &EmberContext, p: &CacheReuseParams) -> ember::Result<Value> {
    let computed = sc.accumulator(0u64);
    let acc = computed.clone();
    let records = p.records as i64;
    let cached = sc
        .range(0, records, 1, p.partitions)?
        .map_partitions_with_index(Fn!(move |index: usize, values: ember::BoxIter<i64>| {
            acc.add(1);
            let salt = fresh_salt(index);
            values.map(move |v| crate::mix(v as u64 ^ salt))
        }))
        .persist(p.level);
    let mut actions = Vec::new();
    for i in 0..p.actions {
        if i + 1 == p.actions
            && let Some(path) = &p.pause_file
        {
            crate::wait_for_file(path, Duration::from_secs(300))?;
        }
        let fail = if i == 1 { p.fail_first_attempt_of } else { None };
        let (count, checksum) = cached
            .map_partitions_with_index(Fn!(move |index: usize, values: ember::BoxIter<u64>| {
                let first_attempt = ember::TaskContext::with_current(|c| c.is_some_and(|c| c.attempt_number() == 0));
                if fail == Some(index) && first_attempt {
                    panic!("deliberate failure of the first attempt of partition {index}");
                }
                values
            }))
            .aggregate(
                (0u64, 0u64),
                Fn!(|acc: (u64, u64), v: u64| (acc.0 + 1, acc.1.wrapping_add(v))),
                Fn!(|a: (u64, u64), b: (u64, u64)| { (a.0 + b.0, a.1.wrapping_add(b.1)) }),
            )?;
        actions.push(json!({ "count": count, "checksum": checksum.to_string() }));
    }
    let same = actions.windows(2).all(|w| w[0]["checksum"] == w[1]["checksum"]);
    Ok(json!({
        "rdd_id": cached.id(),
        "partitions": p.partitions,
        "computed": computed.value(),
        "actions": actions,
        "same": same,
    }))
}
