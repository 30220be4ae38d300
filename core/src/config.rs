//! Configuration: `spark.*` keys with Spark's meaning where Spark has the key, so a
//! Spark user's `--conf` habits carry over. Values are strings, parsed on use.

use crate::error::{EmberError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Conf {
    entries: BTreeMap<String, String>,
}

/// Keys Ember reads, with defaults. `Conf::describe` lists them for the docs.
pub const KNOWN_KEYS: &[(&str, &str, &str)] = &[
    ("spark.master", "local[*]", "master URL"),
    ("spark.app.name", "ember", "application name"),
    ("spark.default.parallelism", "number of cores", "partitions for parallelize and shuffles when not given"),
    ("spark.executor.memory", "1g", "executor memory budget (block store and shuffle buffers)"),
    ("spark.executor.cores", "1", "task slots per executor"),
    ("spark.executor.instances", "0", "executors the driver waits for before the first job (ember:// master)"),
    ("spark.task.maxFailures", "4", "attempts of one task before its job fails"),
    ("spark.stage.maxConsecutiveAttempts", "4", "attempts of one stage after fetch failures"),
    ("spark.shuffle.compress", "true", "compress shuffle blocks (lz4)"),
    ("spark.reducer.maxSizeInFlight", "48m", "bytes of shuffle blocks fetched at once by a reducer"),
    ("spark.local.dir", "system temp dir", "directories for shuffle files and spills, comma-separated"),
    ("spark.broadcast.blockSize", "4m", "broadcast piece size"),
    ("spark.broadcast.compress", "true", "compress broadcast values"),
    ("spark.broadcast.checksum", "true", "checksum each broadcast piece"),
    ("spark.locality.wait", "3s", "how long a task waits for an executor holding its cached input"),
    ("spark.speculation", "false", "re-launch slow tasks"),
    ("spark.speculation.interval", "100ms", "how often to look for slow tasks"),
    ("spark.speculation.multiplier", "1.5", "how many times slower than the median a task must be"),
    ("spark.speculation.quantile", "0.75", "fraction of tasks that must be done before speculating"),
    ("spark.speculation.minTaskRuntime", "100ms", "minimum runtime before a task is speculated"),
    (
        "spark.dynamicAllocation.enabled",
        "false",
        "scale executors with the pending tasks (local-cluster and ember:// masters)",
    ),
    ("spark.dynamicAllocation.minExecutors", "0", "fewest executors dynamic allocation keeps"),
    ("spark.dynamicAllocation.maxExecutors", "unbounded", "most executors dynamic allocation asks for"),
    (
        "spark.dynamicAllocation.initialExecutors",
        "minExecutors",
        "executors at the start (the larger of it, minExecutors and spark.executor.instances)",
    ),
    ("spark.dynamicAllocation.executorIdleTimeout", "60s", "idle time after which an executor is removed"),
    (
        "spark.dynamicAllocation.cachedExecutorIdleTimeout",
        "unbounded",
        "the same for an executor holding cached blocks",
    ),
    (
        "spark.dynamicAllocation.shuffleTracking.timeout",
        "unbounded",
        "the same for an executor holding shuffle outputs a live RDD may read",
    ),
    (
        "spark.dynamicAllocation.schedulerBacklogTimeout",
        "1s",
        "how long tasks wait before more executors are asked for",
    ),
    (
        "spark.dynamicAllocation.sustainedSchedulerBacklogTimeout",
        "schedulerBacklogTimeout",
        "interval of the further, doubling requests while the backlog lasts",
    ),
    (
        "spark.dynamicAllocation.executorAllocationRatio",
        "1",
        "fraction of the executors full parallelism needs that are asked for",
    ),
];

impl Conf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.entries.insert(key.into(), value.into());
        self
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(key.into(), value.into());
    }

    pub fn master(self, master: impl Into<String>) -> Self {
        self.set("spark.master", master)
    }

    pub fn app_name(self, name: impl Into<String>) -> Self {
        self.set("spark.app.name", name)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// This configuration without `key`.
    pub fn without(mut self, key: &str) -> Self {
        self.entries.remove(key);
        self
    }

    pub fn entries(&self) -> impl Iterator<Item = (&String, &String)> {
        self.entries.iter()
    }

    /// Parses `key=value`, the form of `--conf` flags.
    pub fn set_pair(&mut self, pair: &str) -> Result<()> {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| EmberError::Config(format!("expected key=value, got {pair:?}")))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(EmberError::Config(format!("empty key in {pair:?}")));
        }
        self.insert(k, v.trim());
        Ok(())
    }

    /// Adds the keys of a JSON object (the `EMBER_CONF` environment variable) that
    /// are not already set: explicit settings win.
    pub fn merge_json_defaults(&mut self, json: &str) -> Result<()> {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| EmberError::Config(format!("EMBER_CONF is not a JSON object: {e}")))?;
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            self.entries.entry(k).or_insert(v);
        }
        Ok(())
    }

    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(EmberError::Config(format!("{key}={v:?} is not a boolean"))),
            },
        }
    }

    pub fn get_usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| EmberError::Config(format!("{key}={v:?} is not a non-negative integer"))),
        }
    }

    pub fn get_f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| EmberError::Config(format!("{key}={v:?} is not a number"))),
        }
    }

    /// Sizes in Spark's notation: `512`, `4k`, `48m`, `1g` (bytes unless suffixed).
    pub fn get_bytes(&self, key: &str, default: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bytes(v).map_err(|reason| EmberError::Config(format!("{key}={v:?}: {reason}"))),
        }
    }

    /// Durations in Spark's notation: `100ms`, `5s`, `2min`, `1h` (ms unless suffixed).
    pub fn get_duration(&self, key: &str, default: Duration) -> Result<Duration> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_duration(v).map_err(|reason| EmberError::Config(format!("{key}={v:?}: {reason}"))),
        }
    }
}

