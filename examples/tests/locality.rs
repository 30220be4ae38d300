//! Data locality on a real `local-cluster`: a cached RDD's later actions run
//! each task on the executor holding its partition and compute nothing again;
//! a task that must run elsewhere reads the partition from its holder; a
//! partition whose holder died is computed again. What ran where is read from
//! the application's event log.

mod support;

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use support::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");
const PARTITIONS: u64 = 8;

fn cache_reuse(events: &Path, extra_conf: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("EMBER_CONF").env("EMBER_LOG", "info").args(["--master", "local-cluster[2,1,512]"]);
    let mut conf = vec![
        "spark.ui.enabled=false".to_string(),
        "spark.eventLog.enabled=true".to_string(),
        format!("spark.eventLog.dir={}", events.display()),
    ];
    conf.extend(extra_conf.iter().map(|s| s.to_string()));
    for c in &conf {
        cmd.args(["--conf", c]);
    }
    cmd.args(["cache-reuse", "--partitions", &PARTITIONS.to_string(), "--records", "40000"]).args(args);
    cmd
}

/// The application's events, in order.
fn events(dir: &Path) -> Vec<Value> {
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// What the event log says about the cached RDD and the tasks of each job.
struct Log {
    /// Every executor that held each partition of the cached RDD (from its block updates).
    ever_held: HashMap<u64, HashSet<String>>,
    /// Successful tasks by job: (partition, executor, locality).
    tasks: HashMap<u64, Vec<(u64, String, String)>>,
}

fn read_log(dir: &Path, rdd_id: u64) -> Log {
    let mut stage_job = HashMap::new();
    let mut log = Log { ever_held: HashMap::new(), tasks: HashMap::new() };
    for e in events(dir) {
        match e["Event"].as_str().unwrap() {
            "SparkListenerJobStart" => {
                for s in e["stages"].as_array().unwrap() {
                    stage_job.insert(s["stageId"].as_u64().unwrap(), e["jobId"].as_u64().unwrap());
                }
            }
            "SparkListenerBlockUpdated" if e["rddId"].as_u64() == Some(rdd_id) => {
                let partition = e["partition"].as_u64().unwrap();
                let executor = e["executorId"].as_str().unwrap().to_string();
                if e["memorySize"].as_u64().unwrap() + e["diskSize"].as_u64().unwrap() > 0 {
                    log.ever_held.entry(partition).or_default().insert(executor);
                }
            }
            "SparkListenerTaskEnd" if e["status"] == "SUCCESS" => {
                let t = &e["task"];
                let job = stage_job[&t["stageId"].as_u64().unwrap()];
                log.tasks.entry(job).or_default().push((
                    t["partition"].as_u64().unwrap(),
                    t["executorId"].as_str().unwrap().to_string(),
                    t["locality"].as_str().unwrap().to_string(),
                ));
            }
            _ => {}
        }
    }
    log
}

#[test]
fn a_cached_rdds_later_actions_run_where_its_partitions_are_and_compute_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    // A long wait: a loaded machine must not make a task give up on its holder.
    let result = Proc::spawn(cache_reuse(dir.path(), &["spark.locality.wait=60s"], &["--actions", "3"])).result();
    assert_eq!(result["computed"], PARTITIONS, "{result}");
    assert_eq!(result["same"], true, "{result}");
    assert_eq!(result["actions"][2]["count"], 40000);
    let log = read_log(dir.path(), result["rdd_id"].as_u64().unwrap());
    assert_eq!(log.ever_held.len() as u64, PARTITIONS, "every partition is cached somewhere");
    assert!(log.ever_held.values().all(|h| h.len() == 1), "each cached once: {:?}", log.ever_held);
    for job in [1, 2] {
        let tasks = &log.tasks[&job];
        assert_eq!(tasks.len() as u64, PARTITIONS);
        for (partition, executor, locality) in tasks {
            assert!(
                log.ever_held[partition].contains(executor),
                "job {job}: partition {partition} ran on {executor}, held by {:?}",
                log.ever_held[partition]
            );
            assert_eq!(locality, "PROCESS_LOCAL");
        }
    }
}

#[test]
fn a_task_run_away_from_its_cached_partition_reads_it_from_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    // The first attempt of partition 3 fails in the second action; its retry
    // avoids the executor it failed on, which is the one holding the partition.
    let args = ["--actions", "3", "--fail-first-attempt-of", "3"];
    let result = Proc::spawn(cache_reuse(dir.path(), &["spark.locality.wait=60s"], &args)).result();
    assert_eq!(result["computed"], PARTITIONS, "read remotely, not computed again: {result}");
    assert_eq!(result["same"], true, "{result}");
    let log = read_log(dir.path(), result["rdd_id"].as_u64().unwrap());
    let (_, executor, locality) = log.tasks[&1].iter().find(|(p, _, _)| *p == 3).unwrap();
    assert!(!log.ever_held[&3].contains(executor), "the retry ran on {executor}, a holder: {:?}", log.ever_held[&3]);
    assert_eq!(locality, "ANY");
    // The copy read was not kept: only the first executor holds the partition.
    assert_eq!(log.ever_held[&3].len(), 1, "{:?}", log.ever_held[&3]);
}

#[test]
fn a_partition_whose_holder_died_is_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let events_dir = dir.path().join("events");
    std::fs::create_dir_all(&events_dir).unwrap();
    let args = ["--actions", "3", "--pause-file", pause.to_str().unwrap()];
    let driver = Proc::spawn(cache_reuse(&events_dir, &[], &args));
    driver.wait_for("paused; waiting for");
    // Executor 1 goes, and its cached partitions with it; a replacement comes.
    let registered = driver.stderr();
    let pid: i32 = registered
        .lines()
        .filter(|l| l.contains("executor registered") && l.contains("executor_id=1 "))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pid=")))
        .expect("executor 1's pid")
        .parse()
        .unwrap();
    // SAFETY: kill(2) on a child process of the driver this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    driver.wait_for("executor lost");
    std::fs::write(&pause, b"").unwrap();
    let result = driver.result();
    let log = read_log(&events_dir, result["rdd_id"].as_u64().unwrap());
    let lost = log.ever_held.values().filter(|h| h.contains("1")).count() as u64;
    assert!(lost > 0, "executor 1 held no partition: {:?}", log.ever_held);
    assert_eq!(result["computed"], PARTITIONS + lost, "{result}");
    assert_eq!(result["actions"][2]["count"], 40000);
    // Recomputed partitions drew a new salt: the last action saw other values.
    assert_eq!(result["same"], false, "{result}");
    // The last job ran every lost partition on a live executor.
    for (partition, executor, _) in &log.tasks[&2] {
        assert_ne!(executor, "1", "partition {partition} ran on the dead executor");
    }
}
