//! The driver's store of broadcast values and added files, which executors fetch.

use ember_core::broadcast::BroadcastOwner;
use ember_core::error::{EmberError, Result};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells executors to drop a broadcast value.
pub trait BroadcastEvictor: Send + Sync {
    fn drop_broadcast(&self, id: u64);
}

#[derive(Default)]
pub struct BroadcastManager {
    values: RwLock<HashMap<u64, Arc<Vec<u8>>>>,
    destroyed: RwLock<std::collections::HashSet<u64>>,
    files: RwLock<HashMap<String, PathBuf>>,
    evictors: RwLock<Vec<Arc<dyn BroadcastEvictor>>>,
    /// Bytes of broadcast values and files this process has served.
    pub bytes_uploaded: AtomicU64,
}

impl BroadcastManager {
    pub fn add_evictor(&self, e: Arc<dyn BroadcastEvictor>) {
        self.evictors.write().push(e);
    }

    pub fn put(&self, id: u64, bytes: Vec<u8>) {
        self.values.write().insert(id, Arc::new(bytes));
    }

    pub fn bytes(&self, id: u64) -> Result<Arc<Vec<u8>>> {
        if self.destroyed.read().contains(&id) {
            return Err(EmberError::Broadcast { id, reason: "it was destroyed".into() });
        }
        let bytes = self
            .values
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| EmberError::Broadcast { id, reason: "unknown broadcast".into() })?;
        self.bytes_uploaded.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    pub fn add_file(&self, name: String, path: PathBuf) {
        self.files.write().insert(name, path);
    }

    pub fn copy_file(&self, name: &str, dest: &Path) -> Result<()> {
        let src = self.files.read().get(name).cloned().ok_or_else(|| EmberError::File {
            name: name.to_string(),
            reason: "no file of that name was added with addFile".into(),
        })?;
        let n = std::fs::copy(&src, dest).map_err(|e| EmberError::io(src.display(), e))?;
        self.bytes_uploaded.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// The contents of an added file.
    pub fn file_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let src = self.files.read().get(name).cloned().ok_or_else(|| EmberError::File {
            name: name.to_string(),
            reason: "no file of that name was added with addFile".into(),
        })?;
        let bytes = std::fs::read(&src).map_err(|e| EmberError::io(src.display(), e))?;
        self.bytes_uploaded.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    fn evict(&self, id: u64) {
        for e in self.evictors.read().iter() {
            e.drop_broadcast(id);
        }
    }
}

impl BroadcastOwner for BroadcastManager {
    fn unpersist(&self, id: u64) {
        self.evict(id);
    }
    fn destroy(&self, id: u64) {
        self.destroyed.write().insert(id);
        self.values.write().remove(&id);
        self.evict(id);
    }
}
