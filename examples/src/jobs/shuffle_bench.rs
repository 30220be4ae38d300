//! Shuffle benchmarks and the memory-bound check: reduceByKey over many pairs,
//! and a groupByKey whose one hot key has more values than an executor's memory.

use crate::mix;
use ember::prelude::*;
use ember::{Group, TaskContext};
use serde_json::{Value, json};
use std::time::Instant;

/// reduceByKey of `pairs` pairs (i mod keys, i) generated in the tasks.
pub fn reduce_by_key(sc: &EmberContext, pairs: u64, keys: u64, partitions: usize) -> ember::Result<Value> {
    let keys = keys.max(1);
    let start = Instant::now();
    let before = sc.task_metrics();
    let sums = sc
        .range(0, pairs as i64, 1, partitions)?
        .map(Fn!(move |i: i64| (i as u64 % keys, i as u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a.wrapping_add(b)));
    let (distinct, total, weighted) = sums.aggregate(
        (0u64, 0u64, 0u64),
        Fn!(|acc: (u64, u64, u64), kv: (u64, u64)| (
            acc.0 + 1,
            acc.1.wrapping_add(kv.1),
            acc.2.wrapping_add(kv.0.wrapping_mul(kv.1))
        )),
        Fn!(|a: (u64, u64, u64), b: (u64, u64, u64)| (a.0 + b.0, a.1.wrapping_add(b.1), a.2.wrapping_add(b.2))),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let m = sc.task_metrics();
    let written = m.shuffle_bytes_written - before.shuffle_bytes_written;
    Ok(json!({
        "pairs": pairs,
        "distinct_keys": distinct,
        "sum": total,
        "weighted_sum": weighted,
        "seconds": seconds,
        "shuffle_records_written": m.shuffle_records_written - before.shuffle_records_written,
        "shuffle_bytes_written": written,
        "shuffle_bytes_read": m.shuffle_bytes_read - before.shuffle_bytes_read,
        "shuffle_mb_per_s": written as f64 / 1e6 / seconds,
        "spills": m.spill_count - before.spill_count,
    }))
}

/// The value of record `i` of the hot key: `bytes` printable bytes that vary with `i`.
pub fn hot_value(i: u64, bytes: usize) -> String {
    let mut s = format!("{i:016x}");
    while s.len() < bytes {
        let x = (s.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i;
        s.push(char::from(b'a' + (x % 26) as u8));
    }
    s.truncate(bytes);
    s
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// groupByKey where key 0 gets `values` values of `value_bytes` bytes and keys
/// 1..=`other_keys` one value each. The task that groups key 0 iterates its
/// group (count, bytes, checksum) and reports its executor's peak RSS.
pub fn group_skew(
    sc: &EmberContext,
    values: u64,
    value_bytes: usize,
    other_keys: u64,
    partitions: usize,
) -> ember::Result<Value> {
    let start = Instant::now();
    let hot =
        sc.range(0, values as i64, 1, partitions)?.map(Fn!(move |i: i64| (0u64, hot_value(i as u64, value_bytes))));
    let others = sc.range(1, other_keys as i64 + 1, 1, 2)?.map(Fn!(|k: i64| (k as u64, format!("v{k}"))));
    let summaries: Vec<(u64, u64, u64, u64, bool, u64, String)> = hot
        .union(&others)
        .group_by_key_with(partitions)
        .map(Fn!(|kv: (u64, Group<String>)| {
            let spilled = kv.1.is_spilled();
            let (mut count, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
            for v in kv.1.iter() {
                count += 1;
                bytes += v.len() as u64;
                checksum = checksum.wrapping_add(value_checksum(&v));
            }
            let executor = TaskContext::with_current(|c| c.map(|c| c.executor_id().to_string()).unwrap_or_default());
            (kv.0, count, bytes, checksum, spilled, peak_rss_bytes(), executor)
        }))
        .collect()?;
    let hot = summaries.iter().find(|s| s.0 == 0);
    Ok(json!({
        "keys": summaries.len(),
        "hot_values": hot.map_or(0, |s| s.1),
        "hot_bytes": hot.map_or(0, |s| s.2),
        "hot_checksum": hot.map_or(0, |s| s.3),
        "hot_spilled": hot.is_some_and(|s| s.4),
        "hot_executor_peak_rss_bytes": hot.map_or(0, |s| s.5),
        "hot_executor": hot.map(|s| s.6.clone()),
        "seconds": start.elapsed().as_secs_f64(),
        "spills": sc.task_metrics().spill_count,
    }))
}

/// The checksum of one value (order-independent sums of it make a group's checksum).
pub fn value_checksum(v: &str) -> u64 {
    v.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Order-independent digest of pairs.
fn digest<'a>(pairs: impl IntoIterator<Item = (u64, u64)> + 'a) -> u64 {
    pairs.into_iter().fold(0u64, |acc, (k, v)| acc.wrapping_add(mix(k ^ mix(v))))
}

/// Digest of one key's cogrouped values: both sides' values and counts.
pub fn cogroup_digest(left: &[u64], right: &[u64]) -> u64 {
    let l = left.iter().fold(0u64, |a, v| a.wrapping_add(mix(*v)));
    let r = right.iter().fold(0u64, |a, v| a.wrapping_add(mix(*v)));
    l ^ r.rotate_left(17) ^ ((left.len() as u64) << 40) ^ right.len() as u64
}

/// The key of record `i` of the left dataset of `shuffle-check`: skewed, a
/// third of the records on key 0.
pub fn check_key(i: u64, keys: u64) -> u64 {
    if i.is_multiple_of(3) { 0 } else { mix(i) % keys.max(1) }
}

/// The right dataset of `shuffle-check`'s join and cogroup: keys 0..keys step 2.
pub fn check_right(i: u64) -> (u64, u64) {
    (i * 2, i * 7 + 1)
}

/// Every shuffle operation over the same generated data, reduced to digests
/// that `shuffle_check_reference` computes sequentially.
pub fn shuffle_check(sc: &EmberContext, n: u64, keys: u64, partitions: usize) -> ember::Result<Value> {
    let left = sc.range(0, n as i64, 1, partitions)?.map(Fn!(move |i: i64| (check_key(i as u64, keys), i as u64)));
    let right = sc.range(0, (keys / 2) as i64, 1, partitions)?.map(Fn!(|i: i64| check_right(i as u64)));
    let reduced = left.reduce_by_key(Fn!(|a: u64, b: u64| a.wrapping_add(b))).collect()?;
    let grouped: Vec<(u64, u64)> = left
        .group_by_key()
        .map(Fn!(|kv: (u64, Group<u64>)| (kv.0, kv.1.iter().fold(kv.1.len() as u64, |a, v| a.wrapping_add(mix(v))))))
        .collect()?;
    let sorted: Vec<(u64, u64)> = left.map(Fn!(|kv: (u64, u64)| (kv.1, kv.0))).sort_by_key(false)?.collect()?;
    let sorted_ok = sorted.windows(2).all(|w| w[0].0 >= w[1].0);
    let joined: Vec<(u64, (u64, u64))> = left.join(&right).collect()?;
    let cogrouped: Vec<(u64, u64)> = left
        .cogroup(&right)
        .map(Fn!(|kv: (u64, (Vec<u64>, Vec<u64>))| (kv.0, cogroup_digest(&kv.1.0, &kv.1.1))))
        .collect()?;
    let distinct: Vec<u64> = left.map(Fn!(|kv: (u64, u64)| kv.1 % 1000 + kv.0)).distinct().collect()?;
    Ok(json!({
        "reduce_by_key": [reduced.len(), digest(reduced).to_string()],
        "group_by_key": [grouped.len(), digest(grouped).to_string()],
        "sort_by_key": [sorted.len(), digest(sorted).to_string(), sorted_ok],
        "join": [joined.len(), digest(joined.into_iter().map(|(k, (a, b))| (k, mix(a) ^ b))).to_string()],
        "cogroup": [cogrouped.len(), digest(cogrouped).to_string()],
        "distinct": [distinct.len(), digest(distinct.into_iter().map(|d| (d, 0))).to_string()],
        "spills": sc.task_metrics().spill_count,
    }))
}

/// `shuffle_check`'s digests computed sequentially, without the engine.
pub fn shuffle_check_reference(n: u64, keys: u64) -> Value {
    use std::collections::{BTreeMap, BTreeSet};
    let left: Vec<(u64, u64)> = (0..n).map(|i| (check_key(i, keys), i)).collect();
    let right: Vec<(u64, u64)> = (0..keys / 2).map(check_right).collect();
    let mut by_key: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(k, v) in &left {
        by_key.entry(k).or_default().push(v);
    }
    let mut right_by_key: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(k, v) in &right {
        right_by_key.entry(k).or_default().push(v);
    }
    let reduced: Vec<(u64, u64)> =
        by_key.iter().map(|(k, vs)| (*k, vs.iter().fold(0u64, |a, v| a.wrapping_add(*v)))).collect();
    let grouped: Vec<(u64, u64)> =
        by_key.iter().map(|(k, vs)| (*k, vs.iter().fold(vs.len() as u64, |a, v| a.wrapping_add(mix(*v))))).collect();
    let sorted: Vec<(u64, u64)> = left.iter().map(|&(k, v)| (v, k)).collect();
    let mut joined = Vec::new();
    for (k, vs) in &by_key {
        for w in right_by_key.get(k).into_iter().flatten() {
            for v in vs {
                joined.push((*k, mix(*v) ^ w));
            }
        }
    }
    let all_keys: BTreeSet<u64> = by_key.keys().chain(right_by_key.keys()).copied().collect();
    let empty = Vec::new();
    let cogrouped: Vec<(u64, u64)> = all_keys
        .iter()
        .map(|k| (*k, cogroup_digest(by_key.get(k).unwrap_or(&empty), right_by_key.get(k).unwrap_or(&empty))))
        .collect();
    let distinct: BTreeSet<u64> = left.iter().map(|&(k, v)| v % 1000 + k).collect();
    json!({
        "reduce_by_key": [reduced.len(), digest(reduced).to_string()],
        "group_by_key": [grouped.len(), digest(grouped).to_string()],
        "sort_by_key": [sorted.len(), digest(sorted).to_string(), true],
        "join": [joined.len(), digest(joined).to_string()],
        "cogroup": [cogrouped.len(), digest(cogrouped).to_string()],
        "distinct": [distinct.len(), digest(distinct.into_iter().map(|d| (d, 0))).to_string()],
    })
}
