//! The output commit protocol of `save_as_text_file`: Hadoop's
//! `FileOutputCommitter` (algorithm version 1) as Spark's
//! `HadoopMapReduceCommitProtocol` drives it, on a local or shared filesystem.
//!
//! ```text
//! out/                          created by the driver (refused if it exists)
//!   _temporary/<job>/_attempts/ each task attempt writes part-NNNNN-<attempt> here
//!   _temporary/<job>/part-NNNNN a task commits by hard-linking its file here:
//!                               the link fails if another attempt got there first,
//!                               so retried and speculative attempts never leave two
//!   part-NNNNN …, _SUCCESS      the job commits: every committed file is renamed
//!                               into out/, _temporary removed, _SUCCESS written
//! ```
//!
//! On an object store ([`ObjectStoreOutputJob`]) there is no rename or hard link:
//! each attempt uploads its file under `out/_temporary/<job>/_attempts/`, the
//! scheduler accepts exactly one attempt's result per partition, and the driver's
//! job commit copies each accepted file to `out/part-NNNNN` on the server, deletes
//! `_temporary` and writes `_SUCCESS`; a failed job deletes everything under `out/`.
//!
//! Nothing is visible in `out/` until the job commits; a job that fails is aborted
//! and its output directory removed, so a rerun is not refused. Attempts cannot
//! create directories: an attempt still running after its job ended (a speculative
//! loser) fails to write instead of leaving files behind.

use crate::config::Conf;
use crate::error::{EmberError, Result};
use crate::filesystem::s3::{Bucket, S3Path, S3Settings};
use std::fs::File;
use std::path::{Path, PathBuf};

const TEMPORARY: &str = "_temporary";
const ATTEMPTS: &str = "_attempts";
/// The marker of a complete output (Hadoop's `_SUCCESS`).
pub const SUCCESS_MARKER: &str = "_SUCCESS";

fn output_error(dir: &Path, reason: impl Into<String>) -> EmberError {
    EmberError::OutputPath { path: dir.display().to_string(), reason: reason.into() }
}

/// One job's output directory while the job runs (Spark's `FileCommitProtocol`
/// job side).
#[derive(Debug)]
pub struct OutputJob {
    dir: PathBuf,
    pending: PathBuf,
}

impl OutputJob {
    /// Claims `dir` for a job: creates its parents and then `dir` itself, which
    /// must not exist yet, and the job's staging directories.
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] when `dir` exists ("output directory already
    /// exists") or cannot be created.
    pub fn setup(dir: &Path) -> Result<Self> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| output_error(dir, format!("cannot create its parent: {e}")))?;
        }
        std::fs::create_dir(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => output_error(dir, "output directory already exists"),
            _ => output_error(dir, format!("cannot create it: {e}")),
        })?;
        let job = format!("{:016x}", rand::random::<u64>());
        let pending = dir.join(TEMPORARY).join(job);
        let job = OutputJob { dir: dir.to_path_buf(), pending };
        if let Err(e) = std::fs::create_dir_all(job.pending.join(ATTEMPTS)) {
            job.abort();
            return Err(output_error(dir, format!("cannot create its staging directory: {e}")));
        }
        Ok(job)
    }

    /// Where tasks commit their files; ship it to the tasks.
    pub fn pending_dir(&self) -> &Path {
        &self.pending
    }

    /// Publishes every committed task file into the output directory, removes the
    /// staging directories and writes [`SUCCESS_MARKER`]. Returns the number of
    /// files published.
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] when a file cannot be moved or the marker
    /// written; the job is then aborted.
    pub fn commit(self) -> Result<usize> {
        match self.publish() {
            Ok(n) => Ok(n),
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    fn publish(&self) -> Result<usize> {
        // First take the staging directory away from attempts that may still be
        // running (speculative losers, killed attempts not yet stopped): once it is
        // renamed, their creates and links by path fail and cannot race the commit.
        let job = self.pending.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let committing = self.dir.join(format!("_committing-{job}"));
        std::fs::rename(&self.pending, &committing).map_err(|e| output_error(&self.dir, e.to_string()))?;
        let entries = std::fs::read_dir(&committing).map_err(|e| output_error(&self.dir, e.to_string()))?;
        let mut published = 0;
        for entry in entries {
            let entry = entry.map_err(|e| output_error(&self.dir, e.to_string()))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('_') {
                continue;
            }
            std::fs::rename(entry.path(), self.dir.join(&name))
                .map_err(|e| output_error(&self.dir, format!("cannot publish {}: {e}", name.to_string_lossy())))?;
            published += 1;
        }
        std::fs::write(self.dir.join(SUCCESS_MARKER), b"").map_err(|e| output_error(&self.dir, e.to_string()))?;
        // Leftovers of attempts are hidden (`_` names); failing to remove them does
        // not undo a committed job (Hadoop's cleanupJob only warns either).
        for leftover in [committing, self.dir.join(TEMPORARY)] {
            if let Err(e) = std::fs::remove_dir_all(&leftover) {
                tracing::warn!(dir = %leftover.display(), error = %e, "could not remove a committed job's staging directory");
            }
        }
        Ok(published)
    }

    /// Removes the output directory and everything in it (the job created it).
    /// It is first renamed to a hidden sibling, so the path is free for a rerun at
    /// once and attempts still running cannot write into it.
    pub fn abort(self) {
        let name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tombstone = self.dir.with_file_name(format!(".{name}-aborted-{:016x}", rand::random::<u64>()));
        let doomed = match std::fs::rename(&self.dir, &tombstone) {
            Ok(()) => tombstone,
            Err(_) => self.dir.clone(),
        };
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            tracing::warn!(dir = %doomed.display(), error = %e, "could not remove the output of a failed job");
        }
    }
}

