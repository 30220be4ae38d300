//! Jobs that push the engine where jobs used to hang or crash it: lineage of
//! great depth, and tasks that take their executor process down.

use ember::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `depth` chained `map`s over `range(0, 1000)` in 4 partitions, then a union
/// chain of `unions` single-element RDDs; both counted and summed on the
/// executors (Spark users hit this with iterative jobs that never checkpoint).
///
/// Output: `{"depth", "sum", "unions", "union_count"}`; `sum` is
/// `Σ(0..1000) + 1000 × depth`.
pub fn deep_lineage(sc: &EmberContext, depth: usize, unions: usize) -> ember::Result<Value> {
    let mut rdd = sc.range(0, 1000, 1, 4)?;
    for _ in 0..depth {
        rdd = rdd.map(Fn!(|x: i64| x + 1));
    }
    let sum = rdd.fold(0, Fn!(|a: i64, b: i64| a + b))?;
    let mut union = sc.parallelize(vec![1u64], 1);
    for _ in 0..unions {
        union = union.union(&sc.parallelize(vec![1u64], 1));
    }
    let union_count = union.fold(0, Fn!(|a: u64, b: u64| a + b))?;
    Ok(json!({ "depth": depth, "sum": sum, "unions": unions, "union_count": union_count }))
}

/// How a task of [`executor_killer`] takes its executor process down.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, clap::ValueEnum)]
pub enum Crash {
    /// `std::process::abort()`: SIGABRT, as a failed assertion in native code.
    Abort,
    /// A write through a null pointer: SIGSEGV.
    Segfault,
    /// Unbounded recursion: the thread's stack overflows and the process aborts.
    StackOverflow,
    /// `std::process::exit(3)`, as a library calling `exit`.
    Exit,
}

/// 4 partitions of 10 numbers; every attempt of partition `partition` crashes
/// its executor in the way `crash` says, after printing a line to stderr (which
/// the driver shows in the job's error, from the executor's log).
pub fn executor_killer(sc: &EmberContext, crash: Crash, partition: usize) -> ember::Result<Value> {
    let n = sc
        .parallelize((0..40u64).collect(), 4)
        .map_partitions_with_index(Fn!(move |index: usize, xs: ember::BoxIter<u64>| {
            if index == partition {
                crate::jobs::robustness::crash_now(index, crash);
            }
            xs
        }))
        .count()?;
    Ok(json!({ "count": n }))
}

/// Takes this process down as `crash` says, after a line on stderr for the
/// executor's log.
pub fn crash_now(partition: usize, crash: Crash) {
    eprintln!("executor-killer: partition {partition} crashes its executor ({crash:?})");
    match crash {
        Crash::Abort => std::process::abort(),
        Crash::Segfault => {
            // SAFETY: none; this deliberately faults to test the engine's handling
            // of an executor killed by a signal.
            unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u64>(), 1) };
        }
        Crash::StackOverflow => {
            fn deeper(n: u64, pad: &mut [u8; 4096]) -> u64 {
                pad[0] = n as u8;
                if n == u64::MAX {
                    return 0;
                }
                let mut next = [0u8; 4096];
                std::hint::black_box(&mut next);
                deeper(n + 1, &mut next) + u64::from(pad[0])
            }
            std::hint::black_box(deeper(0, &mut [0u8; 4096]));
        }
        Crash::Exit => std::process::exit(3),
    }
}
