//! Dynamic allocation with real executor processes (`local-cluster`, where the
//! driver starts the executors itself): a slow wide stage scales the executors up,
//! idle ones are retired (exit 0, not relaunched, not lost), the demand the
//! operator would read is served on the UI, and the map outputs of retired
//! executors are recomputed cleanly by the next job.

mod support;

use std::time::{Duration, Instant};
use support::{Proc, http, job, loopback_address_in};

const JOIN: [&str; 9] = ["join", "--large", "20000", "--small", "1000", "--keys", "2000", "--partitions", "8"];

#[test]
fn executors_scale_up_for_a_wide_stage_and_back_down_when_idle_with_an_exact_result() {
    let expected = Proc::spawn(job("local[2]", &JOIN)).result();

    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let mut args: Vec<String> = [
        "spark.ui.port=0",
        "spark.dynamicAllocation.enabled=true",
        "spark.dynamicAllocation.minExecutors=1",
        "spark.dynamicAllocation.initialExecutors=1",
        "spark.dynamicAllocation.schedulerBacklogTimeout=200ms",
        "spark.dynamicAllocation.executorIdleTimeout=1",
        "spark.dynamicAllocation.shuffleTracking.timeout=2s",
    ]
    .iter()
    .flat_map(|c| ["--conf".to_string(), c.to_string()])
    .collect();
    args.extend(JOIN.iter().map(|s| s.to_string()));
    args.extend(["--task-ms", "1500", "--pause-file"].map(String::from));
    args.push(go.to_str().unwrap().to_string());
    let driver = Proc::spawn(job("local-cluster[4,1,256]", &args.iter().map(String::as_str).collect::<Vec<_>>()));
    let ui = loopback_address_in(&driver.wait_for("web UI at http://"));

    // One executor at the start; the backlog of 1.5 s tasks brings the other three.
    for _ in 0..4 {
        driver.wait_for("executor registered");
    }
    // The first job ends and the application pauses: three executors go idle past
    // their timeouts (the shuffle one included) and are retired; one (minExecutors) stays.
    let mut map_outputs = 0;
    for _ in 0..3 {
        let line = driver.wait_for("executor decommissioned");
        map_outputs += line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("map_outputs="))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no map_outputs in {line:?}"));
    }
    assert!(map_outputs > 0, "retired executors held map outputs the next job must recompute");

    // The demand the operator reads: target 1, one executor, three retired.
    let deadline = Instant::now() + Duration::from_secs(30);
    let demand = loop {
        let d = http::get_json(ui, "/ember/v1/allocation");
        if d["executors"].as_array().is_some_and(|e| e.len() == 1) {
            break d;
        }
        assert!(Instant::now() < deadline, "the demand never showed one executor: {d}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(demand["target"], 1, "{demand}");
    assert_eq!(demand["minExecutors"], 1, "{demand}");
    assert_eq!(demand["maxExecutors"], 4, "local-cluster[4,…] has room for 4: {demand}");
    assert_eq!(demand["decommissioned"].as_array().map(Vec::len), Some(3), "{demand}");

    std::fs::write(&go, "").unwrap();
    let (result, stderr) = driver.result_and_stderr();
    assert_eq!(result, expected, "the final job recomputed the retired executors' outputs");
    assert!(!stderr.contains("relaunched a lost executor"), "a retired executor was relaunched:\n{stderr}");
    let warned = |what: &str| stderr.lines().any(|l| l.contains(" WARN ") && l.contains(what));
    assert!(!warned("executor process ended"), "a retired executor was reported as ended badly:\n{stderr}");
    assert!(!warned("executor lost"), "a retired executor was reported as lost:\n{stderr}");
}

#[test]
fn executors_retired_while_a_job_runs_are_decommissioned_not_lost() {
    // One slow partition: one executor works for 6 s while the other two idle past
    // their 1 s timeout (the shuffle one, 0.5 s, for the executor that ran the small
    // side's map task) and are retired in the middle of the job.
    let join = ["join", "--large", "2000", "--small", "100", "--keys", "200", "--partitions", "1"];
    let expected = Proc::spawn(job("local[2]", &join)).result();
    let mut args: Vec<String> = [
        "spark.dynamicAllocation.enabled=true",
        "spark.dynamicAllocation.minExecutors=1",
        "spark.dynamicAllocation.initialExecutors=3",
        "spark.dynamicAllocation.executorIdleTimeout=1",
        "spark.dynamicAllocation.shuffleTracking.timeout=500ms",
    ]
    .iter()
    .flat_map(|c| ["--conf".to_string(), c.to_string()])
    .collect();
    args.extend(join.iter().map(|s| s.to_string()));
    args.extend(["--task-ms", "6000"].map(String::from));
    let driver = Proc::spawn(job("local-cluster[3,1,256]", &args.iter().map(String::as_str).collect::<Vec<_>>()));
    let (result, stderr) = driver.result_and_stderr();
    assert_eq!(result, expected);
    assert!(
        stderr.contains("a decommissioned executor's map outputs are dropped"),
        "no executor was retired during the job:\n{stderr}"
    );
    let warned = |what: &str| stderr.lines().any(|l| l.contains(" WARN ") && l.contains(what));
    assert!(!warned("executor lost"), "a retired executor was reported as lost:\n{stderr}");
}

#[test]
fn a_bad_dynamic_allocation_setting_is_refused_at_the_start() {
    let driver = Proc::spawn(job(
        "local-cluster[2,1,256]",
        &[
            "--conf",
            "spark.dynamicAllocation.enabled=true",
            "--conf",
            "spark.dynamicAllocation.minExecutors=3",
            "--conf",
            "spark.dynamicAllocation.maxExecutors=2",
            "sumsq",
        ],
    ));
    let seen = driver.seen.clone();
    let (code, _) = driver.finish();
    let stderr = seen.lock().unwrap().join("\n");
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "spark.dynamicAllocation.minExecutors (3) must not exceed spark.dynamicAllocation.maxExecutors (2)"
        ),
        "{stderr}"
    );
}