impl Conf {
    /// A duration whose bare number means seconds, as Spark reads the keys it
    /// declares in seconds (`spark.dynamicAllocation.executorIdleTimeout=60` is a
    /// minute); suffixed values (`500ms`, `2min`) read as in [`Conf::get_duration`].
    ///
    /// Errors: the value is not a duration.
    pub fn get_duration_secs(&self, key: &str, default: Duration) -> Result<Duration> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() && v.trim().chars().all(|c| c.is_ascii_digit() || c == '.') => {
                parse_duration(&format!("{}s", v.trim()))
                    .map_err(|reason| EmberError::Config(format!("{key}={v:?}: {reason}")))
            }
            _ => self.get_duration(key, default),
        }
    }
}

pub fn parse_bytes(v: &str) -> std::result::Result<u64, String> {
    let s = v.trim().to_ascii_lowercase();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: u64 = num.parse().map_err(|_| "expected a size like 48m".to_string())?;
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| "size overflows".to_string())
}

pub fn parse_duration(v: &str) -> std::result::Result<Duration, String> {
    let s = v.trim().to_ascii_lowercase();
    let digits_end = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: f64 = num.parse().map_err(|_| "expected a duration like 100ms".to_string())?;
    let secs = match unit.trim() {
        "" | "ms" => n / 1000.0,
        "us" => n / 1e6,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown duration unit {other:?}")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err("duration out of range".to_string());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_like_spark() {
        assert_eq!(parse_bytes("48m").unwrap(), 48 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(parse_bytes("12q").is_err());
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn bare_numbers_of_second_keys_are_seconds() {
        let c = Conf::new().set("a", "60").set("b", "500ms").set("c", "x");
        assert_eq!(c.get_duration_secs("a", Duration::ZERO).unwrap(), Duration::from_secs(60));
        assert_eq!(c.get_duration_secs("b", Duration::ZERO).unwrap(), Duration::from_millis(500));
        assert_eq!(c.get_duration_secs("missing", Duration::from_secs(3)).unwrap(), Duration::from_secs(3));
        assert!(c.get_duration_secs("c", Duration::ZERO).unwrap_err().to_string().contains("c=\"x\""));
    }

    #[test]
    fn explicit_settings_win_over_env_json() {
        let mut c = Conf::new().set("spark.executor.memory", "2g");
        c.merge_json_defaults(r#"{"spark.executor.memory":"1g","spark.executor.instances":3}"#).unwrap();
        assert_eq!(c.get("spark.executor.memory"), Some("2g"));
        assert_eq!(c.get_usize("spark.executor.instances", 0).unwrap(), 3);
        assert!(c.merge_json_defaults("[1]").is_err());
    }
}
