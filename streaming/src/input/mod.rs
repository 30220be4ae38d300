//! Input streams: where each batch's data comes from. Queue and file streams
//! are computed on the driver when a batch is generated (as in Spark); receiver
//! streams (sockets and custom receivers) run receivers on executors.

mod file;
mod queue;
mod received_blocks;
mod receiver;
mod receiver_tracker;
mod socket;

pub use queue::RddQueue;
pub use receiver::{Receiver, ReceiverOutput};
pub use socket::SocketReceiver;

use crate::time::Time;
use ember_core::error::Result;

/// The driver-side face of an input stream, for the graph and the scheduler.
pub(crate) trait InputSource: Send + Sync {
    /// Unique within the graph; the key of its record in checkpoints.
    fn name(&self) -> &str;
    /// Called by `StreamingContext::start` (receivers start here).
    fn start(self: std::sync::Arc<Self>) -> Result<()> {
        Ok(())
    }
    /// Stops taking in data.
    fn stop(&self) {}
    /// Assigns the data that arrived so far to batch `time`, before its outputs
    /// are generated; returns the number of records assigned, when known.
    fn allocate(&self, _time: Time) -> Result<u64> {
        Ok(0)
    }
    /// True when data arrived that no batch holds yet (a graceful stop makes one more batch).
    fn has_unallocated(&self) -> bool {
        false
    }
    /// What a recovery needs to redo batches exactly (JSON), if anything.
    fn checkpoint_state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Takes back what [`InputSource::checkpoint_state`] wrote.
    fn restore(&self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
    /// Batches before `time` will never be recomputed: their records may go.
    fn forget_before(&self, _time: Time) {}
    /// After a batch: what the rate controller learns from it (receivers only).
    fn batch_completed(&self, _info: &crate::BatchInfo) {}
}
