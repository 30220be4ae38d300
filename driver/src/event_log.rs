//! The event log (Spark's `EventLoggingListener`): with `spark.eventLog.enabled`,
//! every bus event is written as one JSON line to `spark.eventLog.dir/<app id>`,
//! lz4-compressed (`<app id>.lz4`, lz4 frame format) with `spark.eventLog.compress`.
//! The file is named `….inprogress` until the application ends cleanly; it is
//! flushed whenever the writer has caught up with the bus, so a driver killed
//! mid-job leaves a readable in-progress log. `read_log` reads one back, to its
//! last complete line.
//!
//! On an object store (`spark.eventLog.dir=s3a://bucket/prefix`), which cannot
//! append, the log is written to a local staging file and uploaded whole (a
//! multipart upload above 8 MiB): as `<app id>….inprogress` at start, then
//! whenever it grew and the last upload is `ember.eventLog.uploadInterval`
//! ([`UPLOAD_INTERVAL`] by default) old (checked while the bus is quiet too), and
//! under its final name (the in-progress object then deleted) when the
//! application ends. A driver killed mid-job leaves the in-progress object of its
//! last upload, at most an interval behind. A
//! failed in-progress upload is retried at the next interval; a failed final
//! upload keeps the staging file and names it. (Spark's S3A output stream shows
//! nothing until the file is closed.)

