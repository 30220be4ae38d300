//! What an executor needs from outside itself, as traits: local mode implements
//! them in-process, distributed mode over gRPC.

use ember_core::error::{EmberError, Result};
use ember_core::pieces::{BlobId, BlobMeta, PieceSource};
use ember_core::protocol::TaskOutcome;
use ember_core::shuffle::MapStatus;
use std::sync::Arc;

/// Requests an executor makes to its driver (and its block master).
pub trait DriverLink: Send + Sync {
    /// Where every map output of a shuffle is (None: lost, being recomputed).
    fn map_outputs(&self, shuffle_id: u32) -> Result<Vec<Option<MapStatus>>>;
    /// Piece sizes and checksums of a broadcast value or added file.
    fn blob_meta(&self, blob: &BlobId) -> Result<BlobMeta>;
    /// Who holds piece `index` (see `BlockMaster::holders`).
    fn piece_holders(&self, blob: &BlobId, index: u32, executor_id: &str, wait: bool) -> Result<PieceSource>;
    /// This executor stored piece `index` and serves it from now on.
    fn register_piece(&self, blob: &BlobId, index: u32, executor_id: &str) -> Result<()>;
    /// Peer `holder` served piece `index` with a bad checksum.
    fn report_bad_piece(&self, blob: &BlobId, index: u32, holder: &str) -> Result<()>;
    /// The driver's copy of a piece.
    fn fetch_piece(&self, blob: &BlobId, index: u32) -> Result<Vec<u8>>;
    /// Asks a driver endpoint (`ember_core::endpoint`).
    fn ask(&self, endpoint: &str, message: Vec<u8>) -> Result<Vec<u8>>;
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

/// Reads blocks held by other executors.
pub trait BlockFetcher: Send + Sync {
    fn fetch_block(&self, status: &MapStatus, shuffle_id: u32, map_index: u32, reduce_index: u32) -> Result<Vec<u8>>;
    /// A broadcast or file piece from the executor whose block server is at `address`.
    fn fetch_piece(&self, address: &str, blob: &BlobId, index: u32) -> Result<Vec<u8>>;

    /// A received stream block held by the executor whose block server is at `address`.
    /// Errors: that executor is unreachable or does not hold it.
    fn fetch_stream_block(&self, address: &str, block_id: &str) -> Result<Vec<u8>> {
        Err(EmberError::Internal(format!("stream block {block_id} is on {address}, which this mode cannot reach")))
    }

    /// A cached RDD partition, serialized, from the executor whose block server is at `address`.
    /// Errors: that executor is unreachable or no longer holds it.
    fn fetch_cached_block(&self, address: &str, rdd_id: u64, partition: usize) -> Result<Vec<u8>> {
        Err(EmberError::Internal(format!("rdd_{rdd_id}_{partition} is on {address}, which this mode cannot reach")))
    }

    /// Stores a copy of a received stream block on the executor at `address`.
    fn replicate_stream_block(&self, address: &str, block_id: &str, _bytes: Arc<Vec<u8>>) -> Result<()> {
        Err(EmberError::Internal(format!("cannot replicate stream block {block_id} to {address} in this mode")))
    }

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
