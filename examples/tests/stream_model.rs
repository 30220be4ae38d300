//! The seed's trainer/predictor pair as two real jobs sharing a model through
//! storage: the trainer refines a linear regression with each batch of files;
//! the predictor, running at the same time, reads the newest saved model for
//! each of its batches.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");

/// y = 2 + 3·x1 − x2, exactly.
fn truth(x1: f64, x2: f64) -> f64 {
    2.0 + 3.0 * x1 - x2
}

fn write_file(dir: &Path, name: &str, lines: &[String]) {
    let tmp = dir.join(format!(".{name}"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn training_file(dir: &Path, i: u64) {
    let lines: Vec<String> = (0..200)
        .map(|j| {
            let x1 = ((i * 200 + j) * 37 % 101) as f64 / 100.0;
            let x2 = ((i * 200 + j) * 53 % 103) as f64 / 102.0;
            format!("{},{x1},{x2}", truth(x1, x2))
        })
        .collect();
    write_file(dir, &format!("train-{i}.csv"), &lines);
}

fn model_version(model_dir: &Path) -> u64 {
    std::fs::read(model_dir.join("model.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["version"].as_u64())
        .unwrap_or(0)
}

fn wait_until(what: &str, proc: &Proc, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {WAIT:?}; stderr:\n{}", proc.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Prediction lines `x1,x2,y,version` of every complete output directory.
fn predictions(out: &Path) -> Vec<(f64, f64, f64, u64)> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(out).unwrap().flatten() {
        if !dir.file_name().to_string_lossy().starts_with("pred-") || !dir.path().join("_SUCCESS").exists() {
            continue;
        }
        for part in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if !part.file_name().to_string_lossy().starts_with("part-") {
                continue;
            }
            for line in std::fs::read_to_string(part.path()).unwrap().lines() {
                let f: Vec<&str> = line.split(',').collect();
                found.push((
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                ));
            }
        }
    }
    found
}

#[test]
fn the_predictor_uses_the_model_the_trainer_keeps_refining() {
    let tmp = tempfile::tempdir().unwrap();
    let (train_dir, model_dir, predict_dir, out) =
        (tmp.path().join("train"), tmp.path().join("model"), tmp.path().join("predict"), tmp.path().join("out"));
    for d in [&train_dir, &model_dir, &predict_dir, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    let spawn = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--master").arg("local[2]").args(args).env("EMBER_LOG", "info").env_remove("EMBER_CONF");
        Proc::spawn(cmd)
    };
    let trainer = spawn(&[
        "stream-train",
        "--dir",
        train_dir.to_str().unwrap(),
        "--model",
        model_dir.to_str().unwrap(),
        "--batch-ms",
        "200",
    ]);
    training_file(&train_dir, 0);
    wait_until("the first model", &trainer, || model_version(&model_dir) >= 1);

    let prefix = out.join("pred");
    let predictor = spawn(&[
        "stream-predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--dir",
        predict_dir.to_str().unwrap(),
        "--output",
        prefix.to_str().unwrap(),
        "--batch-ms",
        "200",
    ]);
    write_file(&predict_dir, "a.csv", &["0.5,0.5".to_string()]);
    wait_until("a first prediction", &predictor, || !predictions(&out).is_empty());
    let early_version = predictions(&out)[0].3;

    for i in 1..6 {
        training_file(&train_dir, i);
        wait_until("a refined model", &trainer, || model_version(&model_dir) > i);
    }
    let points = ["0.2,0.9", "0.7,0.1", "1.0,1.0"];
    write_file(&predict_dir, "b.csv", &points.map(str::to_string));
    wait_until("the later predictions", &predictor, || predictions(&out).len() == 1 + points.len());

    let late: Vec<_> = predictions(&out).into_iter().filter(|p| p.3 > early_version).collect();
    assert_eq!(late.len(), points.len(), "later predictions must use a newer model: {:?}", predictions(&out));
    for (x1, x2, y, _) in late {
        assert!((y - truth(x1, x2)).abs() < 0.05, "prediction {y} for ({x1}, {x2}); truth {}", truth(x1, x2));
    }
}
