//! Leader election against a fake Lease API that enforces `resourceVersion` the way the
//! API server does: of two replicas, only one holds the Lease at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_operator::leader::{LeaseConfig, LeaseLock};
use http::{Method, Request, Response, StatusCode};
use jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";

#[derive(Default)]
struct LeaseStore {
    lease: Option<Value>,
    version: u64,
    /// Simulates another writer updating the Lease right after the next read.
    bump_after_get: bool,
}

fn respond(code: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn conflict() -> Response<Body> {
    respond(
        409,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
    )
}

impl LeaseStore {
    fn handle(&mut self, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
        let named = path.strip_prefix(&format!("{LEASES}/"));
        match (method.clone(), named) {
            (Method::GET, Some("ember-operator")) => match self.lease.clone() {
                None => respond(
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
                Some(lease) => {
                    if std::mem::take(&mut self.bump_after_get) {
                        self.version += 1;
                        self.lease.as_mut().unwrap()["metadata"]["resourceVersion"] = json!(self.version.to_string());
                    }
                    respond(200, lease)
                }
            },
            (Method::POST, None) if path == LEASES => {
                if self.lease.is_some() {
                    return conflict();
                }
                let mut lease: Value = serde_json::from_slice(body).unwrap();
                self.version += 1;
                lease["metadata"]["resourceVersion"] = json!(self.version.to_string());
                self.lease = Some(lease.clone());
                respond(201, lease)
            }
            (Method::PUT, Some("ember-operator")) => {
                let mut lease: Value = serde_json::from_slice(body).unwrap();
                if lease["metadata"]["resourceVersion"] != json!(self.version.to_string()) {
                    return conflict();
                }
                self.version += 1;
                lease["metadata"]["resourceVersion"] = json!(self.version.to_string());
                self.lease = Some(lease.clone());
                respond(200, lease)
            }
            other => panic!("unexpected lease request {other:?} {path}"),
        }
    }
}

fn lock(store: &Arc<Mutex<LeaseStore>>, identity: &str) -> (LeaseLock, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let store = store.clone();
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let response = store.lock().unwrap().handle(&parts.method, parts.uri.path(), &bytes);
            send.send_response(response);
        }
    });
    let config = LeaseConfig {
        name: "ember-operator".into(),
        namespace: "ops".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
        retry_period: Duration::from_secs(2),
    };
    (LeaseLock::new(Client::new(service, "ops"), config), server)
}

async fn try_lock(lock: &LeaseLock, now: Timestamp) -> bool {
    tokio::time::timeout(Duration::from_secs(10), lock.try_acquire_or_renew(now))
        .await
        .expect("lease request finished within 10 s")
        .expect("lease request succeeded")
}

