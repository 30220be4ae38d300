//! The whole operator (`operator::run`: kube `Controller` owning pods and services, HTTP
//! server) against a fake API server that supports list + watch. Pod phase changes are
//! pushed as watch events, so this checks that pod events reach the owning application
//! through the owner references and label-filtered watches.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ember_operator::leader::LeaseConfig;
use ember_operator::operator::{OperatorConfig, OperatorError, run};
use ember_operator::state::Settings;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use http::{Method, Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::Notify;

type Chunk = Result<Frame<Bytes>, Infallible>;
type FakeBody = StreamBody<UnboundedReceiver<Chunk>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    App,
    Pod,
    Service,
    Ingress,
    /// ScheduledSparkApplications: none here, but the operator's controller watches them.
    Scheduled,
}

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/jobs/leases/ember-operator";

#[derive(Default)]
struct World {
    app: Value,
    pods: BTreeMap<String, Value>,
    services: BTreeMap<String, Value>,
    /// The leader Lease `jobs/ember-operator`, when leader election is on.
    lease: Option<Value>,
    watchers: Vec<(Kind, UnboundedSender<Chunk>)>,
    version: u64,
}

fn body(value: &Value) -> FakeBody {
    let (tx, rx) = unbounded();
    tx.unbounded_send(Ok(Frame::data(Bytes::from(serde_json::to_vec(value).unwrap())))).unwrap();
    StreamBody::new(rx)
}

fn respond(code: u16, value: &Value) -> Response<FakeBody> {
    Response::builder().status(code).header("content-type", "application/json").body(body(value)).unwrap()
}

