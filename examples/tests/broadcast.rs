//! Torrent broadcast and addFile on a local cluster of 8 executors, each on its
//! own loopback address: exact values, the driver's upload, a killed holder, a
//! corrupted piece, destroy.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::Proc;

const CLUSTER: &str = "local-cluster[8,1,512]";
const ADDRESSES: &str =
    "ember.localCluster.bindAddresses=127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9";

fn job(master: &str, args: &[&str]) -> Command {
    let mut cmd = support::job(master, args);
    if master.starts_with("local-cluster") {
        cmd.args(["--conf", ADDRESSES]);
    }
    cmd
}

fn run(master: &str, args: &[&str]) -> Value {
    Proc::spawn(job(master, args)).result()
}

fn bytes(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn eight_executors_read_the_exact_value_and_the_driver_uploads_about_one_copy() {
    let args = ["broadcast", "--mb", "24", "--tasks", "16"];
    let local = run("local[2]", &args);
    let cluster = run(CLUSTER, &args);
    assert_eq!(cluster["checksum"], local["checksum"]);
    assert_eq!(cluster["all_tasks_exact"], true, "{cluster}");
    assert_eq!(cluster["executors_read"], 8, "{cluster}");
    let stored = bytes(&cluster, "stored_bytes");
    let driver = bytes(&cluster, "driver_uploaded");
    // A naive design uploads 8 copies; peers must carry the rest.
    assert!(driver <= 2 * stored, "driver uploaded {driver} bytes for a {stored}-byte value: {cluster}");
    assert!(bytes(&cluster, "executors_uploaded") >= 8 * stored - driver, "{cluster}");

    // addFile travels the same way.
    let file = run(CLUSTER, &["broadcast", "--mb", "24", "--tasks", "16", "--via-file"]);
    assert_eq!(file["checksum"], local["checksum"]);
    assert_eq!(file["all_tasks_exact"], true, "{file}");
    assert!(bytes(&file, "driver_uploaded") <= 2 * bytes(&file, "bytes"), "{file}");
}

#[test]
fn unpersisted_values_are_fetched_again_and_destroyed_ones_fail_clearly() {
    let again = run(CLUSTER, &["broadcast", "--mb", "4", "--tasks", "8", "--after", "unpersist"]);
    assert_eq!(again["after_unpersist_exact"], true, "{again}");
    let destroyed = run(CLUSTER, &["broadcast", "--mb", "4", "--tasks", "8", "--after", "destroy"]);
    let error = destroyed["after_destroy_error"].as_str().unwrap();
    assert!(error.contains("broadcast 1: it was destroyed"), "{error}");
}

/// Executor id → pid, from the driver's "executor registered" lines.
fn executor_pid(log: &str, executor_id: &str) -> i32 {
    log.lines()
        .filter(|l| l.contains("executor registered"))
        .find(|l| l.split_whitespace().any(|w| w == format!("executor_id={executor_id}")))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pid=")))
        .unwrap_or_else(|| panic!("no pid for executor {executor_id}:\n{log}"))
        .parse()
        .unwrap()
}

#[test]
fn a_holder_killed_mid_fetch_is_skipped_and_the_others_complete() {
    // The killed executor cannot remove its work dir: keep it in one the test removes.
    let local = tempfile::tempdir().unwrap();
    let mut cmd = job(CLUSTER, &["broadcast", "--mb", "96", "--tasks", "16"]);
    cmd.env("EMBER_LOG", "info,ember::block_master=debug").env("EMBER_LOCAL_DIRS", local.path());
    let driver = Proc::spawn(cmd);
    // Kill the first executor to hold 6 of the 25 pieces: a holder others may be fetching from.
    let mut held = std::collections::HashMap::<String, usize>::new();
    let victim = loop {
        let line = driver.wait_for("piece registered");
        let id = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("executor_id="))
            .unwrap_or_else(|| panic!("no executor id in {line:?}"))
            .trim_matches('"')
            .to_string();
        let n = held.entry(id.clone()).or_default();
        *n += 1;
        if *n == 6 {
            break id;
        }
    };
    let pid = executor_pid(&driver.stderr(), &victim);
    // SAFETY: killing an executor process this test's job started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let (result, log) = driver.result_and_stderr();
    assert_eq!(result["all_tasks_exact"], true, "{result}");
    assert_eq!(result["checksum"], run("local[2]", &["broadcast", "--mb", "96", "--tasks", "1"])["checksum"]);
    assert!(log.contains("executor lost"), "{log}");
}

fn piece_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for work in std::fs::read_dir(root).unwrap().flatten() {
        let dir = work.path().join("pieces").join("broadcast_1");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            out.extend(entries.flatten().map(|e| e.path()));
        }
    }
    out
}

#[test]
fn a_piece_corrupted_on_a_peer_is_detected_and_refetched() {
    let dirs = tempfile::tempdir().unwrap();
    let pause = dirs.path().join("go");
    let local = dirs.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let mut cmd = job(CLUSTER, &["broadcast", "--mb", "16", "--tasks", "16", "--pause-file", pause.to_str().unwrap()]);
    cmd.env("EMBER_LOCAL_DIRS", &local);
    let driver = Proc::spawn(cmd);
    driver.wait_for("paused; waiting for");
    // One executor read the value: it is the only peer holding its pieces. Corrupt them all.
    let pieces = piece_files(&local);
    assert_eq!(pieces.len(), 5, "{pieces:?}");
    for p in &pieces {
        let mut bytes = std::fs::read(p).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::write(&pause, b"").unwrap();
    let (result, log) = driver.result_and_stderr();
    assert_eq!(result["all_tasks_exact"], true, "{result}");
    assert_eq!(result["executors_read"], 8, "{result}");
    assert!(log.contains("corrupt piece from a peer; refetching from another holder"), "{log}");
    assert!(log.contains("a holder served a corrupt piece; no longer handing it out"), "{log}");
}
