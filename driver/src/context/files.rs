//! Files shipped to every executor (Spark's `SparkContext.addFile`).

use super::EmberContext;
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use std::path::{Path, PathBuf};

impl EmberContext {
    /// Ships a file to every executor; tasks find their copy with `ember::files::get(name)`
    /// (Spark's `addFile`). `path` is a local path, a `file:` URL or an `s3a://`
    /// object, which the driver fetches once, here, and ships like a local file.
    ///
    /// Errors: a missing or unreadable file or object, a directory, an unsupported scheme.
    pub fn add_file(&self, path: impl AsRef<Path>) -> Result<String> {
        let given = path.as_ref();
        let location = Location::from_path(given).map_err(|e| EmberError::InputPath {
            path: given.display().to_string(),
            reason: format!("cannot add file: {e}"),
        })?;
        let fetched;
        let path = match &location {
            Location::Local(path) => path,
            Location::S3(_) => {
                fetched = self.fetch_file(&location)?;
                &fetched
            }
        };
        let meta = std::fs::metadata(path).map_err(|e| EmberError::InputPath {
            path: path.display().to_string(),
            reason: format!("cannot add file: {e}"),
        })?;
        if !meta.is_file() {
            return Err(EmberError::InputPath {
                path: path.display().to_string(),
                reason: "not a regular file".into(),
            });
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| EmberError::InputPath { path: path.display().to_string(), reason: "no file name".into() })?
            .to_string();
        let abs = std::fs::canonicalize(path).map_err(|e| EmberError::io(path.display(), e))?;
        self.inner.broadcasts.add_file(name.clone(), abs.clone())?;
        ember_core::files::register_driver_file(&name, abs);
        Ok(name)
    }

    /// A local copy of the object `location`, for [`EmberContext::add_file`].
    fn fetch_file(&self, location: &Location) -> Result<PathBuf> {
        let name = location.file_name().ok_or_else(|| EmberError::InputPath {
            path: location.url(),
            reason: "cannot add file: the URL names no object".into(),
        })?;
        let mut dir = self.inner.fetched_files.lock();
        if dir.is_none() {
            *dir = Some(
                tempfile::Builder::new()
                    .prefix("ember-files-")
                    .tempdir()
                    .map_err(|e| EmberError::io("temporary directory", e))?,
            );
        }
        // A directory per fetch: a file added again under the same name must not
        // change the copy an earlier registration serves.
        let fetch = tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(dir.as_ref().expect("made").path())
            .map_err(|e| EmberError::io("temporary directory", e))?
            .keep();
        let local = fetch.join(name);
        let mut input = location
            .open(&self.inner.conf)
            .map_err(|e| EmberError::InputPath { path: location.url(), reason: format!("cannot add file: {e}") })?;
        let mut out = std::fs::File::create(&local).map_err(|e| EmberError::io(local.display(), e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| EmberError::io(location.url(), e))?;
        Ok(local)
    }
}
