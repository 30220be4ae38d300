//! Spill files: records a task moved out of memory because its buffers passed
//! the task's memory budget. Written as block frames (lz4 + crc32) in the
//! executor's spill directory; a file is deleted when its last handle drops.
//! Also the size estimate that decides when to spill.

use super::block::{FRAME_BYTES, FrameRecords, append_frame, append_record, read_frame, record_size};
use crate::error::{EmberError, Result, raise};
use serde::{Serialize, de::DeserializeOwned};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_SPILL: AtomicU64 = AtomicU64::new(0);

/// A finished spill file; removed from disk when dropped.
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    bytes: u64,
    records: u64,
}

impl SpillFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Bytes on disk (compressed).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The file's records, read one frame at a time.
    pub fn read<R: DeserializeOwned>(self: &Arc<Self>) -> Result<SpillReader<R>> {
        let file = File::open(&self.path).map_err(|e| EmberError::io(self.path.display(), e))?;
        Ok(SpillReader {
            file: self.clone(),
            input: BufReader::with_capacity(FRAME_BYTES / 2, file),
            current: FrameRecords::new(Vec::new()),
            _r: PhantomData,
        })
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes records into a new spill file, cutting a frame every `FRAME_BYTES`.
pub struct SpillWriter {
    path: PathBuf,
    out: BufWriter<File>,
    raw: Vec<u8>,
    framed: Vec<u8>,
    compress: bool,
    bytes: u64,
    records: u64,
    finished: bool,
}

impl SpillWriter {
    pub fn create(dir: &Path, compress: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EmberError::io(dir.display(), e))?;
        let path = dir.join(format!("spill-{}-{}", std::process::id(), NEXT_SPILL.fetch_add(1, Ordering::Relaxed)));
        let file = File::create(&path).map_err(|e| EmberError::io(path.display(), e))?;
        Ok(Self {
            path,
            out: BufWriter::with_capacity(FRAME_BYTES, file),
            raw: Vec::with_capacity(FRAME_BYTES + 1024),
            framed: Vec::new(),
            compress,
            bytes: 0,
            records: 0,
            finished: false,
        })
    }

    pub fn write<R: Serialize>(&mut self, record: &R) -> Result<()> {
        append_record(&mut self.raw, record)?;
        self.records += 1;
        if self.raw.len() >= FRAME_BYTES {
            self.cut_frame()?;
        }
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn cut_frame(&mut self) -> Result<()> {
        self.framed.clear();
        append_frame(&mut self.framed, &self.raw, self.compress);
        self.raw.clear();
        self.out.write_all(&self.framed).map_err(|e| EmberError::io(self.path.display(), e))?;
        self.bytes += self.framed.len() as u64;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Arc<SpillFile>> {
        self.cut_frame()?;
        self.out.flush().map_err(|e| EmberError::io(self.path.display(), e))?;
        self.finished = true;
        Ok(Arc::new(SpillFile { path: self.path.clone(), bytes: self.bytes, records: self.records }))
    }
}

impl Drop for SpillWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The records of a spill file in the order written. A damaged file (disk
/// trouble) stops the task with an I/O error naming the file.
pub struct SpillReader<R> {
    file: Arc<SpillFile>,
    input: BufReader<File>,
    current: FrameRecords<R>,
    _r: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> Iterator for SpillReader<R> {
    type Item = R;
    fn next(&mut self) -> Option<R> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            match read_frame(&mut self.input) {
                Ok(Some(raw)) => self.current = FrameRecords::new(raw),
                Ok(None) => return None,
                Err(message) => raise(EmberError::Io { path: self.file.path.display().to_string(), message }),
            }
        }
    }
}

/// Estimates the memory a growing buffer of records holds: their inline size
/// plus the serialized size of a sample of them (a stand-in for their heap
/// parts). Samples every record at first, then one in `SAMPLE_EVERY`.
pub struct SizeEstimate {
    inline: u64,
    seen: u64,
    sampled: u64,
    sampled_bytes: u64,
    scratch: Vec<u8>,
}

const SAMPLE_EVERY: u64 = 32;

impl SizeEstimate {
    pub fn new<T>() -> Self {
        Self { inline: size_of::<T>() as u64, seen: 0, sampled: 0, sampled_bytes: 0, scratch: Vec::new() }
    }

    /// Notes one more record.
    #[inline]
    pub fn observe<T: Serialize>(&mut self, record: &T) {
        self.seen += 1;
        if self.sampled < 64 || self.seen.is_multiple_of(SAMPLE_EVERY) {
            self.sampled += 1;
            self.sampled_bytes += record_size(record, &mut self.scratch) as u64;
        }
    }

    /// Estimated bytes held by `len` of the records seen.
    pub fn bytes(&self, len: usize) -> u64 {
        let per_record = self.inline + self.sampled_bytes.checked_div(self.sampled).unwrap_or(0);
        per_record * len as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_files_round_trip_and_vanish_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpillWriter::create(dir.path(), true).unwrap();
        for i in 0..100_000u64 {
            w.write(&(i, format!("v{i}"))).unwrap();
        }
        let file = w.finish().unwrap();
        assert_eq!(file.records(), 100_000);
        let back: Vec<(u64, String)> = file.read().unwrap().collect();
        assert_eq!(back.len(), 100_000);
        assert_eq!(back[99_999], (99_999, "v99999".to_string()));
        let path = file.path().to_path_buf();
        assert!(path.exists());
        drop(file);
        assert!(!path.exists());

        // A writer dropped before finishing leaves nothing.
        let mut w = SpillWriter::create(dir.path(), false).unwrap();
        w.write(&1u8).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn size_estimate_follows_the_records() {
        let mut est = SizeEstimate::new::<String>();
        let s = "x".repeat(100);
        for _ in 0..1000 {
            est.observe(&s);
        }
        let b = est.bytes(1000);
        assert!((120_000..=130_000).contains(&b), "{b}");
    }
}
