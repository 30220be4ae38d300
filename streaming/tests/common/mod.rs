//! Runs a stream graph over given batches on a manual clock and collects each
//! batch's output: no test sleeps to wait for a batch.

#![allow(dead_code)]

pub mod reference;

use ember::prelude::*;
use ember::{Data, Result};
use ember_streaming::prelude::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(60);

/// Output of one batch: its time (ms after the manual clock's zero) and records.
pub type Outputs<U> = Vec<(u64, Vec<U>)>;

/// Feeds `batches` (one RDD each, `interval_ms` apart) through `build` and
/// returns what the built stream holds at each of its batch times.
pub fn run_batches<T: Data, U: Data>(
    sc: &EmberContext,
    batches: &[Vec<T>],
    interval_ms: u64,
    build: impl FnOnce(&DStream<T>) -> DStream<U>,
) -> Result<Outputs<U>> {
    let clock = ManualClock::new(0);
    let ssc = StreamingContext::with_manual_clock(sc, Duration::from_millis(interval_ms), clock.clone())?;
    let dir = tempfile::tempdir().expect("temp dir");
    ssc.checkpoint(dir.path())?;
    let queue = RddQueue::new();
    for batch in batches {
        queue.push(sc.parallelize(batch.clone(), 2));
    }
    let input = ssc.queue_stream(queue, true, None);
    let out = build(&input);
    let seen: Arc<Mutex<Outputs<U>>> = Arc::default();
    let sink = seen.clone();
    out.foreach_rdd(move |rdd, time| {
        let records = rdd.collect()?;
        sink.lock().push((time.millis(), records));
        Ok(())
    });
    ssc.start()?;
    for i in 1..=batches.len() as u64 {
        clock.advance(interval_ms);
        ssc.await_batch(Time(i * interval_ms), WAIT)?;
    }
    ssc.stop(false, true);
    let result = seen.lock().clone();
    Ok(result)
}
