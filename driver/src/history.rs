//! The history server (Spark's `HistoryServer` with its `FsHistoryProvider`):
//! reads every event log of a directory (`spark.history.fs.logDirectory`) into a
//! status store and serves the same pages and REST API as a live driver. The
//! directory is scanned again every update interval (Spark's
//! `spark.history.fs.update.interval`, 10 s): new logs appear, and of a log that
//! grew only the appended lines are read and applied (Spark's `FsHistoryProvider`
//! reads in-progress logs incrementally too), so a long running application costs
//! a scan what it wrote since the last one. A compressed log, or one that shrank or
//! was replaced, is replayed whole. An application whose
//! log is still `.inprogress` is listed as incomplete: running, or its driver
//! died without a clean stop.
//!
//! The directory may be an object-store prefix (`s3a://bucket/spark-events`):
//! a scan is one listing, and a log whose size changed is replayed whole (objects
//! are rewritten whole, and nothing like an inode tells an appended log from a
//! replaced one).

use crate::event_log::{self, EventLogError};
use crate::status::AppStatusStore;
use crate::ui::{AppSource, Mode, UiServer};
use ember_core::config::Conf;
use ember_core::filesystem::Location;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Errors of the history server.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read the event log directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    /// The directory's store refused the listing (it names the URL and the cause).
    #[error(transparent)]
    Storage(#[from] ember_core::error::EmberError),
    #[error("the history server cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("the history server cannot start: {0}")]
    Start(String),
}

struct Entry {
    path: Location,
    len: u64,
    modified: Option<SystemTime>,
    /// The file (inode): renaming `….inprogress` to its final name keeps it.
    /// `None` on an object store, whose objects are rewritten whole: a changed
    /// log there is replayed whole.
    inode: Option<u64>,
    /// Uncompressed logs: bytes of complete lines applied so far, and their events.
    read: Option<(u64, usize)>,
    store: AppStatusStore,
}

/// One event log a scan found: its file, whether it is in progress, its length
/// in bytes, its modification time and inode (none on an object store).
struct Found(Location, bool, u64, Option<SystemTime>, Option<u64>);

/// The applications of one event-log directory.
pub struct HistoryProvider {
    dir: Location,
    /// How to reach an object store.
    conf: Conf,
    apps: RwLock<HashMap<String, Entry>>,
    /// Bytes of event logs read so far, by every scan.
    bytes_read: AtomicU64,
}

impl HistoryProvider {
    /// The applications of `dir` (a local directory, or an object-store prefix
    /// reached with the default credential chain: see [`HistoryProvider::with_conf`]).
    pub fn new(dir: impl Into<Location>) -> Self {
        Self::with_conf(dir, Conf::new())
    }

    /// The applications of `dir`, reaching an object store with `conf`'s
    /// `spark.hadoop.fs.s3a.*` settings.
    pub fn with_conf(dir: impl Into<Location>, conf: Conf) -> Self {
        Self { dir: dir.into(), conf, apps: RwLock::new(HashMap::new()), bytes_read: AtomicU64::new(0) }
    }

    /// Bytes of event logs the scans have read so far (compressed bytes for
    /// compressed logs): a grown log adds what was appended, not its whole size.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// The directory read.
    pub fn dir(&self) -> &Location {
        &self.dir
    }

    /// The event logs of the directory by application, its complete log winning
    /// over a leftover in-progress one.
    fn logs(&self) -> Result<HashMap<String, Found>, HistoryError> {
        let mut found: HashMap<String, Found> = HashMap::new();
        let mut consider = |name: &str, mut file: Found| {
            let Some(log) = event_log::parse_log_name(name) else { return };
            let better = found.get(&log.app_id).is_none_or(|f| f.1 && !log.in_progress);
            if better {
                file.1 = log.in_progress;
                found.insert(log.app_id, file);
            }
        };
        match &self.dir {
            Location::Local(dir) => {
                let dir_error = |source| HistoryError::Dir { dir: dir.display().to_string(), source };
                for entry in std::fs::read_dir(dir).map_err(dir_error)? {
                    let entry = entry.map_err(dir_error)?;
                    let Ok(meta) = entry.metadata() else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
                    let file = Found(entry.path().into(), false, meta.len(), meta.modified().ok(), Some(meta.ino()));
                    consider(&name, file);
                }
            }
            Location::S3(_) => {
                for (name, len) in self.dir.list_files(&self.conf)? {
                    consider(&name, Found(self.dir.join(&name), false, len, None, None));
                }
            }
        }
        Ok(found)
    }