use crate::listener::{Event, Listener};
use ember_core::config::Conf;
use ember_core::error::EmberError;
use ember_core::filesystem::Location;
use std::fs::File;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Suffix of a log whose application has not ended (Spark's).
pub const IN_PROGRESS: &str = ".inprogress";
/// Suffix of a compressed log.
pub const LZ4: &str = ".lz4";
/// Least time between two uploads of an in-progress log to an object store, by
/// default (`ember.eventLog.uploadInterval`).
pub const UPLOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("event log {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("event log {path}, line {line}: {message}")]
    Parse { path: String, line: usize, message: String },
    /// An object-store or path error (it names the URL).
    #[error("event log: {0}")]
    Storage(#[from] EmberError),
}

fn io(path: &Path, source: std::io::Error) -> EventLogError {
    EventLogError::Io { path: path.display().to_string(), source }
}

enum Sink {
    Plain(BufWriter<File>),
    Lz4(lz4_flex::frame::FrameEncoder<BufWriter<File>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Lz4(w) => w,
        }
    }
}

/// Where an object-store log goes, and when it was last uploaded.
struct Upload {
    conf: Conf,
    in_progress: Location,
    complete: Location,
    last: Option<Instant>,
    /// Least time between two in-progress uploads.
    interval: Duration,
    /// Events were written since the last upload.
    dirty: bool,
    /// The last in-progress upload failed (warned once per run of failures).
    failing: bool,
}

/// Writes the event log; a bus listener.
pub struct EventLogWriter {
    sink: Option<Sink>,
    /// The file written: the log itself, or the staging file of an upload.
    path: PathBuf,
    final_path: PathBuf,
    upload: Option<Upload>,
    /// A write error stops the log (logged once) rather than the application.
    failed: bool,
}

impl EventLogWriter {
    /// Creates `dir/<app_id>[.lz4].inprogress` (and `dir` when missing); on an
    /// object store, a staging file in the temporary directory instead, uploaded
    /// as described in the module docs (`conf` says how to reach the store).
    ///
    /// Errors: the directory or file cannot be created; the store refuses the
    /// first upload (wrong credentials, missing bucket).
    pub fn create(dir: &Location, app_id: &str, compress: bool, conf: &Conf) -> Result<Self, EventLogError> {
        let name = if compress { format!("{app_id}{LZ4}") } else { app_id.to_string() };
        let in_progress = format!("{name}{IN_PROGRESS}");
        let (path, final_path, upload) = match dir {
            Location::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
                (dir.join(&in_progress), dir.join(&name), None)
            }
            Location::S3(_) => {
                let staging = dir.join(&in_progress).local_temporary();
                let interval = conf
                    .get_duration("ember.eventLog.uploadInterval", UPLOAD_INTERVAL)
                    .map_err(EventLogError::Storage)?;
                let upload = Upload {
                    interval,
                    conf: conf.clone(),
                    in_progress: dir.join(&in_progress),
                    complete: dir.join(&name),
                    last: None,
                    dirty: false,
                    failing: false,
                };
                (staging.clone(), staging, Some(upload))
            }
        };
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        let buffered = BufWriter::with_capacity(64 << 10, file);
        let sink =
            if compress { Sink::Lz4(lz4_flex::frame::FrameEncoder::new(buffered)) } else { Sink::Plain(buffered) };
        let mut writer = Self { sink: Some(sink), path, final_path, upload, failed: false };
        // An object store that refuses the log is a configuration error, found now.
        if let Some(upload) = &mut writer.upload {
            if let Err(e) = upload.in_progress.write(conf, Vec::new()) {
                let _ = std::fs::remove_file(&writer.path);
                return Err(e.into());
            }
            upload.last = Some(Instant::now());
        }
        tracing::info!(path = %writer.location(), "writing the event log");
        Ok(writer)
    }

    /// Where the log is being written (a path, or the URL of the in-progress object).
    pub fn location(&self) -> String {
        match &self.upload {
            Some(upload) => upload.in_progress.url(),
            None => self.path.display().to_string(),
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        if !self.failed {
            tracing::error!(path = %self.location(), error = %e, "cannot write the event log; it stops here");
        }
        self.failed = true;
        self.sink = None;
        if self.upload.is_some() {
            tracing::error!(staging = %self.path.display(), "the event log written so far is kept in its staging file");
        }
    }

    /// Uploads the staging file (flushed) as the in-progress object when it grew
    /// and the last upload is the upload interval old, or `now`. A failure is
    /// warned about and retried at the next interval.
    fn upload_in_progress(&mut self, now: bool) {
        let Some(upload) = &mut self.upload else { return };
        let due = upload.last.is_none_or(|t| t.elapsed() >= upload.interval);
        if self.sink.is_none() || !upload.dirty || !(due || now) {
            return;
        }
        upload.last = Some(Instant::now());
        match upload.in_progress.upload_file(&upload.conf, &self.path) {
            Ok(()) => {
                upload.dirty = false;
                upload.failing = false;
            }
            Err(e) => {
                if !std::mem::replace(&mut upload.failing, true) {
                    tracing::warn!(path = %upload.in_progress, error = %e, "cannot upload the in-progress event log; retrying");
                }
            }
        }
    }

    /// Uploads the finished staging file under the log's final name and deletes
    /// the in-progress object and the staging file.
    fn upload_complete(&mut self) -> std::io::Result<()> {
        let Some(upload) = &mut self.upload else { return Ok(()) };
        upload.complete.upload_file(&upload.conf, &self.path).map_err(std::io::Error::other)?;
        if let Err(e) = upload.in_progress.remove(&upload.conf) {
            tracing::warn!(path = %upload.in_progress, error = %e, "cannot delete the in-progress event log");
        }
        let _ = std::fs::remove_file(&self.path);
        Ok(())
    }

    fn flush(&mut self) {
        let flushed = match &mut self.sink {
            None => Ok(()),
            Some(Sink::Plain(w)) => w.flush(),
            // The encoder's flush only hands its block to the buffer below it.
            Some(Sink::Lz4(w)) => w.flush().and_then(|()| w.get_mut().flush()),
        };
        match flushed {
            Ok(()) => self.upload_in_progress(false),
            Err(e) => self.fail(e),
        }
    }

    /// Ends the log cleanly: finishes the file and drops `.inprogress` from its name.
    fn finish(&mut self) {
        let Some(sink) = self.sink.take() else { return };
        let done = match sink {
            Sink::Plain(mut w) => w.flush(),
            Sink::Lz4(w) => w.finish().map_err(std::io::Error::other).and_then(|mut w| w.flush()),
        };
        let done = done.and_then(|()| match self.upload {
            Some(_) => self.upload_complete(),
            None => std::fs::rename(&self.path, &self.final_path),
        });
        match done {
            Ok(()) => match &self.upload {
                Some(upload) => tracing::info!(path = %upload.complete, "event log complete"),
                None => tracing::info!(path = %self.final_path.display(), "event log complete"),
            },
            Err(e) => self.fail(e),
        }
    }
}

impl Listener for EventLogWriter {
    fn name(&self) -> &'static str {
        "eventLog"
    }

    fn on_event(&mut self, event: &Event) {
        let Some(sink) = &mut self.sink else { return };
        let w = sink.writer();
        let written =
            serde_json::to_writer(&mut *w, event).map_err(std::io::Error::other).and_then(|()| w.write_all(b"\n"));
        if let Some(upload) = &mut self.upload {
            upload.dirty = true;
        }
        if let Err(e) = written {
            return self.fail(e);
        }
        if matches!(event, Event::ApplicationEnd(_)) {
            self.finish();
        }
    }

    fn on_idle(&mut self) {
        self.flush();
    }

    fn on_quiet(&mut self) {
        self.upload_in_progress(false);
    }

    fn on_stop(&mut self) {
        // Stopped without a clean end: the log stays in progress, flushed (and uploaded).
        self.flush();
        self.upload_in_progress(true);
        if self.upload.as_ref().is_some_and(|u| !u.dirty) && self.sink.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a log file's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName {
    pub app_id: String,
    pub compressed: bool,
    pub in_progress: bool,
}

/// Parses an event log's file name; None for files that are not event logs.
pub fn parse_log_name(name: &str) -> Option<LogName> {
    if name.starts_with('.') {
        return None;
    }
    let (rest, in_progress) = match name.strip_suffix(IN_PROGRESS) {
        Some(r) => (r, true),
        None => (name, false),
    };
    let (app_id, compressed) = match rest.strip_suffix(LZ4) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    (!app_id.is_empty()).then(|| LogName { app_id: app_id.to_string(), compressed, in_progress })
}

/// Reads an event log to its last complete line: a trailing partial line (the
/// writer was killed mid-write) is left out, a malformed complete line is an error.
///
/// Errors: the file cannot be read or a complete line is not an event.
pub fn read_log(path: &Path) -> Result<Vec<Event>, EventLogError> {
    read_log_at(&Location::Local(path.to_path_buf()), &Conf::new())
}

/// [`read_log`] of a local file or an object (`conf` says how to reach the store).
///
/// Errors: as [`read_log`]; a missing file.
pub fn read_log_at(at: &Location, conf: &Conf) -> Result<Vec<Event>, EventLogError> {
    let url = at.url();
    let compressed = at.file_name().and_then(parse_log_name).is_some_and(|n| n.compressed);
    let raw = at.read(conf)?.ok_or_else(|| EventLogError::Io {
        path: url.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })?;
    let bytes = if compressed {
        // A frame cut short by a crash decodes up to its last whole block.
        let mut bytes = Vec::new();
        let mut decoder = lz4_flex::frame::FrameDecoder::new(&raw[..]);
        let mut buf = [0u8; 64 << 10];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        bytes
    } else {
        raw
    };
    Ok(parse_complete_lines(&url, &bytes, 1)?.0)
}

/// The events of the complete lines of `bytes` (a trailing partial line is left
/// for later) and how many bytes those lines took; `first_line` numbers the
/// first line in errors.
fn parse_complete_lines(path: &str, bytes: &[u8], first_line: usize) -> Result<(Vec<Event>, u64), EventLogError> {
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(last) => &bytes[..=last],
        None => &[][..],
    };
    let mut events = Vec::new();
    for (i, line) in complete.lines().enumerate() {
        let line = line.map_err(|e| EventLogError::Io { path: path.to_string(), source: e })?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|e| EventLogError::Parse {
            path: path.to_string(),
            line: first_line + i,
            message: e.to_string(),
        })?;
        events.push(event);
    }
    Ok((events, complete.len() as u64))
}

