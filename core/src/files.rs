//! Files shipped with `addFile` (Spark's SparkFiles): a task asks for the local
//! path of a file by its name.

use crate::error::{EmberError, Result};
use crate::task::TaskContext;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

fn driver_files() -> &'static RwLock<HashMap<String, PathBuf>> {
    static FILES: OnceLock<RwLock<HashMap<String, PathBuf>>> = OnceLock::new();
    FILES.get_or_init(Default::default)
}

/// Records a file added on this (driver) process, so `get` works outside tasks too.
pub fn register_driver_file(name: &str, path: PathBuf) {
    driver_files().write().insert(name.to_string(), path);
}

/// The local path of the file added as `name`: in a task, the executor's copy
/// (fetched on first use); on the driver, the original.
pub fn get(name: &str) -> Result<PathBuf> {
    TaskContext::with_current(|ctx| match ctx {
        Some(ctx) => ctx.env().file_path(name),
        None => driver_files().read().get(name).cloned().ok_or_else(|| EmberError::File {
            name: name.to_string(),
            reason: "no file of that name was added with addFile".into(),
        }),
    })
}
