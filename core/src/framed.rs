//! Durable whole files framed with a checksum: `[crc32 LE of the payload][payload]`,
//! written through a temporary file and renamed, so a reader sees the whole
//! file or none, and a corrupted file is an error naming it instead of wrong
//! data. Used for streaming receivers' write-ahead log blocks and for received
//! blocks an executor keeps on disk.

use crate::config::Conf;
use crate::error::{EmberError, Result};
use crate::filesystem::Location;
use std::path::Path;

/// Writes `[crc32 LE][bytes]` to `path` through a temporary file, durably.
pub fn write_framed(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&crc32fast::hash(bytes).to_le_bytes())?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| EmberError::io(path.display(), e))
}

/// Reads a file written by [`write_framed`]. Errors: unreadable, or its checksum fails.
pub fn read_framed(path: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| EmberError::io(path.display(), e))?;
    unframe(data, path.display())
}

/// The payload of a framed file's bytes. Errors: its checksum fails (naming `name`).
fn unframe(mut data: Vec<u8>, name: impl std::fmt::Display) -> Result<Vec<u8>> {
    if data.len() < 4 || crc32fast::hash(&data[4..]) != u32::from_le_bytes(data[..4].try_into().expect("4 bytes")) {
        return Err(EmberError::Codec(format!("{name} is corrupt (checksum mismatch)")));
    }
    data.drain(..4);
    Ok(data)
}

/// Writes `[crc32 LE][bytes]` as the file at `at`, whole or not at all (local
/// or on an object store, see [`Location::write`]).
///
/// # Errors
/// [`EmberError::Io`] naming the file.
pub fn write_framed_at(at: &Location, conf: &Conf, bytes: &[u8]) -> Result<()> {
    let mut data = Vec::with_capacity(bytes.len() + 4);
    data.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    data.extend_from_slice(bytes);
    at.write(conf, data)
}

/// Reads a file written by [`write_framed_at`] (or [`write_framed`]).
///
/// # Errors
/// [`EmberError::Io`] when it is missing or unreadable; [`EmberError::Codec`]
/// when its checksum fails.
pub fn read_framed_at(at: &Location, conf: &Conf) -> Result<Vec<u8>> {
    let data = at.read(conf)?.ok_or_else(|| EmberError::Io { path: at.url(), message: "no such file".into() })?;
    unframe(data, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("block");
        write_framed(&path, b"hello world").unwrap();
        assert_eq!(read_framed(&path).unwrap(), b"hello world");
        let at = Location::Local(path.clone());
        assert_eq!(read_framed_at(&at, &Conf::new()).unwrap(), b"hello world");
        write_framed_at(&at, &Conf::new(), b"again").unwrap();
        assert_eq!(read_framed(&path).unwrap(), b"again");
        write_framed(&path, b"hello world").unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[6] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let err = read_framed(&path).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("block"), "{err}");
        assert!(read_framed(&dir.path().join("missing")).is_err());
    }
}