/// An uncompressed log's appended part: the events of the complete lines from
/// byte `offset` on, and the offset just past the last of them (where the next
/// read starts; a partial last line is read again then). `first_line` is the
/// line number at `offset`, for errors. Compressed logs cannot be read from the
/// middle: use [`read_log`].
///
/// Errors: the file cannot be read or a complete line is not an event.
pub fn read_appended(path: &Path, offset: u64, first_line: usize) -> Result<(Vec<Event>, u64), EventLogError> {
    read_appended_at(&Location::Local(path.to_path_buf()), &Conf::new(), offset, first_line)
}

/// [`read_appended`] of a local file or an object (a ranged GET from `offset`).
///
/// Errors: as [`read_appended`]; a missing file.
pub fn read_appended_at(
    at: &Location,
    conf: &Conf,
    offset: u64,
    first_line: usize,
) -> Result<(Vec<Event>, u64), EventLogError> {
    let url = at.url();
    let bytes = at.read_from(conf, offset)?.ok_or_else(|| EventLogError::Io {
        path: url.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })?;
    let (events, consumed) = parse_complete_lines(&url, &bytes, first_line)?;
    Ok((events, offset + consumed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::{ApplicationEnd, ApplicationStart, JobEnd};

    fn start() -> Event {
        Event::ApplicationStart(ApplicationStart {
            app_id: "app-1".into(),
            app_name: "t".into(),
            time_ms: 1,
            user: "u".into(),
            master: "local[1]".into(),
            version: "0".into(),
        })
    }

    fn job_end() -> Event {
        Event::JobEnd(JobEnd { job_id: 0, time_ms: 2, succeeded: true, error: None })
    }

    #[test]
    fn names() {
        let n = parse_log_name("app-1.lz4.inprogress").expect("log");
        assert_eq!((n.app_id.as_str(), n.compressed, n.in_progress), ("app-1", true, true));
        let n = parse_log_name("app-2").expect("log");
        assert_eq!((n.app_id.as_str(), n.compressed, n.in_progress), ("app-2", false, false));
        assert_eq!(parse_log_name(".hidden"), None);
    }

    #[test]
    fn in_progress_until_the_end_readable_meanwhile_plain_and_compressed() {
        for compress in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let at = Location::Local(dir.path().to_path_buf());
            let mut w = EventLogWriter::create(&at, "app-1", compress, &Conf::new()).expect("create");
            let live = PathBuf::from(w.location());
            w.on_event(&start());
            w.on_event(&job_end());
            w.on_idle();
            assert!(live.to_string_lossy().ends_with(IN_PROGRESS));
            assert_eq!(read_log(&live).expect("read while running"), vec![start(), job_end()]);
            let end = Event::ApplicationEnd(ApplicationEnd { time_ms: 3 });
            w.on_event(&end);
            assert!(!live.exists());
            let done = dir.path().join(if compress { "app-1.lz4" } else { "app-1" });
            assert_eq!(read_log(&done).expect("read"), vec![start(), job_end(), end]);
        }
    }

    #[test]
    fn appended_lines_are_read_from_where_the_last_read_stopped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("app-3.inprogress");
        let line = |e: &Event| serde_json::to_string(e).expect("json") + "\n";
        let (first, second) = (line(&start()), line(&job_end()));
        std::fs::write(&path, format!("{first}{}", &second[..10])).expect("write");
        let (events, offset) = read_appended(&path, 0, 1).expect("read");
        assert_eq!((events, offset), (vec![start()], first.len() as u64), "the torn line waits");
        std::fs::write(&path, format!("{first}{second}")).expect("write");
        let (events, offset) = read_appended(&path, offset, 2).expect("read");
        assert_eq!((events, offset), (vec![job_end()], (first.len() + second.len()) as u64));
        std::fs::write(&path, format!("{first}{second}not json\n")).expect("write");
        assert!(matches!(read_appended(&path, offset, 3), Err(EventLogError::Parse { line: 3, .. })));
    }

    #[test]
    fn a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("app-9.inprogress");
        let mut text = serde_json::to_string(&start()).expect("json");
        text.push('\n');
        text.push_str(r#"{"Event":"SparkListenerJobEn"#);
        std::fs::write(&path, text).expect("write");
        assert_eq!(read_log(&path).expect("read"), vec![start()]);
        std::fs::write(&path, "not json\n").expect("write");
        assert!(matches!(read_log(&path), Err(EventLogError::Parse { line: 1, .. })));
    }
}
