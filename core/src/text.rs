//! Text input: resolving paths (file, directory, glob, comma-separated list; plain
//! paths and `file:` URLs, see [`crate::filesystem`]), cutting files into splits,
//! and reading a split's lines with Hadoop's rule that a line belongs to the split
//! holding its first byte. Lines end at `\n`, `\r\n` or a lone `\r`, as in Hadoop's
//! `LineReader`. A compressed file ([`Codec`] by extension) is one split,
//! read through its decoder.

use crate::data::BoxIter;
use crate::error::{EmberError, Result, raise};
use crate::filesystem::codec::Codec;
use crate::filesystem::local_path;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Bytes `start..end` of one file, a task's share of the input. A compressed file's
/// split is the whole file and `codec` says how to decode it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    /// The file's absolute local path.
    pub path: String,
    /// First byte of the split (0 for a compressed file).
    pub start: u64,
    /// One past the last byte (the file's size for a compressed file).
    pub end: u64,
    /// The file's compression, by its extension.
    pub codec: Option<Codec>,
}

/// Largest split: a large file gets one partition per 32 MiB (Hadoop's local block size).
pub const MAX_SPLIT_BYTES: u64 = 32 << 20;

/// Every input file named by `spec`; an error that names the path when nothing matches.
pub fn resolve_input_files(spec: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let missing = |reason: &str| EmberError::InputPath { path: part.to_string(), reason: reason.to_string() };
        let resolved = local_path(part).map_err(|e| missing(&e.to_string()))?;
        let pattern = resolved.to_str().ok_or_else(|| missing("the path is not UTF-8"))?;
        if pattern.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(pattern)
                .map_err(|e| missing(&format!("bad glob pattern: {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(missing("the pattern matches no files"));
            }
            matched.sort();
            files.extend(matched);
            continue;
        }
        let path = resolved.as_path();
        let meta = std::fs::metadata(path).map_err(|e| missing(&format!("does not exist or cannot be read ({e})")))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| missing(&e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    // Hidden and underscore files are markers (_SUCCESS, .crc), as in Hadoop.
                    p.is_file() && !name.starts_with('.') && !name.starts_with('_')
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.to_path_buf());
        }
    }
    if files.is_empty() && spec.trim().is_empty() {
        return Err(EmberError::InputPath { path: spec.to_string(), reason: "empty path".into() });
    }
    Ok(files)
}

/// Cuts the files into splits: about `min_partitions` in total, at most
/// [`MAX_SPLIT_BYTES`] each; an empty file yields no split.
pub fn plan_splits(files: &[PathBuf], min_partitions: usize) -> Result<Vec<FileSplit>> {
    let sizes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).map_err(|e| EmberError::io(f.display(), e)))
        .collect::<Result<Vec<u64>>>()?;
    let total: u64 = sizes.iter().sum();
    let goal = total / min_partitions.max(1) as u64;
    let split_size = goal.clamp(1, MAX_SPLIT_BYTES);
    let mut splits = Vec::new();
    for (file, size) in files.iter().zip(sizes) {
        let path = file.to_string_lossy().into_owned();
        if let Some(codec) = Codec::for_path(file) {
            if size > 0 {
                splits.push(FileSplit { path, start: 0, end: size, codec: Some(codec) });
            }
            continue;
        }
        let mut start = 0;
        while start < size {
            // Avoid a tiny last split (Hadoop's 10% slop).
            let end = if size - start <= split_size + split_size / 10 { size } else { start + split_size };
            splits.push(FileSplit { path: path.clone(), start, end, codec: None });
            start = end;
        }
    }
    Ok(splits)
}

/// One file of `whole_text_files`, read whole by one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WholeFile {
    /// The file's absolute local path.
    pub path: String,
    /// The file's compression, by its extension.
    pub codec: Option<Codec>,
}

