//! The streaming examples as real processes: kill -9 of a driver in the middle
//! of a file stream and a restart from its checkpoint (every file counted once,
//! every batch's output written once), and socket receivers whose executor is
//! killed (restarted elsewhere; with the write-ahead log nothing acknowledged
//! is lost).

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");
const CLUSTER: &str = "local-cluster[2,1,256]";

fn job(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--master").arg(CLUSTER).args(args).env("EMBER_LOG", "info").env_remove("EMBER_CONF");
    cmd
}

/// Words of input file `i`: a deterministic mix, so totals depend on every file.
fn file_words(i: usize) -> Vec<String> {
    (0..40 + i * 7).map(|j| format!("w{}", (i * 31 + j * 17) % 23)).collect()
}

/// Moves file `i` into `dir` atomically (written under a hidden name first).
fn drop_file(dir: &Path, i: usize) {
    let tmp = dir.join(format!(".part-{i}.tmp"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    for chunk in file_words(i).chunks(9) {
        writeln!(f, "{}", chunk.join(" ")).unwrap();
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(format!("part-{i:03}.txt"))).unwrap();
}

fn expected_totals(files: std::ops::Range<usize>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in files {
        for w in file_words(i) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Complete batch output directories `PREFIX-<ms>`, by time.
fn outputs(out_dir: &Path) -> BTreeMap<u64, PathBuf> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(out_dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(ms) = name.strip_prefix("totals-").and_then(|t| t.parse::<u64>().ok()) {
            found.insert(ms, entry.path());
        }
    }
    found
}

fn read_totals(dir: &Path) -> BTreeMap<String, u64> {
    assert!(dir.join("_SUCCESS").exists(), "{} has no _SUCCESS", dir.display());
    let mut m = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let (w, c) = line.split_once('\t').expect("word<TAB>count");
            assert!(m.insert(w.to_string(), c.parse::<u64>().unwrap()).is_none(), "{w} twice in {}", dir.display());
        }
    }
    m
}

/// Waits (bounded) until the newest batch output holds `want`.
fn wait_for_totals(out_dir: &Path, want: &BTreeMap<String, u64>, driver: &Proc) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((_, newest)) = outputs(out_dir).into_iter().next_back()
            && read_totals(&newest) == *want
        {
            return;
        }
        assert!(Instant::now() < deadline, "totals never reached {want:?}; stderr:\n{}", driver.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_file_stream_driver_killed_mid_stream_resumes_from_its_checkpoint_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, ckpt, out) = (tmp.path().join("in"), tmp.path().join("ckpt"), tmp.path().join("out"));
    for d in [&input, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    let prefix = out.join("totals");
    let args = [
        "file-wordcount",
        "--dir",
        input.to_str().unwrap(),
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--output",
        prefix.to_str().unwrap(),
        "--batch-ms",
        "200",
        "--checkpoint-interval-ms",
        "400",
    ];

    let first = Proc::spawn(job(&args));
    first.wait_for("streaming context started");
    for i in 0..6 {
        drop_file(&input, i);
        // Spread over batches, so state is checkpointed between them.
        wait_for_totals(&out, &expected_totals(0..i + 1), &first);
    }
    // More files, and the driver dies at once: they may be taken by a batch that
    // never finished, by none, or by one that did.
    for i in 6..9 {
        drop_file(&input, i);
    }
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = Proc::spawn(job(&args));
    second.wait_for("recovering the streaming context from its checkpoint");
    second.wait_for("streaming context started");
    for i in 9..12 {
        drop_file(&input, i);
    }
    let want = expected_totals(0..12);
    wait_for_totals(&out, &want, &second);
    assert!(second.stderr().contains("state restored from the checkpoint"), "{}", second.stderr());
    drop(second);

    // Every batch time has exactly one complete output: no gap (batches missed
    // while the driver was down were run) and no partial directory.
    let all = outputs(&out);
    let times: Vec<u64> = all.keys().copied().collect();
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 200, "batch outputs are not consecutive: {times:?}");
    }
    let mut previous: BTreeMap<String, u64> = BTreeMap::new();
    for dir in all.values() {
        let totals = read_totals(dir);
        for (w, c) in &previous {
            assert!(totals.get(w).is_some_and(|n| n >= c), "running totals went down in {}", dir.display());
        }
        previous = totals;
    }
    assert_eq!(previous, want);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name())
        .collect();
    // A temporary directory of the batch the kill interrupted may remain until that batch runs again.
    assert!(leftovers.len() <= 1, "temporary outputs left: {leftovers:?}");
}
