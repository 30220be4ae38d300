//! Text input: resolving paths (file, directory, glob, comma-separated list),
//! cutting files into splits, and reading a split's lines with Hadoop's rule that
//! a line belongs to the split holding its first byte.

use crate::data::BoxIter;
use crate::error::{EmberError, Result, raise};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    pub path: String,
    pub start: u64,
    pub end: u64,
}

/// Largest split: a large file gets one partition per 32 MiB (Hadoop's local block size).
pub const MAX_SPLIT_BYTES: u64 = 32 << 20;

/// Every input file named by `spec`; an error that names the path when nothing matches.
pub fn resolve_input_files(spec: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let missing = |reason: &str| EmberError::InputPath { path: part.to_string(), reason: reason.to_string() };
        if part.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(part)
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
        let path = Path::new(part);
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
        let mut start = 0;
        while start < size {
            // Avoid a tiny last split (Hadoop's 10% slop).
            let end = if size - start <= split_size + split_size / 10 { size } else { start + split_size };
            splits.push(FileSplit { path: path.clone(), start, end });
            start = end;
        }
    }
    Ok(splits)
}

/// Cuts files of fixed-length records into splits on record boundaries.
pub fn plan_record_splits(files: &[PathBuf], record_len: u64, min_partitions: usize) -> Result<Vec<FileSplit>> {
    if record_len == 0 {
        return Err(EmberError::Invalid("record length must be positive".into()));
    }
    let mut splits = Vec::new();
    for s in plan_splits(files, min_partitions)? {
        let start = s.start.div_ceil(record_len) * record_len;
        let end = s.end.div_ceil(record_len) * record_len;
        if start < end {
            splits.push(FileSplit { path: s.path, start, end });
        }
    }
    for f in files {
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
    use std::io::Read;
    let mut file = File::open(&split.path).map_err(|e| EmberError::io(&split.path, e))?;
    file.seek(SeekFrom::Start(split.start)).map_err(|e| EmberError::io(&split.path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file.take(split.end - split.start));
    let path = split.path.clone();
    Ok(Box::new(std::iter::from_fn(move || {
        let mut rec = vec![0u8; record_len];
        match reader.read_exact(&mut rec) {
            Ok(()) => Some(rec),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => raise(EmberError::io(&path, e)),
        }
    })))
}

/// The lines of one split, without their line terminators.
pub fn read_split_lines(split: &FileSplit) -> Result<BoxIter<String>> {
    let file = File::open(&split.path).map_err(|e| EmberError::io(&split.path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut pos = split.start;
    let mut buf = Vec::with_capacity(256);
    if split.start > 0 {
        // Start one byte early and drop everything up to the first newline: the
        // partial line belongs to the previous split, and a line starting exactly at
        // `start` is kept.
        reader.seek(SeekFrom::Start(split.start - 1)).map_err(|e| EmberError::io(&split.path, e))?;
        pos = split.start - 1;
        pos += reader.read_until(b'\n', &mut buf).map_err(|e| EmberError::io(&split.path, e))? as u64;
    }
    let end = split.end;
    let path = split.path.clone();
    Ok(Box::new(std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        buf.clear();
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => raise(EmberError::io(&path, e)),
        };
        if n == 0 {
            return None;
        }
        pos += n as u64;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        Some(match std::str::from_utf8(&buf) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(&buf).into_owned(),
        })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_line_is_read_exactly_once_whatever_the_split_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&"x".repeat(i % 17));
            text.push_str(&format!("line{i}"));
            text.push(if i % 5 == 0 { '\r' } else { ' ' });
            text.push('\n');
        }
        text.push_str("last-without-newline");
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        let expected: Vec<String> = text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
        for parts in [1, 2, 3, 7, 64, 1000] {
            let splits = plan_splits(std::slice::from_ref(&path), parts).unwrap();
            let got: Vec<String> = splits.iter().flat_map(|s| read_split_lines(s).unwrap()).collect();
            assert_eq!(got, expected, "{parts} partitions");
        }
    }

    #[test]
    fn missing_paths_are_named_in_the_error() {
        let err = resolve_input_files("/definitely/not/here.txt").unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here.txt"), "{err}");
        let err = resolve_input_files("/definitely/not/*.txt").unwrap_err();
        assert!(err.to_string().contains("matches no files"), "{err}");
    }
}
