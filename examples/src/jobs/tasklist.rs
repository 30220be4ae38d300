//! The second seed pattern (the seed's TaskGenerator + worker): the driver
//! generates task parameter records — time windows × sample index — then the
//! cluster maps a pure function over them and the driver aggregates the results.

use ember::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One task's parameters: a training window and the prediction window after it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskParams {
    pub window: String,
    pub sample: u32,
    /// Minutes since the start of the data, as in the seed's `start_time_t` … `end_time_p`.
    pub start_train: u64,
    pub end_train: u64,
    pub start_predict: u64,
    pub end_predict: u64,
    pub step: u64,
    pub factor_num: u32,
    pub model_name: String,
}

/// What one task computes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskResult {
    pub window: String,
    pub sample: u32,
    pub score: f64,
}

/// Windows of the seed: name → length in minutes.
pub const WINDOWS: [(&str, u64); 4] = [("7day", 10_080), ("14day", 20_160), ("30day", 43_200), ("60day", 86_400)];
/// The seed's data span: 2017-11-01 to 2018-08-31, in minutes.
pub const SPAN_MINUTES: u64 = 303 * 24 * 60;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Generates the parameter list on the driver (deterministic for a seed).
pub fn generate(samples: u32, seed: u64) -> Vec<TaskParams> {
    let mut out = Vec::new();
    for (w, (name, minutes)) in WINDOWS.iter().enumerate() {
        for sample in 0..samples {
            let r = splitmix(seed ^ ((w as u64) << 32) ^ sample as u64);
            let start = r % (SPAN_MINUTES - 2 * minutes);
            out.push(TaskParams {
                window: name.to_string(),
                sample,
                start_train: start,
                end_train: start + minutes,
                start_predict: start + minutes + 1,
                end_predict: start + 2 * minutes,
                step: minutes / 2000,
                factor_num: 1205,
                model_name: "hmm".into(),
            });
        }
    }
    out
}

/// The worker function: a pure, deterministic stand-in for fitting a model on
/// the training window and scoring it on the prediction window.
pub fn evaluate(p: &TaskParams) -> TaskResult {
    let mut level = 0.0f64;
    let mut train = 0.0f64;
    let mut t = p.start_train;
    while t < p.end_train {
        level = 0.9 * level + ((splitmix(t) % 1000) as f64 / 1000.0 - 0.5);
        train += level;
        t += p.step.max(1);
    }
    let mut error = 0.0f64;
    let mut t = p.start_predict;
    while t < p.end_predict {
        let actual = (splitmix(t) % 1000) as f64 / 1000.0 - 0.5;
        error += (actual - level * 0.1).abs();
        t += p.step.max(1);
    }
    let score = 1.0 / (1.0 + error / (1.0 + train.abs()));
    TaskResult { window: p.window.clone(), sample: p.sample, score }
}

pub fn run(sc: &EmberContext, samples: u32, seed: u64, partitions: usize) -> ember::Result<Value> {
    let params = generate(samples, seed);
    let results = sc.parallelize(params, partitions).map(Fn!(|p: TaskParams| evaluate(&p))).collect()?;
    Ok(summarize(&results))
}

pub fn summarize(results: &[TaskResult]) -> Value {
    let mut per_window: BTreeMap<String, (u32, f64)> = BTreeMap::new();
    for r in results {
        let e = per_window.entry(r.window.clone()).or_default();
        e.0 += 1;
        e.1 += r.score;
    }
    let mean: BTreeMap<String, String> =
        per_window.iter().map(|(w, (n, s))| (w.clone(), format!("{:.9}", s / *n as f64))).collect();
    json!({ "results": results.len(), "mean_score": mean })
}
