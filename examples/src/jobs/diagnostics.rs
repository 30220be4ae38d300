//! Jobs that exercise the engine itself: a deliberately failing task, and the
//! scheduler's start-up and per-task overhead.

use ember::prelude::*;
use serde_json::{Value, json};
use std::time::Instant;

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
pub fn scheduler_bench(config: &crate::RunConfig, tasks: usize) -> ember::Result<Value> {
    let start = Instant::now();
    let sc = config.context()?;
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
