//! A fake Kubernetes API server at the HTTP level (the kube-rs tower-test pattern): the
//! reconciler's `kube::Client` talks to a `tower_test` mock service, and a task answers
//! each request from a small in-memory model of one namespace. Tests drive the kubelet's
//! part by hand (setting pod phases), so every step is deterministic.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_operator::crd::SparkApplication;
use ember_operator::metrics::Metrics;
use ember_operator::reconciler::{self, Clock, Context};
use ember_operator::state::Settings;
use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

pub const NS: &str = "jobs";

/// One request as the fake server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

impl Seen {
    /// `METHOD path`, for assertions on the exact requests.
    pub fn short(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Default)]
pub struct Cluster {
    pub app: Option<SparkApplication>,
    pub pods: BTreeMap<String, Pod>,
    pub services: BTreeMap<String, Service>,
    pub events: Vec<Value>,
    pub requests: Vec<Seen>,
    /// Answer pod creations with this error (status code, message).
    pub reject_pod_apply: Option<(u16, String)>,
    /// Answer creations of this pod with 500 Internal Server Error (a transient failure).
    pub fail_pod_apply_named: Option<String>,
    /// The application as the controller's cache last saw it, when a test makes the
    /// cache lag: [`Harness::try_reconcile`] hands the reconciler this copy.
    pub cached_app: Option<SparkApplication>,
    /// Another writer changes the application (a new resourceVersion) whenever pods are
    /// listed, i.e. between a reconcile's read and its status write.
    pub concurrent_writer: bool,
    next_uid: u64,
    resource_version: u64,
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else if bytes[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn label_selector(query: Option<&str>) -> BTreeMap<String, String> {
    let mut selector = BTreeMap::new();
    for pair in query.unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("labelSelector=") {
            for term in percent_decode(value).split(',') {
                let (k, v) = term.split_once('=').expect("equality selectors only");
                selector.insert(k.to_string(), v.to_string());
            }
        }
    }
    selector
}

fn matches(pod: &Pod, selector: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| pod.labels().get(k) == Some(v))
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

impl Cluster {
    fn uid(&mut self) -> String {
        self.next_uid += 1;
        format!("uid-{}", self.next_uid)
    }

    /// The next `metadata.resourceVersion` (the API server's is opaque; this one counts).
    fn next_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// Stores the application as a write would, with a new resourceVersion.
    pub fn store_app(&mut self, mut app: SparkApplication) {
        app.metadata.resource_version = Some(format!("1{}", self.next_version()));
        self.app = Some(app);
    }

