//! Reliable checkpoints of RDDs (Spark's `ReliableCheckpointRDD`): a job writes
//! every partition to a directory every process can read, and an RDD that reads
//! those files replaces the original, so its lineage ends there.
//!
//! A partition file `part-NNNNN` is a sequence of frames, each
//! `[u32 LE payload length][u32 LE crc32 of payload][payload]` where the payload
//! is a postcard `Vec<T>` of at most [`FRAME_RECORDS`] records. The frame length
//! is checked against [`MAX_FRAME_BYTES`] before anything is allocated, so a
//! corrupt or truncated file is an error, never a panic or a huge allocation.

use super::{Dependency, RddBase, RddMeta, RddNode, into_any_node};
use crate::config::Conf;
use crate::data::{BoxIter, Data};
use crate::error::{EmberError, Result, raise};
use crate::filesystem::Location;
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::task::{PartitionFn, TaskContext};
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Read, Write};
use std::marker::PhantomData;

/// Records per frame of a checkpoint file.
pub const FRAME_RECORDS: usize = 4096;
/// Largest frame a reader accepts (bytes of payload).
pub const MAX_FRAME_BYTES: u32 = 256 << 20;

/// Partition `split`'s file in a checkpoint directory.
pub fn partition_file(dir: &Location, split: usize) -> Location {
    dir.join(&format!("part-{split:05}"))
}

/// The checkpoint directory a task was given (a path or URL made by the driver).
fn location(dir: &str) -> Result<Location> {
    Location::parse(dir).map_err(|e| EmberError::Config(format!("checkpoint directory {dir}: {e}")))
}

/// Writes frames of records to `out`; returns the number of records.
pub fn write_frames<T: Data>(out: &mut impl Write, records: impl Iterator<Item = T>) -> std::io::Result<u64> {
    let mut frame = Vec::with_capacity(FRAME_RECORDS);
    let mut n = 0u64;
    let flush = |frame: &mut Vec<T>, out: &mut dyn Write| -> std::io::Result<()> {
        let payload = postcard::to_allocvec(&*frame).map_err(std::io::Error::other)?;
        out.write_all(&(payload.len() as u32).to_le_bytes())?;
        out.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
        out.write_all(&payload)?;
        frame.clear();
        Ok(())
    };
    for x in records {
        frame.push(x);
        n += 1;
        if frame.len() == FRAME_RECORDS {
            flush(&mut frame, out)?;
        }
    }
    if !frame.is_empty() {
        flush(&mut frame, out)?;
    }
    Ok(n)
}

/// Reads the frames of one checkpoint file, record by record. A bad frame
/// (truncated, wrong checksum, undecodable) is an error naming `path`.
pub struct FrameReader<T, R> {
    input: R,
    path: String,
    current: std::vec::IntoIter<T>,
}

impl<T: Data, R: Read> FrameReader<T, R> {
    /// Reads frames from `input`; `path` names it in errors.
    pub fn new(input: R, path: impl Into<String>) -> Self {
        Self { input, path: path.into(), current: Vec::new().into_iter() }
    }

    fn bad(&self, what: impl std::fmt::Display) -> EmberError {
        EmberError::Codec(format!("checkpoint file {}: {what}", self.path))
    }

    /// The next frame's records; `None` at a clean end of file.
    fn next_frame(&mut self) -> Result<Option<Vec<T>>> {
        let mut header = [0u8; 8];
        let mut got = 0;
        while got < header.len() {
            match self.input.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(self.bad("truncated frame header")),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(EmberError::io(&self.path, e)),
            }
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_FRAME_BYTES {
            return Err(self.bad(format!("frame of {len} bytes is over the {MAX_FRAME_BYTES}-byte limit")));
        }
        let mut payload = Vec::new();
        (&mut self.input).take(len as u64).read_to_end(&mut payload).map_err(|e| EmberError::io(&self.path, e))?;
        if payload.len() != len as usize {
            return Err(self.bad("truncated frame"));
        }
        if crc32fast::hash(&payload) != crc {
            return Err(self.bad("checksum mismatch"));
        }
        postcard::from_bytes(&payload).map(Some).map_err(|e| self.bad(e))
    }
}