impl World {
    fn bump(&mut self, object: &mut Value) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
    }

    /// Sends a watch event to every watcher of `kind`.
    fn publish(&mut self, kind: Kind, event: &str, object: &Value) {
        let line = format!("{}\n", json!({"type": event, "object": object}));
        self.watchers
            .retain(|(k, tx)| *k != kind || tx.unbounded_send(Ok(Frame::data(Bytes::from(line.clone())))).is_ok());
    }

    fn list(&self, kind: Kind, items: Vec<Value>) -> Response<FakeBody> {
        let list_kind = match kind {
            Kind::App => "SparkApplicationList",
            Kind::Pod => "PodList",
            Kind::Service => "ServiceList",
            Kind::Ingress => "IngressList",
            Kind::Scheduled => "ScheduledSparkApplicationList",
        };
        respond(
            200,
            &json!({"apiVersion": "v1", "kind": list_kind,
                    "metadata": {"resourceVersion": self.version.to_string()}, "items": items}),
        )
    }

    fn handle(&mut self, method: &Method, path: &str, query: &str, bytes: &[u8]) -> Response<FakeBody> {
        let watching = query.split('&').any(|p| p == "watch=true" || p == "watch=1");
        let kind = match path {
            "/apis/ember.dev/v1alpha1/sparkapplications" => Some(Kind::App),
            "/api/v1/pods" => Some(Kind::Pod),
            "/api/v1/services" => Some(Kind::Service),
            "/apis/networking.k8s.io/v1/ingresses" => Some(Kind::Ingress),
            "/apis/ember.dev/v1alpha1/scheduledsparkapplications" => Some(Kind::Scheduled),
            _ => None,
        };
        if let (Some(kind), &Method::GET) = (kind, method) {
            if watching {
                let (tx, rx) = unbounded();
                self.watchers.push((kind, tx));
                return Response::builder().status(200).body(StreamBody::new(rx)).unwrap();
            }
            let items = match kind {
                Kind::App => vec![self.app.clone()],
                Kind::Pod => self.pods.values().cloned().collect(),
                Kind::Service => self.services.values().cloned().collect(),
                // No application here asks for an Ingress; the watch must still be served.
                Kind::Ingress | Kind::Scheduled => vec![],
            };
            return self.list(kind, items);
        }
        let body_json = || -> Value { serde_json::from_slice(bytes).unwrap() };
        let ns_pods = "/api/v1/namespaces/jobs/pods";
        match (method.clone(), path) {
            (Method::GET, p) if p == ns_pods => {
                let items = self.pods.values().cloned().collect();
                self.list(Kind::Pod, items)
            }
            (Method::DELETE, p) if p == ns_pods => {
                // Only executor deletions happen in this test.
                let gone: Vec<String> = self
                    .pods
                    .iter()
                    .filter(|(_, pod)| pod["metadata"]["labels"]["spark-role"] == "executor")
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in gone {
                    let pod = self.pods.remove(&name).unwrap();
                    self.publish(Kind::Pod, "DELETED", &pod);
                }
                self.list(Kind::Pod, vec![])
            }
            (Method::POST, p) if p == ns_pods => {
                let mut pod = body_json();
                let name = pod["metadata"]["name"].as_str().unwrap().to_string();
                if self.pods.contains_key(&name) {
                    return respond(
                        409,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "AlreadyExists", "code": 409, "message": "already exists"}),
                    );
                }
                pod["status"] = json!({"phase": "Pending"});
                self.bump(&mut pod);
                self.pods.insert(name, pod.clone());
                self.publish(Kind::Pod, "ADDED", &pod);
                respond(201, &pod)
            }
            (Method::POST, "/api/v1/namespaces/jobs/services") => {
                let mut svc = body_json();
                self.bump(&mut svc);
                self.services.insert(svc["metadata"]["name"].as_str().unwrap().to_string(), svc.clone());
                self.publish(Kind::Service, "ADDED", &svc);
                respond(201, &svc)
            }
            (Method::GET, "/apis/ember.dev/v1alpha1/namespaces/jobs/sparkapplications/sumsq") => {
                respond(200, &self.app)
            }
            (Method::PATCH, "/apis/ember.dev/v1alpha1/namespaces/jobs/sparkapplications/sumsq/status") => {
                // A resourceVersion in an apply is a precondition.
                let wanted = body_json()["metadata"]["resourceVersion"].clone();
                if !wanted.is_null() && wanted != self.app["metadata"]["resourceVersion"] {
                    return respond(
                        409,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
                    );
                }
                let mut app = self.app.clone();
                app["status"] = body_json()["status"].clone();
                self.bump(&mut app);
                self.app = app.clone();
                self.publish(Kind::App, "MODIFIED", &app);
                respond(200, &app)
            }
            (Method::POST | Method::PATCH, p) if p.starts_with("/apis/events.k8s.io/v1/namespaces/jobs/events") => {
                respond(201, &body_json())
            }
            (Method::GET, LEASE) => match &self.lease {
                Some(lease) => respond(200, lease),
                None => respond(
                    404,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "reason": "NotFound", "code": 404, "message": "leases \"ember-operator\" not found"}),
                ),
            },
            (Method::POST, "/apis/coordination.k8s.io/v1/namespaces/jobs/leases") | (Method::PUT, LEASE) => {
                let mut lease = body_json();
                self.bump(&mut lease);
                self.lease = Some(lease.clone());
                respond(if *method == Method::POST { 201 } else { 200 }, &lease)
            }
            other => panic!("unexpected request {other:?}?{query}"),
        }
    }

    fn set_driver_phase(&mut self, phase: &str, exit_code: Option<i32>) {
        let mut pod = self.pods["sumsq-driver"].clone();
        pod["status"] = json!({"phase": phase});
        if let Some(code) = exit_code {
            pod["status"]["containerStatuses"] = json!([{"name": "ember", "image": "i", "imageID": "",
                "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": code}}}]);
        }
        self.bump(&mut pod);
        self.pods.insert("sumsq-driver".into(), pod.clone());
        self.publish(Kind::Pod, "MODIFIED", &pod);
    }

    fn state(&self) -> String {
        self.app["status"]["applicationState"]["state"].as_str().unwrap_or_default().to_string()
    }
}