    fn handle(&mut self, method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Response<Body> {
        let pods_prefix = format!("/api/v1/namespaces/{NS}/pods");
        let services_prefix = format!("/api/v1/namespaces/{NS}/services/");
        let apps_prefix = format!("/apis/ember.dev/v1alpha1/namespaces/{NS}/sparkapplications/");
        let events_prefix = format!("/apis/events.k8s.io/v1/namespaces/{NS}/events");
        let body_json = || -> Value { serde_json::from_slice(body).unwrap() };

        if path == pods_prefix && *method == Method::GET {
            if self.concurrent_writer
                && let Some(app) = self.app.clone()
            {
                self.store_app(app);
            }
            let selector = label_selector(query);
            let items: Vec<&Pod> = self.pods.values().filter(|p| matches(p, &selector)).collect();
            return json_response(
                200,
                &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items}),
            );
        }
        if path == pods_prefix && *method == Method::DELETE {
            let selector = label_selector(query);
            let doomed: Vec<String> =
                self.pods.values().filter(|p| matches(p, &selector)).map(|p| p.name_any()).collect();
            let items: Vec<Pod> = doomed.iter().filter_map(|n| self.pods.remove(n)).collect();
            return json_response(200, &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}));
        }
        if path == pods_prefix && *method == Method::POST {
            let mut pod: Pod = serde_json::from_value(body_json()).unwrap();
            let name = pod.name_any();
            if let Some((code, message)) = self.reject_pod_apply.clone() {
                return status_response(code, "Invalid", &message);
            }
            if self.fail_pod_apply_named.as_deref() == Some(name.as_str()) {
                return status_response(500, "InternalError", "etcdserver: request timed out");
            }
            if self.pods.contains_key(&name) {
                return status_response(409, "AlreadyExists", &format!("pods \"{name}\" already exists"));
            }
            pod.metadata.uid = Some(self.uid());
            pod.status = Some(serde_json::from_value(json!({"phase": "Pending"})).unwrap());
            self.pods.insert(name, pod.clone());
            return json_response(201, &serde_json::to_value(&pod).unwrap());
        }
        if let Some(name) = path.strip_prefix(&format!("{pods_prefix}/"))
            && *method == Method::GET
        {
            return match self.pods.get(name) {
                Some(pod) => json_response(200, &serde_json::to_value(pod).unwrap()),
                None => status_response(404, "NotFound", &format!("pods \"{name}\" not found")),
            };
        }
        if let Some(name) = path.strip_prefix(&format!("{pods_prefix}/"))
            && *method == Method::PATCH
        {
            // A merge patch of labels (the only pod patch the operator makes).
            let patch = body_json();
            let Some(pod) = self.pods.get_mut(name) else {
                return status_response(404, "NotFound", &format!("pods \"{name}\" not found"));
            };
            let labels = pod.metadata.labels.get_or_insert_with(Default::default);
            for (k, v) in patch["metadata"]["labels"].as_object().expect("a label patch") {
                labels.insert(k.clone(), v.as_str().unwrap().to_string());
            }
            return json_response(200, &serde_json::to_value(&*pod).unwrap());
        }
        let services_path = services_prefix.trim_end_matches('/');
        if path == services_path && *method == Method::POST {
            let svc: Service = serde_json::from_value(body_json()).unwrap();
            let name = svc.name_any();
            if self.services.contains_key(&name) {
                return status_response(409, "AlreadyExists", &format!("services \"{name}\" already exists"));
            }
            return self.store_service(&name, svc, 201);
        }
        if let Some(name) = path.strip_prefix(&services_prefix)
            && *method == Method::DELETE
        {
            return match self.services.remove(name) {
                Some(svc) => json_response(200, &serde_json::to_value(&svc).unwrap()),
                None => status_response(404, "NotFound", &format!("services \"{name}\" not found")),
            };
        }
        if let Some(name) = path.strip_prefix(&services_prefix)
            && *method == Method::GET
        {
            return match self.services.get(name) {
                Some(svc) => json_response(200, &serde_json::to_value(svc).unwrap()),
                None => status_response(404, "NotFound", &format!("services \"{name}\" not found")),
            };
        }
        if let Some(name) = path.strip_prefix(&services_prefix)
            && *method == Method::PATCH
        {
            let svc: Service = serde_json::from_value(body_json()).unwrap();
            assert_eq!(svc.name_any(), name);
            return self.store_service(name, svc, 200);
        }
        if let Some(rest) = path.strip_prefix(&apps_prefix) {
            let Some(app) = self.app.clone() else {
                return status_response(404, "NotFound", "sparkapplication not found");
            };
            if *method == Method::GET && rest == app.name_any() {
                return json_response(200, &serde_json::to_value(&app).unwrap());
            }
            if let Some(name) = rest.strip_suffix("/status") {
                assert_eq!(name, app.name_any());
                assert_eq!(*method, Method::PATCH);
                let patch = body_json();
                assert_eq!(patch["kind"], "SparkApplication", "apply bodies carry the kind");
                // A resourceVersion in an apply is a precondition.
                if let Some(version) = patch["metadata"]["resourceVersion"].as_str()
                    && Some(version) != app.metadata.resource_version.as_deref()
                {
                    return status_response(
                        409,
                        "Conflict",
                        "Operation cannot be fulfilled: the object has been modified; please apply your changes \
                         to the latest version and try again",
                    );
                }
                let mut app = app;
                app.status = Some(serde_json::from_value(patch["status"].clone()).unwrap());
                self.store_app(app.clone());
                return json_response(200, &serde_json::to_value(self.app.as_ref().unwrap()).unwrap());
            }
            if *method == Method::DELETE && rest == app.name_any() {
                // The garbage collector's part: owned pods and services go too.
                self.app = None;
                self.pods.clear();
                self.services.clear();
                return json_response(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                );
            }
        }
        if path.starts_with(&events_prefix) && (*method == Method::POST || *method == Method::PATCH) {
            let event = body_json();
            self.events.push(event.clone());
            return json_response(201, &event);
        }
        panic!("the fake API server does not expect {method} {path}?{query:?}");
    }

    /// Stores a created or applied Service: the API server allocates a cluster IP to a
    /// Service that is not headless, and keeps it across applies.
    fn store_service(&mut self, name: &str, mut svc: Service, code: u16) -> Response<Body> {
        let kept = self.services.get(name).and_then(|s| s.spec.as_ref()?.cluster_ip.clone());
        let spec = svc.spec.get_or_insert_with(Default::default);
        if spec.cluster_ip.is_none() {
            let n = self.services.len() + 1;
            spec.cluster_ip = Some(kept.unwrap_or_else(|| format!("10.96.0.{n}")));
        }
        self.services.insert(name.to_string(), svc.clone());
        json_response(code, &serde_json::to_value(&svc).unwrap())
    }
}

