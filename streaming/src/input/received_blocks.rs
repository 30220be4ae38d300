//! Received blocks as a batch's RDD (Spark's `BlockRDD`, and with the
//! write-ahead log its `WriteAheadLogBackedBlockRDD`): one partition per block,
//! read from the executor that holds it (the receiver's, or its replica); when
//! no holder is left, from the write-ahead log when there is one.

use ember_core::data::Data;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use ember_core::rdd::PartitionOp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Names one received block: `input-<stream>-<epoch>-<n>` (Spark's
/// `StreamBlockId` is `input-<streamId>-<uniqueId>`). The epoch grows with each
/// start of the stream's receiver and `n` with each of its blocks, so ids sort
/// in the order blocks were received.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct StreamBlockId {
    pub epoch: u64,
    pub n: u64,
    /// The stream's name, made file-name safe.
    pub stream: String,
}

impl StreamBlockId {
    pub fn new(stream: &str, epoch: u64, n: u64) -> Self {
        Self { epoch, n, stream: safe_name(stream) }
    }

    /// The block's name in block stores and the write-ahead log.
    pub fn name(&self) -> String {
        format!("input-{}-{}-{}", self.stream, self.epoch, self.n)
    }

    /// Parses [`StreamBlockId::name`] (`None`: not a block of `stream`).
    pub fn parse(stream: &str, name: &str) -> Option<Self> {
        let stream = safe_name(stream);
        let rest = name.strip_prefix("input-")?.strip_prefix(stream.as_str())?.strip_prefix('-')?;
        let (epoch, n) = rest.split_once('-')?;
        Some(Self { epoch: epoch.parse().ok()?, n: n.parse().ok()?, stream })
    }
}

