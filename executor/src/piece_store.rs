//! The broadcast and file pieces one executor holds, as files in its work
//! directory, served to other executors from its block server.

use ember_core::error::{EmberError, Result};
use ember_core::pieces::BlobId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct PieceStore {
    dir: PathBuf,
    bytes_uploaded: AtomicU64,
}

impl PieceStore {
    pub fn new(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| EmberError::io(dir.display(), e))?;
        Ok(Self { dir, bytes_uploaded: AtomicU64::new(0) })
    }

    fn blob_dir(&self, blob: &BlobId) -> PathBuf {
        self.dir.join(blob.storage_name())
    }

    /// Where piece `index` of `blob` is stored.
    pub fn path(&self, blob: &BlobId, index: u32) -> PathBuf {
        self.blob_dir(blob).join(format!("piece{index}"))
    }

    /// Stores a (verified) piece; it is complete on disk before this returns.
    pub fn put(&self, blob: &BlobId, index: u32, bytes: &[u8]) -> Result<()> {
        let dir = self.blob_dir(blob);
        std::fs::create_dir_all(&dir).map_err(|e| EmberError::io(dir.display(), e))?;
        let path = self.path(blob, index);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| EmberError::io(tmp.display(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| EmberError::io(path.display(), e))
    }

    /// A stored piece, for another executor (counted as uploaded).
    pub fn serve(&self, blob: &BlobId, index: u32) -> Result<Vec<u8>> {
        let path = self.path(blob, index);
        let bytes = std::fs::read(&path).map_err(|e| blob.error(format!("piece {index} is not held here: {e}")))?;
        self.bytes_uploaded.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    pub fn remove_blob(&self, blob: &BlobId) {
        let _ = std::fs::remove_dir_all(self.blob_dir(blob));
    }

    /// Bytes of pieces served to other executors.
    pub fn bytes_uploaded(&self) -> u64 {
        self.bytes_uploaded.load(Ordering::Relaxed)
    }
}