    /// Reads new and changed logs and forgets deleted ones; returns how many logs
    /// were (re)read. A log that cannot be read is skipped with a warning.
    ///
    /// Errors: the directory cannot be listed.
    pub fn scan(&self) -> Result<usize, HistoryError> {
        let found = self.logs()?;
        let mut read = 0;
        let mut apps = self.apps.write();
        apps.retain(|id, _| found.contains_key(id));
        for (app_id, Found(path, _, len, modified, inode)) in found {
            if let Some(e) = apps.get_mut(&app_id) {
                if e.path == path && e.len == len && e.modified == modified {
                    continue;
                }
                // The same file grown (perhaps renamed at the application's end).
                if let Some((offset, events)) =
                    e.read.filter(|(offset, _)| e.inode.is_some() && e.inode == inode && *offset <= len)
                {
                    match event_log::read_appended_at(&path, &self.conf, offset, events + 1) {
                        Ok((appended, end)) => {
                            self.bytes_read.fetch_add(len - offset, Ordering::Relaxed);
                            for event in &appended {
                                e.store.apply(event);
                            }
                            (e.path, e.len, e.modified) = (path, len, modified);
                            e.read = Some((end, events + appended.len()));
                            read += 1;
                        }
                        Err(err) => tracing::warn!(error = %err, "cannot read what was appended to an event log"),
                    }
                    continue;
                }
            }
            let compressed = path.file_name().and_then(event_log::parse_log_name).is_none_or(|n| n.compressed);
            let replayed = if compressed {
                replay_at(&path, &self.conf).map(|store| (store, None))
            } else {
                event_log::read_appended_at(&path, &self.conf, 0, 1).map(|(events, end)| {
                    let store = AppStatusStore::new();
                    for event in &events {
                        store.apply(event);
                    }
                    (store, Some((end, events.len())))
                })
            };
            match replayed {
                Ok((store, read_to)) => {
                    self.bytes_read.fetch_add(len, Ordering::Relaxed);
                    apps.insert(app_id, Entry { path, len, modified, inode, read: read_to, store });
                    read += 1;
                }
                Err(e) => tracing::warn!(error = %e, "skipping an event log that cannot be read"),
            }
        }
        Ok(read)
    }
}

/// A status store filled from one event log.
///
/// Errors: the log cannot be read or has a malformed line.
pub fn replay(path: &std::path::Path) -> Result<AppStatusStore, EventLogError> {
    replay_at(&path.into(), &Conf::new())
}

/// [`replay`] of a local file or an object (`conf` says how to reach the store).
///
/// Errors: as [`replay`].
pub fn replay_at(path: &Location, conf: &Conf) -> Result<AppStatusStore, EventLogError> {
    let store = AppStatusStore::new();
    for event in event_log::read_log_at(path, conf)? {
        store.apply(&event);
    }
    Ok(store)
}

impl AppSource for HistoryProvider {
    fn list(&self) -> Vec<AppStatusStore> {
        let mut stores: Vec<AppStatusStore> = self.apps.read().values().map(|e| e.store.clone()).collect();
        stores.sort_by_key(|s| std::cmp::Reverse(s.read().app.start_ms));
        stores
    }

    fn get(&self, app_id: &str) -> Option<AppStatusStore> {
        self.apps.read().get(app_id).map(|e| e.store.clone())
    }
}