impl<T: Data, R: Read> Iterator for FrameReader<T, R> {
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(x) = self.current.next() {
                return Some(Ok(x));
            }
            match self.next_frame() {
                Ok(Some(frame)) => self.current = frame.into_iter(),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The result function of a checkpoint job: writes its partition to
/// `dir/part-NNNNN` (a local temporary file renamed into place, or uploaded to
/// an object store, so a failed attempt leaves nothing) and returns the number
/// of records written.
#[derive(Serialize, Deserialize)]
pub struct WriteCheckpointFn {
    /// The directory: an absolute path or an `s3a://` URL.
    pub dir: String,
}

impl<T: Data> PartitionFn<T, u64> for WriteCheckpointFn {
    fn apply(&self, ctx: &TaskContext, input: BoxIter<T>) -> Result<u64> {
        let part = partition_file(&location(&self.dir)?, ctx.partition());
        let tmp = part.local_temporary();
        let write = || -> std::io::Result<u64> {
            let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
            let n = write_frames(&mut out, input)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok(n)
        };
        let n = write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EmberError::io(part.url(), e)
        })?;
        part.publish(ctx.env().conf(), &tmp)?;
        Ok(n)
    }
}

/// An RDD read back from a checkpoint directory: `partitions` files, no parents.
pub struct CheckpointRdd<T> {
    meta: RddMeta,
    dir: String,
    partitions: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Data> CheckpointRdd<T> {
    /// Reads `dir`, which must hold `partitions` partition files (checked with
    /// one listing; `conf` gives the object-store settings).
    ///
    /// # Errors
    /// [`EmberError::InputPath`] naming the first missing file;
    /// [`EmberError::Io`] when the directory cannot be listed.
    pub fn open(dir: &Location, partitions: usize, conf: &Conf) -> Result<Self> {
        Self::from_listing(dir, &dir.list(conf)?, partitions)
    }

    /// [`CheckpointRdd::open`] given the directory's listing (`present`, sorted,
    /// as [`Location::list`] returns it), for a caller that has listed it already.
    ///
    /// # Errors
    /// [`EmberError::InputPath`] naming the first missing file.
    pub fn from_listing(dir: &Location, present: &[String], partitions: usize) -> Result<Self> {
        for split in 0..partitions {
            let file = partition_file(dir, split);
            if present.binary_search_by(|n| n.as_str().cmp(file.file_name().unwrap_or_default())).is_err() {
                return Err(EmberError::InputPath {
                    path: file.url(),
                    reason: "checkpoint partition file is missing".into(),
                });
            }
        }
        Ok(Self { meta: RddMeta::new(), dir: dir.url(), partitions, _t: PhantomData })
    }

    /// The directory the partitions are read from.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let dir = r.read()?;
        let partitions = r.read()?;
        Ok(into_any_node::<T>(Self { meta, dir, partitions, _t: PhantomData }))
    }
}

impl<T: Data> Encode for CheckpointRdd<T> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.dir)?;
        w.write(&self.partitions)
    }
}

impl<T: Data> RddBase for CheckpointRdd<T> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "checkpoint"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data> RddNode<T> for CheckpointRdd<T> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<T>> {
        let path = partition_file(&location(&self.dir)?, split);
        let reader = FrameReader::<T, _>::new(path.open(ctx.env().conf())?, path.url());
        Ok(Box::new(reader.map(|r| r.unwrap_or_else(|e| raise(e)))))
    }
}

/// An RDD whose lineage is cut in place once its partitions are checkpointed
/// (Spark's `RDD.checkpoint`, which rewrites the RDD's dependencies): before,
/// it computes its parent; after [`CutLineageRdd::set_checkpoint`], it reads the
/// checkpoint files and has no parents. RDDs already built on it see the cut
/// too, so a chain of streaming state does not grow its lineage every batch.
pub struct CutLineageRdd<T: Data> {
    meta: RddMeta,
    parent: std::sync::RwLock<Option<std::sync::Arc<dyn RddNode<T>>>>,
    checkpoint: std::sync::RwLock<Option<(String, usize)>>,
    partitions: usize,
}

impl<T: Data> CutLineageRdd<T> {
    /// Wraps `parent`, not cut yet.
    pub fn new(parent: std::sync::Arc<dyn RddNode<T>>) -> Self {
        let partitions = parent.num_partitions();
        Self {
            meta: RddMeta::new(),
            parent: std::sync::RwLock::new(Some(parent)),
            checkpoint: std::sync::RwLock::new(None),
            partitions,
        }
    }

