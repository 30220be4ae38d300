//! lz4 decompression of bytes that come from the network or disk, bounded.
//!
//! lz4_flex's size-prepended format starts with the decompressed length, and
//! the decoder allocates that much before it reads a byte: a corrupt or hostile
//! buffer could ask for gigabytes. The claim is checked first against what lz4
//! can reach from the compressed bytes at hand.

/// lz4's largest expansion: a sequence's bytes out per byte in.
pub const MAX_RATIO: usize = 255;

/// Decompresses `compressed` (lz4_flex's size-prepended format).
/// Errors: a claimed size beyond [`MAX_RATIO`] times the input, or bad lz4.
pub fn decompress_bounded(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let claimed = compressed.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    if claimed > compressed.len().saturating_mul(MAX_RATIO) {
        return Err(format!("lz4 data claims {claimed} bytes from {} compressed: it is corrupt", compressed.len()));
    }
    lz4_flex::decompress_size_prepended(compressed).map_err(|e| format!("lz4: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_an_impossible_claim_before_allocating() {
        let data = vec![7u8; 100_000];
        let packed = lz4_flex::compress_prepend_size(&data);
        assert_eq!(decompress_bounded(&packed).unwrap(), data);
        let mut hostile = packed.clone();
        hostile[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decompress_bounded(&hostile).unwrap_err().contains("claims"));
        assert!(decompress_bounded(&[]).is_err() || decompress_bounded(&[]).unwrap().is_empty());
    }
}
