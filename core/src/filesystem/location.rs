//! A directory a job keeps its own files in (RDD and streaming checkpoints, the
//! receivers' write-ahead log, event logs), on the local filesystem or under an
//! object-store prefix, with the few operations those files need.
//!
//! Hadoop's `FileSystem` plays this part in Spark: checkpoint and event-log code
//! writes through it to `file:`, `hdfs:` or `s3a:` alike. The guarantees here are
//! the ones that code relies on:
//!
//! - [`Location::write`] and [`Location::publish`] make a file appear whole or
//!   not at all: locally by writing a hidden temporary file and renaming it, on
//!   an object store because a PUT (or a completed multipart upload) is atomic;
//! - [`Location::list`] gives the names directly under a directory: files, and
//!   sub-directories (on an object store, the common prefixes of its keys);
//! - removal of a missing file or tree is not an error.
//!
//! Object stores have no rename: [`Location::rename`] there is a copy and a
//! delete, so code that needs an atomic switch writes a new name instead (as the
//! streaming checkpoint does, one file per batch).

use super::s3::{Bucket, S3Path, S3Settings};
use super::{PathError, local_path};
use crate::config::Conf;
use crate::error::{EmberError, Result};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A file or directory: an absolute local path or an `s3://`/`s3a://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute local path (every process of the application sees it at this path).
    Local(PathBuf),
    /// An object, or the prefix `key/` when used as a directory.
    S3(S3Path),
}

impl Location {
    /// The location `spec` names: an `s3://`/`s3a://` URL, or a local path or
    /// `file:` URL made absolute against this process's working directory (so
    /// parse on the driver and hand the result's [`Location::url`] to executors).
    ///
    /// # Errors
    /// [`PathError`] for an empty string, an unsupported scheme, an `s3a://` URL
    /// without a bucket, or a `file:` URL that names another host.
    pub fn parse(spec: &str) -> std::result::Result<Location, PathError> {
        match S3Path::parse(spec.trim()) {
            Some(Ok(path)) => Ok(Location::S3(path)),
            Some(Err(message)) => Err(PathError::BadUrl(message)),
            None => local_path(spec).map(Location::Local),
        }
    }

    /// [`Location::parse`] for a `Path` argument (a non-UTF-8 path is local).
    ///
    /// # Errors
    /// As [`Location::parse`].
    pub fn from_path(path: &Path) -> std::result::Result<Location, PathError> {
        match path.to_str() {
            Some(spec) => Location::parse(spec),
            None => super::resolve(path).map(Location::Local),
        }
    }

    /// The child `name` of this directory (`name` may hold `/`-separated parts).
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::S3(p) if p.key.is_empty() => Location::S3(p.with_key(name)),
            Location::S3(p) => Location::S3(p.with_key(format!("{}/{name}", p.key))),
        }
    }

    /// The last part of the path (a file's name), if any.
    pub fn file_name(&self) -> Option<&str> {
        match self {
            Location::Local(p) => p.file_name().and_then(|n| n.to_str()),
            Location::S3(p) => p.key.rsplit('/').next().filter(|n| !n.is_empty()),
        }
    }

    /// The local path, for a local location.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3(_) => None,
        }
    }

    /// The URL or path to hand to another process ([`Location::parse`] gives this location back).
    pub fn url(&self) -> String {
        self.to_string()
    }

    fn bucket(&self, conf: &Conf) -> Result<Option<(Bucket, &S3Path)>> {
        match self {
            Location::Local(_) => Ok(None),
            Location::S3(p) => Ok(Some((Bucket::open(&S3Settings::from_conf(conf)?, p)?, p))),
        }
    }

    /// Creates this directory and its parents (nothing to do on an object store,
    /// where a directory is only a key prefix).
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the directory.
    pub fn create_dir_all(&self) -> Result<()> {
        match self {
            Location::Local(p) => std::fs::create_dir_all(p).map_err(|e| EmberError::io(p.display(), e)),
            Location::S3(_) => Ok(()),
        }
    }

    /// Writes `data` as this file, whole or not at all, replacing an earlier one.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the file.
    pub fn write(&self, conf: &Conf, data: Vec<u8>) -> Result<()> {
        if let Some((bucket, path)) = self.bucket(conf)? {
            return bucket.put(path, data);
        }
        let tmp = self.local_temporary();
        let path = self.as_local().expect("local");
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &data)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EmberError::io(path.display(), e)
        })
    }

    /// Makes the finished local file `from` this file, whole: a rename when this
    /// location is local (so `from` must be on the same filesystem: use
    /// [`Location::local_temporary`]), an upload (multipart when large) then
    /// removal of `from` on an object store.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming this location; `from` is removed either way.
    pub fn publish(&self, conf: &Conf, from: &Path) -> Result<()> {
        let result = match self.bucket(conf) {
            Ok(Some((bucket, path))) => bucket.upload(from, path),
            Ok(None) => {
                let path = self.as_local().expect("local");
                std::fs::rename(from, path).map_err(|e| EmberError::io(path.display(), e))
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(from);
        result
    }

    /// Makes this file a copy of the local file `from`, whole (`from` is kept):
    /// an upload, streamed and multipart above 8 MiB, or a local copy renamed into place.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming this location or `from`.
    pub fn upload_file(&self, conf: &Conf, from: &Path) -> Result<()> {
        if let Some((bucket, path)) = self.bucket(conf)? {
            return bucket.upload(from, path);
        }
        let tmp = self.local_temporary();
        std::fs::copy(from, &tmp).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            EmberError::io(from.display(), e)
        })?;
        self.publish(conf, &tmp)
    }

    /// A local path to write this file's content to before [`Location::publish`]:
    /// a hidden sibling for a local file, a fresh name in the temporary directory
    /// for an object.
    pub fn local_temporary(&self) -> PathBuf {
        // Random: processes in different pods share a volume and often a pid.
        let unique = format!("{:016x}", rand::random::<u64>());
        let name = self.file_name().unwrap_or("file");
        match self {
            Location::Local(p) => p.with_file_name(format!(".{name}.{unique}.tmp")),
            Location::S3(_) => std::env::temp_dir().join(format!("ember-{name}.{unique}.tmp")),
        }
    }

    /// This file's bytes, `None` when there is no such file.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the file, for any failure but its absence.
    pub fn read(&self, conf: &Conf) -> Result<Option<Vec<u8>>> {
        self.read_from(conf, 0)
    }

    /// This file's bytes from `offset` to its end (empty when it is no longer
    /// than `offset`), `None` when there is no such file.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the file, for any failure but its absence.
    pub fn read_from(&self, conf: &Conf, offset: u64) -> Result<Option<Vec<u8>>> {
        if let Some((bucket, path)) = self.bucket(conf)? {
            let Some(size) = bucket.size(path)? else { return Ok(None) };
            if size <= offset {
                return Ok(Some(Vec::new()));
            }
            return bucket.read_range(path, offset..size).map(|b| Some(b.to_vec()));
        }
        use std::io::Seek;
        let path = self.as_local().expect("local");
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EmberError::io(path.display(), e)),
        };
        let mut bytes = Vec::new();
        file.seek(std::io::SeekFrom::Start(offset))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| EmberError::io(path.display(), e))?;
        Ok(Some(bytes))
    }

    /// The files directly under this directory with their sizes in bytes,
    /// sorted by name (sub-directories left out); empty when it does not exist.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the directory.
    pub fn list_files(&self, conf: &Conf) -> Result<Vec<(String, u64)>> {
        let mut files: Vec<(String, u64)> = match self.bucket(conf)? {
            Some((bucket, path)) => bucket
                .list(path, false)?
                .into_iter()
                .filter_map(|(object, size)| Some((object.key.rsplit('/').next()?.to_string(), size)))
                .collect(),
            None => {
                let dir = self.as_local().expect("local");
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(EmberError::io(dir.display(), e)),
                };
                entries
                    .flatten()
                    .filter_map(|e| {
                        let meta = e.metadata().ok().filter(|m| m.is_file())?;
                        Some((e.file_name().to_str()?.to_string(), meta.len()))
                    })
                    .collect()
            }
        };
        files.sort();
        Ok(files)
    }

    /// A reader of this file from its start, holding a bounded buffer (ranged
    /// GETs on an object store).
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the file; a missing file is an error too.
    pub fn open(&self, conf: &Conf) -> Result<Box<dyn Read + Send>> {
        if let Some((bucket, path)) = self.bucket(conf)? {
            let size = bucket
                .size(path)?
                .ok_or_else(|| EmberError::Io { path: self.url(), message: "no such object".into() })?;
            return Ok(Box::new(bucket.reader(path, 0, size)));
        }
        let path = self.as_local().expect("local");
        let file = std::fs::File::open(path).map_err(|e| EmberError::io(path.display(), e))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, file)))
    }

    /// True when this file exists.
    ///
    /// # Errors
    /// [`EmberError::Io`] when that cannot be known (store unreachable, access refused).
    pub fn is_file(&self, conf: &Conf) -> Result<bool> {
        match self.bucket(conf)? {
            Some((bucket, path)) => Ok(bucket.size(path)?.is_some()),
            None => Ok(self.as_local().expect("local").is_file()),
        }
    }

    /// The names directly under this directory, files and sub-directories alike,
    /// sorted; empty when the directory does not exist.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the directory.
    pub fn list(&self, conf: &Conf) -> Result<Vec<String>> {
        let mut names: Vec<String> = match self.bucket(conf)? {
            Some((bucket, path)) => bucket.list_names(path)?,
            None => {
                let dir = self.as_local().expect("local");
                match std::fs::read_dir(dir) {
                    Ok(entries) => {
                        entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect()
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(EmberError::io(dir.display(), e)),
                }
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Removes this file; a missing one is not an error.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the file.
    pub fn remove(&self, conf: &Conf) -> Result<()> {
        if let Some((bucket, path)) = self.bucket(conf)? {
            return bucket.delete(path);
        }
        let path = self.as_local().expect("local");
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(EmberError::io(path.display(), e)),
            _ => Ok(()),
        }
    }

    /// Removes this directory and everything under it; a missing one is not an error.
    ///
    /// # Errors
    /// [`EmberError::Io`] naming the directory.
    pub fn remove_all(&self, conf: &Conf) -> Result<()> {
        if let Some((bucket, path)) = self.bucket(conf)? {
            if path.key.is_empty() {
                return Err(EmberError::Config(format!("refusing to remove every object of {self}")));
            }
            return bucket.delete_prefix(path);
        }
        let path = self.as_local().expect("local");
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(EmberError::io(path.display(), e)),
            _ => Ok(()),
        }
    }

    /// Moves this file to `to`: a rename locally (atomic), a server-side copy then
    /// a delete on an object store (not atomic: a reader may see both for a moment).
    ///
    /// # Errors
    /// [`EmberError::Io`] naming this file; [`EmberError::Config`] when `to` is
    /// on another store.
    pub fn rename(&self, conf: &Conf, to: &Location) -> Result<()> {
        match (self, to) {
            (Location::Local(a), Location::Local(b)) => {
                std::fs::rename(a, b).map_err(|e| EmberError::io(a.display(), e))
            }
            (Location::S3(a), Location::S3(b)) if a.bucket == b.bucket => {
                let (bucket, _) = self.bucket(conf)?.expect("s3");
                bucket.copy(a, b)?;
                bucket.delete(a)
            }
            _ => Err(EmberError::Config(format!("cannot move {self} to {to}: not on the same store"))),
        }
    }
}

/// A local path as it is (not made absolute: use [`Location::from_path`] for that).
impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Location::Local(path.to_path_buf())
    }
}

