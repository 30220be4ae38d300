//! Text input: resolving paths (file, directory, glob, comma-separated list; plain
//! paths and `file:` URLs, see [`crate::filesystem`]), cutting files into splits,
//! and reading a split's lines with Hadoop's rule that a line belongs to the split
//! holding its first byte. Lines end at `\n`, `\r\n` or a lone `\r`, as in Hadoop's
//! `LineReader`. A compressed file ([`Codec`] by extension) is one split,
//! read through its decoder.

use crate::config::Conf;
use crate::data::BoxIter;
use crate::error::{EmberError, Result, raise};
use crate::filesystem::codec::Codec;
use crate::filesystem::local_path;
use crate::filesystem::s3::{Bucket, S3Path, S3Settings};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes `start..end` of one file, a task's share of the input. A compressed file's
/// split is the whole file and `codec` says how to decode it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    /// The file's absolute local path, or an `s3a://bucket/key` URL.
    pub path: String,
    /// The whole file's size in bytes.
    pub size: u64,
    /// First byte of the split (0 for a compressed file).
    pub start: u64,
    /// One past the last byte (the file's size for a compressed file).
    pub end: u64,
    /// The file's compression, by its extension.
    pub codec: Option<Codec>,
}

/// Largest split: a large file gets one partition per 32 MiB (Hadoop's local block size).
pub const MAX_SPLIT_BYTES: u64 = 32 << 20;

/// One input file: an absolute local path or an `s3a://bucket/key` URL, and its
/// size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The local path or object URL.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

impl InputFile {
    /// A local file, with its size.
    ///
    /// # Errors
    /// [`EmberError::Io`] when the file cannot be read.
    pub fn local(path: &Path) -> Result<InputFile> {
        let size = std::fs::metadata(path).map_err(|e| EmberError::io(path.display(), e))?.len();
        Ok(InputFile { path: path.to_string_lossy().into_owned(), size })
    }

    fn codec(&self) -> Option<Codec> {
        Codec::for_path(Path::new(&self.path))
    }
}

/// The characters that make a path a glob pattern.
const GLOB_CHARS: [char; 3] = ['*', '?', '['];

fn has_glob(text: &str) -> bool {
    text.contains(GLOB_CHARS)
}