fn safe_name(stream: &str) -> String {
    stream.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// Records in a block's bytes (a postcard `Vec<T>` begins with its length as a varint).
pub(crate) fn record_count(bytes: &[u8]) -> u64 {
    let mut n = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    n
}

/// A block's records (a postcard `Vec<T>`), decoded one at a time as the task
/// takes them rather than into a vector first: a record is decoded, used and
/// dropped while its memory is still in cache, and the allocator hands the same
/// memory to the next one, where a decoded 200 ms block (hundreds of thousands of
/// strings) would sweep the core's cache, and the map-side combiner's hash
/// table with it, before the first record was used.
///
/// The length prefix is checked against the bytes before anything is yielded
/// (each record takes at least one byte), so a corrupt length is an error, not
/// a run past the end; a record that does not decode is an error naming the block.
pub(crate) struct BlockRecords<T> {
    bytes: Arc<Vec<u8>>,
    /// Offset of the next record in `bytes`.
    at: usize,
    left: usize,
    block: String,
    _records: std::marker::PhantomData<fn() -> T>,
}

impl<T: serde::de::DeserializeOwned> BlockRecords<T> {
    /// Errors: the length prefix does not decode or claims more records than bytes.
    pub(crate) fn new(block: &str, bytes: Arc<Vec<u8>>) -> Result<Self> {
        let corrupt = |reason: String| EmberError::StreamBlock { id: block.to_string(), reason };
        let (n, rest) = postcard::take_from_bytes::<usize>(&bytes)
            .map_err(|e| corrupt(format!("cannot decode its record count: {e}")))?;
        if n > rest.len() {
            return Err(corrupt(format!("claims {n} records in {} bytes", rest.len())));
        }
        let at = bytes.len() - rest.len();
        Ok(Self { bytes, at, left: n, block: block.to_string(), _records: std::marker::PhantomData })
    }

    fn decode_next(&mut self) -> Result<T> {
        let rest = &self.bytes[self.at..];
        let (record, tail) = postcard::take_from_bytes(rest).map_err(|e| EmberError::StreamBlock {
            id: self.block.clone(),
            reason: format!("cannot decode its records: {e}"),
        })?;
        self.at += rest.len() - tail.len();
        self.left -= 1;
        Ok(record)
    }
}

impl<T: serde::de::DeserializeOwned> Iterator for BlockRecords<T> {
    type Item = Result<T>;

    #[inline]
    fn next(&mut self) -> Option<Result<T>> {
        if self.left == 0 {
            return None;
        }
        let record = self.decode_next();
        if record.is_err() {
            self.left = 0;
        }
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Where one block of a batch can be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BlockSource {
    pub name: String,
    /// Block addresses of the executors holding it, the receiver's first.
    pub holders: Vec<String>,
    /// Its write-ahead log file (a path or URL), when the log is on.
    pub wal: Option<String>,
}

/// Reads a batch's blocks: partition `i` is block `i`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct ReadBlocks<T: Data> {
    pub stream: String,
    pub blocks: Vec<BlockSource>,
    #[serde(skip)]
    pub _records: std::marker::PhantomData<T>,
}

impl<T: Data> ReadBlocks<T> {
    /// The records of block `index`, decoded as they are taken.
    /// Errors: no holder and no log has the block, or its length prefix is corrupt.
    fn read(&self, index: usize) -> Result<BlockRecords<T>> {
        let source = self.blocks.get(index).ok_or_else(|| EmberError::Internal(format!("no block {index}")))?;
        let env = ember_core::task::TaskContext::with_current(|ctx| ctx.map(|c| c.env().clone()))
            .ok_or_else(|| EmberError::Internal("received blocks are read only inside a task".into()))?;
        let bytes = match env.stream_block(&source.name, &source.holders) {
            Ok(bytes) => bytes,
            Err(held) => match &source.wal {
                Some(path) => {
                    tracing::info!(block = %source.name, error = %held, "reading a received block from the write-ahead log");
                    let at = Location::parse(path)
                        .map_err(|e| EmberError::Config(format!("write-ahead log file {path}: {e}")))?;
                    Arc::new(ember_core::framed::read_framed_at(&at, env.conf())?)
                }
                None => {
                    return Err(EmberError::StreamBlock {
                        id: source.name.clone(),
                        reason: format!(
                            "received by stream {} but lost with its executors ({held}); \
                             spark.streaming.receiver.writeAheadLog.enable=true keeps received data across such losses",
                            self.stream
                        ),
                    });
                }
            },
        };
        BlockRecords::new(&source.name, bytes)
    }
}

impl<T: Data> PartitionOp<usize, T> for ReadBlocks<T> {
    const NAME: &'static str = "receivedBlocks";
    fn apply(self: Arc<Self>, _split: usize, input: ember::BoxIter<usize>) -> ember::BoxIter<T> {
        let me = self.clone();
        Box::new(
            input
                .flat_map(move |i| me.read(i).unwrap_or_else(|e| ember_core::error::raise(e)))
                .map(|r| r.unwrap_or_else(|e| ember_core::error::raise(e))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_names_round_trip_and_sort_in_arrival_order() {
        let id = StreamBlockId::new("socket stream/1", 3, 17);
        assert_eq!(id.name(), "input-socket_stream_1-3-17");
        assert_eq!(StreamBlockId::parse("socket stream/1", &id.name()), Some(id.clone()));
        assert_eq!(StreamBlockId::parse("other", &id.name()), None);
        assert_eq!(StreamBlockId::parse("socket stream/1", "input-socket_stream_1-x-1"), None);
        assert!(StreamBlockId::new("s", 1, 99) < StreamBlockId::new("s", 2, 0));
        assert!(StreamBlockId::new("s", 2, 9) < StreamBlockId::new("s", 2, 10));
    }

    fn decode(bytes: Vec<u8>) -> Result<Vec<String>> {
        BlockRecords::<String>::new("input-s-0-0", Arc::new(bytes))?.collect()
    }

    #[test]
    fn decodes_what_postcard_encodes_and_refuses_a_corrupt_block() {
        for n in [0usize, 1, 128, 50_000] {
            let lines: Vec<String> = (0..n).map(|i| format!("line {i}")).collect();
            let bytes = postcard::to_allocvec(&lines).unwrap();
            assert_eq!(decode(bytes).unwrap(), lines);
        }
        let two = postcard::to_allocvec(&vec!["a".to_string(), "b".to_string()]).unwrap();
        // Claims 127 records in 4 bytes: refused before any record is yielded.
        let mut bytes = two.clone();
        bytes[0] = 0x7f;
        let err = decode(bytes).unwrap_err().to_string();
        assert!(err.contains("input-s-0-0") && err.contains("claims 127 records"), "{err}");
        // Claims 3 records, holds 2 (and a byte): the third fails to decode, naming the block.
        let mut bytes = two;
        bytes[0] = 3;
        bytes.push(9);
        let err = decode(bytes).unwrap_err().to_string();
        assert!(err.contains("input-s-0-0") && err.contains("cannot decode"), "{err}");
    }

    #[test]
    fn counts_records_from_the_length_prefix() {
        for n in [0usize, 1, 127, 128, 300_000] {
            let bytes = postcard::to_allocvec(&vec![1u8; n]).unwrap();
            assert_eq!(record_count(&bytes), n as u64);
        }
    }
}
