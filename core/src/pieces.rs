//! Broadcast values and added files travel as pieces (Spark's TorrentBroadcast):
//! the driver cuts a blob into `spark.broadcast.blockSize` pieces with a crc32
//! each; executors fetch pieces from any holder and then serve them themselves.

use crate::error::EmberError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;

/// What is distributed in pieces: a broadcast value or a file added with `addFile`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BlobId {
    Broadcast(u64),
    File(String),
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobId::Broadcast(id) => write!(f, "broadcast {id}"),
            BlobId::File(name) => write!(f, "file {name:?}"),
        }
    }
}

impl BlobId {
    /// The engine error for this blob, with `reason`.
    pub fn error(&self, reason: impl Into<String>) -> EmberError {
        match self {
            BlobId::Broadcast(id) => EmberError::Broadcast { id: *id, reason: reason.into() },
            BlobId::File(name) => EmberError::File { name: name.clone(), reason: reason.into() },
        }
    }

    /// A file-name-safe, collision-free name for this blob's pieces on disk.
    pub fn storage_name(&self) -> String {
        match self {
            BlobId::Broadcast(id) => format!("broadcast_{id}"),
            BlobId::File(name) => {
                let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
                format!("file_{hex}")
            }
        }
    }
}

/// What an executor needs to fetch and check a blob, sent by the driver on first read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub total_bytes: u64,
    /// Size of every piece but the last (`spark.broadcast.blockSize`).
    pub piece_size: u64,
    /// crc32 of each piece, when `spark.broadcast.checksum` is on.
    pub checksums: Option<Vec<u32>>,
    /// Whether the bytes are lz4-compressed (`spark.broadcast.compress`).
    pub compressed: bool,
}

impl BlobMeta {
    pub fn num_pieces(&self) -> usize {
        (self.total_bytes.div_ceil(self.piece_size.max(1)) as usize).max(1)
    }

    /// Byte range of piece `index` within the blob.
    pub fn piece_range(&self, index: usize) -> Range<usize> {
        let start = (index as u64).saturating_mul(self.piece_size).min(self.total_bytes);
        let end = start.saturating_add(self.piece_size).min(self.total_bytes);
        start as usize..end as usize
    }

    /// Checks a fetched piece's size and checksum.
    pub fn verify(&self, index: usize, bytes: &[u8]) -> Result<(), String> {
        if index >= self.num_pieces() {
            return Err(format!("piece {index} out of {}", self.num_pieces()));
        }
        let expected = self.piece_range(index).len();
        if bytes.len() != expected {
            return Err(format!("piece {index} has {} bytes, expected {expected}", bytes.len()));
        }
        if let Some(sums) = &self.checksums {
            let expected = sums.get(index).ok_or_else(|| format!("no checksum for piece {index}"))?;
            let sum = checksum(bytes);
            if *expected != sum {
                return Err(format!("piece {index} has crc32 {sum:08x}, expected {expected:08x}"));
            }
        }
        Ok(())
    }
}

pub fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Cuts `bytes` into pieces; returns their metadata and the pieces.
pub fn cut(bytes: &[u8], piece_size: u64, with_checksums: bool, compressed: bool) -> (BlobMeta, Vec<Vec<u8>>) {
    let meta = BlobMeta { total_bytes: bytes.len() as u64, piece_size: piece_size.max(1), checksums: None, compressed };
    let pieces: Vec<Vec<u8>> = (0..meta.num_pieces()).map(|i| bytes[meta.piece_range(i)].to_vec()).collect();
    let checksums = with_checksums.then(|| pieces.iter().map(|p| checksum(p)).collect());
    (BlobMeta { checksums, ..meta }, pieces)
}

/// A peer executor holding a piece.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHolder {
    pub executor_id: String,
    /// host:port of its block server.
    pub address: String,
}

/// The block master's answer to "who holds piece i?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PieceSource {
    /// Fetch from one of these peers (in random order), and from the driver last
    /// when `driver` is set.
    Holders { peers: Vec<PeerHolder>, driver: bool },
    /// Another executor is fetching this piece from the driver right now: fetch
    /// other pieces first and ask again, so the driver uploads each piece once.
    Wait,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_blob_and_verify() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let (meta, pieces) = cut(&data, 4096, true, false);
        assert_eq!(meta.num_pieces(), 3);
        assert_eq!(pieces.concat(), data);
        for (i, p) in pieces.iter().enumerate() {
            assert_eq!(meta.verify(i, p), Ok(()));
        }
        let mut bad = pieces[1].clone();
        bad[5] ^= 1;
        assert!(meta.verify(1, &bad).unwrap_err().contains("crc32"));
        assert!(meta.verify(2, &pieces[1]).unwrap_err().contains("bytes"));
        let short = BlobMeta { checksums: Some(vec![]), ..meta.clone() };
        assert!(short.verify(0, &pieces[0]).unwrap_err().contains("no checksum"), "a short list is an error");
        let (empty, pieces) = cut(&[], 4096, true, true);
        assert_eq!((empty.num_pieces(), pieces.len(), pieces[0].len()), (1, 1, 0));
        assert_ne!(BlobId::File("a".into()).storage_name(), BlobId::File("b".into()).storage_name());
    }

    proptest::proptest! {
        // Piece metadata comes from the driver and pieces from other
        // executors: whatever they hold, checking a piece is an answer, never
        // a panic (short checksum lists, sizes near u64::MAX included).
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn any_metadata_and_piece_is_checked_without_panicking(
            total_bytes in proptest::prelude::any::<u64>(),
            piece_size in proptest::prelude::any::<u64>(),
            checksums in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u32>(), 0..4)),
            index in 0usize..8,
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let meta = BlobMeta { total_bytes, piece_size, checksums, compressed: false };
            let _ = meta.num_pieces();
            let _ = meta.verify(index, &bytes);
        }
    }
}
