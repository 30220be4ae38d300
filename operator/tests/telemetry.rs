//! Tracing setup with OTLP export configured (no collector needed: export is lazy).

use ember_operator::telemetry::{LogFormat, init};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_is_set_up_when_an_endpoint_is_given() {
    // Port 9 (discard) on loopback: nothing is sent unless spans are exported.
    let provider = init(LogFormat::Json, Some("http://127.0.0.1:9"))
        .expect("subscriber installed")
        .expect("a tracer provider when an endpoint is set");
    // A second global subscriber is refused with an error, not a panic.
    assert!(init(LogFormat::Text, None).is_err());
    drop(provider);
}