/// Hidden and underscore files are markers (`_SUCCESS`, `.crc`), as in Hadoop.
fn is_marker(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// Every input file named by `spec` (a file, a directory's files, a glob, or a
/// comma-separated list of those; local paths, `file:` and `s3a://` URLs, object
/// stores reached with `conf`'s settings). An error names the path when nothing
/// matches, the store cannot be reached, or the bucket is missing.
pub fn resolve_input_files(spec: &str, conf: &Conf) -> Result<Vec<InputFile>> {
    let mut files = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let missing = |reason: &str| EmberError::InputPath { path: part.to_string(), reason: reason.to_string() };
        if let Some(object) = S3Path::parse(part) {
            let object = object.map_err(|e| missing(&e))?;
            files.extend(resolve_objects(&object, conf).map_err(|e| match e {
                EmberError::Io { message, .. } => missing(&message),
                other => other,
            })?);
            continue;
        }
        let resolved = local_path(part).map_err(|e| missing(&e.to_string()))?;
        let pattern = resolved.to_str().ok_or_else(|| missing("the path is not UTF-8"))?;
        if has_glob(pattern) {
            let mut matched: Vec<PathBuf> = glob::glob(pattern)
                .map_err(|e| missing(&format!("bad glob pattern: {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(missing("the pattern matches no files"));
            }
            matched.sort();
            for m in matched {
                files.push(InputFile::local(&m)?);
            }
            continue;
        }
        let path = resolved.as_path();
        let meta = std::fs::metadata(path).map_err(|e| missing(&format!("does not exist or cannot be read ({e})")))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| missing(&e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && !is_marker(p.file_name().and_then(|n| n.to_str()).unwrap_or("")))
                .collect();
            entries.sort();
            for e in entries {
                files.push(InputFile::local(&e)?);
            }
        } else {
            files.push(InputFile { path: path.to_string_lossy().into_owned(), size: meta.len() });
        }
    }
    if files.is_empty() && spec.trim().is_empty() {
        return Err(EmberError::InputPath { path: spec.to_string(), reason: "empty path".into() });
    }
    Ok(files)
}

/// The objects an `s3a://` URL names: the object itself, the objects directly
/// under it as a directory (markers left out), or those matching a glob.
fn resolve_objects(object: &S3Path, conf: &Conf) -> Result<Vec<InputFile>> {
    let settings = S3Settings::from_conf(conf)?;
    let bucket = Bucket::open(&settings, object)?;
    let listed: Vec<(S3Path, u64)> = if has_glob(&object.key) {
        let pattern = glob::Pattern::new(&object.key)
            .map_err(|e| EmberError::InputPath { path: object.url(), reason: format!("bad glob pattern: {e}") })?;
        let fixed = &object.key[..object.key.find(GLOB_CHARS).unwrap_or(0)];
        let prefix = object.with_key(&fixed[..fixed.rfind('/').unwrap_or(0)]);
        let options = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
        let found: Vec<_> =
            bucket.list(&prefix, true)?.into_iter().filter(|(p, _)| pattern.matches_with(&p.key, options)).collect();
        if found.is_empty() {
            let message = format!("the pattern matches no objects{}", settings.addressing_hint());
            return Err(EmberError::Io { path: object.url(), message });
        }
        found
    } else if let Some(size) = (!object.key.is_empty()).then(|| bucket.size(object)).transpose()?.flatten() {
        vec![(object.clone(), size)]
    } else {
        let found: Vec<_> = bucket
            .list(object, false)?
            .into_iter()
            .filter(|(p, _)| !p.key.ends_with('/') && !is_marker(p.key.rsplit('/').next().unwrap_or("")))
            .collect();
        if found.is_empty() {
            let message = format!("no such object or prefix{}", settings.addressing_hint());
            return Err(EmberError::Io { path: object.url(), message });
        }
        found
    };
    Ok(listed.into_iter().map(|(p, size)| InputFile { path: p.url(), size }).collect())
}

/// Cuts the files into splits: about `min_partitions` in total, at most
/// [`MAX_SPLIT_BYTES`] each; an empty file yields no split.
pub fn plan_splits(files: &[InputFile], min_partitions: usize) -> Result<Vec<FileSplit>> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let goal = total / min_partitions.max(1) as u64;
    let split_size = goal.clamp(1, MAX_SPLIT_BYTES);
    let mut splits = Vec::new();
    for file in files {
        let (path, size) = (file.path.clone(), file.size);
        if let Some(codec) = file.codec() {
            if size > 0 {
                splits.push(FileSplit { path, size, start: 0, end: size, codec: Some(codec) });
            }
            continue;
        }
        let mut start = 0;
        while start < size {
            // Avoid a tiny last split (Hadoop's 10% slop).
            let end = if size - start <= split_size + split_size / 10 { size } else { start + split_size };
            splits.push(FileSplit { path: path.clone(), size, start, end, codec: None });
            start = end;
        }
    }
    Ok(splits)
}

/// One file of `whole_text_files`, read whole by one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WholeFile {
    /// The file's absolute local path, or an `s3a://bucket/key` URL.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The file's compression, by its extension.
    pub codec: Option<Codec>,
}

/// Groups files into at most `min_partitions` partitions (at least one file
/// each) of about equal total size, largest files first into the lightest group
/// (as Spark's `CombineFileInputFormat` balances `wholeTextFiles`); within a
/// partition files keep their order.
pub fn plan_whole_files(files: &[InputFile], min_partitions: usize) -> Result<Vec<Vec<WholeFile>>> {
    let groups = min_partitions.clamp(1, files.len().max(1));
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].size));
    let mut load = vec![0u64; groups];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for i in order {
        let lightest = (0..groups).min_by_key(|&g| (load[g], members[g].len())).expect("a group");
        load[lightest] += files[i].size;
        members[lightest].push(i);
    }
    Ok(members
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(|mut m| {
            m.sort_unstable();
            m.into_iter()
                .map(|i| WholeFile { path: files[i].path.clone(), size: files[i].size, codec: files[i].codec() })
                .collect()
        })
        .collect())
}

