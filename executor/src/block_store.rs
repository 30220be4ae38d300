//! Cached RDD partitions: memory with a byte budget and least-recently-used
//! eviction, and a disk store for DISK_ONLY and for MEMORY_AND_DISK partitions
//! evicted from memory.

use ember_core::rdd::StorageLevel;
use ember_core::task::CachedPartition;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A cached partition: (RDD id, partition).
pub type BlockKey = (u64, usize);

struct Entry {
    block: CachedPartition,
    size: u64,
    last_used: u64,
    /// MEMORY_AND_DISK entries move to disk when evicted; others are dropped.
    level: StorageLevel,
}

pub struct BlockStore {
    budget: u64,
    disk_dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    memory: HashMap<BlockKey, Entry>,
    on_disk: HashMap<BlockKey, PathBuf>,
    used: u64,
    clock: u64,
}

impl BlockStore {
    pub fn new(budget: u64, disk_dir: PathBuf) -> Self {
        Self { budget, disk_dir, state: Mutex::new(State::default()) }
    }

    pub fn memory_used(&self) -> u64 {
        self.state.lock().used
    }

    pub fn get(&self, rdd_id: u64, split: usize) -> Option<CachedPartition> {
        let mut st = self.state.lock();
        st.clock += 1;
        let clock = st.clock;
        if let Some(e) = st.memory.get_mut(&(rdd_id, split)) {
            e.last_used = clock;
            return Some(e.block.clone());
        }
        let path = st.on_disk.get(&(rdd_id, split))?.clone();
        drop(st);
        std::fs::read(&path).ok().map(|b| CachedPartition::Bytes(Arc::new(b)))
    }

