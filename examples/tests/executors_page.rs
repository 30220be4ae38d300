//! The Executors and Storage pages over real executor processes: each executor's
//! log tail, fetched from the executor through the link the driver shows; an RDD
//! cached over two executors, partition by partition; and the broadcast bytes each
//! executor uploaded, as the job measured them, in the event log and the history
//! server's replay of it.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, http, loopback_address_in, spawn_with_ui};

fn poll_json(ui: SocketAddr, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = http::get_json(ui, path);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn executors_serve_their_log_tails_and_storage_shows_which_executor_holds_each_partition() {
    let dir = tempfile::tempdir().expect("tmp");
    let pause = dir.path().join("go");
    let pause_arg = pause.to_str().expect("utf-8").to_string();
    let job = spawn_with_ui(&["cache-check", "--partitions", "4", "--records", "20000", "--pause-file", &pause_arg]);
    let ui = loopback_address_in(&job.wait_for("web UI at http://"));
    job.wait_for("paused; waiting for");
    let app = http::get_json(ui, "/api/v1/applications")[0]["id"].as_str().expect("app id").to_string();

    // Log tails: the link of each executor answers with that executor's stderr.
    let executors = poll_json(ui, &format!("/api/v1/applications/{app}/executors"), "log URLs", |v| {
        v.as_array().is_some_and(|xs| xs.len() == 2 && xs.iter().all(|x| x["executorLogs"]["stderr"].is_string()))
    });
    let mut host_of = BTreeMap::new();
    for x in executors.as_array().expect("executors") {
        let id = x["id"].as_str().expect("id");
        host_of.insert(id.to_string(), x["hostPort"].as_str().expect("hostPort").to_string());
        let url = x["executorLogs"]["stderr"].as_str().expect("stderr URL");
        assert!(url.ends_with("/logs/stderr"), "{url}");
        let address = loopback_address_in(url);
        let (status, tail) = http::get(address, "/logs/stderr?bytes=100000").expect("log tail");
        assert_eq!(status, 200, "{tail}");
        assert!(tail.contains(&format!("executor {id}: metrics at http://")), "executor {id}'s own log:\n{tail}");
        assert!(tail.contains("executor registered"), "its log lines too:\n{tail}");
        let (status, last) = http::get(address, "/logs/stderr?bytes=16").expect("short tail");
        assert_eq!(status, 200);
        assert!(last.len() <= 16 && tail.ends_with(&last), "the last 16 bytes: {last:?}");
        let (status, _) = http::get(address, "/logs/stderr?bytes=lots").expect("bad request");
        assert_eq!(status, 400);
    }
    let (_, page) = http::get(ui, "/executors/").expect("executors page");
    assert!(page.contains("/logs/stderr?bytes=102400") && page.contains("Broadcast Uploaded"), "{page}");

    // Storage: 4 cached partitions, spread over both executors.
    let list = poll_json(ui, &format!("/api/v1/applications/{app}/storage/rdd"), "4 cached partitions", |v| {
        v[0]["numCachedPartitions"] == 4
    });
    let rdd_id = list[0]["id"].as_u64().expect("rdd id");
    assert_eq!(list[0]["storageLevel"], "Memory Deserialized 1x Replicated");
    let rdd = http::get_json(ui, &format!("/api/v1/applications/{app}/storage/rdd/{rdd_id}"));
    let holders: BTreeSet<String> = rdd["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .flat_map(|p| p["executors"].as_array().expect("executors").iter().map(|e| e.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(holders, BTreeSet::from(["1".to_string(), "2".to_string()]), "{rdd}");
    let addresses: BTreeSet<&str> = rdd["dataDistribution"]
        .as_array()
        .expect("distribution")
        .iter()
        .filter_map(|d| d["address"].as_str())
        .collect();
    let expected: BTreeSet<&str> = host_of.values().map(String::as_str).collect();
    assert_eq!(addresses, expected, "the executors' block-server addresses");
    let memory: u64 =
        rdd["dataDistribution"].as_array().unwrap().iter().map(|d| d["memoryUsed"].as_u64().unwrap()).sum();
    assert_eq!(Some(memory), rdd["memoryUsed"].as_u64());
    let (_, page) = http::get(ui, &format!("/storage/rdd/?id={rdd_id}")).expect("rdd page");
    assert!(page.contains("Data Distribution on 2 Executors") && page.contains(&format!("rdd_{rdd_id}_3")), "{page}");

    std::fs::write(&pause, b"").expect("resume");
    let result = job.result();
    assert_eq!((result["first"].as_u64(), result["second"].as_u64()), (Some(20000), Some(20000)), "{result}");
    assert_eq!(result["rdd_id"], rdd_id);
}

#[test]
fn broadcast_uploads_per_executor_reach_the_event_log_and_the_history_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let logs = dir.path().join("events");
    let pause = dir.path().join("go");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF")
        .args(["--master", "local-cluster[3,1,256]", "--conf", "spark.ui.enabled=false"])
        .args(["--conf", "spark.eventLog.enabled=true", "--conf"])
        .arg(format!("spark.eventLog.dir={}", logs.display()))
        .args(["--conf", "spark.broadcast.blockSize=256k"])
        .args(["broadcast", "--mb", "2", "--tasks", "6", "--pause-file"])
        .arg(&pause);
    let job = Proc::spawn(cmd);
    // One executor reads the value first, so the others fetch its pieces from it.
    job.wait_for("paused; waiting for");
    std::fs::write(&pause, b"").expect("resume");
    let result = job.result();
    assert_eq!(result["all_tasks_exact"], true, "{result}");
    let measured: BTreeMap<String, u64> = result["uploaded_by_executor"]
        .as_array()
        .expect("uploaded_by_executor")
        .iter()
        .map(|p| (p[0].as_str().expect("id").to_string(), p[1].as_u64().expect("bytes")))
        .collect();
    assert_eq!(measured.len(), 3, "{result}");
    assert!(measured.values().sum::<u64>() > 0, "the first reader served the others: {result}");

    let log = std::fs::read_dir(&logs).expect("event log dir").next().expect("a log").expect("entry").path();
    let events = ember::event_log::read_log(&log).expect("read");
    for name in ["SparkListenerExecutorMetricsUpdate", "EmberListenerExecutorLogUrls"] {
        assert!(events.iter().any(|e| e.name() == name), "{name} is logged");
    }
    let store = ember::history::replay(&log).expect("replay");
    let state = store.read();
    let replayed: BTreeMap<String, u64> =
        state.executors.values().map(|x| (x.id.clone(), x.broadcast_bytes_uploaded)).collect();
    assert_eq!(replayed, measured, "the history server shows what the job measured");
    assert!(state.executors.values().all(|x| x.log_urls.contains_key("stderr")), "and the log links");
}
