//! Metadata checkpoints of a streaming job: after each batch is generated and
//! after it completes, one JSON file `checkpoint-<sequence>.json` in the
//! checkpoint directory records the zero time, the batches generated and not
//! yet finished, where each stateful operation's last state checkpoint is, and
//! each input's record of what it took (a file stream's files). Files appear
//! whole ([`Location::write`]: a temporary file renamed locally, one PUT on an
//! object store), so a reader never sees half a file;
//! each carries the crc32 of its metadata, so a damaged file (a flipped byte
//! that still parses) is refused instead of recovering wrong times or paths.
//! The newest file that parses and checks wins, and the ten newest are kept.

use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the metadata layout (2: with the checksum envelope).
pub const FORMAT: u32 = 2;
/// The layout before the checksum, still read so that a job recovers from a
/// checkpoint an earlier build wrote.
const LEGACY_FORMAT: u32 = 1;
/// Metadata files kept in the directory.
const KEPT: usize = 10;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".json";

/// One metadata checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
fn list(dir: &Location, conf: &Conf) -> Result<Vec<(u64, Location)>> {
    let mut files: Vec<(u64, Location)> =
        dir.list(conf)?.into_iter().filter_map(|name| Some((sequence(&name)?, dir.join(&name)))).collect();
    files.sort_by_key(|(seq, _)| *seq);
    Ok(files)
}

/// A metadata file: the metadata and the crc32 of its compact JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    meta: CheckpointMeta,
    crc32: u32,
}

fn meta_checksum(meta: &CheckpointMeta) -> std::result::Result<u32, String> {
    serde_json::to_vec(meta).map(|json| crc32fast::hash(&json)).map_err(|e| e.to_string())
}

/// Parses a metadata file. Errors: not JSON, unknown fields, a checksum mismatch.
/// A bare format-1 file (written before the checksum) is read as it is.
fn parse(bytes: &[u8]) -> std::result::Result<CheckpointMeta, String> {
    let envelope: Envelope = match serde_json::from_slice(bytes) {
        Ok(envelope) => envelope,
        Err(e) => match serde_json::from_slice::<CheckpointMeta>(bytes) {
            Ok(legacy) if legacy.format == LEGACY_FORMAT => return Ok(legacy),
            _ => return Err(e.to_string()),
        },
    };
    let actual = meta_checksum(&envelope.meta)?;
    if actual != envelope.crc32 {
        return Err(format!("checksum mismatch (file says {:08x}, content has {actual:08x})", envelope.crc32));
    }
    Ok(envelope.meta)
}

/// The newest readable metadata in `dir`; `None` when there is none (a new job).
/// A newer file that does not parse is skipped with a warning.
///
/// Errors: `dir` cannot be listed; files exist but none parses.
pub fn read_latest(dir: &Location, conf: &Conf) -> Result<Option<CheckpointMeta>> {
    let files = list(dir, conf)?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut last_error = String::new();
    for (_, path) in files.iter().rev() {
        let parsed = match path.read(conf) {
            Ok(Some(bytes)) => parse(&bytes),
            Ok(None) => Err("removed while reading".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok(meta) if meta.format == FORMAT || meta.format == LEGACY_FORMAT => return Ok(Some(meta)),
            Ok(meta) => last_error = format!("{path}: format {} (this build reads {FORMAT})", meta.format),
            Err(e) => last_error = format!("{path}: {e}"),
        }
        tracing::warn!(file = %path, error = %last_error, "skipping an unreadable checkpoint file");
    }
    Err(EmberError::Codec(format!("no readable checkpoint in {dir}: {last_error}")))
}

/// Writes `meta` as the newest metadata file of `dir` and deletes all but the
/// newest ten. Errors: I/O.
pub fn write(dir: &Location, conf: &Conf, meta: &CheckpointMeta) -> Result<()> {
    let files = list(dir, conf)?;
    let seq = files.last().map_or(0, |(s, _)| s + 1);
    let path = dir.join(&format!("{PREFIX}{seq:012}{SUFFIX}"));
    let crc32 = meta_checksum(meta).map_err(EmberError::Codec)?;
    let envelope = Envelope { meta: meta.clone(), crc32 };
    let bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| EmberError::Codec(e.to_string()))?;
    path.write(conf, bytes)?;
    let excess = (files.len() + 1).saturating_sub(KEPT);
    for (_, old) in files.iter().take(excess) {
        if let Err(e) = old.remove(conf) {
            tracing::warn!(file = %old, error = %e, "could not remove an old checkpoint file");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dir: &tempfile::TempDir) -> Location {
        Location::Local(dir.path().to_path_buf())
    }

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
        assert_eq!(read_latest(&at(&dir), &Conf::new()).unwrap(), None);
        for i in 1..=15 {
            write(&at(&dir), &Conf::new(), &meta(i * 1000)).unwrap();
        }
        assert_eq!(read_latest(&at(&dir), &Conf::new()).unwrap(), Some(meta(15_000)));
        assert_eq!(list(&at(&dir), &Conf::new()).unwrap().len(), KEPT);
        // A torn newest file is skipped.
        let newest = list(&at(&dir), &Conf::new()).unwrap().last().unwrap().1.clone();
        std::fs::write(newest.as_local().unwrap(), b"{\"meta\": {\"format\": 2, \"batch_in").unwrap();
        assert_eq!(read_latest(&at(&dir), &Conf::new()).unwrap(), Some(meta(14_000)));
    }

    #[test]
    fn a_checkpoint_of_the_format_before_the_checksum_still_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = CheckpointMeta { format: LEGACY_FORMAT, ..meta(3000) };
        std::fs::write(dir.path().join("checkpoint-000000000001.json"), serde_json::to_vec(&legacy).unwrap()).unwrap();
        assert_eq!(read_latest(&at(&dir), &Conf::new()).unwrap(), Some(legacy));
    }

    #[test]
    fn only_unreadable_files_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checkpoint-000000000001.json"), b"garbage").unwrap();
        let err = read_latest(&at(&dir), &Conf::new()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    proptest::proptest! {
        // Checkpoint files come from disk after a crash: whatever a newest
        // file holds (torn, flipped, random), recovery takes the newest
        // readable one or says none is readable; it never panics.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_newest_file_recovers_the_previous_one_or_is_an_error(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            cut in 0usize..600,
            flip in 0usize..600,
        ) {
            let dir = tempfile::tempdir().unwrap();
            write(&at(&dir), &Conf::new(), &meta(1000)).unwrap();
            let good = serde_json::to_vec_pretty(&Envelope { meta: meta(2000), crc32: meta_checksum(&meta(2000)).unwrap() }).unwrap();
            let mut newest = good[..cut.min(good.len())].to_vec();
            if let Some(b) = newest.get_mut(flip) {
                *b ^= 0x20;
            }
            for damaged in [newest, bytes] {
                std::fs::write(dir.path().join("checkpoint-000000000009.json"), &damaged).unwrap();
                let recovered = read_latest(&at(&dir), &Conf::new()).unwrap().unwrap();
                proptest::prop_assert!(recovered == meta(1000) || recovered == meta(2000));
            }
        }
    }
}
