//! Jobs that exercise the engine itself: a deliberately failing task, the
//! scheduler's start-up and per-task overhead, and a straggler (one slow executor)
//! for speculative execution.

use ember::prelude::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Every task of partition `fail_partition` panics; the others succeed.
pub fn faulty(sc: &EmberContext, partitions: usize, fail_partition: usize) -> ember::Result<Value> {
    let n = sc
        .parallelize((0..partitions as u64 * 10).collect(), partitions)
        .map_partitions_with_index(Fn!(move |index: usize, xs: ember::BoxIter<u64>| {
            if index == fail_partition {
                panic!("deliberate failure in partition {index}");
            }
            xs
        }))
        .count()?;
    Ok(json!({ "count": n }))
}

/// Times the context's start (until every executor registered) and a job of
/// `tasks` empty tasks.
pub fn scheduler_bench(conf: ember::Conf, tasks: usize) -> ember::Result<Value> {
    let start = Instant::now();
    let sc = ember::EmberContext::new(conf)?;
    let startup = start.elapsed();
    let empty = sc.parallelize(Vec::<u8>::new(), tasks);
    let first = Instant::now();
    empty.count()?;
    let cold = first.elapsed();
    let second = Instant::now();
    empty.count()?;
    let warm = second.elapsed();
    Ok(json!({
        "startup_ms": startup.as_secs_f64() * 1e3,
        "executors": sc.executor_count(),
        "tasks": tasks,
        "job_ms": warm.as_secs_f64() * 1e3,
        "first_job_ms": cold.as_secs_f64() * 1e3,
        "per_task_us": warm.as_secs_f64() * 1e6 / tasks.max(1) as f64,
    }))
}

/// The shape of the straggler job.
#[derive(Debug, Clone)]
pub struct StragglerParams {
    pub tasks: usize,
    /// Records each task produces.
    pub records: u64,
    /// Work every task does, as a wait (a stand-in for I/O-bound work), in ms.
    pub base_ms: u64,
    /// Tasks running on this executor take `delay_ms` longer (a slow node).
    pub slow_executor: Option<String>,
    pub delay_ms: u64,
    /// Save the records as text here instead of summing them.
    pub output: Option<String>,
}

/// The record a straggler task emits at global index `i` (a 64-bit mix, so the
/// checksum depends on every record).
pub fn straggler_record(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Waits `ms` in short slices; stops the task as soon as the driver kills it, so
/// a losing attempt frees its slot promptly.
fn killable_wait(ms: u64) {
    let deadline = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(Err(killed)) = ember::TaskContext::with_current(|ctx| ctx.map(|c| c.check_killed())) {
            ember::raise(killed);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

/// `tasks` tasks that each wait `base_ms` (plus `delay_ms` on the slow executor)
/// and emit `records` records; returns their wrapping sum, checked against the
/// sum computed on the driver, with the job's wall time and speculation counts.
pub fn straggler(sc: &EmberContext, p: &StragglerParams) -> ember::Result<Value> {
    let (records, base_ms, delay_ms) = (p.records, p.base_ms, p.delay_ms);
    let slow = p.slow_executor.clone().unwrap_or_default();
    let counted = sc.accumulator(0u64);
    let acc = counted.clone();
    let data = sc.parallelize((0..p.tasks as u64).collect(), p.tasks).map_partitions_with_index(Fn!(
        move |index: usize, _seed: ember::BoxIter<u64>| {
            let executor =
                ember::TaskContext::with_current(|ctx| ctx.map(|c| c.executor_id().to_string())).unwrap_or_default();
            let slowed = !slow.is_empty() && executor == slow;
            killable_wait(base_ms + if slowed { delay_ms } else { 0 });
            acc.add(records);
            let lo = index as u64 * records;
            (lo..lo + records).map(crate::jobs::diagnostics::straggler_record)
        }
    ));
    let expected = (0..p.tasks as u64 * records).map(straggler_record).fold(0u64, u64::wrapping_add);
    let start = Instant::now();
    let checksum = match &p.output {
        None => data.fold(0u64, Fn!(|a: u64, b: u64| a.wrapping_add(b)))?,
        Some(dir) => {
            data.save_as_text_file(dir)?;
            expected
        }
    };
    let wall = start.elapsed();
    let spec = sc.speculation_metrics();
    Ok(json!({
        "tasks": p.tasks,
        "records": p.tasks as u64 * records,
        "records_counted": counted.value(),
        "checksum": checksum.to_string(),
        "expected_checksum": expected.to_string(),
        "exact": checksum == expected,
        "slow_executor": p.slow_executor,
        "delay_ms": delay_ms,
        "base_ms": base_ms,
        "wall_ms": wall.as_secs_f64() * 1e3,
        "speculation": {
            "enabled": sc.conf().get_bool("spark.speculation", false)?,
            "launched": spec.launched,
            "won": spec.won,
            "killed": spec.killed,
            "originals_killed": spec.originals_killed,
        },
    }))
}

/// Caches `records` numbers (×3) in `partitions` partitions at MEMORY_ONLY (or
/// DISK_ONLY with `disk`), counts them twice, and with `pause_file` waits for that
/// file while they stay cached. Prints the RDD's id and both counts.
pub fn cache_check(
    sc: &EmberContext,
    partitions: usize,
    records: u64,
    disk: bool,
    pause_file: Option<&str>,
) -> ember::Result<Value> {
    let level = if disk { StorageLevel::DiskOnly } else { StorageLevel::MemoryOnly };
    let rdd = sc.range(0, records as i64, 1, partitions)?.map(Fn!(|x: i64| x * 3)).persist(level);
    let first = rdd.count()?;
    let second = rdd.count()?;
    if let Some(path) = pause_file {
        crate::wait_for_file(path, Duration::from_secs(600))?;
    }
    Ok(json!({ "rdd_id": rdd.id(), "first": first, "second": second, "level": format!("{level:?}") }))
}
