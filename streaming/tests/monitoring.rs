//! Streaming batches as the driver's monitoring shows them: listener events
//! reach the Streaming page, Spark's `/streaming` REST endpoints and the
//! Prometheus metrics.

mod common;

#[allow(dead_code)]
#[path = "../../driver/tests/support/http.rs"]
mod http;

use common::run_batches;
use ember::prelude::*;
use std::time::Duration;

#[test]
fn batches_show_on_the_streaming_page_the_rest_api_and_metrics() {
    let events = tempfile::tempdir().unwrap();
    let conf = Conf::new()
        .master("local[2]")
        .app_name("streaming-ui")
        .set("spark.ui.port", "0")
        .set("spark.eventLog.enabled", "true")
        .set("spark.eventLog.dir", events.path().display().to_string());
    let sc = EmberContext::new(conf).unwrap();
    let batches = vec![vec![1u64, 2, 3], vec![], vec![4, 5]];
    let out = run_batches(&sc, &batches, 500, |s| s.map(Fn!(|x: u64| x * 10))).unwrap();
    assert_eq!(out.len(), 3);
    assert!(sc.listener_bus().flush(Duration::from_secs(30)), "listener bus did not drain");
    let address = sc.ui_address().expect("the UI runs");

    let apps = http::get_json(address, "/api/v1/applications");
    let app_id = apps[0]["id"].as_str().expect("app id").to_string();
    let stats = http::get_json(address, &format!("/api/v1/applications/{app_id}/streaming/statistics"));
    assert_eq!(stats["batchDuration"], 500);
    assert_eq!(stats["numTotalCompletedBatches"], 3);
    assert_eq!(stats["numActiveBatches"], 0);
    let list = http::get_json(address, &format!("/api/v1/applications/{app_id}/streaming/batches"));
    let times: Vec<u64> = list.as_array().unwrap().iter().map(|b| b["batchId"].as_u64().unwrap()).collect();
    assert_eq!(times, vec![1500, 1000, 500]);
    for b in list.as_array().unwrap() {
        assert_eq!(b["status"], "COMPLETED", "{b}");
        assert_eq!(b["numTotalOutputOps"], 1, "{b}");
    }
    let one = http::get_json(address, &format!("/api/v1/applications/{app_id}/streaming/batches/1000"));
    assert_eq!(one["batchId"], 1000);

    let (status, page) = http::get(address, "/streaming/").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Completed batches (last 3 of 3)"), "{page}");
    assert!(page.contains("Batch interval: </strong>500 ms"), "{page}");
    let (_, jobs) = http::get(address, "/jobs/").unwrap();
    assert!(jobs.contains("href=\"/streaming/\""), "no Streaming tab: {jobs}");

    let (_, metrics) = http::get(address, "/metrics").unwrap();
    assert!(metrics.lines().any(|l| l == "ember_streaming_batches_total 3"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "ember_streaming_batches_active 0"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "ember_streaming_processing_time_seconds_count 3"), "{metrics}");

    // The event log has the batches too, so the history server shows them.
    sc.stop();
    let logged = ember::event_log::read_log(&events.path().join(&app_id)).expect("event log");
    let count = |name: &str| logged.iter().filter(|e| e.name() == name).count();
    assert_eq!(count("StreamingListenerBatchSubmitted"), 3);
    assert_eq!(count("StreamingListenerBatchStarted"), 3);
    assert_eq!(count("StreamingListenerBatchCompleted"), 3);
    let mut replayed = ember::status::AppState::default();
    for e in &logged {
        replayed.apply(e);
    }
    assert_eq!(replayed.streaming.completed, 3);
}