/// A running history server: the UI over a [`HistoryProvider`] and its scanner thread.
pub struct HistoryServer {
    provider: Arc<HistoryProvider>,
    ui: UiServer,
    stop: Arc<(Mutex<bool>, parking_lot::Condvar)>,
    scanner: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl HistoryServer {
    /// Reads `dir` once, then serves it on `host:port` (0: any free port) and
    /// rescans it every `update_interval`. Links start with `proxy_base` (Spark's
    /// `spark.ui.proxyBase`; `""` when served at `/`).
    ///
    /// Errors: the directory cannot be listed, the address cannot be bound, the
    /// proxy base is not an absolute path.
    pub fn start(
        dir: impl Into<Location>,
        host: &str,
        port: u16,
        update_interval: Duration,
        proxy_base: &str,
    ) -> Result<Self, HistoryError> {
        Self::serve(HistoryProvider::new(dir), host, port, update_interval, proxy_base)
    }

    /// [`HistoryServer::start`] over a provider (one made with
    /// [`HistoryProvider::with_conf`] reaches an object store with its settings).
    ///
    /// Errors: as [`HistoryServer::start`].
    pub fn serve(
        provider: HistoryProvider,
        host: &str,
        port: u16,
        update_interval: Duration,
        proxy_base: &str,
    ) -> Result<Self, HistoryError> {
        let proxy_base = crate::ui::normalize_proxy_base(proxy_base).map_err(|e| HistoryError::Start(e.to_string()))?;
        let provider = Arc::new(provider);
        let dir = provider.dir().clone();
        let read = provider.scan()?;
        let listener = std::net::TcpListener::bind((host, port))
            .map_err(|source| HistoryError::Bind { address: format!("{host}:{port}"), source })?;
        let ui = UiServer::serve(listener, provider.clone(), None, None, Mode::History, &proxy_base)
            .map_err(|e| HistoryError::Start(e.to_string()))?;
        tracing::info!(dir = %dir, address = %ui.address(), logs = read, "history server started");
        let stop = Arc::new((Mutex::new(false), parking_lot::Condvar::new()));
        let (p, s) = (provider.clone(), stop.clone());
        let scanner = std::thread::Builder::new()
            .name("ember-history-scan".into())
            .spawn(move || {
                let (lock, wake) = &*s;
                let mut stopped = lock.lock();
                while !*stopped {
                    wake.wait_for(&mut stopped, update_interval);
                    if *stopped {
                        break;
                    }
                    if let Err(e) = p.scan() {
                        tracing::warn!(error = %e, "cannot rescan the event log directory");
                    }
                }
            })
            .map_err(|e| HistoryError::Start(e.to_string()))?;
        Ok(Self { provider, ui, stop, scanner: Mutex::new(Some(scanner)) })
    }

    /// The address served.
    pub fn address(&self) -> std::net::SocketAddr {
        self.ui.address()
    }

    /// The applications served.
    pub fn provider(&self) -> &Arc<HistoryProvider> {
        &self.provider
    }

    /// Stops the scanner and the server.
    pub fn stop(&self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.scanner.lock().take() {
            let _ = t.join();
        }
        self.ui.stop();
    }
}

impl Drop for HistoryServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::{ApplicationEnd, ApplicationStart, Event, JobEnd, JobStart};
    use std::io::Write;

    fn line(e: &Event) -> String {
        serde_json::to_string(e).expect("json") + "\n"
    }

    #[test]
    fn a_grown_log_is_read_from_where_the_last_scan_stopped() {
        let dir = tempfile::tempdir().expect("tmp");
        let live = dir.path().join("app-7.inprogress");
        let start = line(&Event::ApplicationStart(ApplicationStart {
            app_id: "app-7".into(),
            app_name: "grow".into(),
            time_ms: 1,
            user: "u".into(),
            master: "local[1]".into(),
            version: "0".into(),
        }));
        std::fs::write(&live, &start).expect("write");
        let provider = HistoryProvider::new(dir.path());
        assert_eq!(provider.scan().expect("scan"), 1);
        assert_eq!(provider.bytes_read(), start.len() as u64);
        assert_eq!(provider.scan().expect("scan"), 0, "an unchanged log is not read");

        let job = line(&Event::JobStart(JobStart { job_id: 0, time_ms: 2, name: "count".into(), stages: vec![] }));
        let end_job = line(&Event::JobEnd(JobEnd { job_id: 0, time_ms: 3, succeeded: true, error: None }));
        let torn = &end_job[..12];
        std::fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .expect("open")
            .write_all(format!("{job}{torn}").as_bytes())
            .expect("append");
        assert_eq!(provider.scan().expect("scan"), 1);
        assert_eq!(provider.bytes_read(), (start.len() + job.len() + torn.len()) as u64, "only the appended bytes");
        let store = provider.get("app-7").expect("app");
        assert_eq!(store.read().events, 2, "the torn line is not applied yet");
        assert!(store.read().jobs[&0].completion_ms.is_none());

        // The application ends: the rest of the line and the end, then the rename.
        let end = line(&Event::ApplicationEnd(ApplicationEnd { time_ms: 4 }));
        let rest = format!("{}{end}", &end_job[12..]);
        std::fs::OpenOptions::new().append(true).open(&live).expect("open").write_all(rest.as_bytes()).expect("append");
        std::fs::rename(&live, dir.path().join("app-7")).expect("rename");
        let before = provider.bytes_read();
        assert_eq!(provider.scan().expect("scan"), 1);
        assert_eq!(
            provider.bytes_read() - before,
            (torn.len() + rest.len()) as u64,
            "the torn line is read again, once"
        );
        let store = provider.get("app-7").expect("app");
        let s = store.read();
        assert_eq!(s.events, 4);
        assert!(s.completed());
        assert_eq!(s.jobs[&0].completion_ms, Some(3));
    }
}
