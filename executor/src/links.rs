//! What an executor needs from outside itself, as traits: local mode implements
//! them in-process, distributed mode over gRPC.

use ember_core::error::Result;
use ember_core::protocol::TaskOutcome;
use ember_core::shuffle::MapStatus;
use std::path::Path;

/// Requests an executor makes to its driver.
pub trait DriverLink: Send + Sync {
    /// Where every map output of a shuffle is (None: lost, being recomputed).
    fn map_outputs(&self, shuffle_id: u32) -> Result<Vec<Option<MapStatus>>>;
    /// The serialized bytes of a broadcast value.
    fn broadcast_bytes(&self, id: u64) -> Result<Vec<u8>>;
    /// Copies a file added with `addFile` to `dest`.
    fn fetch_file(&self, name: &str, dest: &Path) -> Result<()>;
}

/// Reads a shuffle block held by another executor.
pub trait BlockFetcher: Send + Sync {
    fn fetch_block(&self, status: &MapStatus, shuffle_id: u32, map_index: u32, reduce_index: u32) -> Result<Vec<u8>>;
}

/// Where task outcomes go.
pub trait StatusSink: Send + Sync {
    fn task_finished(&self, task_id: u64, outcome: TaskOutcome);
}