fn holder(store: &Arc<Mutex<LeaseStore>>) -> String {
    store.lock().unwrap().lease.as_ref().unwrap()["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn only_one_replica_holds_the_lease() {
    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let (b, _sb) = lock(&store, "replica-b");
    let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    let at = |secs| t0.checked_add(SignedDuration::from_secs(secs)).unwrap();

    assert!(try_lock(&a, t0).await, "a creates and holds the Lease");
    assert!(!try_lock(&b, at(1)).await, "b waits while a's Lease is valid");
    assert!(try_lock(&a, at(5)).await, "a renews");
    assert!(!try_lock(&b, at(19)).await, "still valid: renewed at 5 s for 15 s");
    assert_eq!(holder(&store), "replica-a");

    // a stops renewing; once the Lease has expired b takes it over.
    assert!(try_lock(&b, at(21)).await);
    assert_eq!(holder(&store), "replica-b");
    assert_eq!(store.lock().unwrap().lease.as_ref().unwrap()["spec"]["leaseTransitions"], 1);
    assert!(!try_lock(&a, at(22)).await, "a must not take it back");
}

#[tokio::test]
async fn a_concurrent_write_makes_the_takeover_fail_safely() {
    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let (b, _sb) = lock(&store, "replica-b");
    let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    assert!(try_lock(&a, t0).await);
    // b reads an expired Lease, but another writer changes it before b's update lands.
    store.lock().unwrap().bump_after_get = true;
    let later = t0.checked_add(SignedDuration::from_secs(60)).unwrap();
    assert!(!try_lock(&b, later).await, "409 Conflict means not leader");
    assert_eq!(holder(&store), "replica-a");
}

#[tokio::test]
async fn release_lets_another_replica_take_over_at_once() {
    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let (b, _sb) = lock(&store, "replica-b");
    let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
    assert!(try_lock(&a, t0).await);
    tokio::time::timeout(Duration::from_secs(10), a.release()).await.unwrap().unwrap();
    assert!(try_lock(&b, t0).await, "a released Lease is free");
    assert_eq!(holder(&store), "replica-b");
}

/// `LeaseLock::run` with tokio's paused clock: retry sleeps advance instantly, so the
/// test is fast and deterministic.
#[tokio::test(start_paused = true)]
async fn the_leader_stops_working_when_another_replica_takes_the_lease() {
    use ember_operator::metrics::Metrics;
    use std::sync::atomic::{AtomicBool, Ordering};

    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let metrics = Metrics::new();
    let reachable = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let store_for_work = store.clone();
    let work = async move {
        started_tx.send(()).unwrap();
        // Another replica overwrites the Lease (as after a network partition).
        {
            let mut s = store_for_work.lock().unwrap();
            let lease = s.lease.as_mut().unwrap();
            lease["spec"]["holderIdentity"] = json!("replica-b");
            lease["spec"]["renewTime"] =
                json!(Timestamp::now().checked_add(SignedDuration::from_secs(3600)).unwrap().to_string());
        }
        std::future::pending::<()>().await
    };
    let result =
        tokio::time::timeout(Duration::from_secs(60), a.run(work, std::future::pending(), &metrics, reachable.clone()))
            .await
            .expect("leadership loss noticed within a minute of (paused) time");
    assert!(started_rx.await.is_ok(), "the work ran while leading");
    assert!(result.is_err(), "losing the Lease ends the work with an error");
    assert!(reachable.load(Ordering::Relaxed));
    assert_eq!(holder(&store), "replica-b");
}

#[tokio::test(start_paused = true)]
async fn a_standby_waits_and_the_work_ends_with_a_release() {
    use ember_operator::metrics::Metrics;
    use std::sync::atomic::AtomicBool;

    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let (b, _sb) = lock(&store, "replica-b");
    let metrics = Metrics::new();
    assert!(try_lock(&a, Timestamp::now()).await);
    // b waits while a holds the Lease; a's work is short and releases on the way out.
    let b_run = b.run(async {}, std::future::pending(), &metrics, Arc::new(AtomicBool::new(false)));
    let a_release = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        a.release().await.unwrap();
    };
    let (b_result, ()) = tokio::time::timeout(Duration::from_secs(120), async { tokio::join!(b_run, a_release) })
        .await
        .expect("b became leader after a released");
    assert!(b_result.is_ok());
    // b's work ended, so b released too.
    assert_eq!(holder(&store), "");
}

/// The operator's shutdown: the controllers (the work) stop on the signal and drain,
/// then the Lease is released, so a standby takes over without waiting for expiry.
#[tokio::test(start_paused = true)]
async fn shutdown_while_leading_lets_the_work_drain_then_releases() {
    use ember_operator::metrics::Metrics;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let metrics = Metrics::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    }
    .shared();
    let drained = Arc::new(AtomicBool::new(false));
    let work = {
        let (shutdown, drained) = (shutdown.clone(), drained.clone());
        async move {
            shutdown.await;
            // Finishing in-flight reconciles takes a while.
            tokio::time::sleep(Duration::from_secs(3)).await;
            drained.store(true, Ordering::Relaxed);
        }
    };
    let run = a.run(work, shutdown, &metrics, Arc::new(AtomicBool::new(false)));
    let signal = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(holder(&store), "replica-a", "leading before the shutdown");
        stop.send(()).unwrap();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(run, signal) })
        .await
        .expect("run ended after the shutdown");
    assert!(result.is_ok());
    assert!(drained.load(Ordering::Relaxed), "the work finished before run returned");
    assert_eq!(holder(&store), "", "the Lease was released");
}

#[tokio::test(start_paused = true)]
async fn shutdown_while_waiting_for_the_lease_stops_without_working() {
    use ember_operator::metrics::Metrics;
    use std::sync::atomic::AtomicBool;

    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let (a, _sa) = lock(&store, "replica-a");
    let (b, _sb) = lock(&store, "replica-b");
    assert!(try_lock(&a, Timestamp::now()).await);
    let metrics = Metrics::new();
    let work = async { panic!("a standby must not work") };
    let shutdown = tokio::time::sleep(Duration::from_secs(5));
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        b.run(work, shutdown, &metrics, Arc::new(AtomicBool::new(false))),
    )
    .await
    .expect("the standby stopped on shutdown");
    assert!(result.is_ok());
    assert_eq!(holder(&store), "replica-a");
}