    /// From now on, read the partitions from `dir` (written by a
    /// [`WriteCheckpointFn`] job over this RDD) and drop the parent.
    ///
    /// # Errors
    /// As [`CheckpointRdd::open`].
    pub fn set_checkpoint(&self, dir: &Location, conf: &Conf) -> Result<()> {
        CheckpointRdd::<T>::open(dir, self.partitions, conf)?;
        *self.checkpoint.write().expect("lock") = Some((dir.url(), self.partitions));
        *self.parent.write().expect("lock") = None;
        Ok(())
    }

    /// The checkpoint directory, once cut.
    pub fn checkpoint_dir(&self) -> Option<String> {
        self.checkpoint.read().expect("lock").as_ref().map(|(d, _)| d.clone())
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta: RddMeta = r.read()?;
        let tag: u8 = r.read()?;
        let node = match tag {
            0 => {
                let parent = r.read_rdd::<T>()?;
                let partitions = parent.num_partitions();
                Self {
                    meta,
                    parent: std::sync::RwLock::new(Some(parent)),
                    checkpoint: std::sync::RwLock::new(None),
                    partitions,
                }
            }
            1 => {
                let (dir, partitions): (String, usize) = r.read()?;
                Self {
                    meta,
                    parent: std::sync::RwLock::new(None),
                    checkpoint: std::sync::RwLock::new(Some((dir, partitions))),
                    partitions,
                }
            }
            other => return Err(EmberError::Codec(format!("bad checkpointed-RDD tag {other}"))),
        };
        Ok(into_any_node::<T>(node))
    }
}

impl<T: Data> Encode for CutLineageRdd<T> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        if let Some(ckpt) = self.checkpoint.read().expect("lock").clone() {
            w.write(&1u8)?;
            return w.write(&ckpt);
        }
        let parent = self.parent.read().expect("lock").clone().expect("a CutLineageRdd has a parent until it is cut");
        w.write(&0u8)?;
        w.write_rdd(&parent)
    }
}

impl<T: Data> RddBase for CutLineageRdd<T> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        match self.parent.read().expect("lock").clone() {
            Some(p) => vec![Dependency::Narrow(p)],
            None => Vec::new(),
        }
    }
    fn op_name(&self) -> &'static str {
        "checkpointable"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data> RddNode<T> for CutLineageRdd<T> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<T>> {
        if let Some((dir, partitions)) = self.checkpoint.read().expect("lock").clone() {
            let reader = CheckpointRdd::<T> { meta: RddMeta::new(), dir, partitions, _t: PhantomData };
            return reader.compute(split, ctx);
        }
        let parent = self.parent.read().expect("lock").clone();
        match parent {
            Some(p) => super::iterate(&p, split, ctx),
            None => Err(EmberError::Internal("checkpointed RDD has neither parent nor checkpoint".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let records: Vec<(String, u64)> = (0..10_000).map(|i| (format!("k{i}"), i)).collect();
        let mut buf = Vec::new();
        assert_eq!(write_frames(&mut buf, records.clone().into_iter()).unwrap(), 10_000);
        let back: Vec<(String, u64)> = FrameReader::new(&buf[..], "mem").collect::<Result<_>>().unwrap();
        assert_eq!(back, records);
    }

    #[test]
    fn a_flipped_byte_is_a_checksum_error_naming_the_file() {
        let mut buf = Vec::new();
        write_frames(&mut buf, (0u64..100).map(|i| i * 3)).unwrap();
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        let err = FrameReader::<u64, _>::new(&buf[..], "/ckpt/part-00003").find_map(|r| r.err()).unwrap();
        assert!(err.to_string().contains("/ckpt/part-00003") && err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut buf = u32::MAX.to_le_bytes().to_vec();
        buf.extend_from_slice(&[0; 4]);
        let err = FrameReader::<u64, _>::new(&buf[..], "f").next().unwrap().unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }

    proptest! {
        #[test]
        fn random_and_truncated_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..600) {
            let _ = FrameReader::<(String, Vec<u32>), _>::new(&bytes[..], "rand").take(10_000).count();
            let mut good = Vec::new();
            write_frames(&mut good, (0u32..50).map(|i| (i.to_string(), vec![i; 3]))).unwrap();
            let cut = cut.min(good.len());
            let results: Vec<_> = FrameReader::<(String, Vec<u32>), _>::new(&good[..cut], "cut").collect();
            // One frame: any cut inside it is an error (a cut at 0 is an empty file).
            if cut > 0 && cut < good.len() {
                prop_assert!(results.iter().any(|r| r.is_err()));
            }
        }
    }
}
