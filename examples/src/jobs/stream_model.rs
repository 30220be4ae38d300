//! The seed's trainer/predictor pair (seed 003, "entrenamiento on-line"): one
//! job refines a model with every batch of training data and saves it to
//! storage; a second job reads the newest saved model for every batch it
//! predicts. The model is a linear regression trained by mini-batch gradient
//! descent on each batch (Spark MLlib's `StreamingLinearRegressionWithSGD`).

use ember::prelude::*;
use ember_streaming::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A saved model: `y ≈ intercept + Σ weights[i]·x[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Batches that refined it.
    pub version: u64,
    /// Training points seen.
    pub trained_on: u64,
}

fn model_file(dir: &Path) -> PathBuf {
    dir.join("model.json")
}

/// Saves `model` into `dir` atomically (a reader sees the old or the new one).
pub fn save_model(dir: &Path, model: &LinearModel) -> ember::Result<()> {
    let tmp = dir.join(".model.json.tmp");
    let bytes = serde_json::to_vec(model).map_err(|e| ember::EmberError::Codec(e.to_string()))?;
    std::fs::write(&tmp, bytes).map_err(|e| ember::EmberError::io(tmp.display(), e))?;
    std::fs::rename(&tmp, model_file(dir)).map_err(|e| ember::EmberError::io(dir.display(), e))
}

/// The newest model saved in `dir`, if any.
pub fn load_model(dir: &Path) -> ember::Result<Option<LinearModel>> {
    match std::fs::read(model_file(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| ember::EmberError::Codec(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ember::EmberError::io(dir.display(), e)),
    }
}

/// Numbers of a comma-separated line; `None` for a line that is not one.
pub fn parse_numbers(line: &str) -> Option<Vec<f64>> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    line.split(',').map(|f| f.trim().parse::<f64>().ok()).collect()
}

/// Parameters of [`train`].
#[derive(Debug, Clone)]
pub struct TrainParams {
    /// Directory where training files (`y,x1,x2,…` lines) appear.
    pub dir: String,
    /// Directory the model is saved in.
    pub model: String,
    pub batch_ms: u64,
    pub step: f64,
    pub iterations: usize,
}

/// One gradient step's sums over a batch: (Σ error·x, Σ error, n).
type GradientSums = (Vec<f64>, f64, u64);

fn gradient(points: &Rdd<(f64, Vec<f64>)>, weights: &[f64], intercept: f64) -> ember::Result<GradientSums> {
    let (w, b) = (weights.to_vec(), intercept);
    let dims = w.len();
    points.aggregate(
        (vec![0.0; dims], 0.0, 0u64),
        Fn!(move |acc: GradientSums, p: (f64, Vec<f64>)| {
            let (mut g, mut gb, n) = acc;
            let prediction = b + w.iter().zip(&p.1).map(|(wi, xi)| wi * xi).sum::<f64>();
            let error = prediction - p.0;
            for (gi, xi) in g.iter_mut().zip(&p.1) {
                *gi += error * xi;
            }
            gb += error;
            (g, gb, n + 1)
        }),
        |a: GradientSums, b: GradientSums| (a.0.iter().zip(&b.0).map(|(x, y)| x + y).collect(), a.1 + b.1, a.2 + b.2),
    )
}

/// Refines the model with every batch of training points and saves it after each.
pub fn train(sc: &EmberContext, p: &TrainParams, stop: super::streaming::StopAfter) -> ember::Result<Value> {
    let model_dir = PathBuf::from(&p.model);
    std::fs::create_dir_all(&model_dir).map_err(|e| ember::EmberError::io(model_dir.display(), e))?;
    let ssc = StreamingContext::new(sc, Duration::from_millis(p.batch_ms))?;
    let points =
        ssc.text_file_stream(&p.dir)?.flat_map(Fn!(|line: String| crate::jobs::stream_model::parse_numbers(&line)
            .filter(|v| v.len() >= 2)
            .map(|v| (v[0], v[1..].to_vec()))));
    let (step, iterations) = (p.step, p.iterations);
    let dir = model_dir.clone();
    points.foreach_rdd(move |batch, time| {
        let batch = batch.cache();
        let n = batch.count()?;
        if n == 0 {
            batch.unpersist();
            return Ok(());
        }
        let dims = batch.first()?.1.len();
        let mut model = load_model(&dir)?.filter(|m| m.weights.len() == dims).unwrap_or(LinearModel {
            weights: vec![0.0; dims],
            intercept: 0.0,
            version: 0,
            trained_on: 0,
        });
        for _ in 0..iterations {
            let (g, gb, count) = gradient(&batch, &model.weights, model.intercept)?;
            let scale = step / count as f64;
            for (w, gi) in model.weights.iter_mut().zip(&g) {
                *w -= scale * gi;
            }
            model.intercept -= scale * gb;
        }
        batch.unpersist();
        model.version += 1;
        model.trained_on += n;
        save_model(&dir, &model)?;
        eprintln!(
            "ember: model saved batch_time={} version={} points={n} weights={:?} intercept={}",
            time.millis(),
            model.version,
            model.weights,
            model.intercept
        );
        Ok(())
    });
    let batches = super::streaming::run_until(&ssc, stop)?;
    let model = load_model(&model_dir)?;
    Ok(json!({ "batches": batches, "model": model }))
}

/// Predicts `y` for every `x1,x2,…` line appearing in `dir` with the newest
/// model saved in `model` at the time of each batch; saves `x…,y,version`
/// lines as `OUTPUT-<time ms>` directories when `output` is set.
pub fn predict(
    sc: &EmberContext,
    model: &str,
    dir: &str,
    output: Option<&str>,
    batch_ms: u64,
    stop: super::streaming::StopAfter,
) -> ember::Result<Value> {
    let ssc = StreamingContext::new(sc, Duration::from_millis(batch_ms))?;
    let model_dir = PathBuf::from(model);
    let features =
        ssc.text_file_stream(dir)?.flat_map(Fn!(|line: String| crate::jobs::stream_model::parse_numbers(&line)));
    let predictions = features.transform(move |rdd, _| {
        // Read on the driver for each batch: the trainer may have saved a newer model.
        let m = load_model(&model_dir)?.ok_or_else(|| ember::EmberError::InputPath {
            path: model_dir.display().to_string(),
            reason: "no model saved yet".into(),
        })?;
        let (w, b, version) = (m.weights, m.intercept, m.version);
        Ok(rdd.map(Fn!(move |x: Vec<f64>| {
            let y = b + w.iter().zip(&x).map(|(wi, xi)| wi * xi).sum::<f64>();
            let xs: Vec<String> = x.iter().map(|v| v.to_string()).collect();
            format!("{},{},{}", xs.join(","), y, version)
        })))
    });
    predictions.print(10);
    if let Some(prefix) = output {
        predictions.save_as_text_files(prefix, "");
    }
    let batches = super::streaming::run_until(&ssc, stop)?;
    Ok(json!({ "batches": batches }))
}
