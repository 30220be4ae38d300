//! The example jobs as the cluster tests run them: their manifests in examples/k8s/ and
//! their exact results computed without the engine.

#![allow(dead_code)]

use std::path::Path;

use anyhow::{Context, Result, bail};
use ember_operator::crd::{AppState, SparkApplication};
use ember_pod_runner::harness::poll_until;
use kube::Api;
use serde_json::{Value, json};

/// Σ_{x<n} Σ_{i<50} (x+i)², expanded as 50·Σx² + 2·Σx·Σi + n·Σi² (the job sums term by
/// term).
pub fn sumsq_expected(n: u64) -> u128 {
    let n = u128::from(n);
    if n == 0 {
        return 0;
    }
    let sum_x = n * (n - 1) / 2;
    let sum_x2 = (n - 1) * n * (2 * n - 1) / 6;
    let (sum_i, sum_i2) = (0..50u128).fold((0, 0), |(s, s2), i| (s + i, s2 + i * i));
    50 * sum_x2 + 2 * sum_x * sum_i + n * sum_i2
}

/// The join job's generator mixing function (its datasets are defined through it).
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Parameters of the join job as the test runs it.
pub struct JoinJob {
    pub large: u64,
    pub small: u64,
    pub keys: u64,
    pub partitions: u64,
    pub seed: u64,
}

impl JoinJob {
    pub const TEST: JoinJob = JoinJob { large: 200_000, small: 5_000, keys: 10_000, partitions: 8, seed: 7 };

    pub fn arguments(&self, pause_file: &Path) -> Vec<String> {
        let mut args = vec!["join".to_string()];
        let values = [
            ("--large", self.large),
            ("--small", self.small),
            ("--keys", self.keys),
            ("--partitions", self.partitions),
            ("--seed", self.seed),
        ];
        for (flag, value) in values {
            args.extend([flag.to_string(), value.to_string()]);
        }
        args.extend(["--pause-file".to_string(), pause_file.display().to_string()]);
        args
    }

    /// The joined rows, by a hash lookup: row i of the large side is (k, v); the small
    /// side holds one value w for every key below `small`.
    pub fn expected(&self) -> Value {
        let (mut rows, mut checksum) = (0u64, 0u64);
        for i in 0..self.large {
            let (k, v) = (mix(i ^ self.seed) % self.keys, mix(i.wrapping_add(self.seed)));
            if k < self.small {
                let w = mix(k ^ self.seed.rotate_left(17));
                rows += 1;
                checksum = checksum.wrapping_add(mix(k ^ mix(v ^ mix(w))));
            }
        }
        json!({ "rows": rows, "checksum": checksum.to_string() })
    }
}

/// The first document of `kind` in an example manifest in examples/k8s/.
pub fn example_document(file: &str, kind: &str) -> Result<Value> {
    let path = super::tooling::workspace().join("examples/k8s").join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if value["kind"] == kind {
            return Ok(value);
        }
    }
    bail!("no {kind} in {}", path.display())
}

/// The value after `flag` in an application's arguments.
pub fn argument(app: &Value, flag: &str) -> Result<u64> {
    let args: Vec<&str> =
        app["spec"]["arguments"].as_array().context("arguments")?.iter().filter_map(Value::as_str).collect();
    let i = args.iter().position(|a| *a == flag).with_context(|| format!("no {flag} in {args:?}"))?;
    Ok(args.get(i + 1).context("flag without value")?.parse()?)
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits up to `timeout` for a line of `driver_log()` holding every one of `parts`
/// (`what` names the wait in the timeout's error).
pub async fn wait_log_line(
    what: &str,
    timeout: std::time::Duration,
    parts: &[&str],
    driver_log: impl Fn() -> String,
) -> Result<()> {
    poll_until(what, timeout, || async {
        Ok(driver_log().lines().any(|l| parts.iter().all(|p| l.contains(p))).then_some(()))
    })
    .await
}

/// The job's result: the last JSON line of a driver's output `log`.
pub fn driver_result(app: &str, log: &str) -> Result<Value> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no JSON result in {app}'s driver log:\n{}", tail(log, 20)))?;
    serde_json::from_str(line).with_context(|| format!("{app}'s result {line:?}"))
}

/// Waits up to `timeout` for application `name` to reach `want`; fails at once, with
/// the tail of `driver_log()`, when it ends in another terminal state.
pub async fn wait_state(
    apps: &Api<SparkApplication>,
    name: &str,
    want: AppState,
    timeout: std::time::Duration,
    driver_log: impl Fn() -> String,
) -> Result<SparkApplication> {
    poll_until(&format!("{name} {}", want.as_str()), timeout, || async {
        let Some(app) = apps.get_opt(name).await? else { return Ok(None) };
        let status = app.status.clone().unwrap_or_default();
        let state = status.application_state.state;
        if state == want {
            return Ok(Some(app));
        }
        if state.is_terminal() {
            bail!(
                "{name} ended {} instead of {}: {}\n--- driver log tail:\n{}",
                state.as_str(),
                want.as_str(),
                status.application_state.error_message.unwrap_or_default(),
                tail(&driver_log(), 30)
            );
        }
        Ok(None)
    })
    .await
}
