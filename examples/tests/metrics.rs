//! Prometheus `/metrics` of the driver and of executors, scraped during real
//! local-cluster jobs and checked against what the jobs did.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{Proc, STUCK_STRAGGLER, http, loopback_address_in as address_in, paused_join_args, spawn_with_ui};

/// The executors' metrics addresses, by executor id (from their stderr lines).
fn executor_metrics(proc: &Proc) -> Vec<(String, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: Vec<(String, SocketAddr)> = proc
            .stderr()
            .lines()
            .filter(|l| l.contains(": metrics at http://"))
            .map(|l| (l.split_whitespace().nth(1).unwrap_or("").trim_end_matches(':').to_string(), address_in(l)))
            .collect();
        if found.len() == 2 {
            return found;
        }
        assert!(Instant::now() < deadline, "executors did not announce metrics:\n{}", proc.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the sample `name` (with its labels, e.g. `x_total{outcome="success"}`).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

fn scrape(address: SocketAddr) -> String {
    let (status, body) = http::get(address, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    body
}

#[test]
fn driver_and_executor_metrics_match_the_jobs() {
    // A finished job (the join's first, two shuffles) while the application waits.
    let dir = tempfile::tempdir().expect("tmp");
    let pause = dir.path().join("never");
    let join = spawn_with_ui(&paused_join_args(&pause));
    let ui = address_in(&join.wait_for("web UI at http://"));
    join.wait_for("paused; waiting for");
    let executors = executor_metrics(&join);
    let app = http::get_json(ui, "/api/v1/applications")[0]["id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let driver = loop {
        let text = scrape(ui);
        if text.contains("ember_jobs_total{outcome=\"succeeded\"} 1") {
            break text;
        }
        assert!(Instant::now() < deadline, "the job's end never reached the metrics:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stages = http::get_json(ui, &format!("/api/v1/applications/{app}/stages"));
    let stages = stages.as_array().expect("stages");
    let total = |field: &str| stages.iter().map(|s| s[field].as_u64().unwrap()).sum::<u64>() as f64;
    let tasks = stages.iter().map(|s| s["numCompleteTasks"].as_u64().unwrap()).sum::<u64>() as f64;
    assert_eq!(sample(&driver, "ember_tasks_total{outcome=\"success\"}"), tasks);
    assert_eq!(sample(&driver, "ember_task_duration_seconds_count"), tasks);
    assert_eq!(sample(&driver, "ember_stages_total{outcome=\"completed\"}"), stages.len() as f64);
    assert_eq!(sample(&driver, "ember_shuffle_write_bytes_total"), total("shuffleWriteBytes"));
    assert_eq!(sample(&driver, "ember_shuffle_write_records_total"), total("shuffleWriteRecords"));
    assert_eq!(sample(&driver, "ember_shuffle_read_records_total"), total("shuffleReadRecords"));
    assert_eq!(sample(&driver, "ember_executors_alive"), 2.0);
    assert_eq!(sample(&driver, "ember_jobs_active"), 0.0);
    // The executors' own counts add up to the driver's.
    let scraped: Vec<String> = executors.iter().map(|(_, a)| scrape(*a)).collect();
    let sum = |name: &str| scraped.iter().map(|t| sample(t, name)).sum::<f64>();
    assert_eq!(sum("ember_executor_tasks_total{outcome=\"success\"}"), tasks);
    assert_eq!(sum("ember_executor_shuffle_write_records_total"), total("shuffleWriteRecords"));
    assert_eq!(sum("ember_executor_shuffle_write_bytes_total"), total("shuffleWriteBytes"));
    assert_eq!(sum("ember_executor_shuffle_read_records_total"), total("shuffleReadRecords"));
    assert_eq!(sum("ember_executor_tasks_running"), 0.0);
    drop(join);

    // A running job: executor 2 is slow, so one of its tasks runs while we scrape.
    let running = spawn_with_ui(&STUCK_STRAGGLER);
    let ui = address_in(&running.wait_for("web UI at http://"));
    let executors = executor_metrics(&running);
    let slow = executors.iter().find(|(id, _)| id == "2").expect("executor 2").1;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let driver = scrape(ui);
        let ok = driver.contains("ember_tasks_total{outcome=\"success\"} 5");
        if ok && sample(&scrape(slow), "ember_executor_tasks_running") == 1.0 {
            assert_eq!(sample(&driver, "ember_jobs_active"), 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "the slow task never showed:\n{driver}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
