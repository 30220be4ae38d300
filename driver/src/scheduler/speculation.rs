//! Speculative execution: which running tasks are slow enough to deserve a copy
//! (`spark.speculation*`), and the counters of what speculation did.
//!
//! The decision is a pure function of a stage's finished durations and its running
//! attempts, so it is unit-tested here; the JobRunner calls it every
//! `spark.speculation.interval` and launches the copies.

use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `spark.speculation*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeculationConf {
    pub enabled: bool,
    pub interval: Duration,
    pub multiplier: f64,
    pub quantile: f64,
    pub min_runtime: Duration,
}

impl Default for SpeculationConf {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_millis(100),
            multiplier: 1.5,
            quantile: 0.75,
            min_runtime: Duration::from_millis(100),
        }
    }
}

impl SpeculationConf {
    pub fn from_conf(conf: &Conf) -> Result<Self> {
        let d = Self::default();
        let s = Self {
            enabled: conf.get_bool("spark.speculation", d.enabled)?,
            interval: conf.get_duration("spark.speculation.interval", d.interval)?,
            multiplier: conf.get_f64("spark.speculation.multiplier", d.multiplier)?,
            quantile: conf.get_f64("spark.speculation.quantile", d.quantile)?,
            min_runtime: conf.get_duration("spark.speculation.minTaskRuntime", d.min_runtime)?,
        };
        if s.interval.is_zero() {
            return Err(EmberError::Config("spark.speculation.interval must be positive".into()));
        }
        if !(s.quantile > 0.0 && s.quantile <= 1.0) {
            return Err(EmberError::Config(format!(
                "spark.speculation.quantile must be in (0, 1], got {}",
                s.quantile
            )));
        }
        if !(s.multiplier.is_finite() && s.multiplier >= 1.0) {
            return Err(EmberError::Config(format!("spark.speculation.multiplier must be >= 1, got {}", s.multiplier)));
        }
        Ok(s)
    }
}

/// One running attempt of a stage, as the speculation check sees it.
#[derive(Debug, Clone)]
pub struct RunningAttempt {
    pub task_id: u64,
    pub partition: usize,
    pub executor_id: String,
    pub elapsed: Duration,
    /// The partition already has a second attempt (a copy, or this is the copy).
    pub copied: bool,
}

/// The running attempts of one stage that should get a speculative copy now.
///
/// Once at least `quantile` of the stage's `total_tasks` have finished, an attempt
/// that has run longer than `multiplier` × the median finished duration (and at
/// least `min_runtime`) is copied, if its partition has no copy yet and some
/// executor other than the one running it exists (`executors`: the live ones).
pub fn select_speculatable(
    conf: &SpeculationConf,
    total_tasks: usize,
    finished: &[Duration],
    running: &[RunningAttempt],
    executors: &[String],
) -> Vec<u64> {
    if !conf.enabled || total_tasks == 0 || finished.is_empty() {
        return Vec::new();
    }
    let needed = ((conf.quantile * total_tasks as f64).floor() as usize).max(1);
    if finished.len() < needed {
        return Vec::new();
    }
    let threshold = median(finished).mul_f64(conf.multiplier).max(conf.min_runtime);
    running
        .iter()
        .filter(|r| !r.copied && r.elapsed > threshold)
        .filter(|r| executors.iter().any(|e| *e != r.executor_id))
        .map(|r| r.task_id)
        .collect()
}

fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 }
}

/// What speculation did, over a context's life.
#[derive(Debug, Default)]
pub struct SpeculationCounters {
    launched: AtomicU64,
    won: AtomicU64,
    killed: AtomicU64,
    originals_killed: AtomicU64,
}

/// A snapshot of `SpeculationCounters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpeculationMetrics {
    /// Speculative copies launched.
    pub launched: u64,
    /// Copies that finished first (their result was used).
    pub won: u64,
    /// Copies killed (or dropped before they started) because the original finished first.
    pub killed: u64,
    /// Originals killed because their copy finished first.
    pub originals_killed: u64,
}

