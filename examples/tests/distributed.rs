//! The distributed runtime with real processes on loopback: local-cluster and
//! ember:// masters, executor and driver loss, build check, task retries.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, job};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");
const CLUSTER: &str = "local-cluster[3,1,256]";

fn run(master: &str, args: &[&str]) -> Value {
    Proc::spawn(job(master, args)).result()
}

fn executor_command(bin: &Path, driver_url: &str, id: &str, bind: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("EMBER_ROLE", "executor")
        .env("EMBER_DRIVER_URL", driver_url)
        .env("EMBER_EXECUTOR_ID", id)
        .env("EMBER_EXECUTOR_CORES", "1")
        .env("EMBER_EXECUTOR_MEMORY_MB", "256")
        .env("EMBER_BIND_ADDRESS", bind)
        .env("EMBER_LOG", "info");
    cmd
}

fn driver_url(listening_line: &str) -> String {
    let addr = listening_line.rsplit(' ').next().expect("address").trim();
    format!("http://{addr}")
}

/// Executor pids from the driver's "executor registered" log lines.
fn executor_pids(driver: &Proc, count: usize) -> Vec<i32> {
    let mut pids = Vec::new();
    let lines = driver.stderr();
    for line in lines.lines().filter(|l| l.contains("executor registered")) {
        if let Some(pid) = line.split_whitespace().find_map(|w| w.strip_prefix("pid=")) {
            pids.push(pid.parse().unwrap());
        }
    }
    assert!(pids.len() >= count, "expected {count} executors, saw {pids:?}:\n{lines}");
    pids
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes: it runs no code.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pids: &[i32], within: Duration) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "executors {pids:?} still alive after {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

fn corpus(dir: &Path, bytes: u64) -> PathBuf {
    let path = dir.join("corpus.txt");
    let out =
        Command::new(BIN).args(["gen-text", "--bytes", &bytes.to_string(), "--output"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    path
}

#[test]
fn every_example_gives_the_local_result_on_a_local_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let text = corpus(dir.path(), 3_000_000);
    let text = text.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["sumsq", "--n", "10000000", "--partitions", "50"],
        vec!["tasklist"],
        vec!["pi", "--samples", "2000000"],
        vec!["join", "--large", "200000", "--small", "5000", "--keys", "10000"],
        vec!["wordcount", "--input", text],
    ];
    for args in cases {
        let local = run("local[2]", &args);
        let cluster = run(CLUSTER, &args);
        assert_eq!(local, cluster, "{args:?}");
    }
    // Results above spark.task.maxDirectResultSize come from the executors' block servers.
    let small_direct = ["--conf", "spark.task.maxDirectResultSize=64", "tasklist"];
    assert_eq!(run(CLUSTER, &small_direct), run("local[2]", &["tasklist"]));
    let sumsq = run(CLUSTER, &["sumsq"]);
    assert_eq!(sumsq["count"], 10_000_000);
    assert_eq!(sumsq["sum"], "16666786667058750000000");
    // terasort: generate locally, sort on the cluster, validate.
    let (gen_dir, sorted) = (dir.path().join("gen"), dir.path().join("sorted"));
    let generated = run("local[2]", &["teragen", "--records", "50000", "--output", gen_dir.to_str().unwrap()]);
    let sorted_out = run(
        CLUSTER,
        &["terasort", "--input", gen_dir.to_str().unwrap(), "--output", sorted.to_str().unwrap(), "--partitions", "4"],
    );
    assert_eq!(generated, sorted_out);
    let valid = run(CLUSTER, &["teravalidate", "--input", sorted.to_str().unwrap()]);
    assert_eq!(valid["sorted"], true);
    assert_eq!(valid["checksum"], generated["checksum"]);
}

