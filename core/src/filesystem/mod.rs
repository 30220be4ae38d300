//! Where data is read from and written to: paths and `file://` URLs, `s3://` and
//! `s3a://` object stores ([`s3`]), compression by file extension ([`codec`]), and
//! the commit protocol that publishes a job's output files all at once ([`commit`]).
//!
//! Every API that takes a path (`text_file`, `whole_text_files`, `binary_records`,
//! `save_as_text_file`, `add_file`, the RDD and streaming checkpoint directories,
//! `spark.eventLog.dir`) takes local paths, `file:` URLs and `s3a://` URLs
//! ([`Location`] for the directories a job keeps its own files in). Local ones
//! are resolved here, on the driver, before any task runs:
//!
//! - `/abs/path` and `relative/path`: a relative path is resolved against the
//!   driver's working directory, so every executor of the application reads and
//!   writes the same files wherever its own working directory is (Spark resolves
//!   against the default filesystem's working directory the same way);
//! - `file:///abs/path`, `file://localhost/abs/path` and Hadoop's short form
//!   `file:/abs/path`: the local path, taken literally (no percent-decoding, as
//!   Hadoop's `Path` does with a string);
//! - any other `scheme://` is
//!   refused with an error naming the scheme.

pub mod codec;
pub mod commit;
pub mod location;
pub mod s3;

pub use location::Location;

use std::path::PathBuf;

/// Why a path or URL names no local file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `scheme://…` with a scheme Ember cannot read or write.
    #[error("the scheme {0}:// is not supported here (use a local path, a file:// URL or an s3a:// URL)")]
    UnsupportedScheme(String),
    /// `file://host/…` naming another host.
    #[error("a file:// URL names a host ({0}); use file:///absolute/path")]
    RemoteHost(String),
    /// `file:relative` or another `file:` form without an absolute path.
    #[error("a file: URL needs an absolute path (file:///absolute/path)")]
    NotAbsolute,
    /// A URL of a supported scheme that is malformed (`s3a:///key`: no bucket).
    #[error("{0}")]
    BadUrl(String),
    /// The empty string.
    #[error("empty path")]
    Empty,
    /// The working directory could not be read to resolve a relative path.
    #[error("cannot resolve a relative path: {0}")]
    WorkingDirectory(String),
}

/// The absolute local path a path or `file:` URL names (see the module docs).
///
/// # Errors
/// [`PathError`] for an empty string, a scheme other than `file`, a `file://` URL
/// with a host other than `localhost`, or a relative path when the working
/// directory cannot be read.
pub fn local_path(spec: &str) -> Result<PathBuf, PathError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(PathError::Empty);
    }
    let path = match scheme_of(spec) {
        None => spec,
        Some(scheme) if scheme.eq_ignore_ascii_case("file") => {
            let rest = &spec["file:".len()..];
            match rest.strip_prefix("//") {
                Some(after) if after.starts_with('/') => after,
                Some(after) => {
                    let (host, path) = after.split_at(after.find('/').unwrap_or(after.len()));
                    if !host.eq_ignore_ascii_case("localhost") {
                        return Err(PathError::RemoteHost(host.to_string()));
                    }
                    if path.is_empty() {
                        return Err(PathError::NotAbsolute);
                    }
                    path
                }
                None if rest.starts_with('/') => rest,
                None => return Err(PathError::NotAbsolute),
            }
        }
        Some(other) => return Err(PathError::UnsupportedScheme(other.to_string())),
    };
    std::path::absolute(path).map_err(|e| PathError::WorkingDirectory(e.to_string()))
}

/// [`local_path`] for an API that takes a `Path`: a path that is not UTF-8 is
/// taken as a local path and made absolute.
///
/// # Errors
/// As [`local_path`].
pub fn resolve(path: &std::path::Path) -> Result<PathBuf, PathError> {
    match path.to_str() {
        Some(spec) => local_path(spec),
        None => std::path::absolute(path).map_err(|e| PathError::WorkingDirectory(e.to_string())),
    }
}

/// A checkpoint directory (`set_checkpoint_dir`, the streaming `checkpoint`):
/// an `s3a://` prefix, or a local path resolved as [`resolve`] does, created when
/// missing and returned canonical, so every process finds it at the same path.
///
/// # Errors
/// [`crate::error::EmberError::Config`] for a path that cannot be resolved,
/// [`crate::error::EmberError::Io`] when a local one cannot be created.
pub fn checkpoint_dir(given: &std::path::Path) -> crate::error::Result<Location> {
    use crate::error::EmberError;
    let dir = Location::from_path(given)
        .map_err(|e| EmberError::Config(format!("checkpoint directory {}: {e}", given.display())))?;
    match dir {
        Location::Local(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| EmberError::io(dir.display(), e))?;
            std::fs::canonicalize(&dir).map(Location::Local).map_err(|e| EmberError::io(dir.display(), e))
        }
        store => Ok(store),
    }
}

/// The URL scheme of `spec` (`file` in `file:///x`, `s3a` in `s3a://b/k`), if it
/// has one. A scheme is a letter then letters, digits, `+`, `-` or `.`, followed by
/// `:` and, except for `file:`, by `//` (so `C:` and `name:with:colons` are paths).
pub fn scheme_of(spec: &str) -> Option<&str> {
    let colon = spec.find(':')?;
    let scheme = &spec[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return None;
    }
    let rest = &spec[colon + 1..];
    (rest.starts_with("//") || scheme.eq_ignore_ascii_case("file")).then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn file_urls_name_their_local_path() {
        assert_eq!(local_path("file:///tmp/in.txt").unwrap(), Path::new("/tmp/in.txt"));
        assert_eq!(local_path("file://localhost/tmp/in").unwrap(), Path::new("/tmp/in"));
        assert_eq!(local_path("file:/tmp/in").unwrap(), Path::new("/tmp/in"));
        assert_eq!(local_path("FILE:///tmp/in").unwrap(), Path::new("/tmp/in"));
        assert_eq!(local_path("  /tmp/a b/*.txt ").unwrap(), Path::new("/tmp/a b/*.txt"));
        // Taken literally, as Hadoop's Path takes a string.
        assert_eq!(local_path("file:///tmp/a%20b").unwrap(), Path::new("/tmp/a%20b"));
    }

    #[test]
    fn relative_paths_resolve_against_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(local_path("data/in.txt").unwrap(), cwd.join("data/in.txt"));
        assert_eq!(local_path("name:with:colons").unwrap(), cwd.join("name:with:colons"));
    }

    #[test]
    fn other_schemes_and_hosts_are_refused_by_name() {
        assert_eq!(local_path("hdfs://nn:8020/x"), Err(PathError::UnsupportedScheme("hdfs".into())));
        assert_eq!(local_path("file://otherhost/x"), Err(PathError::RemoteHost("otherhost".into())));
        assert_eq!(local_path("file:relative"), Err(PathError::NotAbsolute));
        assert_eq!(local_path("file://localhost"), Err(PathError::NotAbsolute));
        assert_eq!(local_path(" "), Err(PathError::Empty));
        let message = local_path("s3a://bucket/key").unwrap_err().to_string();
        assert!(message.contains("s3a://") && message.contains("not supported"), "{message}");
    }
}
