//! The event log on a real job: readable line by line while the job runs (the
//! file is `.inprogress`), every event type present after a clean stop, and the
//! lz4-compressed variant.

use ember::event_log::read_log;
use ember::listener::Event;
use ember::prelude::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every event a local-mode application posts (`SparkListenerExecutorMetricsUpdate`
/// and `EmberListenerExecutorLogUrls` come from executor processes: see
/// examples/tests/executors_page.rs).
const ALL_EVENTS: [&str; 13] = [
    "SparkListenerApplicationStart",
    "SparkListenerApplicationEnd",
    "SparkListenerEnvironmentUpdate",
    "SparkListenerJobStart",
    "SparkListenerJobEnd",
    "SparkListenerStageSubmitted",
    "SparkListenerStageCompleted",
    "SparkListenerTaskStart",
    "SparkListenerTaskEnd",
    "SparkListenerExecutorAdded",
    "SparkListenerExecutorRemoved",
    "SparkListenerBlockUpdated",
    "SparkListenerUnpersistRDD",
];

fn names(events: &[Event]) -> BTreeSet<&'static str> {
    events.iter().map(Event::name).collect()
}

fn context(dir: &std::path::Path, compress: bool) -> EmberContext {
    let conf = Conf::new()
        .master("local[2]")
        .set("spark.ui.enabled", "false")
        .set("spark.eventLog.enabled", "true")
        .set("spark.eventLog.dir", dir.display().to_string())
        .set("spark.eventLog.compress", compress.to_string());
    EmberContext::new(conf).expect("context")
}

/// Waits (bounded) for `path` to exist; tasks use it as a gate.
fn wait_for(path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(path).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_log_is_readable_while_the_job_runs_and_complete_after_a_clean_stop() {
    let dir = tempfile::tempdir().expect("tmp");
    let gate = dir.path().join("gate").display().to_string();
    let sc = context(&dir.path().join("events"), false);
    let live = std::path::PathBuf::from(sc.event_log_location().expect("event log on"));
    assert!(live.to_string_lossy().ends_with(".inprogress"), "{}", live.display());
    let job = {
        let sc = sc.clone();
        let gate = gate.clone();
        std::thread::spawn(move || {
            sc.range(0, 400, 1, 4)
                .expect("range")
                .map(Fn!(move |x: i64| {
                    wait_for(&gate);
                    (x % 7, 1u64)
                }))
                .reduce_by_key_with(Fn!(|a: u64, b: u64| a + b), 2)
                .count()
                .expect("job")
        })
    };
    // While tasks wait at the gate, the log already holds what happened so far.
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let events = read_log(&live).expect("every complete line is an event");
        if names(&events).contains("SparkListenerTaskStart") {
            break events;
        }
        assert!(Instant::now() < deadline, "no task start in the log: {:?}", names(&events));
        std::thread::sleep(Duration::from_millis(10));
    };
    let so_far = names(&seen);
    for expected in [
        "SparkListenerApplicationStart",
        "SparkListenerEnvironmentUpdate",
        "SparkListenerExecutorAdded",
        "SparkListenerJobStart",
        "SparkListenerStageSubmitted",
        "SparkListenerTaskStart",
    ] {
        assert!(so_far.contains(expected), "{expected} missing while running: {so_far:?}");
    }
    assert!(!so_far.contains("SparkListenerJobEnd"));
    // Each line is one JSON object tagged with its event name.
    let text = std::fs::read_to_string(&live).expect("read");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        assert!(v["Event"].as_str().is_some_and(|e| e.starts_with("SparkListener")), "{line}");
    }

    std::fs::write(&gate, b"").expect("open the gate");
    assert_eq!(job.join().expect("job thread"), 7);
    let cached = sc.range(0, 100, 1, 2).expect("range").cache();
    assert_eq!(cached.count().expect("cached job"), 100);
    cached.unpersist();
    let app_id = sc.app_id().to_string();
    sc.stop();
    assert!(!live.exists(), "the in-progress name goes at a clean stop");
    let events = read_log(&dir.path().join("events").join(&app_id)).expect("final log");
    assert_eq!(names(&events), ALL_EVENTS.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(events.first().map(Event::name), Some("SparkListenerApplicationStart"));
    assert_eq!(events.last().map(Event::name), Some("SparkListenerApplicationEnd"));
    let task_ends = events.iter().filter(|e| matches!(e, Event::TaskEnd(_))).count();
    assert_eq!(task_ends, 4 + 2 + 2, "4 map tasks and 2 reduce tasks, then 2 tasks caching");
    let blocks: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::BlockUpdated(b) if b.memory_size > 0 => Some(b.block_id.as_str()),
            _ => None,
        })
        .collect();
    let id = cached.id();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert!(blocks.contains(&format!("rdd_{id}_0").as_str()) && blocks.contains(&format!("rdd_{id}_1").as_str()));
}

#[test]
fn a_compressed_log_reads_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let sc = context(dir.path(), true);
    assert!(sc.event_log_location().expect("on").ends_with(".lz4.inprogress"));
    assert_eq!(sc.range(0, 100, 1, 3).expect("range").count().expect("job"), 100);
    let app_id = sc.app_id().to_string();
    sc.stop();
    let events = read_log(&dir.path().join(format!("{app_id}.lz4"))).expect("read");
    let n = names(&events);
    assert!(n.contains("SparkListenerJobEnd") && n.contains("SparkListenerApplicationEnd"), "{n:?}");
    assert_eq!(events.iter().filter(|e| matches!(e, Event::TaskEnd(_))).count(), 3);
}
