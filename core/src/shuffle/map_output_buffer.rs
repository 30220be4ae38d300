//! A map task's output before it is committed: records serialized per reduce
//! partition and cut into frames. When the buffers pass the task's memory
//! budget their frames are appended to a spill file, partition by partition;
//! at commit each partition's block is its spilled frames (copied, not
//! recompressed) followed by the frames still in memory.

use super::ShuffleWriter;
use super::block::{FRAME_BYTES, append_frame, append_record};
use super::sorter::{SpillConfig, SpillStats};
use crate::error::{EmberError, Result};
use crate::memory::MemoryReservation;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// One spill: a file holding, for each partition, a run of frames.
struct Spill {
    path: PathBuf,
    /// (offset, length) of each partition's frames in the file.
    segments: Vec<(u64, u64)>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub struct MapOutputBuffer {
    raw: Vec<Vec<u8>>,
    framed: Vec<Vec<u8>>,
    held: u64,
    config: SpillConfig,
    /// `held`, reserved from the task's execution memory.
    reservation: MemoryReservation,
    spills: Vec<Spill>,
    stats: SpillStats,
    records: u64,
}

impl MapOutputBuffer {
    pub fn new(partitions: usize, config: SpillConfig) -> Self {
        Self {
            raw: vec![Vec::new(); partitions],
            framed: vec![Vec::new(); partitions],
            held: 0,
            reservation: config.memory.reservation(),
            config,
            spills: Vec::new(),
            stats: SpillStats::default(),
            records: 0,
        }
    }

    #[inline]
    pub fn write<R: Serialize>(&mut self, partition: usize, record: &R) -> Result<()> {
        let buf = &mut self.raw[partition];
        let before = buf.len();
        append_record(buf, record)?;
        self.records += 1;
        self.held += (buf.len() - before) as u64;
        if buf.len() >= FRAME_BYTES {
            let raw = std::mem::take(buf);
            self.cut(partition, raw);
        }
        if self.held > self.reservation.reserved() && !self.reservation.try_grow_to(self.held) {
            self.spill()?;
        }
        Ok(())
    }

    fn cut(&mut self, partition: usize, mut raw: Vec<u8>) {
        let framed = &mut self.framed[partition];
        let before = framed.len();
        append_frame(framed, &raw, self.config.compress);
        self.held = self.held - raw.len() as u64 + (framed.len() - before) as u64;
        raw.clear();
        self.raw[partition] = raw;
    }

    fn spill(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.config.dir).map_err(|e| EmberError::io(self.config.dir.display(), e))?;
        let path = self.config.dir.join(format!(
            "map-spill-{}-{}",
            std::process::id(),
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&path).map_err(|e| EmberError::io(path.display(), e))?;
        let mut spill = Spill { path, segments: Vec::with_capacity(self.raw.len()) };
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut at = 0u64;
        for p in 0..self.raw.len() {
            let raw = std::mem::take(&mut self.raw[p]);
            self.cut(p, raw);
            let framed = std::mem::take(&mut self.framed[p]);
            out.write_all(&framed).map_err(|e| EmberError::io(spill.path.display(), e))?;
            spill.segments.push((at, framed.len() as u64));
            at += framed.len() as u64;
            // Buffers start small again: their memory is what the spill is for.
            self.raw[p] = Vec::new();
        }
        out.flush().map_err(|e| EmberError::io(spill.path.display(), e))?;
        self.held = 0;
        self.reservation.release();
        self.stats.spills += 1;
        self.stats.bytes += at;
        self.spills.push(spill);
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes every partition's block (spilled frames first) and returns the
    /// bytes written and what was spilled on the way.
    pub fn write_to(mut self, writer: &mut dyn ShuffleWriter) -> Result<(u64, SpillStats)> {
        let mut files = Vec::with_capacity(self.spills.len());
        for s in &self.spills {
            files.push(File::open(&s.path).map_err(|e| EmberError::io(s.path.display(), e))?);
        }
        let mut written = 0u64;
        let mut chunk = Vec::new();
        for p in 0..self.raw.len() {
            for (s, file) in self.spills.iter().zip(files.iter_mut()) {
                let (offset, len) = s.segments[p];
                if len == 0 {
                    continue;
                }
                file.seek(SeekFrom::Start(offset)).map_err(|e| EmberError::io(s.path.display(), e))?;
                let mut left = len;
                while left > 0 {
                    let n = left.min(1 << 20) as usize;
                    chunk.resize(n, 0);
                    file.read_exact(&mut chunk).map_err(|e| EmberError::io(s.path.display(), e))?;
                    writer.write_block(p, &chunk)?;
                    left -= n as u64;
                }
                written += len;
            }
            let raw = std::mem::take(&mut self.raw[p]);
            self.cut(p, raw);
            let framed = std::mem::take(&mut self.framed[p]);
            writer.write_block(p, &framed)?;
            written += framed.len() as u64;
        }
        Ok((written, self.stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shuffle::MapStatus;
    use crate::shuffle::block::BlockRecords;

    /// Collects blocks in memory the way the shuffle files lay them out.
    #[derive(Default)]
    struct Blocks(Vec<Vec<u8>>);
    impl ShuffleWriter for Blocks {
        fn write_block(&mut self, reduce_index: usize, block: &[u8]) -> Result<()> {
            while self.0.len() <= reduce_index {
                self.0.push(Vec::new());
            }
            self.0[reduce_index].extend_from_slice(block);
            Ok(())
        }
        fn commit(self: Box<Self>) -> Result<MapStatus> {
            unreachable!("not committed in these tests")
        }
    }

    #[test]
    fn spilled_and_held_frames_make_up_each_block_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for budget in [1u64 << 30, 100 << 10] {
            let config = SpillConfig {
                memory: crate::memory::TaskMemory::fixed(budget),
                dir: dir.path().to_path_buf(),
                compress: true,
            };
            let mut buf = MapOutputBuffer::new(4, config);
            for i in 0..200_000u64 {
                buf.write((i % 4) as usize, &(i, i * 3)).unwrap();
            }
            let mut blocks = Blocks::default();
            let (written, stats) = buf.write_to(&mut blocks).unwrap();
            assert_eq!(written, blocks.0.iter().map(|b| b.len() as u64).sum::<u64>());
            if budget < 1 << 20 {
                assert!(stats.spills >= 3, "{stats:?}");
            } else {
                assert_eq!(stats.spills, 0);
            }
            for (p, block) in blocks.0.into_iter().enumerate() {
                let got: Vec<(u64, u64)> = BlockRecords::new(block, EmberError::Internal).collect();
                let expected: Vec<(u64, u64)> =
                    (0..200_000u64).filter(|i| i % 4 == p as u64).map(|i| (i, i * 3)).collect();
                assert_eq!(got, expected);
            }
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
