//! What the UI keeps of a streaming application (Spark's
//! `StreamingJobProgressListener`): the batch interval, the recent batches with
//! their delays, and running totals.

use crate::listener::StreamingBatch;
use std::collections::BTreeMap;

/// Streaming batches seen so far; empty for a batch-only application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamingData {
    /// The batch interval (0: no streaming batch was seen).
    pub batch_duration_ms: u64,
    /// Kept batches by batch time: all waiting or running ones and the latest
    /// completed ones (`spark.streaming.ui.retainedBatches`).
    pub batches: BTreeMap<u64, StreamingBatch>,
    /// Batches completed since the start (forgotten ones included).
    pub completed: u64,
    /// Records received by batches completed since the start.
    pub completed_records: u64,
}

impl StreamingData {
    /// True once a streaming batch was seen.
    pub fn is_streaming(&self) -> bool {
        self.batch_duration_ms > 0
    }

    /// Records a batch's latest state; a completed one counts once and the
    /// oldest completed batches beyond `retained` are forgotten.
    pub fn update(&mut self, batch: &StreamingBatch, retained: usize) {
        self.batch_duration_ms = batch.batch_duration_ms;
        let previous = self.batches.insert(batch.batch_time_ms, batch.clone());
        let was_done = previous.is_some_and(|b| b.processing_end_time_ms.is_some());
        if batch.processing_end_time_ms.is_some() && !was_done {
            self.completed += 1;
            self.completed_records += batch.input_records;
        }
        let done: Vec<u64> =
            self.batches.values().filter(|b| b.processing_end_time_ms.is_some()).map(|b| b.batch_time_ms).collect();
        for t in done.iter().take(done.len().saturating_sub(retained)) {
            self.batches.remove(t);
        }
    }

    /// Kept batches that completed, newest first.
    pub fn completed_batches(&self) -> impl Iterator<Item = &StreamingBatch> {
        self.batches.values().rev().filter(|b| b.processing_end_time_ms.is_some())
    }

    /// Records per second over the kept completed batches: their records over
    /// the time they span (`None` before the first completed batch).
    pub fn average_input_rate(&self) -> Option<f64> {
        let newest = self.completed_batches().next()?;
        let oldest = self.completed_batches().last()?;
        let span_ms = newest.batch_time_ms - oldest.batch_time_ms + self.batch_duration_ms;
        let records: u64 = self.completed_batches().map(|b| b.input_records).sum();
        Some(records as f64 * 1000.0 / span_ms.max(1) as f64)
    }

    /// Average and maximum of a delay over the kept completed batches that have it (ms).
    pub fn delay_average_max(&self, delay: fn(&StreamingBatch) -> Option<u64>) -> Option<(u64, u64)> {
        let v: Vec<u64> = self.completed_batches().filter_map(delay).collect();
        Some((v.iter().sum::<u64>() / v.len().max(1) as u64, *v.iter().max()?))
    }

    /// Batches waiting or running, oldest first.
    pub fn active_batches(&self) -> impl Iterator<Item = &StreamingBatch> {
        self.batches.values().filter(|b| b.processing_end_time_ms.is_none())
    }
}

/// Spark's `/streaming/statistics` (its `StreamingStatistics` field names;
/// averages over the kept completed batches, in milliseconds and records/s).
pub fn statistics_json(st: &StreamingData, start_ms: u64) -> serde_json::Value {
    let avg = |delay: fn(&StreamingBatch) -> Option<u64>| st.delay_average_max(delay).map(|(avg, _)| avg);
    serde_json::json!({
        "startTime": super::api::spark_time(start_ms),
        "batchDuration": st.batch_duration_ms,
        "numTotalCompletedBatches": st.completed,
        "numRetainedCompletedBatches": st.completed_batches().count(),
        "numActiveBatches": st.active_batches().count(),
        "numProcessedRecords": st.completed_records,
        "numReceivedRecords": st.completed_records + st.active_batches().map(|b| b.input_records).sum::<u64>(),
        "avgInputRate": st.average_input_rate(),
        "avgSchedulingDelay": avg(StreamingBatch::scheduling_delay_ms),
        "avgProcessingTime": avg(StreamingBatch::processing_time_ms),
        "avgTotalDelay": avg(StreamingBatch::total_delay_ms),
    })
}

/// Spark's `/streaming/batches` entry (its `BatchInfo` field names; `batchId` is the batch time in ms).
pub fn batch_json(b: &StreamingBatch) -> serde_json::Value {
    let status = match (b.processing_start_time_ms, b.processing_end_time_ms) {
        (_, Some(_)) => "COMPLETED",
        (Some(_), None) => "PROCESSING",
        (None, None) => "QUEUED",
    };
    let done = b.processing_end_time_ms.is_some();
    let failed = u64::from(b.failure.is_some());
    serde_json::json!({
        "batchId": b.batch_time_ms,
        "batchTime": super::api::spark_time(b.batch_time_ms),
        "status": status,
        "batchDuration": b.batch_duration_ms,
        "inputSize": b.input_records,
        "schedulingDelay": b.scheduling_delay_ms(),
        "processingTime": b.processing_time_ms(),
        "totalDelay": b.total_delay_ms(),
        "numActiveOutputOps": if done { 0 } else { b.output_operations },
        "numCompletedOutputOps": if done { b.output_operations - failed.min(b.output_operations) } else { 0 },
        "numFailedOutputOps": failed,
        "numTotalOutputOps": b.output_operations,
        "firstFailureReason": b.failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(t: u64, start: Option<u64>, end: Option<u64>) -> StreamingBatch {
        StreamingBatch {
            batch_time_ms: t,
            batch_duration_ms: 1000,
            input_records: 10,
            submission_time_ms: t,
            processing_start_time_ms: start,
            processing_end_time_ms: end,
            output_operations: 1,
            failure: None,
        }
    }

    #[test]
    fn keeps_active_batches_and_the_latest_completed_ones() {
        let mut s = StreamingData::default();
        for t in [1000, 2000, 3000, 4000] {
            s.update(&batch(t, None, None), 2);
            s.update(&batch(t, Some(t + 5), None), 2);
        }
        for t in [1000, 2000, 3000] {
            s.update(&batch(t, Some(t + 5), Some(t + 50)), 2);
            // A repeated completion counts once.
            s.update(&batch(t, Some(t + 5), Some(t + 50)), 2);
        }
        assert_eq!(s.completed, 3);
        assert_eq!(s.completed_records, 30);
        assert_eq!(s.completed_batches().map(|b| b.batch_time_ms).collect::<Vec<_>>(), vec![3000, 2000]);
        assert_eq!(s.active_batches().map(|b| b.batch_time_ms).collect::<Vec<_>>(), vec![4000]);
        let b = &s.batches[&3000];
        assert_eq!(
            (b.scheduling_delay_ms(), b.processing_time_ms(), b.total_delay_ms()),
            (Some(5), Some(45), Some(50))
        );

        let stats = statistics_json(&s, 0);
        assert_eq!(stats["numTotalCompletedBatches"], 3);
        assert_eq!(stats["numRetainedCompletedBatches"], 2);
        assert_eq!(stats["numActiveBatches"], 1);
        assert_eq!(stats["avgProcessingTime"], 45);
        // 20 records over the 2 s the kept batches span.
        assert_eq!(stats["avgInputRate"], 10.0);
        let batch = batch_json(&s.batches[&4000]);
        assert_eq!((batch["batchId"].as_u64(), batch["status"].as_str()), (Some(4000), Some("PROCESSING")));
        assert_eq!(batch_json(b)["numCompletedOutputOps"], 1);
    }
}