/// One job's output prefix on an object store while the job runs.
#[derive(Clone)]
pub struct ObjectStoreOutputJob {
    bucket: Bucket,
    dir: S3Path,
    pending: S3Path,
}

fn store_output_error(dir: &S3Path, e: EmberError) -> EmberError {
    let reason = match e {
        EmberError::Io { message, .. } => message,
        other => other.to_string(),
    };
    EmberError::OutputPath { path: dir.url(), reason }
}

impl ObjectStoreOutputJob {
    /// Claims the prefix `dir` for a job: refused when an object exists at `dir`
    /// or under `dir/`. A missing bucket, refused credentials or an unreachable
    /// endpoint fail here, before any task runs.
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] naming the URL and the cause.
    pub fn setup(dir: &S3Path, conf: &Conf) -> Result<Self> {
        if dir.key.is_empty() {
            return Err(EmberError::OutputPath {
                path: dir.url(),
                reason: "name a prefix in the bucket (s3a://bucket/dir) for the part files".into(),
            });
        }
        let bucket = Bucket::open(&S3Settings::from_conf(conf)?, dir)?;
        let taken = bucket.size(dir).map_err(|e| store_output_error(dir, e))?.is_some();
        if taken || !bucket.list(dir, true).map_err(|e| store_output_error(dir, e))?.is_empty() {
            return Err(EmberError::OutputPath { path: dir.url(), reason: "output directory already exists".into() });
        }
        let job = format!("{:016x}", rand::random::<u64>());
        let pending = dir.with_key(format!("{}/{TEMPORARY}/{job}", dir.key));
        Ok(ObjectStoreOutputJob { bucket, dir: dir.clone(), pending })
    }

    /// The URL under which attempts upload (ship it to the tasks).
    pub fn pending_url(&self) -> String {
        self.pending.url()
    }

    /// Uploads one attempt's finished local file as `name` and returns the URL of
    /// the staged object, the attempt's result.
    ///
    /// # Errors
    /// The store's error naming the URL.
    pub fn upload_attempt(pending_url: &str, name: &str, attempt: u64, file: &Path, conf: &Conf) -> Result<String> {
        let pending = S3Path::parse(pending_url)
            .ok_or_else(|| EmberError::Internal(format!("{pending_url} is not an object store URL")))?
            .map_err(EmberError::Internal)?;
        let bucket = Bucket::open(&S3Settings::from_conf(conf)?, &pending)?;
        let staged = pending.with_key(format!("{}/{ATTEMPTS}/{attempt}/{name}", pending.key));
        bucket.upload(file, &staged)?;
        Ok(staged.url())
    }

    /// Publishes the accepted attempts' files (one staged URL per partition),
    /// removes the staging prefix and writes [`SUCCESS_MARKER`]. On failure the
    /// job is aborted.
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] naming the URL and the store's cause.
    pub fn commit(self, staged: &[String]) -> Result<usize> {
        match self.publish(staged) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.abort();
                Err(store_output_error(&self.dir, e))
            }
        }
    }

    fn publish(&self, staged: &[String]) -> Result<usize> {
        for url in staged {
            let from = S3Path::parse(url)
                .ok_or_else(|| EmberError::Internal(format!("{url} is not an object store URL")))?
                .map_err(EmberError::Internal)?;
            let name = from.key.rsplit('/').next().unwrap_or_default();
            self.bucket.copy(&from, &self.dir.with_key(format!("{}/{name}", self.dir.key)))?;
        }
        self.bucket.delete_prefix(&self.dir.with_key(format!("{}/{TEMPORARY}", self.dir.key)))?;
        self.bucket.put(&self.dir.with_key(format!("{}/{SUCCESS_MARKER}", self.dir.key)), Vec::new())?;
        Ok(staged.len())
    }

    /// Deletes every object under the output prefix (the job found it empty).
    pub fn abort(&self) {
        if let Err(e) = self.bucket.delete_prefix(&self.dir) {
            tracing::warn!(dir = %self.dir.url(), error = %e, "could not remove the output of a failed job");
        }
    }
}

