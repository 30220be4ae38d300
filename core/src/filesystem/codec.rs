//! Compressed files, chosen by extension as Hadoop's `CompressionCodecFactory`
//! does: `.gz` (gzip, flate2), `.bz2` (bzip2), `.zst` (Zstandard, zstd) and `.lz4`
//! (the LZ4 frame format of the `lz4` command, lz4_flex).
//!
//! None of these formats can be read from the middle, so a compressed input file is
//! one split (one partition), as in Spark. Concatenated members (`cat a.gz b.gz`)
//! read as one stream, as `zcat` reads them.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::Path;

/// A compression format for text input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Codec {
    /// gzip (RFC 1952), extension `gz`; Hadoop's `GzipCodec`.
    Gzip,
    /// bzip2, extension `bz2`; Hadoop's `BZip2Codec`.
    Bzip2,
    /// Zstandard frames, extension `zst`; Hadoop's `ZStandardCodec`.
    Zstd,
    /// LZ4 frames, extension `lz4` (the `lz4` command's format; Hadoop's
    /// `Lz4Codec` writes its own block format instead, which Ember does not read).
    Lz4,
}

/// Zstandard's default level (3), the `zstd` command's.
const ZSTD_LEVEL: i32 = 3;

impl Codec {
    /// Every codec.
    pub const ALL: [Codec; 4] = [Codec::Gzip, Codec::Bzip2, Codec::Zstd, Codec::Lz4];

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "gz",
            Codec::Bzip2 => "bz2",
            Codec::Zstd => "zst",
            Codec::Lz4 => "lz4",
        }
    }

    /// The short name (`gzip`, `bzip2`, `zstd`, `lz4`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }

    /// The codec of a file by its extension (case-insensitive), or `None` for a
    /// file read as it is.
    pub fn for_path(path: &Path) -> Option<Codec> {
        let ext = path.extension()?.to_str()?;
        Codec::ALL.into_iter().find(|c| c.extension().eq_ignore_ascii_case(ext))
    }

    /// A reader of the decompressed bytes of `compressed`.
    pub fn decoder<'a, R: Read + Send + 'a>(self, compressed: R) -> io::Result<Box<dyn Read + Send + 'a>> {
        let reader = io::BufReader::with_capacity(1 << 16, compressed);
        Ok(match self {
            Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Codec::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
            Codec::Zstd => Box::new(zstd::Decoder::with_buffer(reader)?),
            Codec::Lz4 => Box::new(Lz4Frames {
                frame: Some(lz4_flex::frame::FrameDecoder::new(EofTracking { inner: reader, eof: false })),
            }),
        })
    }

    /// A writer that compresses into `out`; call [`Encoder::finish`] to write the
    /// format's trailer.
    pub fn encoder<W: Write>(self, out: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(out, flate2::Compression::default())),
            Codec::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(out, bzip2::Compression::default())),
            Codec::Zstd => Encoder::Zstd(zstd::Encoder::new(out, ZSTD_LEVEL)?),
            Codec::Lz4 => Encoder::Lz4(lz4_flex::frame::FrameEncoder::new(out)),
        })
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Codec {
    type Err = String;

    /// A codec by short name (`gzip`/`gz`, `bzip2`/`bz2`, `zstd`/`zst`, `lz4`) or by
    /// Hadoop class name (`org.apache.hadoop.io.compress.GzipCodec`, `GzipCodec`,
    /// `BZip2Codec`, `ZStandardCodec`), case-insensitive. Hadoop's `Lz4Codec` and
    /// `DefaultCodec` name other formats and are refused with the reason.
    fn from_str(name: &str) -> Result<Self, String> {
        let short = name.trim().rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        Ok(match short.as_str() {
            "gzip" | "gz" | "gzipcodec" => Codec::Gzip,
            "bzip2" | "bz2" | "bzip2codec" => Codec::Bzip2,
            "zstd" | "zst" | "zstandard" | "zstandardcodec" => Codec::Zstd,
            "lz4" => Codec::Lz4,
            "lz4codec" => {
                return Err("Hadoop's Lz4Codec writes its own block format, which Ember does not read or write; \
                            lz4 is the lz4 command's frame format"
                    .into());
            }
            "defaultcodec" => {
                return Err("Hadoop's DefaultCodec (zlib, .deflate) is not supported; use gzip".into());
            }
            _ => return Err(format!("unknown compression codec {name:?} (gzip, bzip2, zstd or lz4)")),
        })
    }
}

/// A reader that remembers whether its input ended.
struct EofTracking<R> {
    inner: R,
    eof: bool,
}

impl<R: io::BufRead> Read for EofTracking<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

impl<R: io::BufRead> io::BufRead for EofTracking<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let available = self.inner.fill_buf()?;
        if available.is_empty() {
            self.eof = true;
        }
        Ok(available)
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