impl SpeculationCounters {
    pub fn launched(&self) {
        self.launched.fetch_add(1, Ordering::Relaxed);
    }
    pub fn won(&self) {
        self.won.fetch_add(1, Ordering::Relaxed);
    }
    pub fn original_killed(&self) {
        self.originals_killed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn copy_killed(&self) {
        self.killed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> SpeculationMetrics {
        SpeculationMetrics {
            launched: self.launched.load(Ordering::Relaxed),
            won: self.won.load(Ordering::Relaxed),
            killed: self.killed.load(Ordering::Relaxed),
            originals_killed: self.originals_killed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> SpeculationConf {
        SpeculationConf { enabled: true, ..SpeculationConf::default() }
    }
    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
    fn run(task_id: u64, executor: &str, elapsed: u64) -> RunningAttempt {
        RunningAttempt {
            task_id,
            partition: task_id as usize,
            executor_id: executor.into(),
            elapsed: ms(elapsed),
            copied: false,
        }
    }
    fn execs(n: usize) -> Vec<String> {
        (1..=n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn copies_a_task_slower_than_multiplier_times_median() {
        let finished = vec![ms(200); 15];
        let running = vec![run(1, "2", 1000), run(2, "3", 250)];
        assert_eq!(select_speculatable(&on(), 16, &finished, &running, &execs(4)), vec![1]);
    }

    #[test]
    fn waits_for_the_quantile() {
        let running = vec![run(1, "2", 10_000)];
        // 0.75 × 16 = 12 finished needed.
        assert!(select_speculatable(&on(), 16, &[ms(100); 11], &running, &execs(4)).is_empty());
        assert_eq!(select_speculatable(&on(), 16, &[ms(100); 12], &running, &execs(4)), vec![1]);
        // At least one task must have finished, whatever the quantile.
        let tiny = SpeculationConf { quantile: 0.01, ..on() };
        assert!(select_speculatable(&tiny, 4, &[], &running, &execs(4)).is_empty());
        assert_eq!(select_speculatable(&tiny, 4, &[ms(100)], &running, &execs(4)), vec![1]);
    }

    #[test]
    fn respects_the_minimum_runtime() {
        let finished = vec![ms(10); 8];
        // 1.5 × 10 ms = 15 ms, but the minimum runtime is 100 ms.
        let running = vec![run(1, "1", 90), run(2, "2", 101)];
        assert_eq!(select_speculatable(&on(), 10, &finished, &running, &execs(2)), vec![2]);
    }

    #[test]
    fn uses_the_median_not_the_mean() {
        // Median 100 ms (mean would be far higher because of one slow finisher).
        let finished = vec![ms(100), ms(100), ms(100), ms(100), ms(5000)];
        let running = vec![run(1, "1", 300)];
        assert_eq!(select_speculatable(&on(), 6, &finished, &running, &execs(2)), vec![1]);
        // Even count: median of 100 and 300 is 200; threshold 300.
        let finished = vec![ms(100), ms(100), ms(300), ms(300)];
        assert!(select_speculatable(&on(), 5, &finished, &[run(1, "1", 299)], &execs(2)).is_empty());
        assert_eq!(select_speculatable(&on(), 5, &finished, &[run(1, "1", 301)], &execs(2)), vec![1]);
    }

    #[test]
    fn one_copy_per_partition() {
        let finished = vec![ms(100); 8];
        let mut copied = run(1, "1", 5000);
        copied.copied = true;
        assert!(select_speculatable(&on(), 10, &finished, &[copied], &execs(4)).is_empty());
    }

    #[test]
    fn never_copies_without_another_executor() {
        // Local mode: the only executor is "driver", which runs the original.
        let finished = vec![ms(100); 8];
        let running = vec![run(1, "driver", 5000)];
        assert!(select_speculatable(&on(), 10, &finished, &running, &["driver".to_string()]).is_empty());
    }

    #[test]
    fn disabled_means_never() {
        let finished = vec![ms(100); 8];
        let running = vec![run(1, "1", 5000)];
        assert!(select_speculatable(&SpeculationConf::default(), 10, &finished, &running, &execs(4)).is_empty());
    }

    #[test]
    fn reads_and_validates_the_settings() {
        let conf = Conf::new()
            .set("spark.speculation", "true")
            .set("spark.speculation.interval", "50ms")
            .set("spark.speculation.multiplier", "2")
            .set("spark.speculation.quantile", "0.5")
            .set("spark.speculation.minTaskRuntime", "1s");
        let s = SpeculationConf::from_conf(&conf).unwrap();
        assert_eq!(
            s,
            SpeculationConf {
                enabled: true,
                interval: ms(50),
                multiplier: 2.0,
                quantile: 0.5,
                min_runtime: Duration::from_secs(1)
            }
        );
        assert_eq!(SpeculationConf::from_conf(&Conf::new()).unwrap(), SpeculationConf::default());
        assert!(SpeculationConf::from_conf(&Conf::new().set("spark.speculation.quantile", "1.5")).is_err());
        assert!(SpeculationConf::from_conf(&Conf::new().set("spark.speculation.multiplier", "0.5")).is_err());
    }
}