/// Groups files into at most `min_partitions` partitions (at least one file
/// each) of about equal total size, largest files first into the lightest group
/// (as Spark's `CombineFileInputFormat` balances `wholeTextFiles`); within a
/// partition files keep their order.
pub fn plan_whole_files(files: &[PathBuf], min_partitions: usize) -> Result<Vec<Vec<WholeFile>>> {
    let sizes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).map_err(|e| EmberError::io(f.display(), e)))
        .collect::<Result<Vec<u64>>>()?;
    let groups = min_partitions.clamp(1, files.len().max(1));
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut load = vec![0u64; groups];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for i in order {
        let lightest = (0..groups).min_by_key(|&g| (load[g], members[g].len())).expect("a group");
        load[lightest] += sizes[i];
        members[lightest].push(i);
    }
    Ok(members
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(|mut m| {
            m.sort_unstable();
            m.into_iter()
                .map(|i| WholeFile { path: files[i].to_string_lossy().into_owned(), codec: Codec::for_path(&files[i]) })
                .collect()
        })
        .collect())
}

/// `(file:<path>, content)` of one file, decompressed; the key is the URL Spark's
/// `wholeTextFiles` gives (`file:/abs/path`). Bytes that are not UTF-8 become
/// U+FFFD, as Hadoop's `Text` decoding does.
pub fn read_whole_file(file: &WholeFile) -> Result<(String, String)> {
    let mut bytes = Vec::new();
    let opened = File::open(&file.path).map_err(|e| EmberError::io(&file.path, e))?;
    let mut reader: Box<dyn Read + Send> = match file.codec {
        Some(codec) => codec.decoder(opened).map_err(|e| read_error(&file.path, Some(codec), e))?,
        None => Box::new(opened),
    };
    reader.read_to_end(&mut bytes).map_err(|e| read_error(&file.path, file.codec, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((format!("file:{}", file.path), text))
}

/// Cuts files of fixed-length records into splits on record boundaries.
pub fn plan_record_splits(files: &[PathBuf], record_len: u64, min_partitions: usize) -> Result<Vec<FileSplit>> {
    if record_len == 0 {
        return Err(EmberError::Invalid("record length must be positive".into()));
    }
    let mut splits = Vec::new();
    for s in plan_splits(files, min_partitions)? {
        if s.codec.is_some() {
            // Checked against the record length as it is read.
            splits.push(s);
            continue;
        }
        let start = s.start.div_ceil(record_len) * record_len;
        let end = s.end.div_ceil(record_len) * record_len;
        if start < end {
            splits.push(FileSplit { start, end, ..s });
        }
    }
    for f in files.iter().filter(|f| Codec::for_path(f).is_none()) {
        let len = std::fs::metadata(f).map_err(|e| EmberError::io(f.display(), e))?.len();
        if len % record_len != 0 {
            return Err(EmberError::InputPath {
                path: f.display().to_string(),
                reason: format!("size {len} is not a multiple of the record length {record_len}"),
            });
        }
    }
    Ok(splits)
}

/// The fixed-length records of one split.
pub fn read_split_records(split: &FileSplit, record_len: usize) -> Result<BoxIter<Vec<u8>>> {
    let path = split.path.clone();
    let codec = split.codec;
    let mut reader: Box<dyn Read + Send> = match codec {
        Some(_) => decoded(split)?,
        None => {
            let mut file = File::open(&split.path).map_err(|e| EmberError::io(&split.path, e))?;
            file.seek(SeekFrom::Start(split.start)).map_err(|e| EmberError::io(&split.path, e))?;
            Box::new(BufReader::with_capacity(1 << 20, file.take(split.end - split.start)))
        }
    };
    Ok(Box::new(std::iter::from_fn(move || {
        let mut rec = vec![0u8; record_len];
        let mut filled = 0;
        while filled < record_len {
            match reader.read(&mut rec[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => raise(read_error(&path, codec, e)),
            }
        }
        match filled {
            0 => None,
            n if n == record_len => Some(rec),
            n => raise(EmberError::InputPath {
                path: path.clone(),
                reason: format!("ends with a partial record of {n} bytes (record length {record_len})"),
            }),
        }
    })))
}

/// The error of a failed read of `path`, naming the codec when decoding failed.
fn read_error(path: &str, codec: Option<Codec>, e: std::io::Error) -> EmberError {
    match codec {
        Some(codec) => EmberError::Io { path: path.to_string(), message: format!("cannot decompress ({codec}): {e}") },
        None => EmberError::io(path, e),
    }
}

/// The decompressed bytes of a compressed split's file.
fn decoded(split: &FileSplit) -> Result<Box<dyn Read + Send>> {
    let codec = split.codec.ok_or_else(|| EmberError::Internal(format!("{} is not compressed", split.path)))?;
    let file = File::open(&split.path).map_err(|e| EmberError::io(&split.path, e))?;
    let decoder = codec.decoder(file).map_err(|e| read_error(&split.path, Some(codec), e))?;
    Ok(decoder)
}

/// The lines of one split, without their line terminators.
pub fn read_split_lines(split: &FileSplit) -> Result<BoxIter<String>> {
    if split.codec.is_some() {
        let reader = BufReader::with_capacity(1 << 20, decoded(split)?);
        return Ok(lines(reader, 0, u64::MAX, split.path.clone(), split.codec));
    }
    let file = File::open(&split.path).map_err(|e| EmberError::io(&split.path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut pos = split.start;
    if split.start > 0 {
        // Start one byte early and drop everything up to the first newline: the
        // partial line belongs to the previous split, and a line starting exactly at
        // `start` is kept.
        let mut skipped = Vec::new();
        reader.seek(SeekFrom::Start(split.start - 1)).map_err(|e| EmberError::io(&split.path, e))?;
        pos = split.start - 1;
        pos += read_line(&mut reader, &mut skipped).map_err(|e| EmberError::io(&split.path, e))? as u64;
    }
    Ok(lines(reader, pos, split.end, split.path.clone(), None))
}

/// Appends the next line of `reader` to `line` without its terminator (`\n`,
/// `\r\n` or a lone `\r`) and returns the bytes consumed, terminator included;
/// 0 at the end of the input.
fn read_line<R: BufRead>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(consumed);
        }
        match memchr::memchr2(b'\n', b'\r', available) {
            None => {
                let n = available.len();
                line.extend_from_slice(available);
                reader.consume(n);
                consumed += n;
            }
            Some(i) => {
                let cr = available[i] == b'\r';
                line.extend_from_slice(&available[..i]);
                reader.consume(i + 1);
                consumed += i + 1;
                // A `\r` followed by `\n` (perhaps in the next buffer) ends one line.
                if cr && reader.fill_buf()?.first() == Some(&b'\n') {
                    reader.consume(1);
                    consumed += 1;
                }
                return Ok(consumed);
            }
        }
    }
}

/// The lines of `reader`, which is at byte `pos` of `path`, up to and including
/// the line that holds byte `end - 1`.
fn lines<R: BufRead + Send + 'static>(
    mut reader: R,
    mut pos: u64,
    end: u64,
    path: String,
    codec: Option<Codec>,
) -> BoxIter<String> {
    let mut buf = Vec::with_capacity(256);
    Box::new(std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        buf.clear();
        let n = match read_line(&mut reader, &mut buf) {
            Ok(n) => n,
            Err(e) => raise(read_error(&path, codec, e)),
        };
        if n == 0 {
            return None;
        }
        pos += n as u64;
        Some(match std::str::from_utf8(&buf) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(&buf).into_owned(),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    #[test]
    fn every_line_is_read_exactly_once_whatever_the_split_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&"x".repeat(i % 17));
            text.push_str(&format!("line{i}"));
            // \r\n, a lone \r and \n line ends, as Hadoop's LineReader reads them.
            text.push_str(["\r\n", "\r", " \n"][i % 3]);
            if i % 7 == 0 {
                text.push('\n'); // an empty line
            }
        }
        text.push_str("last-without-newline");
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        let expected: Vec<String> = text.replace("\r\n", "\n").split(['\n', '\r']).map(str::to_string).collect();
        // 72 extra newlines, of which 24 follow a lone \r and complete its \r\n.
        assert_eq!(expected.len(), 500 + 48 + 1);
        for parts in [1, 2, 3, 7, 64, 1000] {
            let splits = plan_splits(std::slice::from_ref(&path), parts).unwrap();
            let got: Vec<String> = splits.iter().flat_map(|s| read_split_lines(s).unwrap()).collect();
            assert_eq!(got, expected, "{parts} partitions");
        }
    }

    fn write_compressed(path: &Path, codec: Codec, text: &str) {
        let mut e = codec.encoder(File::create(path).unwrap()).unwrap();
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
    }

    #[test]
    fn a_compressed_file_is_one_split_read_as_its_plain_twin() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..3000).map(|i| format!("día {i}\r\n")).collect::<String>() + "last";
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, &text).unwrap();
        let want: Vec<String> = plan_splits(std::slice::from_ref(&plain), 4)
            .unwrap()
            .iter()
            .flat_map(|s| read_split_lines(s).unwrap())
            .collect();
        assert_eq!(want.len(), 3001);
        for codec in Codec::ALL {
            let path = dir.path().join(format!("in.txt.{}", codec.extension()));
            write_compressed(&path, codec, &text);
            let splits = plan_splits(std::slice::from_ref(&path), 4).unwrap();
            assert_eq!(splits.len(), 1, "{codec}");
            let got: Vec<String> = read_split_lines(&splits[0]).unwrap().collect();
            assert_eq!(got, want, "{codec}");
        }
    }

    #[test]
    fn a_corrupt_compressed_file_fails_naming_the_file_and_codec() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.gz");
        let mut packed = Codec::Gzip.encoder(Vec::new()).unwrap();
        packed.write_all("some words\n".repeat(10_000).as_bytes()).unwrap();
        let packed = packed.finish().unwrap();
        std::fs::write(&path, &packed[..packed.len() / 2]).unwrap();
        let split = plan_splits(std::slice::from_ref(&path), 1).unwrap().remove(0);
        let err = std::panic::catch_unwind(|| read_split_lines(&split).unwrap().count()).unwrap_err();
        let err = crate::error::from_panic(err).to_string();
        assert!(err.contains("broken.gz") && err.contains("gzip"), "{err}");
    }

    #[test]
    fn compressed_fixed_length_records_are_read_and_a_partial_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.bin.zst");
        write_compressed(&path, Codec::Zstd, "abcdefghij");
        let splits = plan_record_splits(std::slice::from_ref(&path), 5, 3).unwrap();
        let got: Vec<Vec<u8>> = splits.iter().flat_map(|s| read_split_records(s, 5).unwrap()).collect();
        assert_eq!(got, vec![b"abcde".to_vec(), b"fghij".to_vec()]);
        let err = std::panic::catch_unwind(|| read_split_records(&splits[0], 4).unwrap().count()).unwrap_err();
        let err = crate::error::from_panic(err).to_string();
        assert!(err.contains("partial record of 2 bytes"), "{err}");
    }

    #[test]
    fn file_urls_and_globs_in_file_urls_resolve() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.txt", "b.txt", "c.log"] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        let url = format!("file://{}/*.txt", dir.path().display());
        let files = resolve_input_files(&url).unwrap();
        assert_eq!(files, vec![dir.path().join("a.txt"), dir.path().join("b.txt")]);
        let list = format!("file://{0}/c.log, {0}/a.txt", dir.path().display());
        assert_eq!(resolve_input_files(&list).unwrap(), vec![dir.path().join("c.log"), dir.path().join("a.txt")]);
        let err = resolve_input_files("s3a://bucket/in").unwrap_err().to_string();
        assert!(err.contains("s3a://bucket/in") && err.contains("not supported"), "{err}");
    }

    #[test]
    fn whole_files_are_balanced_over_partitions_and_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (name, size) in [("a", 900), ("b", 100), ("c", 500), ("d", 450), ("e", 0)] {
            let path = dir.path().join(name);
            std::fs::write(&path, "x".repeat(size)).unwrap();
            files.push(path);
        }
        let groups = plan_whole_files(&files, 2).unwrap();
        let names: Vec<Vec<&str>> =
            groups.iter().map(|g| g.iter().map(|f| f.path.rsplit('/').next().unwrap()).collect()).collect();
        assert_eq!(names, vec![vec!["a", "b"], vec!["c", "d", "e"]], "1000 and 950 bytes");
        assert_eq!(plan_whole_files(&files, 99).unwrap().len(), 5);
        assert_eq!(plan_whole_files(&[], 3).unwrap().len(), 0);
        let gz = dir.path().join("f.txt.gz");
        write_compressed(&gz, Codec::Gzip, "hola\nmundo");
        let file = &plan_whole_files(std::slice::from_ref(&gz), 1).unwrap()[0][0];
        assert_eq!(read_whole_file(file).unwrap(), (format!("file:{}", gz.display()), "hola\nmundo".to_string()));
    }

    #[test]
    fn missing_paths_are_named_in_the_error() {
        let err = resolve_input_files("/definitely/not/here.txt").unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here.txt"), "{err}");
        let err = resolve_input_files("/definitely/not/*.txt").unwrap_err();
        assert!(err.to_string().contains("matches no files"), "{err}");
    }
}
