//! Object files: an RDD saved in Ember's binary record format and read back with
//! its element type (Spark's `saveAsObjectFile` and `SparkContext.objectFile`).
//!
//! A part file holds frames of up to 1024 records, each frame a little-endian
//! `u32` length, a CRC-32 of the payload and the postcard-encoded records, the
//! format of RDD checkpoints ([`ember_core::rdd::write_frames`]). Saving uses the
//! same output commit protocol as `save_as_text_file` (local paths or `s3a://`).
//! As with Spark's (Java serialization), a file is read back by a job built with
//! the same element type: a different type is a decoding error, not a guess.

use crate::context::EmberContext;
use crate::ops::PartWriter;
use crate::rdd::Rdd;
use ember_core::data::{BoxIter, Data};
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use ember_core::rdd::CheckpointRdd;
use serde::{Deserialize, Serialize};

/// Binary part files `part-NNNNN` of framed records.
#[derive(Serialize, Deserialize)]
pub struct ObjectParts;

impl<T: Data> PartWriter<T> for ObjectParts {
    fn name(&self, partition: usize) -> String {
        format!("part-{partition:05}")
    }
    fn write(&self, out: &mut dyn std::io::Write, input: BoxIter<T>) -> std::io::Result<u64> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        let records = ember_core::rdd::write_frames(&mut out, input)?;
        std::io::Write::flush(&mut out)?;
        Ok(records)
    }
}

impl<T: Data> Rdd<T> {
    /// Saves the elements in Ember's binary format: one `part-NNNNN` file per
    /// partition in the directory `path` (a path, `file://` or `s3a://` URL that
    /// must not exist yet), then `_SUCCESS`; read back with
    /// [`EmberContext::object_file`].
    ///
    /// # Errors
    /// As [`Rdd::save_as_text_file`].
    pub fn save_as_object_file(&self, path: &str) -> Result<()> {
        self.save_parts(path, ObjectParts)
    }
}

impl EmberContext {
    /// The elements saved by [`Rdd::save_as_object_file`] in `path`: one
    /// partition per part file, in order.
    ///
    /// # Errors
    /// [`EmberError::InputPath`] when `path` holds no part files or misses one
    /// (`part-00000` … without a gap); a frame that fails its checksum or does not
    /// decode as `T` fails the task that reads it.
    pub fn object_file<T: Data>(&self, path: &str) -> Result<Rdd<T>> {
        let dir = Location::parse(path)
            .map_err(|e| EmberError::InputPath { path: path.to_string(), reason: e.to_string() })?;
        // One listing serves both the check here and the reader's.
        let listing = dir.list(self.conf())?;
        let parts: Vec<&String> = listing.iter().filter(|n| n.starts_with("part-")).collect();
        if parts.is_empty() {
            return Err(EmberError::InputPath {
                path: dir.url(),
                reason: "no object file here (no part-NNNNN files)".into(),
            });
        }
        for (i, name) in parts.iter().enumerate() {
            if **name != format!("part-{i:05}") {
                return Err(EmberError::InputPath {
                    path: dir.url(),
                    reason: format!(
                        "object file parts are not part-00000 to part-{:05}: found {name}",
                        parts.len() - 1
                    ),
                });
            }
        }
        Ok(self.wrap(CheckpointRdd::<T>::from_listing(&dir, &listing, parts.len())?))
    }
}