/// One task attempt's output file (Spark's `FileCommitProtocol` task side):
/// written under the job's staging directory, committed once.
#[derive(Debug)]
pub struct TaskOutputFile {
    attempt_path: PathBuf,
    committed_path: PathBuf,
}

impl TaskOutputFile {
    /// Creates the attempt's file for the output file `name` (e.g. `part-00003`)
    /// of the job whose [`OutputJob::pending_dir`] is `pending`; `attempt` is the
    /// task attempt's unique id. Dropping the value without committing removes
    /// the file.
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] when the file cannot be created, for example
    /// because the job has already ended.
    pub fn create(pending: &Path, name: &str, attempt: u64) -> Result<(Self, File)> {
        let attempt_path = pending.join(ATTEMPTS).join(format!("{name}-{attempt}"));
        let file = File::create(&attempt_path).map_err(|e| output_error(&attempt_path, e.to_string()))?;
        Ok((TaskOutputFile { attempt_path, committed_path: pending.join(name) }, file))
    }

    /// The attempt's file, to name in errors.
    pub fn path(&self) -> &Path {
        &self.attempt_path
    }

    /// Commits the written file: returns `true` when this attempt's file is now the
    /// task's output, `false` when another attempt of the task committed first (its
    /// file stays, this one is removed).
    ///
    /// # Errors
    /// [`EmberError::OutputPath`] when the file cannot be linked into place.
    pub fn commit(self) -> Result<bool> {
        match std::fs::hard_link(&self.attempt_path, &self.committed_path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(output_error(&self.committed_path, e.to_string())),
        }
    }
}

impl Drop for TaskOutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.attempt_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn write(pending: &Path, name: &str, attempt: u64, text: &str) -> TaskOutputFile {
        let (out, mut file) = TaskOutputFile::create(pending, name, attempt).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        out
    }

    #[test]
    fn the_first_committed_attempt_is_published_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/out");
        let job = OutputJob::setup(&dir).unwrap();
        let first = write(job.pending_dir(), "part-00000", 7, "first\n");
        let second = write(job.pending_dir(), "part-00000", 8, "second\n");
        let failed = write(job.pending_dir(), "part-00001", 9, "half");
        assert_eq!(names(&dir), vec!["_temporary"], "nothing visible before the job commits");
        assert!(second.commit().unwrap());
        assert!(!first.commit().unwrap());
        drop(failed);
        let other = write(job.pending_dir(), "part-00001", 10, "one\n");
        assert!(other.commit().unwrap());
        // A speculative loser still writing when the job commits.
        let late = write(job.pending_dir(), "part-00001", 11, "late\n");
        assert_eq!(job.commit().unwrap(), 2);
        assert!(late.commit().is_err(), "an attempt cannot commit into a committed job");
        assert_eq!(names(&dir), vec!["_SUCCESS", "part-00000", "part-00001"]);
        assert_eq!(std::fs::read_to_string(dir.join("part-00000")).unwrap(), "second\n");
    }

    #[test]
    fn an_existing_output_is_refused_and_an_aborted_one_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let job = OutputJob::setup(&dir).unwrap();
        let err = OutputJob::setup(&dir).unwrap_err().to_string();
        assert!(err.contains("output path") && err.contains("already exists"), "{err}");
        let pending = job.pending_dir().to_path_buf();
        write(&pending, "part-00000", 1, "x\n").commit().unwrap();
        job.abort();
        assert!(!dir.exists());
        // An attempt that outlives its job cannot write.
        assert!(TaskOutputFile::create(&pending, "part-00001", 2).is_err());
        assert!(!dir.exists());
    }
}