/// `(url, content)` of one file, decompressed; the key is the URL Spark's
/// `wholeTextFiles` gives (`file:/abs/path`, or the object's `s3a://` URL). Bytes
/// that are not UTF-8 become U+FFFD, as Hadoop's `Text` decoding does.
pub fn read_whole_file(file: &WholeFile, conf: &Conf) -> Result<(String, String)> {
    let url = if S3Path::parse(&file.path).is_some() { file.path.clone() } else { format!("file:{}", file.path) };
    if file.size == 0 {
        // Also an empty compressed file, which no decoder accepts (as text_file skips it).
        return Ok((url, String::new()));
    }
    let mut bytes = Vec::new();
    let opened = open_at(&file.path, 0, file.size, conf)?;
    let mut reader: Box<dyn Read + Send> = match file.codec {
        Some(codec) => codec.decoder(opened).map_err(|e| read_error(&file.path, Some(codec), e))?,
        None => Box::new(opened),
    };
    reader.read_to_end(&mut bytes).map_err(|e| read_error(&file.path, file.codec, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((url, text))
}

/// Cuts files of fixed-length records into splits on record boundaries.
pub fn plan_record_splits(files: &[InputFile], record_len: u64, min_partitions: usize) -> Result<Vec<FileSplit>> {
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
    for f in files.iter().filter(|f| f.codec().is_none()) {
        let len = f.size;
        if len % record_len != 0 {
            return Err(EmberError::InputPath {
                path: f.path.clone(),
                reason: format!("size {len} is not a multiple of the record length {record_len}"),
            });
        }
    }
    Ok(splits)
}

/// The fixed-length records of one split.
pub fn read_split_records(split: &FileSplit, record_len: usize, conf: &Conf) -> Result<BoxIter<Vec<u8>>> {
    let path = split.path.clone();
    let codec = split.codec;
    let mut reader: Box<dyn Read + Send> = match codec {
        Some(_) => decoded(split, conf)?,
        None => {
            let file = open_at(&split.path, split.start, split.size, conf)?;
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

/// The bytes of `path` (a local file of an object of `size` bytes) from `offset`.
fn open_at(path: &str, offset: u64, size: u64, conf: &Conf) -> Result<Box<dyn Read + Send>> {
    if let Some(object) = S3Path::parse(path) {
        let object = object.map_err(|e| EmberError::InputPath { path: path.to_string(), reason: e })?;
        let bucket = Bucket::open(&S3Settings::from_conf(conf)?, &object)?;
        return Ok(Box::new(bucket.reader(&object, offset, size)));
    }
    let mut file = File::open(path).map_err(|e| EmberError::io(path, e))?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset)).map_err(|e| EmberError::io(path, e))?;
    }
    Ok(Box::new(file))
}

/// The decompressed bytes of a compressed split's file.
fn decoded(split: &FileSplit, conf: &Conf) -> Result<Box<dyn Read + Send>> {
    let codec = split.codec.ok_or_else(|| EmberError::Internal(format!("{} is not compressed", split.path)))?;
    let file = open_at(&split.path, 0, split.size, conf)?;
    let decoder = codec.decoder(file).map_err(|e| read_error(&split.path, Some(codec), e))?;
    Ok(decoder)
}

/// The lines of one split, without their line terminators.
pub fn read_split_lines(split: &FileSplit, conf: &Conf) -> Result<BoxIter<String>> {
    if split.codec.is_some() {
        let reader = BufReader::with_capacity(1 << 20, decoded(split, conf)?);
        return Ok(lines(reader, 0, u64::MAX, split.path.clone(), split.codec));
    }
    // Start one byte early and drop everything up to the first line end: the
    // partial line belongs to the previous split, and a line starting exactly at
    // `start` is kept.
    let from = split.start.saturating_sub(1);
    let mut reader = BufReader::with_capacity(1 << 20, open_at(&split.path, from, split.size, conf)?);
    let mut pos = split.start;
    if split.start > 0 {
        let mut skipped = Vec::new();
        pos = from;
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
                if cr && next_byte(reader)? == Some(b'\n') {
                    reader.consume(1);
                    consumed += 1;
                }
                return Ok(consumed);
            }
        }
    }
}

