//! The history server (Spark's `HistoryServer` with its `FsHistoryProvider`):
//! reads every event log of a directory (`spark.history.fs.logDirectory`) into a
//! status store and serves the same pages and REST API as a live driver. The
//! directory is scanned again every update interval (Spark's
//! `spark.history.fs.update.interval`, 10 s) and a log that changed is replayed,
//! so running applications advance and new ones appear. An application whose
//! log is still `.inprogress` is listed as incomplete: running, or its driver
//! died without a clean stop.

use crate::event_log::{self, EventLogError};
use crate::status::AppStatusStore;
use crate::ui::{AppSource, Mode, UiServer};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Errors of the history server.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read the event log directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("the history server cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("the history server cannot start: {0}")]
    Start(String),
}

struct Entry {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    store: AppStatusStore,
}

/// The applications of one event-log directory.
pub struct HistoryProvider {
    dir: PathBuf,
    apps: RwLock<HashMap<String, Entry>>,
}

impl HistoryProvider {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), apps: RwLock::new(HashMap::new()) }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads new and changed logs and forgets deleted ones; returns how many logs
    /// were (re)read. A log that cannot be read is skipped with a warning.
    ///
    /// Errors: the directory cannot be listed.
    pub fn scan(&self) -> Result<usize, HistoryError> {
        let dir_error = |source| HistoryError::Dir { dir: self.dir.display().to_string(), source };
        // By application: its complete log wins over a leftover in-progress one.
        let mut found: HashMap<String, (PathBuf, bool, std::fs::Metadata)> = HashMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(dir_error)? {
            let entry = entry.map_err(dir_error)?;
            let Some(name) = entry.file_name().to_str().and_then(event_log::parse_log_name) else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let better = found.get(&name.app_id).is_none_or(|(_, in_progress, _)| *in_progress && !name.in_progress);
            if better {
                found.insert(name.app_id, (entry.path(), name.in_progress, meta));
            }
        }
        let mut read = 0;
        let mut apps = self.apps.write();
        apps.retain(|id, _| found.contains_key(id));
        for (app_id, (path, _, meta)) in found {
            let modified = meta.modified().ok();
            let unchanged =
                apps.get(&app_id).is_some_and(|e| e.path == path && e.len == meta.len() && e.modified == modified);
            if unchanged {
                continue;
            }
            match replay(&path) {
                Ok(store) => {
                    apps.insert(app_id, Entry { path, len: meta.len(), modified, store });
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
pub fn replay(path: &Path) -> Result<AppStatusStore, EventLogError> {
    let store = AppStatusStore::new();
    for event in event_log::read_log(path)? {
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
    /// rescans it every `update_interval`.
    ///
    /// Errors: the directory cannot be listed, the address cannot be bound.
    pub fn start(dir: &Path, host: &str, port: u16, update_interval: Duration) -> Result<Self, HistoryError> {
        let provider = Arc::new(HistoryProvider::new(dir));
        let read = provider.scan()?;
        let listener = std::net::TcpListener::bind((host, port))
            .map_err(|source| HistoryError::Bind { address: format!("{host}:{port}"), source })?;
        let ui = UiServer::serve(listener, provider.clone(), None, Mode::History)
            .map_err(|e| HistoryError::Start(e.to_string()))?;
        tracing::info!(dir = %dir.display(), address = %ui.address(), logs = read, "history server started");
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