    /// Stores a partition, evicting least recently used ones to make room; returns
    /// the blocks whose status changed (this one, and those evicted or moved to disk)
    /// for the driver to hear of (see [`BlockStore::status`]).
    pub fn put(&self, rdd_id: u64, split: usize, level: StorageLevel, block: CachedPartition) -> Vec<BlockKey> {
        let key = (rdd_id, split);
        let size = match &block {
            CachedPartition::Values { size, .. } => *size,
            CachedPartition::Bytes(b) => b.len() as u64,
        };
        if level == StorageLevel::DiskOnly {
            if let CachedPartition::Bytes(bytes) = &block {
                self.write_disk(key, bytes);
            }
            return vec![key];
        }
        let mut st = self.state.lock();
        let mut spilled = Vec::new();
        // Make room by evicting the least recently used partitions, but only for
        // a block that fits at all: a larger one would empty memory for nothing.
        while size <= self.budget && st.used + size > self.budget && !st.memory.is_empty() {
            let victim = *st.memory.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k).expect("non-empty");
            let e = st.memory.remove(&victim).expect("present");
            st.used -= e.size;
            spilled.push((victim, e.block, e.level));
        }
        if st.used + size <= self.budget {
            st.clock += 1;
            let last_used = st.clock;
            st.used += size;
            st.memory.insert(key, Entry { block: block.clone(), size, last_used, level });
        } else {
            spilled.push((key, block, level));
        }
        drop(st);
        let mut changed = vec![key];
        changed.extend(spilled.iter().map(|(k, _, _)| *k).filter(|k| *k != key));
        for (k, b, level) in spilled {
            // MEMORY_ONLY (and MEMORY_ONLY_SER) blocks are dropped, recomputed
            // from lineage when needed.
            if level != StorageLevel::MemoryAndDisk {
                continue;
            }
            match b {
                CachedPartition::Values { to_bytes, .. } => {
                    if let Ok(bytes) = to_bytes() {
                        self.write_disk(k, &bytes);
                    }
                }
                CachedPartition::Bytes(bytes) => self.write_disk(k, &bytes),
            }
        }
        changed
    }

    /// A held partition serialized (postcard of its values) for a task on
    /// another executor; `None` when it is not held here.
    /// Errors: its values cannot be serialized.
    pub fn serialized(&self, rdd_id: u64, split: usize) -> Option<ember_core::error::Result<Arc<Vec<u8>>>> {
        match self.get(rdd_id, split)? {
            CachedPartition::Values { to_bytes, .. } => Some(to_bytes().map(Arc::new)),
            // Already serialized: served as held, not copied.
            CachedPartition::Bytes(bytes) => Some(Ok(bytes)),
        }
    }

    /// Where a partition is now: (bytes in memory, bytes on disk, in memory as
    /// values rather than serialized bytes); (0, 0, false) when not stored.
    pub fn status(&self, rdd_id: u64, split: usize) -> (u64, u64, bool) {
        let st = self.state.lock();
        let (memory, deserialized) = st
            .memory
            .get(&(rdd_id, split))
            .map(|e| (e.size, matches!(e.block, CachedPartition::Values { .. })))
            .unwrap_or((0, false));
        let path = st.on_disk.get(&(rdd_id, split)).cloned();
        drop(st);
        let disk = path.and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len()).unwrap_or(0);
        (memory, disk, deserialized)
    }

    fn write_disk(&self, key: BlockKey, bytes: &[u8]) {
        let path = self.disk_dir.join(format!("rdd_{}_{}", key.0, key.1));
        if std::fs::create_dir_all(&self.disk_dir).is_ok() && std::fs::write(&path, bytes).is_ok() {
            self.state.lock().on_disk.insert(key, path);
        }
    }

    /// Drops every cached partition of an RDD (unpersist).
    pub fn remove_rdd(&self, rdd_id: u64) {
        let mut st = self.state.lock();
        let keys: Vec<BlockKey> = st.memory.keys().filter(|k| k.0 == rdd_id).copied().collect();
        for k in keys {
            if let Some(e) = st.memory.remove(&k) {
                st.used -= e.size;
            }
        }
        let disk: Vec<BlockKey> = st.on_disk.keys().filter(|k| k.0 == rdd_id).copied().collect();
        for k in disk {
            if let Some(p) = st.on_disk.remove(&k) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(size: u64) -> CachedPartition {
        let v: Arc<Vec<u8>> = Arc::new(vec![7; size as usize]);
        let shared = v.clone();
        let to_bytes: ember_core::task::SerializeFn = Arc::new(move || Ok((*shared).clone()));
        CachedPartition::Values { value: v, size, to_bytes }
    }

    #[test]
    fn evicts_least_recently_used_and_spills_memory_and_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::new(100, dir.path().to_path_buf());
        store.put(1, 0, StorageLevel::MemoryAndDisk, values(60));
        store.put(2, 0, StorageLevel::MemoryOnly, values(30));
        assert!(store.get(1, 0).is_some()); // 1 is now more recent than 2
        store.put(3, 0, StorageLevel::MemoryOnly, values(30));
        // 2 (least recent, memory only) is gone; 1 stays in memory.
        assert!(store.get(2, 0).is_none());
        assert!(store.memory_used() <= 100);
        store.put(4, 0, StorageLevel::MemoryOnly, values(90));
        // 1 was evicted to disk, and still readable.
        assert!(matches!(store.get(1, 0), Some(CachedPartition::Bytes(_))));
        store.remove_rdd(1);
        assert!(store.get(1, 0).is_none());
    }

    #[test]
    fn a_put_reports_every_block_it_moved() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::new(100, dir.path().to_path_buf());
        assert_eq!(store.put(1, 0, StorageLevel::MemoryAndDisk, values(60)), vec![(1, 0)]);
        assert_eq!(store.status(1, 0), (60, 0, true));
        assert_eq!(store.put(2, 0, StorageLevel::MemoryOnly, values(30)), vec![(2, 0)]);
        // 1 is least recently used: it goes to disk, and 2 stays.
        assert_eq!(store.put(3, 0, StorageLevel::MemoryOnly, values(50)), vec![(3, 0), (1, 0)]);
        assert_eq!(store.status(1, 0), (0, 60, false));
        assert_eq!(store.status(2, 0), (30, 0, true));
        // 2 (memory only) is dropped to make room.
        assert_eq!(store.put(4, 0, StorageLevel::MemoryOnly, values(50)), vec![(4, 0), (2, 0)]);
        assert_eq!(store.status(2, 0), (0, 0, false));
    }
}
