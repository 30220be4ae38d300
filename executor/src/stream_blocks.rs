//! Blocks that streaming receivers cut (Spark's `StreamBlockId`, stored at
//! `MEMORY_AND_DISK_SER_2`): serialized records held by the receiver's
//! executor and by one replica, read by the tasks of the batch that takes them
//! and removed when the driver says no batch needs them any more.
//!
//! Blocks stay in memory up to a byte budget; past it they go to files in the
//! executor's work directory, framed with a crc32 so a corrupted file is an
//! error naming the block instead of wrong records.

use ember_core::error::{EmberError, Result};
use ember_core::framed::{read_framed, write_framed};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The received blocks one executor holds.
pub struct StreamBlocks {
    dir: PathBuf,
    /// Bytes of blocks kept in memory before new ones go to disk.
    memory_budget: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    memory: HashMap<String, Arc<Vec<u8>>>,
    on_disk: HashMap<String, PathBuf>,
    used: u64,
}

/// Checks that a block id can name a file: `input-…` in Spark's form, no path separators.
pub fn check_block_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 200 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(EmberError::StreamBlock { id: id.to_string(), reason: "not a plain block name".into() });
    }
    Ok(())
}

impl StreamBlocks {
    /// A store keeping up to `memory_budget` bytes in memory, the rest under `dir`.
    pub fn new(memory_budget: u64, dir: PathBuf) -> Self {
        Self { dir, memory_budget, state: Mutex::new(State::default()) }
    }

    /// Stores a block (replacing a copy stored before under the same id).
    /// Errors: a bad id, or a block that does not fit in memory and cannot be written to disk.
    pub fn put(&self, id: &str, bytes: Arc<Vec<u8>>) -> Result<()> {
        check_block_id(id)?;
        self.remove(&[id.to_string()]);
        let size = bytes.len() as u64;
        {
            let mut st = self.state.lock();
            if st.used + size <= self.memory_budget {
                st.used += size;
                st.memory.insert(id.to_string(), bytes);
                return Ok(());
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| EmberError::io(self.dir.display(), e))?;
        let path = self.dir.join(id);
        write_framed(&path, &bytes)?;
        tracing::debug!(
            block = id,
            bytes = size,
            budget = self.memory_budget,
            "received block stored on disk, past the memory budget"
        );
        self.state.lock().on_disk.insert(id.to_string(), path);
        Ok(())
    }

    /// A stored block, or `None` when this executor does not hold it.
    /// Errors: its file is unreadable or fails its checksum.
    pub fn get(&self, id: &str) -> Result<Option<Arc<Vec<u8>>>> {
        let path = {
            let st = self.state.lock();
            if let Some(b) = st.memory.get(id) {
                return Ok(Some(b.clone()));
            }
            match st.on_disk.get(id) {
                Some(p) => p.clone(),
                None => return Ok(None),
            }
        };
        read_framed(&path).map(|b| Some(Arc::new(b)))
    }

    /// Forgets blocks (those not held are ignored).
    pub fn remove(&self, ids: &[String]) {
        let mut st = self.state.lock();
        for id in ids {
            if let Some(b) = st.memory.remove(id) {
                st.used -= b.len() as u64;
            }
            if let Some(p) = st.on_disk.remove(id) {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Bytes of blocks held in memory.
    pub fn memory_used(&self) -> u64 {
        self.state.lock().used
    }

    /// Number of blocks held, in memory and on disk.
    pub fn len(&self) -> usize {
        let st = self.state.lock();
        st.memory.len() + st.on_disk.len()
    }

    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_blocks_in_memory_then_on_disk_and_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = StreamBlocks::new(10, dir.path().join("stream"));
        store.put("input-a-0-0", Arc::new(vec![1; 8])).unwrap();
        store.put("input-a-0-1", Arc::new(vec![2; 8])).unwrap();
        assert_eq!(store.memory_used(), 8);
        assert_eq!(*store.get("input-a-0-0").unwrap().unwrap(), vec![1; 8]);
        assert_eq!(*store.get("input-a-0-1").unwrap().unwrap(), vec![2; 8]);
        assert!(dir.path().join("stream/input-a-0-1").exists());
        assert!(store.get("input-a-0-2").unwrap().is_none());
        store.remove(&["input-a-0-0".into(), "input-a-0-1".into()]);
        assert!(store.is_empty());
        assert_eq!(store.memory_used(), 0);
        assert!(!dir.path().join("stream/input-a-0-1").exists());
    }

    #[test]
    fn a_corrupted_block_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = StreamBlocks::new(0, dir.path().to_path_buf());
        store.put("input-b-1-7", Arc::new(vec![5; 100])).unwrap();
        let path = dir.path().join("input-b-1-7");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[50] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = store.get("input-b-1-7").unwrap_err().to_string();
        assert!(err.contains("input-b-1-7") && err.contains("corrupt"), "{err}");
    }

    #[test]
    fn refuses_ids_that_are_not_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = StreamBlocks::new(100, dir.path().to_path_buf());
        for bad in ["", "../x", "a/b", "input a"] {
            assert!(store.put(bad, Arc::new(vec![1])).is_err(), "{bad:?}");
        }
    }
}