#[test]
fn executors_join_an_ember_master_started_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let text = corpus(dir.path(), 1_000_000);
    let args = ["--conf", "spark.executor.instances=2", "wordcount", "--input", text.to_str().unwrap()];
    let driver = Proc::spawn(job("ember://127.0.0.1:0", &args));
    let url = driver_url(&driver.wait_for("driver listening on"));
    let e1 = Proc::spawn(executor_command(Path::new(BIN), &url, "a", "127.0.0.2"));
    let e2 = Proc::spawn(executor_command(Path::new(BIN), &url, "b", "127.0.0.3"));
    let result = driver.result();
    assert_eq!(result, run("local[2]", &["wordcount", "--input", text.to_str().unwrap()]));
    // The driver waits for its executors to hear the shutdown order before it exits,
    // so they end cleanly (a pod Succeeded, not Failed and replaced by the operator).
    for executor in [e1, e2] {
        let seen = executor.seen.clone();
        let (code, _) = executor.finish();
        assert_eq!(code, Some(0), "executor exit code; stderr:\n{}", seen.lock().unwrap().join("\n"));
    }
}

fn paused_join(master: &str, pause: &Path, extra: &[&str]) -> Proc {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["join", "--large", "300000", "--small", "5000", "--keys", "10000", "--partitions", "6"]);
    args.extend(["--pause-file", pause.to_str().unwrap()]);
    Proc::spawn(job(master, &args))
}

fn join_reference() -> Value {
    run("local[2]", &["join", "--large", "300000", "--small", "5000", "--keys", "10000", "--partitions", "6"])
}

#[test]
fn a_killed_executors_map_outputs_are_recomputed_and_the_result_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let local = dir.path().join("local");
    let local_conf = format!("spark.local.dir={}", local.display());
    let driver = paused_join(CLUSTER, &pause, &["--conf", &local_conf]);
    driver.wait_for("paused; waiting for");
    let pids = executor_pids(&driver, 3);
    signal(pids[1], libc::SIGKILL);
    driver.wait_for("executor lost");
    std::fs::write(&pause, b"").unwrap();
    let stderr = driver.seen.clone();
    let result = driver.result();
    assert_eq!(result, join_reference());
    let log = stderr.lock().unwrap().join("\n");
    assert!(log.contains("map outputs lost with the executor will be recomputed"), "{log}");
    // The killed executor's shuffle files were removed by the driver that started it.
    let left: Vec<_> = std::fs::read_dir(&local).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "work dirs left behind: {left:?}");
}

#[test]
fn a_silent_executor_is_lost_by_heartbeat_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let conf = ["--conf", "spark.executor.heartbeatInterval=100ms", "--conf", "spark.network.timeout=1s"];
    let driver = paused_join(CLUSTER, &pause, &conf);
    driver.wait_for("paused; waiting for");
    let pids = executor_pids(&driver, 3);
    signal(pids[0], libc::SIGSTOP);
    let lost = driver.wait_for("no heartbeat for");
    assert!(lost.contains("executor lost"), "{lost}");
    std::fs::write(&pause, b"").unwrap();
    let result = driver.result();
    assert_eq!(result, join_reference());
    // The stopped executor died with its driver (PR_SET_PDEATHSIG); make sure.
    // SAFETY: signalling a process this test started; it may already be gone.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
}

#[test]
fn executors_exit_by_themselves_when_their_driver_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    // local-cluster: children of the driver.
    let pause = dir.path().join("never");
    let mut driver = paused_join(CLUSTER, &pause, &[]);
    driver.wait_for("paused; waiting for");
    let pids = executor_pids(&driver, 3);
    driver.child.kill().unwrap();
    wait_gone(&pids, Duration::from_secs(5));
    // ember://: executors started by hand notice the lost session.
    let mut driver = paused_join("ember://127.0.0.1:0", &pause, &["--conf", "spark.executor.instances=2"]);
    let url = driver_url(&driver.wait_for("driver listening on"));
    let e1 = Proc::spawn(executor_command(Path::new(BIN), &url, "a", "127.0.0.1"));
    let e2 = Proc::spawn(executor_command(Path::new(BIN), &url, "b", "127.0.0.1"));
    driver.wait_for("paused; waiting for");
    driver.child.kill().unwrap();
    let pids = [e1.child.id() as i32, e2.child.id() as i32];
    let started = Instant::now();
    let (c1, _) = e1.finish();
    let (c2, _) = e2.finish();
    assert!(started.elapsed() < Duration::from_secs(5), "executors took {:?} to exit", started.elapsed());
    assert_eq!((c1, c2), (Some(1), Some(1)));
    wait_gone(&pids, Duration::from_secs(1));
}

