//! On-disk and on-wire form of one shuffle block (the records of one map task for
//! one reduce partition) and of spill files: a sequence of frames, each
//! `[payload length u32][crc32 of codec byte + payload u32][codec u8][payload]`.
//! Frames end at record boundaries, so a block larger than memory is written and
//! read one frame at a time, and spilled frames are copied without recompression.
//! A zero-length block is an empty partition.

use crate::error::{EmberError, Result, raise};
use serde::{Serialize, de::DeserializeOwned};
use std::io::Read;
use std::marker::PhantomData;

const CODEC_NONE: u8 = 0;
const CODEC_LZ4: u8 = 1;
pub const FRAME_HEADER: usize = 9;

/// Raw bytes gathered before a frame is cut: large enough for lz4 to find
/// repeats, small enough that a reader holds little per open block.
pub const FRAME_BYTES: usize = 64 << 10;

/// Appends `raw` to `out` as one frame (nothing when `raw` is empty).
pub fn append_frame(out: &mut Vec<u8>, raw: &[u8], compress: bool) {
    if raw.is_empty() {
        return;
    }
    let (codec, payload) =
        if compress { (CODEC_LZ4, lz4_flex::compress_prepend_size(raw)) } else { (CODEC_NONE, raw.to_vec()) };
    out.reserve(FRAME_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(codec, &payload).to_le_bytes());
    out.push(codec);
    out.extend_from_slice(&payload);
}

/// A whole block as one frame.
pub fn encode_block(raw: &[u8], compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    append_frame(&mut out, raw, compress);
    out
}

fn checksum(codec: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[codec]);
    h.update(payload);
    h.finalize()
}

/// Verifies and decompresses one frame's payload.
fn decode_payload(expected_crc: u32, codec: u8, payload: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let actual = checksum(codec, payload);
    if actual != expected_crc {
        return Err(format!(
            "checksum mismatch (expected {expected_crc:08x}, found {actual:08x}): the block is corrupt"
        ));
    }
    match codec {
        CODEC_NONE => Ok(payload.to_vec()),
        CODEC_LZ4 => crate::lz4::decompress_bounded(payload).map_err(|e| format!("{e}: the block is corrupt")),
        other => Err(format!("unknown codec {other}")),
    }
}

fn parse_header(h: &[u8]) -> (usize, u32, u8) {
    let len = u32::from_le_bytes(h[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
    (len, crc, h[8])
}

/// The frame starting at `pos` of `block`: its decoded bytes and where the next starts.
fn frame_at(block: &[u8], pos: usize) -> std::result::Result<(Vec<u8>, usize), String> {
    let rest = &block[pos..];
    if rest.len() < FRAME_HEADER {
        return Err(format!("block truncated: {} bytes left at offset {pos}, a frame header needs 9", rest.len()));
    }
    let (len, crc, codec) = parse_header(rest);
    let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Err(format!("block truncated: frame at offset {pos} claims {len} bytes, {} left", rest.len() - 9));
    };
    Ok((decode_payload(crc, codec, payload)?, pos + FRAME_HEADER + len))
}

/// Verifies and decompresses a whole block; the error says what is wrong with it.
pub fn decode_block(block: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let (raw, next) = frame_at(block, pos)?;
        out.extend_from_slice(&raw);
        pos = next;
    }
    Ok(out)
}

/// Reads the next frame of a stream (a spill file); `None` at a clean end.
pub fn read_frame(input: &mut impl Read) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut header = [0u8; FRAME_HEADER];
    let mut got = 0;
    while got < FRAME_HEADER {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(format!("truncated frame header ({got} of 9 bytes)")),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let (len, crc, codec) = parse_header(&header);
    // Grown as bytes arrive, not sized by the header: a corrupt length cannot
    // allocate more than the file holds.
    let mut payload = Vec::with_capacity(len.min(FRAME_BYTES * 2));
    input.take(len as u64).read_to_end(&mut payload).map_err(|e| format!("frame of {len} bytes: {e}"))?;
    if payload.len() != len {
        return Err(format!("truncated frame: {} of {len} bytes", payload.len()));
    }
    decode_payload(crc, codec, &payload).map(Some)
}

/// Appends one record to a partition's buffer.
#[inline]
pub fn append_record<R: Serialize>(buf: &mut Vec<u8>, record: &R) -> Result<()> {
    let taken = std::mem::take(buf);
    *buf = postcard::to_extend(record, taken)?;
    Ok(())
}

/// Serialized size of a record (used to estimate memory held by buffers).
pub fn record_size<R: Serialize>(record: &R, scratch: &mut Vec<u8>) -> usize {
    scratch.clear();
    match postcard::to_extend(record, std::mem::take(scratch)) {
        Ok(v) => {
            *scratch = v;
            scratch.len()
        }
        Err(_) => 0,
    }
}

/// The records of one decoded frame, in order.
pub struct FrameRecords<R> {
    raw: Vec<u8>,
    pos: usize,
    _r: PhantomData<fn() -> R>,
}

impl<R> FrameRecords<R> {
    pub fn new(raw: Vec<u8>) -> Self {
        Self { raw, pos: 0, _r: PhantomData }
    }
    fn empty() -> Self {
        Self::new(Vec::new())
    }
}

impl<R: DeserializeOwned> Iterator for FrameRecords<R> {
    type Item = R;
    fn next(&mut self) -> Option<R> {
        if self.pos >= self.raw.len() {
            return None;
        }
        match postcard::take_from_bytes::<R>(&self.raw[self.pos..]) {
            Ok((r, rest)) => {
                self.pos = self.raw.len() - rest.len();
                Some(r)
            }
            Err(e) => raise(EmberError::Codec(format!("shuffle record: {e}"))),
        }
    }
}