/// A local path as it is (not made absolute: use [`Location::from_path`] for that).
impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Self {
        Location::Local(path.clone())
    }
}

/// A local path as it is (not made absolute: use [`Location::from_path`] for that).
impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Location::Local(path)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3(p) => f.write_str(p.url().trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_joins_and_prints_back() {
        let s3 = Location::parse("s3a://bucket/ckpt/").unwrap();
        assert_eq!(s3.join("state").join("op-1").url(), "s3a://bucket/ckpt/state/op-1");
        assert_eq!(Location::parse(&s3.url()).unwrap(), s3);
        assert_eq!(Location::parse("s3://b").unwrap().join("x").url(), "s3://b/x");
        assert_eq!(s3.join("a/b").file_name(), Some("b"));
        assert!(matches!(Location::parse("s3a:///k"), Err(PathError::BadUrl(_))));
        assert!(matches!(Location::parse("gs://b/k"), Err(PathError::UnsupportedScheme(_))));
        let local = Location::parse("file:///tmp/x").unwrap();
        assert_eq!(local, Location::Local(PathBuf::from("/tmp/x")));
        assert_eq!(Location::parse(&local.url()).unwrap(), local);
    }

    #[test]
    fn local_files_are_written_whole_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let conf = Conf::new();
        let root = Location::Local(dir.path().join("root"));
        assert_eq!(root.list(&conf).unwrap(), Vec::<String>::new());
        root.join("a/one").write(&conf, b"1".to_vec()).unwrap();
        root.join("b").write(&conf, b"2".to_vec()).unwrap();
        root.join("b").write(&conf, b"22".to_vec()).unwrap();
        assert_eq!(root.list(&conf).unwrap(), ["a", "b"]);
        assert_eq!(root.join("b").read(&conf).unwrap().unwrap(), b"22");
        assert_eq!(root.join("c").read(&conf).unwrap(), None);
        assert!(root.join("a/one").is_file(&conf).unwrap());
        let mut text = String::new();
        root.join("a/one").open(&conf).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "1");
        assert_ne!(root.join("c").local_temporary(), root.join("c").local_temporary());
        root.join("e").upload_file(&conf, root.join("b").as_local().unwrap()).unwrap();
        assert_eq!(root.join("e").read(&conf).unwrap().unwrap(), b"22");
        root.join("e").remove(&conf).unwrap();
        let staged = root.join("c").local_temporary();
        std::fs::write(&staged, b"3").unwrap();
        root.join("c").publish(&conf, &staged).unwrap();
        assert!(!staged.exists());
        root.join("c").rename(&conf, &root.join("d")).unwrap();
        assert_eq!(root.list(&conf).unwrap(), ["a", "b", "d"]);
        root.join("b").remove(&conf).unwrap();
        root.join("b").remove(&conf).unwrap();
        root.join("a").remove_all(&conf).unwrap();
        root.join("a").remove_all(&conf).unwrap();
        assert_eq!(root.list(&conf).unwrap(), ["d"]);
        assert_eq!(root.list_files(&conf).unwrap(), [("d".to_string(), 1)]);
        assert_eq!(root.join("d").read_from(&conf, 0).unwrap().unwrap(), b"3");
        assert_eq!(root.join("d").read_from(&conf, 5).unwrap().unwrap(), b"");
        assert_eq!(root.join("e").read_from(&conf, 0).unwrap(), None);
    }
}
