//! State checkpoints written off the batch runner thread.
//!
//! Every checkpoint interval (10 s by default) the state of each stateful operation
//! (`update_state_by_key`, `map_with_state`, windows with an inverse function) is
//! written to the checkpoint directory. That is a job over the whole state, which
//! took 0.3–0.5 s on the seed's word count: run on the batch runner thread, it held
//! the next batches back, and with 100 ms batches their delay jumped every 10 s
//! (docs/BENCHMARKS.md). Here a thread of its own writes them while batches go on.
//!
//! Correctness does not depend on when a write ends: until it has, the metadata
//! checkpoint still names the previous state checkpoint, and the input a recovery
//! would recompute from that one is kept (the input horizon follows the last
//! *written* state checkpoint). When writes fall behind, requests are coalesced:
//! only the newest waiting one is written. A failed write stops the streaming
//! context with its error, as a failed batch does.

use crate::context::StreamingContext;
use crate::time::Time;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use parking_lot::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A checkpoint of every stateful operation at a batch time, under a directory.
struct Request {
    time: Time,
    dir: Location,
}

/// The writer thread and the way to it; started on the first request.
#[derive(Default)]
pub(crate) struct StateCheckpointer {
    worker: Mutex<Option<(mpsc::Sender<Request>, JoinHandle<()>)>>,
}

impl StateCheckpointer {
    /// Asks for the state at `time` to be written under `dir`; returns at once.
    ///
    /// Errors: the writer thread cannot be started.
    pub fn request(&self, ssc: &StreamingContext, time: Time, dir: Location) -> Result<()> {
        let mut worker = self.worker.lock();
        if worker.is_none() {
            let (tx, rx) = mpsc::channel();
            let ssc = ssc.clone();
            let thread = std::thread::Builder::new()
                .name("streaming-state-checkpoint".into())
                .spawn(move || write_loop(ssc, rx))
                .map_err(|e| EmberError::Internal(format!("cannot start the state checkpoint writer: {e}")))?;
            *worker = Some((tx, thread));
        }
        let (tx, _) = worker.as_ref().expect("started above");
        // The thread ends only when the sender is dropped (in `finish`).
        let _ = tx.send(Request { time, dir });
        Ok(())
    }

    /// Lets the writer finish what it was asked and waits for it (at a stop). A
    /// call from the writer thread itself (a stop from a failed write) only lets go.
    pub fn finish(&self) {
        let Some((tx, thread)) = self.worker.lock().take() else { return };
        drop(tx);
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}

fn write_loop(ssc: StreamingContext, rx: mpsc::Receiver<Request>) {
    while let Ok(mut request) = rx.recv() {
        // Behind: only the newest request matters.
        while let Ok(newer) = rx.try_recv() {
            tracing::debug!(skipped = %request.time, newer = %newer.time, "state checkpoints fell behind; writing the newer");
            request = newer;
        }
        let started = std::time::Instant::now();
        if let Err(e) = ssc.write_state_checkpoint(request.time, &request.dir) {
            ssc.fail(format!("writing the state checkpoint of batch {}", request.time), e);
            return;
        }
        tracing::debug!(batch_time = %request.time, took_ms = started.elapsed().as_millis() as u64, "state checkpoint written");
    }
}