#[test]
fn an_executor_of_another_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("ember-examples-other-build");
    std::fs::copy(BIN, &other).unwrap();
    // Trailing bytes leave the program runnable but make it a different build.
    let mut f = std::fs::OpenOptions::new().append(true).open(&other).unwrap();
    std::io::Write::write_all(&mut f, b"another build").unwrap();
    drop(f);
    let pause = dir.path().join("go");
    let driver = paused_join("ember://127.0.0.1:0", &pause, &["--conf", "spark.executor.instances=1"]);
    let url = driver_url(&driver.wait_for("driver listening on"));
    let refused = Proc::spawn(executor_command(&other, &url, "other", "127.0.0.1"));
    let stderr = refused.seen.clone();
    let (code, _) = refused.finish();
    let message = stderr.lock().unwrap().join("\n");
    assert_eq!(code, Some(3), "{message}");
    assert!(message.contains("refused by the driver") && message.contains("exact binary"), "{message}");
    let _good = Proc::spawn(executor_command(Path::new(BIN), &url, "good", "127.0.0.1"));
    driver.wait_for("paused; waiting for");
    std::fs::write(&pause, b"").unwrap();
    assert_eq!(driver.result(), join_reference());
}

#[test]
fn a_task_failing_four_times_fails_the_job_with_its_error() {
    let driver = Proc::spawn(job("local-cluster[2,1,256]", &["faulty", "--partitions", "4", "--fail-partition", "1"]));
    let stderr = driver.seen.clone();
    let (code, out) = driver.finish();
    let log = stderr.lock().unwrap().join("\n");
    assert_eq!(code, Some(1), "stdout: {out}\n{log}");
    let error = log.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(error.contains("failed 4 times"), "{error}");
    assert!(error.contains("partition 1"), "{error}");
    assert!(error.contains("deliberate failure in partition 1"), "{error}");
    // Each retry avoided the executor its previous attempt failed on.
    let failed_on: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("task failed"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("executor_id=")))
        .collect();
    assert_eq!(failed_on.len(), 4, "{log}");
    assert!(failed_on.windows(2).all(|w| w[0] != w[1]), "retries ran where they had failed: {failed_on:?}");
}

#[test]
fn a_corrupted_shuffle_block_is_detected_and_its_map_output_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let local_dirs = dir.path().join("local");
    std::fs::create_dir_all(&local_dirs).unwrap();
    let pause = dir.path().join("go");
    let conf = format!("spark.local.dir={}", local_dirs.display());
    let driver = paused_join(CLUSTER, &pause, &["--conf", &conf]);
    driver.wait_for("paused; waiting for");
    // Flip one byte of the largest map output: some reduce task will read that block.
    let mut data_files: Vec<(u64, PathBuf)> = Vec::new();
    let mut stack = vec![local_dirs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "data") {
                data_files.push((e.metadata().unwrap().len(), p));
            }
        }
    }
    data_files.sort();
    let (len, victim) = data_files.last().cloned().expect("shuffle data files in the executors' local dirs");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[(len / 2) as usize] ^= 0x5a;
    std::fs::write(&victim, bytes).unwrap();
    std::fs::write(&pause, b"").unwrap();
    let stderr = driver.seen.clone();
    let result = driver.result();
    assert_eq!(result, join_reference());
    let log = stderr.lock().unwrap().join("\n");
    assert!(log.contains("shuffle fetch failed") && log.contains("checksum mismatch"), "{log}");
}
