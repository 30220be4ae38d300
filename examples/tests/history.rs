//! The history server over real drivers' event logs: a driver killed with
//! SIGKILL mid-job is listed as incomplete (its in-progress log read to the last
//! line), a finished application as complete with no active jobs; new logs are
//! picked up while the server runs.

mod support;

use ember::history::HistoryServer;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, http, paused_join_args};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");

fn driver(dir: &Path, master: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("EMBER_CONF").args(["--master", master]);
    for conf in ["spark.eventLog.enabled=true".to_string(), format!("spark.eventLog.dir={}", dir.display())] {
        cmd.args(["--conf", &conf]);
    }
    cmd.args(["--conf", "spark.ui.port=0"]).args(args);
    cmd
}

/// Polls the history server's application list until `check` accepts it (bounded).
fn wait_for_apps(server: &HistoryServer, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let apps = http::get_json(server.address(), "/api/v1/applications");
        if check(&apps) {
            return apps;
        }
        assert!(Instant::now() < deadline, "history server never showed {what}: {apps}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_driver_killed_mid_job_is_an_incomplete_application() {
    let dir = tempfile::tempdir().expect("tmp");
    let logs = dir.path().join("events");
    std::fs::create_dir_all(&logs).expect("dir");
    // Started on an empty directory: the application appears while it runs.
    let server = HistoryServer::start(&logs, "127.0.0.1", 0, Duration::from_millis(100), "").expect("history server");
    let pause = dir.path().join("never");
    let args = paused_join_args(&pause);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proc = Proc::spawn(driver(&logs, "local-cluster[2,1,256]", &args));
    proc.wait_for("paused; waiting for");
    // The first job ended before the pause; its end reaches the log and the server.
    let apps = wait_for_apps(&server, "the first job's end", |apps| {
        apps.as_array().is_some_and(|a| a.len() == 1)
            && http::get(server.address(), &format!("/api/v1/applications/{}/jobs/0", apps[0]["id"].as_str().unwrap()))
                .is_ok_and(|(s, body)| s == 200 && body.contains("SUCCEEDED"))
    });
    let app_id = apps[0]["id"].as_str().expect("id").to_string();
    assert_eq!(apps[0]["attempts"][0]["completed"], false);

    proc.child.kill().expect("SIGKILL the driver");
    proc.child.wait().expect("reaped");
    let log = std::fs::read_dir(&logs).expect("list").flatten().map(|e| e.file_name()).collect::<Vec<_>>();
    assert_eq!(log, vec![std::ffi::OsString::from(format!("{app_id}.inprogress"))], "the log stays in progress");

    // A fresh server reads the dead driver's log from scratch.
    drop(server);
    let server = HistoryServer::start(&logs, "127.0.0.1", 0, Duration::from_secs(10), "").expect("restart");
    let addr = server.address();
    let apps = http::get_json(addr, "/api/v1/applications");
    assert_eq!(apps.as_array().expect("list").len(), 1);
    assert_eq!(apps[0]["attempts"][0]["completed"], false);
    assert_eq!(http::get_json(addr, "/api/v1/applications?status=completed"), serde_json::json!([]));
    let jobs = http::get_json(addr, &format!("/api/v1/applications/{app_id}/jobs"));
    assert_eq!(jobs.as_array().expect("jobs").len(), 1, "{jobs}");
    assert_eq!(jobs[0]["status"], "SUCCEEDED");
    let executors = http::get_json(addr, &format!("/api/v1/applications/{app_id}/allexecutors"));
    assert_eq!(executors.as_array().expect("executors").len(), 2, "{executors}");
    let (status, index) = http::get(addr, "/").expect("index");
    assert_eq!(status, 200);
    assert!(index.contains("Incomplete applications (1)") && index.contains("Completed applications (0)"), "{index}");
    let (status, page) = http::get(addr, &format!("/history/{app_id}/jobs/")).expect("jobs page");
    assert_eq!(status, 200);
    assert!(page.contains("Completed Jobs (1)"), "{page}");
}

#[test]
fn a_finished_application_is_complete_with_no_active_jobs() {
    let dir = tempfile::tempdir().expect("tmp");
    let logs = dir.path().join("events");
    let proc = Proc::spawn(driver(&logs, "local[2]", &["sumsq", "--n", "20000", "--partitions", "4"]));
    assert_eq!(proc.result()["count"], 20000);
    let server = HistoryServer::start(&logs, "127.0.0.1", 0, Duration::from_secs(10), "").expect("history server");
    let addr = server.address();
    let apps = http::get_json(addr, "/api/v1/applications?status=completed");
    assert_eq!(apps.as_array().expect("list").len(), 1, "{apps}");
    let attempt = &apps[0]["attempts"][0];
    assert_eq!(attempt["completed"], true);
    assert!(attempt["endTimeEpoch"].as_i64().expect("end") >= attempt["startTimeEpoch"].as_i64().expect("start"));
    let app_id = apps[0]["id"].as_str().expect("id");
    let jobs = http::get_json(addr, &format!("/api/v1/applications/{app_id}/jobs"));
    let jobs = jobs.as_array().expect("jobs");
    assert!(!jobs.is_empty());
    for job in jobs {
        assert_eq!(job["status"], "SUCCEEDED", "{job}");
        assert_eq!(job["numActiveTasks"], 0);
        assert_eq!(job["numActiveStages"], 0);
    }
    assert_eq!(
        http::get_json(addr, &format!("/api/v1/applications/{app_id}/jobs?status=running")),
        serde_json::json!([])
    );
    let executors = http::get_json(addr, &format!("/api/v1/applications/{app_id}/executors"));
    assert_eq!(executors, serde_json::json!([]), "no executor is active after the end");
    let (_, index) = http::get(addr, "/").expect("index");
    assert!(index.contains("Completed applications (1)") && index.contains("Incomplete applications (0)"), "{index}");
    let (_, page) = http::get(addr, &format!("/history/{app_id}/jobs/")).expect("jobs page");
    assert!(page.contains("Active Jobs (0)"), "{page}");
    assert!(!page.contains("http-equiv=\"refresh\""), "a finished application's pages do not reload");
}
