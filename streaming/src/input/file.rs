//! `text_file_stream`: lines of the files that appear in a directory (Spark's
//! `textFileStream`). When a batch is generated, every file in the directory
//! that no earlier batch took becomes part of it; hidden files (names starting
//! with `.` or `_`, as Hadoop's filter) are skipped, so writers should write
//! elsewhere (or to a hidden name) and move the file in. Which files each batch
//! took is kept in the checkpoint, so after a driver restart every file is
//! processed exactly once: a batch run again takes the same files, later
//! batches only new ones.

use super::InputSource;
use crate::context::StreamingContext;
use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::time::Time;
use ember::Rdd;
use ember_core::error::{EmberError, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Default, Serialize, Deserialize)]
struct Taken {
    /// Every file any batch took (absolute paths).
    seen: BTreeSet<String>,
    /// Files of each batch a recovery may recompute, by batch time (ms).
    batches: BTreeMap<u64, Vec<String>>,
    /// The newest batch that scanned the directory: an older batch never scans.
    last_scanned_ms: u64,
}

pub(crate) struct FileInput {
    name: String,
    ssc: StreamingContext,
    dir: PathBuf,
    taken: Mutex<Taken>,
}

impl FileInput {
    fn new_files(&self, seen: &BTreeSet<String>) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| EmberError::io(self.dir.display(), e))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| EmberError::io(self.dir.display(), e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            // A file may vanish between listing and stat: it is simply not taken.
            let Ok(meta) = entry.metadata() else { continue };
            let path = entry.path().display().to_string();
            if meta.is_file() && !seen.contains(&path) {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// The files of batch `time`: those it took before (a batch run again),
    /// else the new files in the directory.
    fn files_for(&self, time: Time) -> Result<Vec<String>> {
        let mut taken = self.taken.lock();
        if let Some(files) = taken.batches.get(&time.0) {
            return Ok(files.clone());
        }
        if time.0 <= taken.last_scanned_ms {
            tracing::warn!(input = %self.name, batch_time = %time, "no record of this batch's files: it is empty");
            return Ok(Vec::new());
        }
        let files = self.new_files(&taken.seen)?;
        taken.seen.extend(files.iter().cloned());
        taken.batches.insert(time.0, files.clone());
        taken.last_scanned_ms = time.0;
        if !files.is_empty() {
            tracing::info!(input = %self.name, batch_time = time.0, files = files.len(), "new files");
        }
        Ok(files)
    }
}

impl InputSource for FileInput {
    fn name(&self) -> &str {
        &self.name
    }

    fn checkpoint_state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&*self.taken.lock()).ok()
    }

    fn restore(&self, state: &serde_json::Value) -> Result<()> {
        let taken: Taken = serde_json::from_value(state.clone())
            .map_err(|e| EmberError::Codec(format!("checkpoint record of file stream {}: {e}", self.name)))?;
        *self.taken.lock() = taken;
        Ok(())
    }

    fn forget_before(&self, time: Time) {
        let mut taken = self.taken.lock();
        let keep = taken.batches.split_off(&time.0);
        taken.batches = keep;
        // Files deleted from the directory can no longer be taken again.
        if let Ok(present) = std::fs::read_dir(&self.dir) {
            let present: BTreeSet<String> =
                present.filter_map(|e| e.ok()).map(|e| e.path().display().to_string()).collect();
            let in_batches: BTreeSet<String> = taken.batches.values().flatten().cloned().collect();
            taken.seen.retain(|f| present.contains(f) || in_batches.contains(f));
        }
    }
}

struct FileCompute(Arc<FileInput>);

impl Compute<String> for FileCompute {
    fn name(&self) -> String {
        format!("textFileStream {}", self.0.dir.display())
    }
    fn slide_ms(&self) -> u64 {
        self.0.ssc.inner.batch_ms
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        Vec::new()
    }
    fn compute(&self, _node: &Node<String>, time: Time) -> Result<Option<Rdd<String>>> {
        let files = self.0.files_for(time)?;
        let sc = self.0.ssc.spark_context();
        if files.is_empty() {
            return Ok(Some(sc.empty_rdd()));
        }
        Ok(Some(sc.text_file(&files.join(","), 1)?))
    }
}

impl StreamingContext {
    /// Lines of the files that appear in `dir` (see the module docs).
    ///
    /// Errors: `dir` is not a readable directory.
    pub fn text_file_stream(&self, dir: impl Into<PathBuf>) -> Result<DStream<String>> {
        self.text_file_stream_named(dir, None)
    }

    /// [`StreamingContext::text_file_stream`] with a name for its checkpoint
    /// record (default `textFileStream-N`, N counting file streams in creation
    /// order): name it when the job's code may gain or lose file streams.
    pub fn text_file_stream_named(&self, dir: impl Into<PathBuf>, name: Option<&str>) -> Result<DStream<String>> {
        let dir = dir.into();
        let dir = std::fs::canonicalize(&dir).map_err(|e| EmberError::InputPath {
            path: dir.display().to_string(),
            reason: format!("cannot watch for files: {e}"),
        })?;
        if !dir.is_dir() {
            return Err(EmberError::InputPath { path: dir.display().to_string(), reason: "not a directory".into() });
        }
        let name = self.inner.graph.unique_name("textFileStream", name);
        let input = Arc::new(FileInput { name, ssc: self.clone(), dir, taken: Mutex::new(Taken::default()) });
        self.inner.graph.add_input(input.clone());
        Ok(DStream::from_compute(self, FileCompute(input)))
    }
}
