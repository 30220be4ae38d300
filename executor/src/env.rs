//! The services one executor offers its tasks: shuffle files, cached blocks,
//! broadcast values and shipped files, behind `ExecutorEnv`.

use crate::block_store::BlockStore;
use crate::links::{BlockFetcher, BlockRequest, DriverLink};
use crate::piece_store::PieceStore;
use crate::shuffle_files::ShuffleFiles;
use crate::stream_blocks::StreamBlocks;
use crate::torrent::Torrent;
use ember_core::config::Conf;
use ember_core::error::{EmberError, FetchFailure, Result};
use ember_core::memory::ExecutionMemory;
use ember_core::pieces::BlobId;
use ember_core::rdd::StorageLevel;
use ember_core::shuffle::{FetchedBlock, ShuffleWriter};
use ember_core::storage::{BLOCK_LOCATIONS, BLOCK_MANAGER_MASTER, BlockHolder, BlockLocationsRequest, BlockUpdate};
use ember_core::task::{AnyValue, CachedPartition, ExecutorEnv};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Settings of one executor.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    pub executor_id: String,
    pub cores: usize,
    /// The executor's memory (`spark.executor.memory`), in bytes: the budget of
    /// cached blocks and, times `spark.memory.fraction`, of running tasks' buffers.
    pub memory_bytes: u64,
    /// Base directories for shuffle files and spills (`spark.local.dir`); empty: the system temp dir.
    pub local_dirs: Vec<PathBuf>,
    /// Address of this executor's block server, as other executors reach it (empty in local mode).
    pub advertise_address: String,
    pub conf: Conf,
}

/// A per-key slot so that concurrent tasks wait for one fetch instead of each fetching.
type Once<T> = Arc<Mutex<Option<T>>>;

pub struct ExecutorServices {
    config: ExecutorConfig,
    work_dirs: Vec<PathBuf>,
    pub shuffle: Arc<ShuffleFiles>,
    pub blocks: BlockStore,
    /// Broadcast and file pieces this executor holds and serves.
    pub pieces: PieceStore,
    /// Blocks cut by streaming receivers, held here as their first copy or replica.
    pub stream_blocks: StreamBlocks,
    driver: Arc<dyn DriverLink>,
    fetcher: Arc<dyn BlockFetcher>,
    broadcasts: Mutex<HashMap<u64, Once<AnyValue>>>,
    files: Mutex<HashMap<String, Once<PathBuf>>>,
    execution_memory: Arc<ExecutionMemory>,
    next_spill_dir: AtomicUsize,
}

impl ExecutorServices {
    pub fn new(
        config: ExecutorConfig,
        driver: Arc<dyn DriverLink>,
        fetcher: Arc<dyn BlockFetcher>,
    ) -> Result<Arc<Self>> {
        let bases = if config.local_dirs.is_empty() { vec![std::env::temp_dir()] } else { config.local_dirs.clone() };
        let prefix = work_dir_prefix(&config.executor_id, std::process::id());
        let work_dirs = bases.iter().map(|b| create_work_dir(b, &prefix)).collect::<Result<Vec<PathBuf>>>()?;
        let shuffle = ShuffleFiles::new(
            work_dirs.iter().map(|d| d.join("shuffle")).collect(),
            config.executor_id.clone(),
            config.advertise_address.clone(),
        )?;
        let execution_memory = ExecutionMemory::new(execution_memory_bytes(&config)?);
        let blocks = BlockStore::new(config.memory_bytes, work_dirs[0].join("blocks"));
        let pieces = PieceStore::new(work_dirs[0].join("pieces"))?;
        // Received blocks share the storage memory with cached partitions in
        // Spark; here they get a quarter of the executor's memory, then disk.
        let stream_blocks = StreamBlocks::new(config.memory_bytes / 4, work_dirs[0].join("stream"));
        Ok(Arc::new(Self {
            config,
            work_dirs,
            shuffle,
            blocks,
            pieces,
            stream_blocks,
            driver,
            fetcher,
            broadcasts: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            execution_memory,
            next_spill_dir: AtomicUsize::new(0),
        }))
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    pub fn work_dirs(&self) -> &[PathBuf] {
        &self.work_dirs
    }

    /// Tells the driver where the given cached partitions are now (Spark's
    /// `reportBlockStatus`); a driver that cannot be told only misses a Storage
    /// page entry, so failures are logged, not raised.
    fn report_blocks(&self, blocks: Vec<crate::block_store::BlockKey>) {
        let updates: Vec<BlockUpdate> = blocks
            .into_iter()
            .map(|(rdd_id, partition)| {
                let (memory_size, disk_size, deserialized) = self.blocks.status(rdd_id, partition);
                BlockUpdate {
                    executor_id: self.config.executor_id.clone(),
                    rdd_id,
                    partition,
                    memory_size,
                    disk_size,
                    deserialized,
                }
            })
            .collect();
        let sent = postcard::to_allocvec(&updates)
            .map_err(EmberError::from)
            .and_then(|message| self.driver.ask(BLOCK_MANAGER_MASTER, message));
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not report cached blocks to the driver");
        }
    }

