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

/// One shuffle block to fetch from another executor.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub status: MapStatus,
    pub shuffle_id: u32,
    pub map_index: u32,
    pub reduce_index: u32,
}

impl BlockRequest {
    pub fn size(&self) -> u64 {
        self.status.block_sizes.get(self.reduce_index as usize).copied().unwrap_or(0)
    }
}

/// Fetched blocks in the order they arrive.
pub type FetchResults = Box<dyn Iterator<Item = (BlockRequest, Result<Vec<u8>>)>>;

/// Reads shuffle blocks held by other executors.
pub trait BlockFetcher: Send + Sync {
    fn fetch_block(&self, status: &MapStatus, shuffle_id: u32, map_index: u32, reduce_index: u32) -> Result<Vec<u8>>;

    /// Fetches many blocks; implementations may fetch concurrently, with at most
    /// `max_bytes_in_flight` bytes requested at once (a larger block goes alone).
    fn fetch_blocks(&self, requests: Vec<BlockRequest>, _max_bytes_in_flight: u64) -> FetchResults {
        let fetch = move |r: BlockRequest| {
            let bytes = self.fetch_block(&r.status, r.shuffle_id, r.map_index, r.reduce_index);
            (r, bytes)
        };
        let results: Vec<_> = requests.into_iter().map(fetch).collect();
        Box::new(results.into_iter())
    }
}

/// Where task outcomes go.
pub trait StatusSink: Send + Sync {
    fn task_finished(&self, task_id: u64, outcome: TaskOutcome);
}