/// The records of a whole decoded buffer, in order.
pub fn records<R: DeserializeOwned>(raw: Vec<u8>) -> FrameRecords<R> {
    FrameRecords::new(raw)
}

/// The records of a block, decoded one frame at a time; a bad frame is passed
/// to `on_error`, whose error is raised as the task's failure.
pub struct BlockRecords<R, E> {
    block: Vec<u8>,
    pos: usize,
    current: FrameRecords<R>,
    on_error: E,
}

impl<R: DeserializeOwned, E: FnMut(String) -> EmberError> BlockRecords<R, E> {
    pub fn new(block: Vec<u8>, on_error: E) -> Self {
        Self { block, pos: 0, current: FrameRecords::empty(), on_error }
    }
}

impl<R: DeserializeOwned, E: FnMut(String) -> EmberError> Iterator for BlockRecords<R, E> {
    type Item = R;
    fn next(&mut self) -> Option<R> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            if self.pos >= self.block.len() {
                return None;
            }
            match frame_at(&self.block, self.pos) {
                Ok((raw, next)) => {
                    self.current = FrameRecords::new(raw);
                    self.pos = next;
                }
                Err(message) => raise((self.on_error)(message)),
            }
        }
    }
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
            assert!(decode_block(&block[..block.len() - 1]).unwrap_err().contains("truncated"));
        }
        assert!(encode_block(&[], true).is_empty());
    }

    #[test]
    fn a_block_of_many_frames_reads_as_one_record_stream() {
        let mut block = Vec::new();
        let mut expected = Vec::new();
        for f in 0..5u64 {
            let mut raw = Vec::new();
            for i in 0..100u64 {
                append_record(&mut raw, &(f, i)).unwrap();
                expected.push((f, i));
            }
            append_frame(&mut block, &raw, f % 2 == 0);
        }
        let got: Vec<(u64, u64)> = BlockRecords::new(block.clone(), EmberError::Internal).collect();
        assert_eq!(got, expected);
        let mut stream = &block[..];
        let mut frames = 0;
        while let Some(raw) = read_frame(&mut stream).unwrap() {
            assert_eq!(records::<(u64, u64)>(raw).count(), 100);
            frames += 1;
        }
        assert_eq!(frames, 5);
    }

    /// A frame around `payload` with a checksum that matches, so decoding gets
    /// past the checksum to the codec (what a hostile peer can send).
    fn frame_with_valid_crc(codec: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&checksum(codec, payload).to_le_bytes());
        out.push(codec);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn an_lz4_frame_claiming_gigabytes_is_refused_before_allocating() {
        let mut payload = u32::MAX.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0x1f, 1, 2, 3]);
        let err = decode_block(&frame_with_valid_crc(CODEC_LZ4, &payload)).unwrap_err();
        assert!(err.contains("claims 4294967295 bytes"), "{err}");
        // The same through the stream reader (spill files).
        let frame = frame_with_valid_crc(CODEC_LZ4, &payload);
        assert!(read_frame(&mut &frame[..]).unwrap_err().contains("claims"));
        // A header claiming 4 GiB of payload in a 20-byte stream is truncated, not allocated.
        let mut header = frame[..FRAME_HEADER].to_vec();
        header[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(&[0u8; 11]);
        assert!(read_frame(&mut &header[..]).unwrap_err().contains("truncated frame: 11 of 4294967295"));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn valid_block() -> Vec<u8> {
            let mut block = Vec::new();
            for f in 0..3u64 {
                let mut raw = Vec::new();
                for i in 0..50u64 {
                    append_record(&mut raw, &(format!("key-{f}-{i}"), i)).unwrap();
                }
                append_frame(&mut block, &raw, f != 1);
            }
            block
        }

        proptest! {
            // Shuffle blocks come from other executors, spill files from disk:
            // whatever the bytes, decoding is an error or records, never a panic.
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = decode_block(&bytes);
                let mut stream = &bytes[..];
                while let Ok(Some(_)) = read_frame(&mut stream) {}
            }

            #[test]
            fn random_payloads_behind_valid_checksums_are_errors_not_panics(
                codec in 0u8..3,
                payload in proptest::collection::vec(any::<u8>(), 0..1024),
            ) {
                let frame = frame_with_valid_crc(codec, &payload);
                let _ = decode_block(&frame);
                let _ = read_frame(&mut &frame[..]);
            }

            #[test]
            fn truncated_and_flipped_blocks_are_detected(cut in 0usize..4096, flip in 0usize..4096, bit in 0u8..8) {
                let block = valid_block();
                // Frame boundaries: a cut there leaves whole frames (a shorter,
                // valid block: the reader checks a fetched block's length against
                // its map status); a cut anywhere else is an error.
                let mut boundaries = vec![0];
                while *boundaries.last().unwrap() < block.len() {
                    let (_, next) = frame_at(&block, *boundaries.last().unwrap()).unwrap();
                    boundaries.push(next);
                }
                let cut = cut % block.len();
                prop_assert_eq!(decode_block(&block[..cut]).is_ok(), boundaries.contains(&cut));
                let mut bad = block.clone();
                let at = flip % bad.len();
                bad[at] ^= 1 << bit;
                prop_assert!(decode_block(&bad).is_err());
                let mut stream = &bad[..];
                let mut failed = false;
                loop {
                    match read_frame(&mut stream) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => { failed = true; break; }
                    }
                }
                prop_assert!(failed);
            }
        }
    }
}