    /// Forgets a broadcast value and its pieces (unpersist/destroy).
    pub fn drop_broadcast(&self, id: u64) {
        self.broadcasts.lock().remove(&id);
        self.pieces.remove_blob(&BlobId::Broadcast(id));
    }

    fn torrent(&self) -> Torrent<'_> {
        Torrent {
            driver: &*self.driver,
            fetcher: &*self.fetcher,
            store: &self.pieces,
            executor_id: &self.config.executor_id,
        }
    }
}

/// The execution memory all running tasks share: `spark.executor.memory` times
/// `spark.memory.fraction` (see `ember_core::memory`).
fn execution_memory_bytes(config: &ExecutorConfig) -> Result<u64> {
    let fraction = ember_core::memory::memory_fraction(&config.conf)?;
    Ok(((config.memory_bytes as f64 * fraction) as u64).max(1))
}

/// How the work directories of executor `executor_id` in process `pid` begin
/// (under each local dir), so whoever started a process that was killed can
/// remove what it left.
pub fn work_dir_prefix(executor_id: &str, pid: u32) -> String {
    format!("ember-{}-{pid}-", sanitize(executor_id))
}

/// Creates a new, empty work directory `<base>/<prefix><random hex>`. The name
/// is never one that exists already: an executor killed with its driver (as
/// `local-cluster` executors are, by `SIGKILL`) leaves its directory behind, and
/// a later executor given the same id and, by pid reuse, the same pid must not
/// find that executor's shuffle files and take them for its own.
///
/// Errors: `Io` when `base` cannot be created or written.
fn create_work_dir(base: &Path, prefix: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(base).map_err(|e| EmberError::io(base.display(), e))?;
    loop {
        let dir = base.join(format!("{prefix}{:016x}", rand::random::<u64>()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(EmberError::io(dir.display(), e)),
        }
    }
}

/// Removes the work directories a dead executor process left under `bases`
/// (an empty list: the system temp dir, as executors default to).
pub fn remove_work_dirs(bases: &[PathBuf], executor_id: &str, pid: u32) {
    let prefix = work_dir_prefix(executor_id, pid);
    let default = [std::env::temp_dir()];
    let bases = if bases.is_empty() { &default[..] } else { bases };
    for base in bases {
        let Ok(entries) = std::fs::read_dir(base) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

impl Drop for ExecutorServices {
    fn drop(&mut self) {
        for d in &self.work_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl ExecutorEnv for ExecutorServices {
    fn executor_id(&self) -> &str {
        &self.config.executor_id
    }

    fn conf(&self) -> &Conf {
        &self.config.conf
    }

    fn shuffle_writer(&self, shuffle_id: u32, map_index: u32, num_reduce: usize) -> Result<Box<dyn ShuffleWriter>> {
        self.shuffle.writer(shuffle_id, map_index, num_reduce)
    }

    fn shuffle_blocks(
        &self,
        shuffle_id: u32,
        reduce_index: u32,
    ) -> Result<Box<dyn Iterator<Item = std::result::Result<FetchedBlock, FetchFailure>>>> {
        let statuses = self.driver.map_outputs(shuffle_id)?;
        let failure = move |map_index: u32, executor_id: &str, message: String| FetchFailure {
            shuffle_id,
            map_index,
            reduce_index,
            executor_id: executor_id.to_string(),
            message,
        };
        let mut missing = Vec::new();
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for (map_index, status) in statuses.into_iter().enumerate() {
            let map_index = map_index as u32;
            let Some(status) = status else {
                missing.push(Err(failure(map_index, "", "map output is missing (lost executor)".into())));
                continue;
            };
            let request = BlockRequest { status, shuffle_id, map_index, reduce_index };
            if request.size() == 0 {
                continue;
            }
            if request.status.executor_id == self.config.executor_id {
                local.push(request);
            } else {
                remote.push(request);
            }
        }
        // Remote fetches start now, in the background, while local blocks are read from disk.
        let max_in_flight = self.config.conf.get_bytes("spark.reducer.maxSizeInFlight", 48 << 20)?;
        let remote = if remote.is_empty() { None } else { Some(self.fetcher.fetch_blocks(remote, max_in_flight)) };
        let shuffle = self.shuffle.clone();
        let local = local.into_iter().map(move |r| {
            let bytes = shuffle.read_block(r.shuffle_id, r.map_index, r.reduce_index);
            (r, bytes)
        });
        let fetched = local.chain(remote.into_iter().flatten()).map(move |(r, bytes)| match bytes {
            // The map output's sizes are exact: a block cut at a frame boundary
            // would decode as fewer records, so its length is checked too.
            Ok(bytes) if bytes.len() as u64 != r.size() => Err(failure(
                r.map_index,
                &r.status.executor_id,
                format!("block is {} bytes, its map output says {}: the block is corrupt", bytes.len(), r.size()),
            )),
            Ok(bytes) => Ok(FetchedBlock { map_index: r.map_index, executor_id: r.status.executor_id, bytes }),
            Err(e) => Err(failure(r.map_index, &r.status.executor_id, e.to_string())),
        });
        Ok(Box::new(missing.into_iter().chain(fetched)))
    }

    fn cached_partition(&self, rdd_id: u64, split: usize) -> Option<CachedPartition> {
        self.blocks.get(rdd_id, split)
    }

    fn remote_cached_partition(&self, rdd_id: u64, split: usize) -> Option<Vec<u8>> {
        // In-process (local mode) every task shares this one block store.
        if self.config.advertise_address.is_empty() {
            return None;
        }
        let request = BlockLocationsRequest { rdd_id, partition: split, requester: self.config.executor_id.clone() };
        let holders = postcard::to_allocvec(&request)
            .map_err(EmberError::from)
            .and_then(|message| self.driver.ask(BLOCK_LOCATIONS, message))
            .and_then(|reply| Ok(postcard::from_bytes::<Vec<BlockHolder>>(&reply)?));
        let holders = match holders {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(rdd_id, partition = split, error = %e, "cannot ask the driver where a cached block is");
                return None;
            }
        };
        for holder in holders.iter().filter(|h| h.block_address != self.config.advertise_address) {
            match self.fetcher.fetch_cached_block(&holder.block_address, rdd_id, split) {
                Ok(bytes) => {
                    tracing::debug!(rdd_id, partition = split, executor_id = %holder.executor_id, bytes = bytes.len(), "read a cached block remotely");
                    return Some(bytes);
                }
                Err(e) => tracing::info!(
                    rdd_id,
                    partition = split,
                    executor_id = %holder.executor_id,
                    error = %e,
                    "a cached block's holder did not serve it; trying the next or recomputing"
                ),
            }
        }
        None
    }

    fn put_cached_partition(&self, rdd_id: u64, split: usize, level: StorageLevel, block: CachedPartition) {
        let changed = self.blocks.put(rdd_id, split, level, block);
        self.report_blocks(changed);
    }

    fn broadcast_value(&self, id: u64, decode: &dyn Fn(&[u8]) -> Result<AnyValue>) -> Result<AnyValue> {
        let slot = self.broadcasts.lock().entry(id).or_default().clone();
        let mut slot = slot.lock();
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        let blob = BlobId::Broadcast(id);
        let mut bytes = Vec::new();
        let meta = self.torrent().fetch(&blob, &mut |offset, piece| {
            if bytes.len() < offset + piece.len() {
                bytes.resize(offset + piece.len(), 0);
            }
            bytes[offset..offset + piece.len()].copy_from_slice(piece);
            Ok(())
        })?;
        if bytes.len() as u64 != meta.total_bytes {
            return Err(blob.error(format!("assembled {} bytes, expected {}", bytes.len(), meta.total_bytes)));
        }
        let value = decode(&bytes)?;
        *slot = Some(value.clone());
        Ok(value)
    }

    fn execution_memory(&self) -> Arc<ExecutionMemory> {
        self.execution_memory.clone()
    }

    fn ask_driver(&self, endpoint: &str, message: Vec<u8>) -> Result<Vec<u8>> {
        self.driver.ask(endpoint, message)
    }

    fn put_stream_block(&self, block_id: &str, bytes: Arc<Vec<u8>>, replica: Option<&str>) -> Result<bool> {
        self.stream_blocks.put(block_id, bytes.clone())?;
        let Some(address) = replica else { return Ok(false) };
        match self.fetcher.replicate_stream_block(address, block_id, bytes) {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!(block_id, replica = address, error = %e, "could not replicate a received block; it has one copy");
                Ok(false)
            }
        }
    }

    fn stream_block(&self, block_id: &str, holders: &[String]) -> Result<Arc<Vec<u8>>> {
        if let Some(bytes) = self.stream_blocks.get(block_id)? {
            return Ok(bytes);
        }
        let mut failures = Vec::new();
        for address in holders.iter().filter(|a| **a != self.config.advertise_address) {
            match self.fetcher.fetch_stream_block(address, block_id) {
                Ok(bytes) => return Ok(Arc::new(bytes)),
                Err(e) => failures.push(format!("{address}: {e}")),
            }
        }
        Err(EmberError::StreamBlock {
            id: block_id.to_string(),
            reason: if failures.is_empty() {
                "not held by this executor, and no other holder is known".to_string()
            } else {
                format!("not held by this executor, and no holder served it ({})", failures.join("; "))
            },
        })
    }

    fn spill_dir(&self) -> PathBuf {
        // Spread over the local dirs, as shuffle files are by map index.
        let at = self.next_spill_dir.fetch_add(1, Ordering::Relaxed) % self.work_dirs.len();
        self.work_dirs[at].join("spill")
    }

    fn file_path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == ".." {
            return Err(EmberError::File { name: name.to_string(), reason: "not a plain file name".into() });
        }
        let slot = self.files.lock().entry(name.to_string()).or_default().clone();
        let mut slot = slot.lock();
        if let Some(p) = &*slot {
            return Ok(p.clone());
        }
        let dir = self.work_dirs[0].join("files");
        std::fs::create_dir_all(&dir).map_err(|e| EmberError::io(dir.display(), e))?;
        let dest = dir.join(name);
        let tmp = dir.join(format!(".{name}.part"));
        let file = std::fs::File::create(&tmp).map_err(|e| EmberError::io(tmp.display(), e))?;
        let blob = BlobId::File(name.to_string());
        let meta = self.torrent().fetch(&blob, &mut |offset, piece| {
            use std::os::unix::fs::FileExt;
            file.write_all_at(piece, offset as u64).map_err(|e| EmberError::io(tmp.display(), e))
        })?;
        file.set_len(meta.total_bytes).map_err(|e| EmberError::io(tmp.display(), e))?;
        drop(file);
        std::fs::rename(&tmp, &dest).map_err(|e| EmberError::io(dest.display(), e))?;
        *slot = Some(dest.clone());
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_dir_is_always_new_and_empty_even_when_a_dead_executor_left_one_with_its_prefix() {
        let base = tempfile::tempdir().unwrap();
        let prefix = work_dir_prefix("1", std::process::id());
        // What an executor of the same id and (reused) pid left behind.
        let stale = base.path().join(format!("{prefix}0"));
        std::fs::create_dir_all(stale.join("shuffle")).unwrap();
        std::fs::write(stale.join("shuffle").join("shuffle_0_0.index"), [0u8; 16]).unwrap();
        let a = create_work_dir(base.path(), &prefix).unwrap();
        let b = create_work_dir(base.path(), &prefix).unwrap();
        assert!(a != stale && b != stale && a != b, "{a:?} {b:?}");
        assert_eq!(std::fs::read_dir(&a).unwrap().count(), 0);
        // Both are found again by the prefix that cleans up after an executor.
        remove_work_dirs(&[base.path().to_path_buf()], "1", std::process::id());
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
        // A base that does not exist yet is created.
        let nested = create_work_dir(&base.path().join("x/y"), &prefix).unwrap();
        assert!(nested.is_dir());
    }
}
