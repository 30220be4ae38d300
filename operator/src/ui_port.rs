//! The port the driver's web UI really listens on.
//!
//! The driver binds `spark.ui.port` (4040), or, when something else in its pod holds
//! that port, the next free one up to `spark.port.maxRetries` more (Spark's
//! behaviour). The UI Service is created with the planned port before the driver
//! starts; once the driver runs, the operator looks for its UI from the planned port
//! up, recognizes it by the driver pod name the operator put in its configuration
//! (`spark.kubernetes.driver.pod.name`, Spark's key, read back through the UI's REST
//! `environment`), records the port in `status.driverInfo.webUITargetPort`, and, when
//! it is not the planned one, re-targets the UI Service at it.
//!
//! [`probe_needed`] and [`record_ui_port`] are pure; [`find_ui_port`] does the HTTP.

use crate::crd::{AppState, SparkApplicationStatus};
use crate::state::{Note, PodPhase, PodView};
use crate::ui::DriverExposure;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// Spark's key for the driver pod's name; the operator sets it in the driver's
/// configuration, and it identifies the driver behind a UI.
pub const DRIVER_POD_NAME_KEY: &str = "spark.kubernetes.driver.pod.name";

/// Ports the driver tries after `spark.ui.port` when `spark.port.maxRetries` is unset
/// (Spark's default).
pub const DEFAULT_PORT_RETRIES: u16 = 16;

/// Bound on each HTTP exchange of a look: a driver's UI answers in milliseconds.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Bound on one whole look (every candidate port).
pub const LOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// When the driver runs but its UI was not found yet: look again after this.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long after a submission the operator keeps looking: a UI that has not answered
/// by then is off, or out of the operator's reach (a network policy), and looking on
/// would only load the driver. The Service keeps the planned port.
pub const PROBE_WINDOW: Duration = Duration::from_secs(300);

/// Where to look for a driver's UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiProbe {
    /// The driver pod's IP.
    pub pod_ip: String,
    /// The driver pod's name (the value of [`DRIVER_POD_NAME_KEY`] to find).
    pub pod_name: String,
    /// The planned UI port (`spark.ui.port`).
    pub first_port: u16,
    /// Ports after it that the driver may have taken (`spark.port.maxRetries`).
    pub retries: u16,
}

/// Whether to look for the driver's UI now: the application runs, the operator
/// created a UI Service for it, the port is not known yet for this run (a new
/// submission clears it), the driver pod runs with an IP, and the submission is less
/// than [`PROBE_WINDOW`] old at `now`. Pure.
pub fn probe_needed(
    status: &SparkApplicationStatus,
    web_ui: Option<&DriverExposure>,
    driver: Option<&PodView>,
    driver_ip: Option<&str>,
    spark_conf: &BTreeMap<String, String>,
    now: Timestamp,
) -> Option<UiProbe> {
    let web_ui = web_ui?;
    let driver = driver.filter(|d| d.phase == PodPhase::Running && !d.terminating)?;
    if status.application_state.state != AppState::Running || status.driver_info.web_ui_target_port.is_some() {
        return None;
    }
    let submitted = status.last_submission_attempt_time.as_ref()?.0;
    let window = jiff::SignedDuration::try_from(PROBE_WINDOW).ok()?;
    if now.duration_since(submitted) > window {
        return None;
    }
    let retries = spark_conf
        .get("spark.port.maxRetries")
        .and_then(|v| v.trim().parse::<u16>().ok())
        .unwrap_or(DEFAULT_PORT_RETRIES)
        .min(100);
    Some(UiProbe {
        pod_ip: driver_ip.filter(|ip| !ip.is_empty())?.to_string(),
        pod_name: driver.name.clone(),
        first_port: u16::try_from(web_ui.target_port).ok()?,
        retries,
    })
}

/// Looks for the driver's UI from `first_port` up: the first port whose REST API
/// serves an application configured with this driver pod's name. None when no port
/// answers so (the UI is not up yet, or is off after all).
pub async fn find_ui_port(probe: &UiProbe, timeout: Duration) -> Option<u16> {
    tokio::time::timeout(LOOK_TIMEOUT, look(probe, timeout)).await.ok().flatten()
}

async fn look(probe: &UiProbe, timeout: Duration) -> Option<u16> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let host = if probe.pod_ip.contains(':') { format!("[{}]", probe.pod_ip) } else { probe.pod_ip.clone() };
    for port in (0..=probe.retries).filter_map(|i| probe.first_port.checked_add(i)) {
        let base = format!("http://{host}:{port}/api/v1/applications");
        let Some(apps) = get_json(&client, &base, timeout).await else {
            continue;
        };
        for id in apps.as_array().into_iter().flatten().filter_map(|a| a["id"].as_str()) {
            let env = get_json(&client, &format!("{base}/{id}/environment"), timeout).await;
            let names_this_driver = env.as_ref().and_then(|e| e["sparkProperties"].as_array()).is_some_and(|props| {
                props.iter().any(|p| p[0] == DRIVER_POD_NAME_KEY && p[1].as_str() == Some(probe.pod_name.as_str()))
            });
            if names_this_driver {
                return Some(port);
            }
        }
    }
    None
}

