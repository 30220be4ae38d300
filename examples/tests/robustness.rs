//! No hangs, with real processes: lineage of great depth, tasks that take their
//! executor down, executors replaced as a Spark Worker replaces them, and a job
//! left with no executor failing after a bounded wait.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{Proc, job};

const CLUSTER: &str = "local-cluster[2,1,256]";

/// Executor pids from the driver's "executor registered" log lines.
fn executor_pids(log: &str) -> Vec<i32> {
    log.lines()
        .filter(|l| l.contains("executor registered"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pid=")))
        .map(|pid| pid.parse().unwrap())
        .collect()
}

fn kill(pid: i32) {
    // SAFETY: sending SIGKILL to an executor process this test's driver started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill({pid})");
}

#[test]
fn twenty_thousand_chained_maps_and_two_thousand_unions_run_embedded_and_on_a_local_cluster() {
    // Σ(0..1000) + 1000 × 20,000
    let expected = serde_json::json!({ "depth": 20000, "sum": 20_499_500, "unions": 2000, "union_count": 2001 });
    for master in ["local[2]", CLUSTER] {
        let result = Proc::spawn(job(master, &["deep-lineage", "--depth", "20000", "--unions", "2000"])).result();
        assert_eq!(result, expected, "on {master}");
    }
}

#[test]
fn a_task_that_kills_its_executor_fails_the_job_after_max_failures_with_the_exit_status() {
    let cases = [
        ("abort", "killed by signal 6 (SIGABRT)"),
        ("segfault", "killed by signal 11 (SIGSEGV)"),
        ("stack-overflow", "killed by signal 6 (SIGABRT)"),
        ("exit", "exited with code 3"),
    ];
    for (crash, status) in cases {
        let started = Instant::now();
        let args = ["--conf", "spark.task.maxFailures=3", "executor-killer", "--crash", crash, "--partition", "2"];
        let driver = Proc::spawn(job(CLUSTER, &args));
        let seen = driver.seen.clone();
        let (code, _) = driver.finish();
        let log = seen.lock().unwrap().join("\n");
        assert_eq!(code, Some(1), "{crash}: the job must fail; stderr:\n{log}");
        let error = log.lines().skip_while(|l| !l.starts_with("error: job 0 aborted")).collect::<Vec<_>>().join("\n");
        assert!(error.contains("task for partition 2 of stage"), "{crash}: {error}\n---\n{log}");
        assert!(error.contains("failed 3 times"), "{crash}: {error}");
        assert!(error.contains("ExecutorLostFailure"), "{crash}: {error}");
        assert!(error.contains(status), "{crash}: expected {status:?} in {error}");
        assert!(error.contains("the last lines of its stderr:"), "{crash}: {error}");
        // The task's last words, written just before the crash, survive it.
        assert!(error.contains("executor-killer: partition 2 crashes its executor"), "{crash}: {error}");
        // Each loss cost one executor; the worker replaced every one of them.
        assert!(log.matches("relaunched a lost executor").count() >= 2, "{crash}: {log}");
        assert!(started.elapsed() < Duration::from_secs(60), "{crash}: took {:?}", started.elapsed());
    }
}

#[test]
fn executors_killed_one_by_one_are_replaced_and_the_result_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let args: Vec<String> = support::paused_join_args(&pause);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reference = Proc::spawn(job("local[2]", &args[..args.len() - 2])).result();
    let driver = Proc::spawn(job(CLUSTER, &args));
    driver.wait_for("paused; waiting for");
    let first = executor_pids(&driver.stderr());
    assert_eq!(first.len(), 2, "{}", driver.stderr());
    // One by one: each is replaced (ids 3, then 4) before the next goes.
    kill(first[0]);
    driver.wait_for("relaunched a lost executor");
    driver.wait_for("executor registered executor_id=3 pid=");
    kill(first[1]);
    driver.wait_for("relaunched a lost executor");
    driver.wait_for("executor registered executor_id=4 pid=");
    std::fs::write(&pause, b"").unwrap();
    let (result, log): (Value, String) = driver.result_and_stderr();
    assert_eq!(result, reference);
    assert!(log.contains("map outputs lost with the executor will be recomputed"), "{log}");
    assert!(log.contains("the executor process was killed by signal 9"), "{log}");
    // The replacements lived until the end (a relaunched executor once died with
    // the thread that had started it: PR_SET_PDEATHSIG follows the thread).
    for id in ["3", "4"] {
        assert!(!log.contains(&format!("executor process ended executor_id=\"{id}\"")), "{id}: {log}");
    }
}

#[test]
fn a_job_with_every_executor_gone_and_none_coming_back_fails_within_the_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let mut args: Vec<String> = [
        "--conf",
        "spark.deploy.maxExecutorRetries=0",
        "--conf",
        "spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout=2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(support::paused_join_args(&pause));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let driver = Proc::spawn(job(CLUSTER, &args));
    driver.wait_for("paused; waiting for");
    for pid in executor_pids(&driver.stderr()) {
        kill(pid);
    }
    driver.wait_for("not relaunching the executor");
    let released = Instant::now();
    std::fs::write(&pause, b"").unwrap();
    let seen = driver.seen.clone();
    let (code, _) = driver.finish();
    let log = seen.lock().unwrap().join("\n");
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("no executor to run its tasks on for"), "{log}");
    assert!(log.contains("unschedulableTaskSetTimeout is 2.0 s"), "{log}");
    assert!(released.elapsed() < Duration::from_secs(30), "failed after {:?}", released.elapsed());
}
