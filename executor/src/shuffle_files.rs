//! Shuffle map outputs on local disk: one data file and one index file (offsets of
//! each reduce partition's block) per map task, committed by rename so the first
//! finished attempt wins and readers never see a partial output.

use ember_core::error::{EmberError, Result};
use ember_core::shuffle::{MapStatus, ShuffleWriter};
use parking_lot::Mutex;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct ShuffleFiles {
    dirs: Vec<PathBuf>,
    executor_id: String,
    address: String,
    commit_lock: Mutex<()>,
    next_tmp: AtomicU64,
}

impl ShuffleFiles {
    pub fn new(dirs: Vec<PathBuf>, executor_id: String, address: String) -> Result<Arc<Self>> {
        for d in &dirs {
            fs::create_dir_all(d).map_err(|e| EmberError::io(d.display(), e))?;
        }
        Ok(Arc::new(Self { dirs, executor_id, address, commit_lock: Mutex::new(()), next_tmp: AtomicU64::new(0) }))
    }

    fn dir_for(&self, shuffle_id: u32, map_index: u32) -> &Path {
        let i = (shuffle_id as usize).wrapping_mul(31).wrapping_add(map_index as usize) % self.dirs.len();
        &self.dirs[i]
    }

    pub fn data_path(&self, shuffle_id: u32, map_index: u32) -> PathBuf {
        self.dir_for(shuffle_id, map_index).join(format!("shuffle_{shuffle_id}_{map_index}.data"))
    }

    pub fn index_path(&self, shuffle_id: u32, map_index: u32) -> PathBuf {
        self.dir_for(shuffle_id, map_index).join(format!("shuffle_{shuffle_id}_{map_index}.index"))
    }

    pub fn writer(
        self: &Arc<Self>,
        shuffle_id: u32,
        map_index: u32,
        num_reduce: usize,
    ) -> Result<Box<dyn ShuffleWriter>> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.data_path(shuffle_id, map_index).with_extension(format!("data.tmp{n}"));
        let file = File::create(&tmp).map_err(|e| EmberError::io(tmp.display(), e))?;
        Ok(Box::new(FileShuffleWriter {
            files: self.clone(),
            shuffle_id,
            map_index,
            num_reduce,
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            lengths: Vec::with_capacity(num_reduce),
        }))
    }

    /// One block of a committed map output.
    pub fn read_block(&self, shuffle_id: u32, map_index: u32, reduce_index: u32) -> Result<Vec<u8>> {
        let index_path = self.index_path(shuffle_id, map_index);
        let offsets = read_index(&index_path)?;
        let r = reduce_index as usize;
        if r + 1 >= offsets.len() {
            return Err(EmberError::Io {
                path: index_path.display().to_string(),
                message: format!("no block for reduce partition {r}"),
            });
        }
        let (start, end) = (offsets[r], offsets[r + 1]);
        let data_path = self.data_path(shuffle_id, map_index);
        let mut f = File::open(&data_path).map_err(|e| EmberError::io(data_path.display(), e))?;
        f.seek(SeekFrom::Start(start)).map_err(|e| EmberError::io(data_path.display(), e))?;
        let mut buf = vec![0u8; (end - start) as usize];
        f.read_exact(&mut buf).map_err(|e| EmberError::io(data_path.display(), e))?;
        Ok(buf)
    }

    /// Deletes every output of a shuffle (the shuffle is no longer needed).
    pub fn remove_shuffle(&self, shuffle_id: u32) {
        let prefix = format!("shuffle_{shuffle_id}_");
        for d in &self.dirs {
            if let Ok(entries) = fs::read_dir(d) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
    }
}

/// Whether every block of a committed map output still passes its checksums
/// (read one block at a time: an output can be far larger than memory).
fn output_is_intact(data: &Path, offsets: &[u64]) -> bool {
    let Ok(mut file) = File::open(data) else { return false };
    let mut block = Vec::new();
    let size_matches = file.metadata().is_ok_and(|m| offsets.last() == Some(&m.len()));
    size_matches
        && offsets.windows(2).all(|w| {
            block.resize((w[1] - w[0]) as usize, 0);
            file.read_exact(&mut block).is_ok() && ember_core::shuffle::block::decode_block(&block).is_ok()
        })
}

fn read_index(path: &Path) -> Result<Vec<u64>> {
    let bytes = fs::read(path).map_err(|e| EmberError::io(path.display(), e))?;
    if bytes.len() % 8 != 0 {
        return Err(EmberError::Io { path: path.display().to_string(), message: "index file is truncated".into() });
    }
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

struct FileShuffleWriter {
    files: Arc<ShuffleFiles>,
    shuffle_id: u32,
    map_index: u32,
    num_reduce: usize,
    tmp: PathBuf,
    out: BufWriter<File>,
    lengths: Vec<u64>,
}

impl ShuffleWriter for FileShuffleWriter {
    fn write_block(&mut self, reduce_index: usize, block: &[u8]) -> Result<()> {
        let current = self.lengths.len().checked_sub(1);
        if reduce_index >= self.num_reduce || current.is_some_and(|c| reduce_index < c) {
            return Err(EmberError::Internal(format!(
                "shuffle block {reduce_index} written out of order (after {current:?}, of {})",
                self.num_reduce
            )));
        }
        while self.lengths.len() <= reduce_index {
            self.lengths.push(0);
        }
        self.out.write_all(block).map_err(|e| EmberError::io(self.tmp.display(), e))?;
        self.lengths[reduce_index] += block.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<MapStatus> {
        while self.lengths.len() < self.num_reduce {
            self.lengths.push(0);
        }
        self.out.flush().map_err(|e| EmberError::io(self.tmp.display(), e))?;
        let files = self.files.clone();
        let data = files.data_path(self.shuffle_id, self.map_index);
        let index = files.index_path(self.shuffle_id, self.map_index);
        let status = |block_sizes: Vec<u64>| MapStatus {
            executor_id: files.executor_id.clone(),
            address: files.address.clone(),
            block_sizes,
        };
        let _guard = files.commit_lock.lock();
        if let Ok(existing) = read_index(&index) {
            if output_is_intact(&data, &existing) {
                // Another attempt committed first: keep its output, discard ours.
                let _ = fs::remove_file(&self.tmp);
                return Ok(status(existing.windows(2).map(|w| w[1] - w[0]).collect()));
            }
            // The earlier output is damaged (a reducer reported a corrupt block and
            // the driver reran this map task here): ours replaces it.
            tracing::warn!(shuffle_id = self.shuffle_id, map_index = self.map_index, "replacing a corrupt map output");
        }
        let mut offsets = Vec::with_capacity(self.lengths.len() + 1);
        let mut at = 0u64;
        offsets.push(0u64);
        for len in &self.lengths {
            at += len;
            offsets.push(at);
        }
        let index_tmp = index.with_extension("index.tmp");
        let bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        fs::write(&index_tmp, bytes).map_err(|e| EmberError::io(index_tmp.display(), e))?;
        // Data first, then index: a reader that finds the index finds the data.
        fs::rename(&self.tmp, &data).map_err(|e| EmberError::io(data.display(), e))?;
        fs::rename(&index_tmp, &index).map_err(|e| EmberError::io(index.display(), e))?;
        Ok(status(std::mem::take(&mut self.lengths)))
    }
}

impl Drop for FileShuffleWriter {
    fn drop(&mut self) {
        // An uncommitted (failed or killed) attempt leaves nothing behind.
        let _ = fs::remove_file(&self.tmp);
    }
}