/// LZ4 frames one after the other, as the `lz4` command reads them (lz4_flex's
/// decoder stops after one frame). lz4_flex also ends a frame quietly when its
/// input ends between blocks, so a file cut at a block boundary would read as a
/// shorter valid one: a frame that ended because the input did is an error.
struct Lz4Frames<R: io::BufRead> {
    frame: Option<lz4_flex::frame::FrameDecoder<EofTracking<R>>>,
}

impl<R: io::BufRead> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else { return Ok(0) };
            let n = frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut inner = self.frame.take().map(|f| f.into_inner()).expect("a frame");
            if inner.eof {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the lz4 frame is truncated (no end mark)"));
            }
            if io::BufRead::fill_buf(&mut inner)?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(lz4_flex::frame::FrameDecoder::new(inner));
        }
    }
}

/// A compressing writer of one [`Codec`].
pub enum Encoder<W: Write> {
    /// [`Codec::Gzip`].
    Gzip(flate2::write::GzEncoder<W>),
    /// [`Codec::Bzip2`].
    Bzip2(bzip2::write::BzEncoder<W>),
    /// [`Codec::Zstd`].
    Zstd(zstd::Encoder<'static, W>),
    /// [`Codec::Lz4`].
    Lz4(lz4_flex::frame::FrameEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Writes the format's trailer and returns the inner writer (not flushed).
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Lz4(e) => e.finish().map_err(io::Error::other),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Bzip2(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Lz4(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Bzip2(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Lz4(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut e = codec.encoder(Vec::new()).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decompress(codec: Codec, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        codec.decoder(data)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_codec_round_trips_and_reads_concatenated_members() {
        let text: Vec<u8> = (0..20_000).flat_map(|i| format!("línea {i} día\n").into_bytes()).collect();
        for codec in Codec::ALL {
            let packed = compress(codec, &text);
            assert!(packed.len() < text.len() / 2, "{codec} did not compress");
            assert_eq!(decompress(codec, &packed).unwrap(), text, "{codec}");
            let twice = [compress(codec, b"a\n"), compress(codec, b"b\n")].concat();
            assert_eq!(decompress(codec, &twice).unwrap(), b"a\nb\n", "{codec} concatenated");
            assert_eq!(decompress(codec, &compress(codec, b"")).unwrap(), b"", "{codec} empty");
        }
    }

    #[test]
    fn damaged_input_is_an_error_not_garbage() {
        let text: Vec<u8> = (0..5_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        for codec in Codec::ALL {
            let packed = compress(codec, &text);
            let truncated = &packed[..packed.len() / 2];
            assert!(decompress(codec, truncated).is_err(), "{codec}: truncated input read without error");
            assert!(decompress(codec, b"plain text, not compressed\n").is_err(), "{codec}: plain text accepted");
        }
    }

    #[test]
    fn an_lz4_file_cut_at_a_block_boundary_is_an_error() {
        // Incompressible bytes: blocks are stored as they are, so the frame is a
        // 7-byte header, then blocks of a 4-byte length (high bit: stored) and data.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let packed = compress(Codec::Lz4, &data);
        let first_block = u32::from_le_bytes(packed[7..11].try_into().unwrap());
        assert!(first_block & 0x8000_0000 != 0, "an uncompressed block");
        let first_block_end = 7 + 4 + (first_block & 0x7fff_ffff) as usize;
        assert!(first_block_end < packed.len(), "the end mark follows");
        let err = decompress(Codec::Lz4, &packed[..first_block_end]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(decompress(Codec::Lz4, &packed).unwrap(), data);
    }

    #[test]
    fn codecs_by_extension_and_by_name() {
        assert_eq!(Codec::for_path(Path::new("/d/a.txt.gz")), Some(Codec::Gzip));
        assert_eq!(Codec::for_path(Path::new("/d/A.BZ2")), Some(Codec::Bzip2));
        assert_eq!(Codec::for_path(Path::new("x.zst")), Some(Codec::Zstd));
        assert_eq!(Codec::for_path(Path::new("x.lz4")), Some(Codec::Lz4));
        assert_eq!(Codec::for_path(Path::new("x.txt")), None);
        assert_eq!("org.apache.hadoop.io.compress.GzipCodec".parse(), Ok(Codec::Gzip));
        assert_eq!("BZip2Codec".parse(), Ok(Codec::Bzip2));
        assert_eq!("zstd".parse(), Ok(Codec::Zstd));
        assert_eq!("LZ4".parse(), Ok(Codec::Lz4));
        assert!("Lz4Codec".parse::<Codec>().unwrap_err().contains("block format"));
        assert!("org.apache.hadoop.io.compress.DefaultCodec".parse::<Codec>().unwrap_err().contains("deflate"));
        assert!("snappy".parse::<Codec>().unwrap_err().contains("snappy"));
    }
}
