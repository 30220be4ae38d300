//! Backpressure (`spark.streaming.backpressure.enabled`): after every batch,
//! a PID controller turns the batch's processing rate into the rate receivers
//! may take records at, so a stream that outruns the engine is slowed at its
//! source instead of queueing batches without bound. The controller and its
//! defaults are Spark's `PIDRateEstimator` (proportional 1.0, integral 0.2,
//! derivative 0.0, minimum rate 100 records/s;
//! `spark.streaming.backpressure.pid.*`).

use ember_core::config::Conf;
use ember_core::error::Result;

/// One controller per receiver stream.
#[derive(Debug, Clone)]
pub struct PidRateEstimator {
    batch_interval_s: f64,
    proportional: f64,
    integral: f64,
    derivative: f64,
    min_rate: f64,
    /// (time ms, rate, error) of the last estimate.
    last: Option<(u64, f64, f64)>,
}

impl PidRateEstimator {
    /// From the `spark.streaming.backpressure.pid.*` settings.
    pub fn from_conf(conf: &Conf, batch_interval_ms: u64) -> Result<Self> {
        Ok(Self {
            batch_interval_s: batch_interval_ms as f64 / 1000.0,
            proportional: conf.get_f64("spark.streaming.backpressure.pid.proportional", 1.0)?,
            integral: conf.get_f64("spark.streaming.backpressure.pid.integral", 0.2)?,
            derivative: conf.get_f64("spark.streaming.backpressure.pid.derived", 0.0)?,
            min_rate: conf.get_f64("spark.streaming.backpressure.pid.minRate", 100.0)?,
            last: None,
        })
    }

    /// A new rate (records/s) after a batch finished at `time_ms` with
    /// `records` records, `processing_ms` of processing and `scheduling_delay_ms`
    /// of waiting; `None` when there is nothing to learn from (no records or no time).
    pub fn compute(&mut self, time_ms: u64, records: u64, processing_ms: u64, scheduling_delay_ms: u64) -> Option<f64> {
        if records == 0 || processing_ms == 0 {
            return None;
        }
        let processing_rate = records as f64 / processing_ms as f64 * 1000.0;
        let Some((last_time, last_rate, last_error)) = self.last else {
            self.last = Some((time_ms, processing_rate, 0.0));
            return Some(processing_rate);
        };
        if time_ms <= last_time {
            return None;
        }
        let delay_since_update = (time_ms - last_time) as f64 / 1000.0;
        // Positive when records arrive faster than they are processed.
        let error = last_rate - processing_rate;
        // Records the scheduling delay piled up, spread over one batch interval.
        let historical_error = scheduling_delay_ms as f64 / 1000.0 * processing_rate / self.batch_interval_s;
        let d_error = (error - last_error) / delay_since_update;
        let rate =
            (last_rate - self.proportional * error - self.integral * historical_error - self.derivative * d_error)
                .max(self.min_rate);
        self.last = Some((time_ms, rate, error));
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_the_processing_rate_and_drops_with_scheduling_delay() {
        let mut pid = PidRateEstimator::from_conf(&Conf::new(), 1000).unwrap();
        assert_eq!(pid.compute(1000, 0, 10, 0), None);
        // First batch: 10,000 records in 500 ms → 20,000/s.
        assert_eq!(pid.compute(1000, 10_000, 500, 0), Some(20_000.0));
        // Same rate, no delay: unchanged.
        assert_eq!(pid.compute(2000, 20_000, 1000, 0), Some(20_000.0));
        // Slower processing and a queue: below the processing rate.
        let r = pid.compute(3000, 20_000, 2000, 1000).unwrap();
        assert!((100.0..10_000.0).contains(&r), "{r}");
        // Never under the minimum.
        assert_eq!(pid.compute(4000, 1, 1000, 100_000), Some(100.0));
    }
}