/// The next byte of `reader`, not consumed.
fn next_byte<R: BufRead>(reader: &mut R) -> std::io::Result<Option<u8>> {
    loop {
        match reader.fill_buf() {
            Ok(b) => return Ok(b.first().copied()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
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

    fn input(path: &Path) -> Vec<InputFile> {
        vec![InputFile::local(path).unwrap()]
    }

    fn conf() -> Conf {
        Conf::new()
    }

    fn paths(files: Vec<InputFile>) -> Vec<PathBuf> {
        files.into_iter().map(|f| PathBuf::from(f.path)).collect()
    }

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
            let splits = plan_splits(&input(&path), parts).unwrap();
            let got: Vec<String> = splits.iter().flat_map(|s| read_split_lines(s, &conf()).unwrap()).collect();
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
        let want: Vec<String> = plan_splits(&input(&plain), 4)
            .unwrap()
            .iter()
            .flat_map(|s| read_split_lines(s, &conf()).unwrap())
            .collect();
        assert_eq!(want.len(), 3001);
        for codec in Codec::ALL {
            let path = dir.path().join(format!("in.txt.{}", codec.extension()));
            write_compressed(&path, codec, &text);
            let splits = plan_splits(&input(&path), 4).unwrap();
            assert_eq!(splits.len(), 1, "{codec}");
            let got: Vec<String> = read_split_lines(&splits[0], &conf()).unwrap().collect();
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
        let split = plan_splits(&input(&path), 1).unwrap().remove(0);
        let err = std::panic::catch_unwind(|| read_split_lines(&split, &conf()).unwrap().count()).unwrap_err();
        let err = crate::error::from_panic(err).to_string();
        assert!(err.contains("broken.gz") && err.contains("gzip"), "{err}");
    }

    #[test]
    fn compressed_fixed_length_records_are_read_and_a_partial_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.bin.zst");
        write_compressed(&path, Codec::Zstd, "abcdefghij");
        let splits = plan_record_splits(&input(&path), 5, 3).unwrap();
        let got: Vec<Vec<u8>> = splits.iter().flat_map(|s| read_split_records(s, 5, &conf()).unwrap()).collect();
        assert_eq!(got, vec![b"abcde".to_vec(), b"fghij".to_vec()]);
        let err = std::panic::catch_unwind(|| read_split_records(&splits[0], 4, &conf()).unwrap().count()).unwrap_err();
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
        let files = paths(resolve_input_files(&url, &conf()).unwrap());
        assert_eq!(files, vec![dir.path().join("a.txt"), dir.path().join("b.txt")]);
        let list = format!("file://{0}/c.log, {0}/a.txt", dir.path().display());
        assert_eq!(
            paths(resolve_input_files(&list, &conf()).unwrap()),
            vec![dir.path().join("c.log"), dir.path().join("a.txt")]
        );
        let err = resolve_input_files("hdfs://nn/in", &conf()).unwrap_err().to_string();
        assert!(err.contains("hdfs://nn/in") && err.contains("not supported"), "{err}");
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
        let files: Vec<InputFile> = files.iter().map(|f| InputFile::local(f).unwrap()).collect();
        let groups = plan_whole_files(&files, 2).unwrap();
        let names: Vec<Vec<&str>> =
            groups.iter().map(|g| g.iter().map(|f| f.path.rsplit('/').next().unwrap()).collect()).collect();
        assert_eq!(names, vec![vec!["a", "b"], vec!["c", "d", "e"]], "1000 and 950 bytes");
        assert_eq!(plan_whole_files(&files, 99).unwrap().len(), 5);
        assert_eq!(plan_whole_files(&[], 3).unwrap().len(), 0);
        let gz = dir.path().join("f.txt.gz");
        write_compressed(&gz, Codec::Gzip, "hola\nmundo");
        let file = &plan_whole_files(&input(&gz), 1).unwrap()[0][0];
        assert_eq!(
            read_whole_file(file, &conf()).unwrap(),
            (format!("file:{}", gz.display()), "hola\nmundo".to_string())
        );
    }

    #[test]
    fn missing_paths_are_named_in_the_error() {
        let err = resolve_input_files("/definitely/not/here.txt", &conf()).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here.txt"), "{err}");
        let err = resolve_input_files("/definitely/not/*.txt", &conf()).unwrap_err();
        assert!(err.to_string().contains("matches no files"), "{err}");
    }
}