/// Waits (bounded) until `done` holds, re-checking after every request the server answers.
async fn until(world: &Arc<Mutex<World>>, changed: &Arc<Notify>, what: &str, done: impl Fn(&World) -> bool) {
    let wait = async {
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&world.lock().unwrap()) {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// The operator running against the fake API server.
struct Running {
    world: Arc<Mutex<World>>,
    /// Notified after every request the server answered.
    changed: Arc<Notify>,
    /// Shuts the operator down.
    stop: tokio::sync::oneshot::Sender<()>,
    operator: tokio::task::JoinHandle<Result<(), OperatorError>>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Sends the shutdown signal and waits (bounded) for a clean stop.
    async fn shut_down(self) -> Arc<Mutex<World>> {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.operator)
            .await
            .expect("operator stopped within 30 s after shutdown")
            .unwrap()
            .expect("operator ended cleanly");
        self.server.abort();
        self.world
    }
}

/// A fake API server holding one application, `jobs/sumsq`, and the operator running
/// against it.
fn start(leader_election: Option<LeaseConfig>) -> Running {
    let app = json!({
        "apiVersion": "ember.dev/v1alpha1", "kind": "SparkApplication",
        "metadata": {"name": "sumsq", "namespace": "jobs", "uid": "uid-1", "generation": 1, "resourceVersion": "1"},
        "spec": {"image": "ember-engine:dev", "mainApplicationFile": "local:///opt/ember/bin/ember-examples",
                 "arguments": ["sumsq"], "executor": {"instances": 2}}
    });
    let world = Arc::new(Mutex::new(World { app, version: 1, ..Default::default() }));
    let changed = Arc::new(Notify::new());

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<FakeBody>>();
    let served = (world.clone(), changed.clone());
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let response = served.0.lock().unwrap().handle(
                &parts.method,
                parts.uri.path(),
                parts.uri.query().unwrap_or_default(),
                &bytes,
            );
            send.send_response(response);
            served.1.notify_waiters();
        }
    });
    let client = Client::new(service, "default");
    let config = OperatorConfig {
        namespaces: vec![],
        http_addr: "127.0.0.1:0".parse().unwrap(),
        leader_election,
        identity: "test".into(),
        settings: Settings::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(run(client, config, async {
        let _ = stopped.await;
    }));
    Running { world, changed, stop, operator, server }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_runs_an_application_to_completion() {
    let running = start(None);
    let (world, changed) = (running.world.clone(), running.changed.clone());

    until(&world, &changed, "SUBMITTED", |w| w.state() == "SUBMITTED").await;
    assert!(world.lock().unwrap().pods.contains_key("sumsq-driver"));
    assert!(world.lock().unwrap().services.contains_key("sumsq-driver-svc"));
    assert!(world.lock().unwrap().services.contains_key("sumsq-ui-svc"));

    // The kubelet starts the driver: the pod watch event leads to the executors.
    world.lock().unwrap().set_driver_phase("Running", None);
    until(&world, &changed, "RUNNING with 2 executors", |w| {
        w.state() == "RUNNING" && w.pods.contains_key("sumsq-exec-1") && w.pods.contains_key("sumsq-exec-2")
    })
    .await;

    world.lock().unwrap().set_driver_phase("Succeeded", Some(0));
    until(&world, &changed, "COMPLETED without executors", |w| w.state() == "COMPLETED" && w.pods.len() == 1).await;
    running.shut_down().await;
}

/// A leading replica that is shut down (a rollout's SIGTERM) stops its controllers and
/// then releases the Lease, so the next replica leads at once rather than after the
/// Lease expires. (The real API server showed a new replica waiting 14 s for it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_releases_its_lease_on_shutdown() {
    let lease = LeaseConfig {
        name: "ember-operator".into(),
        namespace: "jobs".into(),
        identity: "test".into(),
        lease_duration: Duration::from_secs(15),
        retry_period: Duration::from_secs(2),
    };
    let running = start(Some(lease));
    let (world, changed) = (running.world.clone(), running.changed.clone());
    let holder =
        |w: &World| w.lease.as_ref().map(|l| l["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string());
    until(&world, &changed, "leading and SUBMITTED", |w| {
        holder(w).as_deref() == Some("test") && w.state() == "SUBMITTED"
    })
    .await;
    running.shut_down().await;
    assert_eq!(holder(&world.lock().unwrap()).as_deref(), Some(""), "the Lease is released on shutdown");
}