/// A GET of `url` whose 200 answer is JSON, within `timeout`; None on anything else.
pub(crate) async fn fetch_json(url: &str, timeout: Duration) -> Option<serde_json::Value> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    get_json(&client, url, timeout).await
}

/// A GET whose 200 answer is JSON; None on anything else (refused, timed out, other
/// status, not JSON).
async fn get_json<C>(client: &Client<C, Empty<Bytes>>, url: &str, timeout: Duration) -> Option<serde_json::Value>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let uri: http::Uri = url.parse().ok()?;
    let exchange = async {
        let response = client.get(uri).await.ok()?;
        if response.status() != http::StatusCode::OK {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// Records the port the driver's UI was found on. Returns the UI Service's exposure
/// re-targeted at it, with a note, when it is not the planned port (the Service must be
/// applied again); None when the Service already targets it. Pure.
pub fn record_ui_port(
    status: &mut SparkApplicationStatus,
    web_ui: &DriverExposure,
    found: u16,
) -> Option<(DriverExposure, Note)> {
    let found = i32::from(found);
    status.driver_info.web_ui_target_port = Some(found);
    (found != web_ui.target_port).then(|| {
        let note = Note {
            warning: true,
            reason: "SparkUIPortMoved".into(),
            message: format!(
                "the driver's web UI listens on port {found}, not {} (taken in the driver pod); {} now targets {found}",
                web_ui.target_port, web_ui.service_name
            ),
        };
        (DriverExposure { target_port: found, ..web_ui.clone() }, note)
    })
}

/// The driver pod's `prometheus.io/port` annotation once its UI (which serves the
/// driver's `/metrics`) was found on `found` instead of the planned port (when
/// [`record_ui_port`] says it moved): the merge patch of the pod's annotations, so
/// that annotation-based scraping (and the chart's PodMonitor, which reads the
/// annotation) follows the UI. None when the operator adds no scrape annotations, or
/// when the application sets its own `prometheus.io/port` on the driver (the user's
/// annotation wins, as at creation). Pure.
pub fn moved_scrape_annotation(
    scrape_annotations: bool,
    driver_annotations: &BTreeMap<String, String>,
    found: u16,
) -> Option<serde_json::Value> {
    (scrape_annotations && !driver_annotations.contains_key(crate::ui::ANNOTATION_PORT)).then(
        || serde_json::json!({ "metadata": { "annotations": { (crate::ui::ANNOTATION_PORT): found.to_string() } } }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ServiceType;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn exposure(target: i32) -> DriverExposure {
        DriverExposure {
            service_name: "pi-ui-svc".into(),
            port_name: "spark-driver-ui-port".into(),
            port: 80,
            target_port: target,
            service_type: ServiceType::default(),
            service_annotations: BTreeMap::new(),
            service_labels: BTreeMap::new(),
            ingress: None,
        }
    }

    const NOW: &str = "2026-11-30T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn running() -> SparkApplicationStatus {
        let mut status = SparkApplicationStatus::default();
        status.application_state.state = AppState::Running;
        status.last_submission_attempt_time = Some(Time(now() - jiff::SignedDuration::from_secs(10)));
        status
    }

    fn driver(phase: PodPhase) -> PodView {
        PodView {
            name: "pi-driver".into(),
            phase,
            terminating: false,
            uid: None,
            deletion_deadline: None,
            created: None,
            waiting: None,
            termination: None,
        }
    }

    #[test]
    fn looks_only_while_the_driver_runs_and_the_port_is_unknown() {
        let ui = exposure(4040);
        let conf = BTreeMap::from([("spark.port.maxRetries".to_string(), "3".to_string())]);
        let want = UiProbe { pod_ip: "10.0.0.7".into(), pod_name: "pi-driver".into(), first_port: 4040, retries: 3 };
        let run = driver(PodPhase::Running);
        assert_eq!(probe_needed(&running(), Some(&ui), Some(&run), Some("10.0.0.7"), &conf, now()), Some(want));
        let defaults = probe_needed(&running(), Some(&ui), Some(&run), Some("10.0.0.7"), &BTreeMap::new(), now());
        assert_eq!(defaults.map(|p| p.retries), Some(DEFAULT_PORT_RETRIES));

        let mut known = running();
        known.driver_info.web_ui_target_port = Some(4040);
        assert_eq!(probe_needed(&known, Some(&ui), Some(&run), Some("10.0.0.7"), &conf, now()), None, "known");
        assert_eq!(probe_needed(&running(), None, Some(&run), Some("10.0.0.7"), &conf, now()), None, "no UI Service");
        let pending = driver(PodPhase::Pending);
        assert_eq!(probe_needed(&running(), Some(&ui), Some(&pending), None, &conf, now()), None, "not running");
        assert_eq!(probe_needed(&running(), Some(&ui), Some(&run), None, &conf, now()), None, "no IP yet");
        let mut old = running();
        old.last_submission_attempt_time = Some(Time(now() - jiff::SignedDuration::from_secs(301)));
        assert_eq!(probe_needed(&old, Some(&ui), Some(&run), Some("10.0.0.7"), &conf, now()), None, "gave up");
        let submitted = SparkApplicationStatus::default();
        assert_eq!(
            probe_needed(&submitted, Some(&ui), Some(&run), Some("10.0.0.7"), &conf, now()),
            None,
            "not RUNNING"
        );
    }

    #[test]
    fn a_moved_port_retargets_the_service_and_says_so() {
        let ui = exposure(4040);
        let mut status = running();
        assert_eq!(record_ui_port(&mut status, &ui, 4040), None, "where planned: nothing to change");
        assert_eq!(status.driver_info.web_ui_target_port, Some(4040));

        let mut status = running();
        let (moved, note) = record_ui_port(&mut status, &ui, 4042).expect("re-targeted");
        assert_eq!(status.driver_info.web_ui_target_port, Some(4042));
        assert_eq!((moved.port, moved.target_port), (80, 4042), "the Service port stays, its target moves");
        assert_eq!(note.reason, "SparkUIPortMoved");
        assert!(note.message.contains("4042") && note.message.contains("pi-ui-svc"), "{}", note.message);
    }

    #[test]
    fn a_moved_port_moves_the_drivers_scrape_annotation_unless_the_user_set_it() {
        let mut status = SparkApplicationStatus::default();
        assert!(record_ui_port(&mut status, &exposure(4040), 4040).is_none(), "not moved: nothing to patch");
        let none = BTreeMap::new();
        assert_eq!(
            moved_scrape_annotation(true, &none, 4041),
            Some(serde_json::json!({"metadata": {"annotations": {"prometheus.io/port": "4041"}}}))
        );
        assert_eq!(moved_scrape_annotation(false, &none, 4041), None, "the operator adds no annotations");
        let own = BTreeMap::from([("prometheus.io/port".to_string(), "9090".to_string())]);
        assert_eq!(moved_scrape_annotation(true, &own, 4041), None, "the user's annotation wins");
    }

    /// A UI answering Spark's REST shape for one application configured with `pod`.
    async fn serve_ui(listener: std::net::TcpListener, pod: &'static str) {
        use axum::routing::get;
        let app =
            axum::Router::new()
                .route("/api/v1/applications", get(|| async { serde_json::json!([{"id": "app-1"}]).to_string() }))
                .route(
                    "/api/v1/applications/app-1/environment",
                    get(move || async move {
                        serde_json::json!({"sparkProperties": [[DRIVER_POD_NAME_KEY, pod]]}).to_string()
                    }),
                );
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    /// Three consecutive free ports on 127.0.0.1, bound.
    fn three_ports() -> (u16, [std::net::TcpListener; 3]) {
        loop {
            let first = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            let p = first.local_addr().unwrap().port();
            let bind = |q: u16| std::net::TcpListener::bind(("127.0.0.1", q));
            if let (Some(a), Some(b)) = (p.checked_add(1), p.checked_add(2))
                && let (Ok(second), Ok(third)) = (bind(a), bind(b))
            {
                return (p, [first, second, third]);
            }
        }
    }

    #[tokio::test]
    async fn finds_this_drivers_ui_past_a_taken_port_and_another_drivers_ui() {
        let (first, [taken, other, ours]) = three_ports();
        // The planned port is held by something that is not a UI, the next serves
        // another driver's UI, the one after this driver's.
        serve_ui(other, "other-driver").await;
        serve_ui(ours, "pi-driver").await;
        let probe = UiProbe { pod_ip: "127.0.0.1".into(), pod_name: "pi-driver".into(), first_port: first, retries: 3 };
        let silent = tokio::spawn(async move {
            // Accepts and never answers: the look must time out on it and go on.
            let listener = tokio::net::TcpListener::from_std({
                taken.set_nonblocking(true).unwrap();
                taken
            })
            .unwrap();
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        assert_eq!(find_ui_port(&probe, Duration::from_millis(300)).await, Some(first + 2));
        let nobody = UiProbe { pod_name: "gone-driver".into(), ..probe };
        assert_eq!(find_ui_port(&nobody, Duration::from_millis(300)).await, None);
        silent.abort();
    }
}
