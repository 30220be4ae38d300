//! The driver's side of broadcast variables and added files: cuts them into
//! pieces registered with the block master (nothing is sent until an executor
//! reads them), and unpersist/destroy.

use crate::block_master::{BlockMaster, DriverPieces};
use ember_core::broadcast::BroadcastOwner;
use ember_core::error::{EmberError, Result};
use ember_core::pieces::{BlobId, BlobMeta, checksum, cut};
use parking_lot::RwLock;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Tells executors to drop a broadcast value and its pieces.
pub trait BroadcastEvictor: Send + Sync {
    fn drop_broadcast(&self, id: u64);
}

pub struct BroadcastManager {
    pub block_master: Arc<BlockMaster>,
    evictors: RwLock<Vec<Arc<dyn BroadcastEvictor>>>,
    piece_size: u64,
    checksums: bool,
}

impl BroadcastManager {
    /// `spark.broadcast.blockSize` and `spark.broadcast.checksum` as given.
    pub fn new(piece_size: u64, checksums: bool) -> Self {
        Self {
            block_master: Arc::new(BlockMaster::default()),
            evictors: RwLock::new(Vec::new()),
            piece_size: piece_size.max(1),
            checksums,
        }
    }

    pub fn add_evictor(&self, e: Arc<dyn BroadcastEvictor>) {
        self.evictors.write().push(e);
    }

    /// Registers the encoded bytes of broadcast `id` as pieces.
    pub fn put(&self, id: u64, bytes: Vec<u8>, compressed: bool) {
        let (meta, pieces) = cut(&bytes, self.piece_size, self.checksums, compressed);
        drop(bytes);
        tracing::info!(broadcast = id, bytes = meta.total_bytes, pieces = meta.num_pieces(), "broadcast registered");
        let pieces = pieces.into_iter().map(Arc::new).collect();
        self.block_master.add_blob(BlobId::Broadcast(id), meta, DriverPieces::Memory(pieces));
    }

    /// Registers a file for `addFile`: its pieces are read from `path` when fetched.
    pub fn add_file(&self, name: String, path: PathBuf) -> Result<()> {
        let mut f = std::fs::File::open(&path).map_err(|e| EmberError::io(path.display(), e))?;
        let mut sums = Vec::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; self.piece_size as usize];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                match f.read(&mut buf[filled..]).map_err(|e| EmberError::io(path.display(), e))? {
                    0 => break,
                    n => filled += n,
                }
            }
            if filled == 0 && total > 0 {
                break;
            }
            sums.push(checksum(&buf[..filled]));
            total += filled as u64;
            if filled < buf.len() {
                break;
            }
        }
        let meta = BlobMeta {
            total_bytes: total,
            piece_size: self.piece_size,
            checksums: self.checksums.then_some(sums),
            compressed: false,
        };
        self.block_master.add_blob(BlobId::File(name), meta, DriverPieces::File(path));
        Ok(())
    }

    fn evict(&self, id: u64) {
        for e in self.evictors.read().iter() {
            e.drop_broadcast(id);
        }
    }
}

impl BroadcastOwner for BroadcastManager {
    fn unpersist(&self, id: u64) {
        self.block_master.forget_executor_copies(&BlobId::Broadcast(id));
        self.evict(id);
    }
    fn destroy(&self, id: u64) {
        self.block_master.remove_blob(&BlobId::Broadcast(id));
        self.evict(id);
    }
}
