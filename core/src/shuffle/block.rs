//! On-disk and on-wire form of one shuffle block (the records of one map task for
//! one reduce partition): a CRC32 of the codec byte and payload, the codec byte, the payload.
//! A zero-length block is an empty partition.

use crate::error::{EmberError, Result, raise};
use serde::{Serialize, de::DeserializeOwned};

const CODEC_NONE: u8 = 0;
const CODEC_LZ4: u8 = 1;
const HEADER: usize = 5;

pub fn encode_block(raw: &[u8], compress: bool) -> Vec<u8> {
    if raw.is_empty() {
        return Vec::new();
    }
    let (codec, payload) =
        if compress { (CODEC_LZ4, lz4_flex::compress_prepend_size(raw)) } else { (CODEC_NONE, raw.to_vec()) };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&checksum(codec, &payload).to_le_bytes());
    out.push(codec);
    out.extend_from_slice(&payload);
    out
}

fn checksum(codec: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[codec]);
    h.update(payload);
    h.finalize()
}

/// Verifies and decompresses a block; the error says what is wrong with it.
pub fn decode_block(block: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if block.is_empty() {
        return Ok(Vec::new());
    }
    if block.len() < HEADER {
        return Err(format!("block truncated to {} bytes", block.len()));
    }
    let expected = u32::from_le_bytes(block[..4].try_into().expect("4 bytes"));
    let payload = &block[HEADER..];
    let actual = checksum(block[4], payload);
    if actual != expected {
        return Err(format!("checksum mismatch (expected {expected:08x}, found {actual:08x}): the block is corrupt"));
    }
    match block[4] {
        CODEC_NONE => Ok(payload.to_vec()),
        CODEC_LZ4 => lz4_flex::decompress_size_prepended(payload).map_err(|e| format!("lz4: {e}")),
        other => Err(format!("unknown codec {other}")),
    }
}

/// Appends one record to a partition's buffer.
#[inline]
pub fn append_record<R: Serialize>(buf: &mut Vec<u8>, record: &R) -> Result<()> {
    let taken = std::mem::take(buf);
    *buf = postcard::to_extend(record, taken)?;
    Ok(())
}

/// The records of a decoded block, in order.
pub fn records<R: DeserializeOwned>(raw: Vec<u8>) -> impl Iterator<Item = R> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= raw.len() {
            return None;
        }
        match postcard::take_from_bytes::<R>(&raw[pos..]) {
            Ok((r, rest)) => {
                pos = raw.len() - rest.len();
                Some(r)
            }
            Err(e) => raise(EmberError::Codec(format!("shuffle record: {e}"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_corruption_is_detected() {
        for compress in [true, false] {
            let mut raw = Vec::new();
            for i in 0..1000u64 {
                append_record(&mut raw, &(format!("k{i}"), i)).unwrap();
            }
            let block = encode_block(&raw, compress);
            let back = decode_block(&block).unwrap();
            let recs: Vec<(String, u64)> = records(back).collect();
            assert_eq!(recs.len(), 1000);
            assert_eq!(recs[999], ("k999".to_string(), 999));
            let mut bad = block.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x40;
            assert!(decode_block(&bad).unwrap_err().contains("checksum mismatch"));
        }
        assert!(encode_block(&[], true).is_empty());
    }
}
