//! Batch scheduling (Spark's `JobGenerator` and `JobScheduler`): a timer thread
//! generates each batch at its time — input is assigned to the batch and every
//! output operation's RDDs are built — and a runner thread runs the batches'
//! jobs one batch after the other. When a batch takes longer than the interval
//! the next ones queue, and the scheduling delay says by how much.

use crate::context::StreamingContext;
use crate::graph::BatchJob;
use crate::time::Time;
use ember::listener::{Event, StreamingBatch};
use ember_core::error::Result;
use serde::Serialize;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// What happened to one batch (Spark's `BatchInfo`). Times are on the
/// context's clock, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchInfo {
    pub batch_time: crate::Time,
    /// When the batch was generated and queued.
    pub submission_ms: u64,
    pub processing_start_ms: u64,
    pub processing_end_ms: u64,
    /// Output operations that ran a job in this batch.
    pub output_operations: usize,
    /// Records receiver inputs assigned to this batch (queue and file streams are not counted).
    pub input_records: u64,
}

impl BatchInfo {
    /// Time the batch waited for earlier batches: start − submission.
    pub fn scheduling_delay_ms(&self) -> u64 {
        self.processing_start_ms.saturating_sub(self.submission_ms)
    }
    /// Time its jobs took: end − start.
    pub fn processing_delay_ms(&self) -> u64 {
        self.processing_end_ms.saturating_sub(self.processing_start_ms)
    }
    /// From the batch's time to the end of its jobs.
    pub fn total_delay_ms(&self) -> u64 {
        self.processing_end_ms.saturating_sub(self.batch_time.0)
    }
}

/// A generated batch waiting for the runner.
pub(crate) struct Batch {
    pub time: Time,
    pub jobs: Vec<BatchJob>,
    pub submission_ms: u64,
    pub input_records: u64,
    /// Output operations that run a job (`jobs.len()` when generated).
    pub outputs: usize,
}

/// The two threads of a started context.
pub(crate) struct Threads {
    pub generator: JoinHandle<()>,
    pub runner: JoinHandle<()>,
}

/// Starts generating batches at `first` (and after it, every interval), after
/// queueing `replay` — batches a recovered checkpoint had generated but not
/// finished — for the runner.
pub(crate) fn start(ssc: &StreamingContext, replay: Vec<Time>, first: Time) -> Result<Threads> {
    let (tx, rx) = mpsc::channel::<Batch>();
    for t in replay {
        tracing::info!(batch_time = %t, "re-running a batch the checkpoint had pending");
        tx.send(ssc.generate_batch(t)?).expect("the runner is not started yet");
    }
    let generator = {
        let ssc = ssc.clone();
        std::thread::Builder::new()
            .name("streaming-job-generator".into())
            .spawn(move || generator_loop(ssc, first, tx))
            .map_err(|e| ember_core::error::EmberError::Internal(format!("cannot start the batch timer: {e}")))?
    };
    let runner = {
        let ssc = ssc.clone();
        std::thread::Builder::new()
            .name("streaming-job-runner".into())
            .spawn(move || runner_loop(ssc, rx))
            .map_err(|e| ember_core::error::EmberError::Internal(format!("cannot start the batch runner: {e}")))?
    };
    Ok(Threads { generator, runner })
}

fn generator_loop(ssc: StreamingContext, first: Time, tx: mpsc::Sender<Batch>) {
    let interval = ssc.inner.batch_ms;
    let mut time = first;
    loop {
        ssc.inner.clock.wait_until(time.0, ssc.stop_flag());
        if ssc.generation_stopped() {
            break;
        }
        match ssc.generate_batch(time) {
            Ok(batch) => {
                post(&ssc, Event::StreamingBatchSubmitted, &batch, None, None);
                if tx.send(batch).is_err() {
                    break;
                }
            }
            Err(e) => {
                ssc.fail(format!("generating batch {time}"), e);
                break;
            }
        }
        time = time.plus(interval);
    }
    // In a graceful stop, data received after the last batch still gets one.
    if ssc.graceful_stop_requested()
        && ssc.has_unallocated_input()
        && let Ok(batch) = ssc.generate_batch(time)
    {
        post(&ssc, Event::StreamingBatchSubmitted, &batch, None, None);
        let _ = tx.send(batch);
    }
}

/// Tells the listener bus (UI, metrics, event log) about a batch; `processing`
/// is its (start, end) when it got that far.
fn post(
    ssc: &StreamingContext,
    event: fn(StreamingBatch) -> Event,
    batch: &Batch,
    processing: Option<(u64, Option<u64>)>,
    failure: Option<String>,
) {
    let bus = ssc.spark_context().listener_bus();
    if !bus.is_active() {
        return;
    }
    bus.post(event(StreamingBatch {
        batch_time_ms: batch.time.0,
        batch_duration_ms: ssc.inner.batch_ms,
        input_records: batch.input_records,
        submission_time_ms: batch.submission_ms,
        processing_start_time_ms: processing.map(|p| p.0),
        processing_end_time_ms: processing.and_then(|p| p.1),
        output_operations: batch.outputs as u64,
        failure,
    }));
}

fn runner_loop(ssc: StreamingContext, rx: mpsc::Receiver<Batch>) {
    while let Ok(mut batch) = rx.recv() {
        if ssc.queued_batches_dropped() {
            tracing::info!(batch_time = %batch.time, "stopping: batch not run");
            continue;
        }
        let time = batch.time;
        let start = ssc.inner.clock.now_ms();
        let span = tracing::info_span!("batch", batch_time = time.0);
        let _enter = span.enter();
        let outputs = batch.jobs.len();
        post(&ssc, Event::StreamingBatchStarted, &batch, Some((start, None)), None);
        for job in std::mem::take(&mut batch.jobs) {
            if let Err(e) = job() {
                let end = ssc.inner.clock.now_ms();
                post(&ssc, Event::StreamingBatchCompleted, &batch, Some((start, Some(end))), Some(e.to_string()));
                ssc.fail(format!("running batch {time}"), e);
                return;
            }
        }
        let end = ssc.inner.clock.now_ms();
        post(&ssc, Event::StreamingBatchCompleted, &batch, Some((start, Some(end))), None);
        let info = BatchInfo {
            batch_time: time,
            submission_ms: batch.submission_ms,
            processing_start_ms: start,
            processing_end_ms: end,
            output_operations: outputs,
            input_records: batch.input_records,
        };
        if let Err(e) = ssc.batch_completed(&info) {
            ssc.fail(format!("checkpointing after batch {time}"), e);
            return;
        }
        tracing::info!(
            batch_time = time.0,
            scheduling_delay_ms = info.scheduling_delay_ms(),
            processing_delay_ms = info.processing_delay_ms(),
            total_delay_ms = info.total_delay_ms(),
            input_records = info.input_records,
            "batch completed"
        );
    }
}
