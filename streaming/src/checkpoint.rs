//! Metadata checkpoints of a streaming job: after each batch is generated and
//! after it completes, one JSON file `checkpoint-<sequence>.json` in the
//! checkpoint directory records the zero time, the batches generated and not
//! yet finished, where each stateful operation's last state checkpoint is, and
//! each input's record of what it took (a file stream's files). Files are
//! written to a temporary name and renamed, so a reader never sees half a file;
//! the newest that parses wins, and the ten newest are kept.

use ember_core::error::{EmberError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the metadata layout.
pub const FORMAT: u32 = 1;
/// Metadata files kept in the directory.
const KEPT: usize = 10;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".json";

/// One metadata checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: u32,
    pub batch_interval_ms: u64,
    /// Batch times are `zero_ms + k × batch_interval_ms`, k ≥ 1.
    pub zero_ms: u64,
    pub last_generated_ms: Option<u64>,
    pub last_completed_ms: Option<u64>,
    /// Generated and not finished: run again on recovery, oldest first.
    pub pending_ms: Vec<u64>,
    /// By operation name.
    pub states: BTreeMap<String, StateCheckpoint>,
    /// By input name.
    pub inputs: BTreeMap<String, serde_json::Value>,
}

/// Where one stateful operation's state was last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCheckpoint {
    /// Rust type of the state's records, `(K, S)`: a job whose state type
    /// changed is refused instead of misreading the files.
    pub state_type: String,
    /// The batch whose state this is.
    pub time_ms: u64,
    /// Directory of `part-NNNNN` files (see `ember_core::rdd::CheckpointRdd`).
    pub dir: String,
    pub partitions: usize,
}

fn sequence(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok()
}

/// Metadata files in `dir`, oldest first.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EmberError::io(dir.display(), e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EmberError::io(dir.display(), e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(sequence) {
            files.push((seq, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// The newest readable metadata in `dir`; `None` when there is none (a new job).
/// A newer file that does not parse is skipped with a warning.
///
/// Errors: `dir` cannot be listed; files exist but none parses.
pub fn read_latest(dir: &Path) -> Result<Option<CheckpointMeta>> {
    let files = list(dir)?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut last_error = String::new();
    for (_, path) in files.iter().rev() {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<CheckpointMeta>(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(meta) if meta.format == FORMAT => return Ok(Some(meta)),
            Ok(meta) => last_error = format!("{}: format {} (this build reads {FORMAT})", path.display(), meta.format),
            Err(e) => last_error = format!("{}: {e}", path.display()),
        }
        tracing::warn!(file = %path.display(), error = %last_error, "skipping an unreadable checkpoint file");
    }
    Err(EmberError::Codec(format!("no readable checkpoint in {}: {last_error}", dir.display())))
}

/// Writes `meta` as the newest metadata file of `dir` and deletes all but the
/// newest ten. Errors: I/O.
pub fn write(dir: &Path, meta: &CheckpointMeta) -> Result<()> {
    let files = list(dir)?;
    let seq = files.last().map_or(0, |(s, _)| s + 1);
    let path = dir.join(format!("{PREFIX}{seq:012}{SUFFIX}"));
    let tmp = dir.join(format!(".{PREFIX}{seq:012}{SUFFIX}.tmp"));
    let bytes = serde_json::to_vec_pretty(meta).map_err(|e| EmberError::Codec(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| EmberError::io(path.display(), e))?;
    let excess = (files.len() + 1).saturating_sub(KEPT);
    for (_, old) in files.iter().take(excess) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(last: u64) -> CheckpointMeta {
        CheckpointMeta {
            format: FORMAT,
            batch_interval_ms: 1000,
            zero_ms: 0,
            last_generated_ms: Some(last),
            last_completed_ms: Some(last - 1000),
            pending_ms: vec![last],
            states: BTreeMap::new(),
            inputs: BTreeMap::new(),
        }
    }

    #[test]
    fn the_newest_readable_file_wins_and_ten_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_latest(dir.path()).unwrap(), None);
        for i in 1..=15 {
            write(dir.path(), &meta(i * 1000)).unwrap();
        }
        assert_eq!(read_latest(dir.path()).unwrap(), Some(meta(15_000)));
        assert_eq!(list(dir.path()).unwrap().len(), KEPT);
        // A torn newest file is skipped.
        let newest = list(dir.path()).unwrap().last().unwrap().1.clone();
        std::fs::write(&newest, b"{\"format\": 1, \"batch_in").unwrap();
        assert_eq!(read_latest(dir.path()).unwrap(), Some(meta(14_000)));
    }

    #[test]
    fn only_unreadable_files_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checkpoint-000000000001.json"), b"garbage").unwrap();
        let err = read_latest(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
