//! The first seed job: f(x) = x² + (x+1)² + … + (x+49)² over x in 0..n, counted
//! and summed exactly (the sum needs 128 bits).

use ember::prelude::*;
use serde_json::{Value, json};

/// f(x) = Σ_{i=0}^{49} (x+i)², exactly.
pub fn f(x: u64) -> u128 {
    let mut s = 0u128;
    for i in 0..50u64 {
        let y = (x + i) as u128;
        s += y * y;
    }
    s
}

pub fn run(sc: &EmberContext, n: u64, partitions: usize) -> ember::Result<Value> {
    let (count, sum) = sc.range(0, n as i64, 1, partitions)?.map(Fn!(|x: i64| f(x as u64))).aggregate(
        (0u64, 0u128),
        Fn!(|acc: (u64, u128), v: u128| (acc.0 + 1, acc.1 + v)),
        Fn!(|a: (u64, u128), b: (u64, u128)| (a.0 + b.0, a.1 + b.1)),
    )?;
    Ok(json!({ "count": count, "sum": sum.to_string() }))
}

/// The same sum by a hand-written loop on `threads` threads: the baseline the
/// engine is measured against.
pub fn baseline(n: u64, threads: usize) -> Value {
    let threads = threads.max(1) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let (lo, hi) = (t * n / threads, (t + 1) * n / threads);
                (lo..hi).map(f).sum::<u128>()
            })
        })
        .collect();
    let sum: u128 = handles.into_iter().map(|h| h.join().expect("baseline thread")).sum();
    json!({ "count": n, "sum": sum.to_string() })
}

/// Closed form of Σ_x f(x) for checking: Σ_x Σ_i (x+i)².
pub fn expected_sum(n: u64) -> u128 {
    // Σ_{i<50} Σ_{x<n} (x+i)² = Σ_i [S(n+i-1) - S(i-1)] with S(m) = Σ_{k<=m} k².
    let s = |m: i128| -> i128 { if m < 0 { 0 } else { m * (m + 1) * (2 * m + 1) / 6 } };
    (0..50i128).map(|i| s(n as i128 + i - 1) - s(i - 1)).sum::<i128>() as u128
}