/// A fake API server with one application, and a reconcile context talking to it.
pub struct Harness {
    pub cluster: Arc<Mutex<Cluster>>,
    pub ctx: Arc<Context>,
    pub now: Arc<Mutex<Timestamp>>,
    server: tokio::task::JoinHandle<()>,
}

pub fn t0() -> Timestamp {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

impl Harness {
    pub fn new(app: SparkApplication) -> Self {
        let mut cluster = Cluster::default();
        cluster.store_app(app);
        Self::with_cluster(Arc::new(Mutex::new(cluster)))
    }

    /// A new operator (fresh client, recorder, metrics) on an existing cluster: what an
    /// operator restart looks like.
    pub fn with_cluster(cluster: Arc<Mutex<Cluster>>) -> Self {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let served = cluster.clone();
        let server = tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap();
                let path = parts.uri.path().to_string();
                let response = {
                    let mut cluster = served.lock().unwrap();
                    cluster.requests.push(Seen { method: parts.method.to_string(), path: path.clone() });
                    cluster.handle(&parts.method, &path, parts.uri.query(), &bytes)
                };
                send.send_response(response);
            }
        });
        let client = Client::new(service, NS);
        let now = Arc::new(Mutex::new(t0()));
        let mut ctx = Context::new(
            client,
            Settings {
                driver_start_timeout: Duration::from_secs(120),
                max_executor_failures: 3,
                ..Settings::default()
            },
            Arc::new(Metrics::new()),
            Some("test".into()),
        );
        ctx.clock = Clock::Fixed(now.clone());
        Harness { cluster, ctx: Arc::new(ctx), now, server }
    }

    /// Runs one reconcile of the application as it is stored now; bounded in time.
    pub async fn reconcile(&self) -> Action {
        self.try_reconcile().await.expect("reconcile succeeded")
    }

    /// Like [`Harness::reconcile`], returning the reconcile's error.
    pub async fn try_reconcile(&self) -> Result<Action, reconciler::Error> {
        let cached = self.cluster.lock().unwrap().cached_app.clone();
        let app = cached.unwrap_or_else(|| self.app());
        tokio::time::timeout(Duration::from_secs(10), reconciler::reconcile(Arc::new(app), self.ctx.clone()))
            .await
            .expect("reconcile finished within 10 s")
    }

    /// Runs one reconcile and returns the requests it made.
    pub async fn reconcile_counting(&self) -> (Action, Vec<String>) {
        let before = self.cluster.lock().unwrap().requests.len();
        let action = self.reconcile().await;
        let requests = self.cluster.lock().unwrap().requests[before..].iter().map(Seen::short).collect();
        (action, requests)
    }

    pub fn app(&self) -> SparkApplication {
        self.cluster.lock().unwrap().app.clone().expect("the application exists")
    }

    pub fn app_exists(&self) -> bool {
        self.cluster.lock().unwrap().app.is_some()
    }

    pub fn state(&self) -> String {
        self.app().status.map(|s| s.application_state.state.as_str().to_string()).unwrap_or_default()
    }

    pub fn pod_names(&self) -> Vec<String> {
        self.cluster.lock().unwrap().pods.keys().cloned().collect()
    }

    pub fn pod(&self, name: &str) -> Pod {
        self.cluster.lock().unwrap().pods[name].clone()
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.cluster
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The kubelet's part: sets a pod's phase (and, when it ended, its exit).
    pub fn set_phase(&self, pod: &str, phase: &str, exit: Option<(i32, &str, &str)>) {
        let mut cluster = self.cluster.lock().unwrap();
        let pod = cluster.pods.get_mut(pod).expect("pod exists");
        let mut status = json!({"phase": phase});
        if let Some((code, reason, message)) = exit {
            status["containerStatuses"] = json!([{
                "name": "ember", "image": "img", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}
            }]);
        }
        pod.status = Some(serde_json::from_value(status).unwrap());
    }

    /// Makes the pending driver report a waiting reason (e.g. ImagePullBackOff).
    pub fn set_waiting(&self, pod: &str, reason: &str, message: &str) {
        let mut cluster = self.cluster.lock().unwrap();
        let pod = cluster.pods.get_mut(pod).expect("pod exists");
        pod.status = Some(
            serde_json::from_value(json!({"phase": "Pending", "containerStatuses": [{
                "name": "ember", "image": "img", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}}
            }]}))
            .unwrap(),
        );
    }

    /// A pod made by someone else than this application, as it would be stored.
    pub fn add_foreign_pod(&self, pod: Value) {
        let mut pod: Pod = serde_json::from_value(pod).unwrap();
        let mut cluster = self.cluster.lock().unwrap();
        pod.metadata.uid = Some(cluster.uid());
        pod.status = Some(serde_json::from_value(json!({"phase": "Running"})).unwrap());
        cluster.pods.insert(pod.name_any(), pod);
    }

    /// A Service made by someone else than this application, as it would be stored.
    pub fn add_foreign_service(&self, svc: Value) {
        let svc: Service = serde_json::from_value(svc).unwrap();
        self.cluster.lock().unwrap().services.insert(svc.name_any(), svc);
    }

    pub fn service(&self, name: &str) -> Service {
        self.cluster.lock().unwrap().services[name].clone()
    }

    /// A user or the node deleting a pod.
    pub fn remove_pod(&self, pod: &str) {
        self.cluster.lock().unwrap().pods.remove(pod);
    }

    pub fn advance(&self, secs: i64) {
        let mut now = self.now.lock().unwrap();
        *now = now.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An application as `kubectl apply` would store it (generation 1, a uid).
pub fn application(name: &str, spec: Value) -> SparkApplication {
    let mut app: SparkApplication = serde_json::from_value(json!({
        "apiVersion": "ember.dev/v1alpha1",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": NS, "uid": format!("app-uid-{name}"), "generation": 1},
        "spec": spec,
    }))
    .unwrap();
    app.status = None;
    app
}

pub fn base_spec(instances: i32) -> Value {
    json!({
        "image": "ember-engine:dev",
        "mainApplicationFile": "local:///opt/ember/bin/ember-examples",
        "arguments": ["sumsq", "--n", "1000"],
        "executor": {"instances": instances, "memory": "512m"},
        "driver": {"memory": "512m"}
    })
}
