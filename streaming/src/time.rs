//! Batch times and durations in milliseconds (Spark Streaming's `Time` and
//! `Duration`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A batch time: milliseconds on the streaming context's clock (the Unix epoch
/// for the system clock, an arbitrary zero for a manual clock). A batch at time
/// `t` holds the data that arrived in `(t - interval, t]`. Shown as Spark shows
/// it: `1357008430000 ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time(pub u64);

impl Time {
    /// Milliseconds.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// This time plus `ms` milliseconds.
    pub fn plus(self, ms: u64) -> Time {
        Time(self.0 + ms)
    }

    /// This time minus `ms` milliseconds (saturating at zero).
    pub fn minus(self, ms: u64) -> Time {
        Time(self.0.saturating_sub(ms))
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

/// Whole milliseconds of `d` (sub-millisecond parts are dropped).
pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}
