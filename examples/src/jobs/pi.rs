//! Monte Carlo π: the fraction of random points of the unit square inside the
//! quarter circle.

use ember::prelude::*;
use serde_json::{Value, json};

fn xorshift(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

pub fn run(sc: &EmberContext, samples: u64, partitions: usize) -> ember::Result<Value> {
    let inside = sc
        .range(0, partitions as i64, 1, partitions)?
        .map(Fn!(move |p: i64| {
            let p = p as u64;
            let (lo, hi) = (p * samples / partitions as u64, (p + 1) * samples / partitions as u64);
            let mut state = 0x2545_f491_4f6c_dd1d ^ (p + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut hits = 0u64;
            for _ in lo..hi {
                let (x, y) = (xorshift(&mut state), xorshift(&mut state));
                if x * x + y * y <= 1.0 {
                    hits += 1;
                }
            }
            hits
        }))
        .fold(0u64, Fn!(|a: u64, b: u64| a + b))?;
    let pi = 4.0 * inside as f64 / samples.max(1) as f64;
    Ok(json!({ "samples": samples, "inside": inside, "pi": pi }))
}
