//! End-to-end tests of the operator against a real Kubernetes 1.20 control plane
//! (tests/cluster/, docs/CLUSTER-TESTS.md): the CRD from crds/, the chart's RBAC, the
//! ember-operator binary authenticated as the chart's ServiceAccount (so a permission the
//! chart lacks is a 403 from the real authorizer), and the pod runner in place of the
//! kubelet, running the pods as processes of the workspace's ember-examples binary.
//!
//! One cluster and one operator serve every scenario; they run in sequence, each logged
//! as a step. Waits are bounded (`poll_until`, watches), ports are picked free, and
//! everything lives in one temp dir removed at the end.
//!
//! Set EMBER_SKIP_CLUSTER_TESTS=1 to skip; EMBER_E2E_ONLY=<text>[,<text>...] runs only the
//! steps whose name contains one of them. EMBER_E2E_SUMSQ_RUNS=N times sumsq N times
//! (default 1) for docs/BENCHMARKS.md.

mod example_jobs;
#[path = "../../driver/tests/support/s3.rs"]
mod s3;
mod tooling;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use ember_operator::builder::{
    CONTAINER_NAME, LABEL_APP_NAME, LABEL_APP_UID, LABEL_EMBER_APP_NAME, LABEL_ROLE, driver_pod_name, executor_pod_name,
};
use ember_operator::crd::{AppState, ExecutorState, SparkApplication};
use ember_operator::scheduled::crd::{ScheduledSparkApplication, ScheduledSparkApplicationStatus};
use ember_pod_runner::harness::{Cluster, PodRunner, ProcessGuard, poll_until, report, skip_cluster_tests};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use example_jobs::{JoinJob, argument, example_document, sumsq_expected, tail};

/// The operator's executor start timeout in this test (seconds).
const EXECUTOR_START_TIMEOUT_SECS: u64 = 20;
/// Namespace of the applications (the pod runner serves this one).
const APP_NS: &str = "ember-e2e";
/// The chart's release namespace: the operator's ServiceAccount and Lease.
const OPERATOR_NS: &str = "ember-system";
const RELEASE: &str = "ember";
/// The server version the chart is rendered for (what tests/cluster builds).
const KUBE_VERSION: &str = "1.20.2";
/// Bound of each wait; generous, since the machine may be loaded by other builds.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// The engine's default log filter plus the DAG scheduler's debug line "submitting
/// tasks", which times the first task.
const TIMING_LOG_FILTER: &str = "warn,ember=info,ember_executor=info,ember_core=info,ember::scheduler::dag=debug";

fn skip() -> bool {
    skip_cluster_tests("the operator end-to-end test on the real control plane")
}

// ---------------------------------------------------------------------------------------
// Expected results, computed without the engine.

/// The pi job's samples: partition p draws its share of the points from a xorshift64
/// stream seeded from p; a point inside the quarter circle is a hit.
fn pi_expected(samples: u64, partitions: u64) -> Value {
    let mut inside = 0u64;
    for p in 0..partitions {
        let (lo, hi) = (p * samples / partitions, (p + 1) * samples / partitions);
        let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ (p + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut unit = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in lo..hi {
            let (x, y) = (unit(), unit());
            if x * x + y * y <= 1.0 {
                inside += 1;
            }
        }
    }
    json!({ "samples": samples, "inside": inside, "pi": 4.0 * inside as f64 / samples as f64 })
}

/// Writes a deterministic word corpus (several files, mixed whitespace) into `dir` and
/// returns its word counts.
fn write_corpus(dir: &Path) -> Result<BTreeMap<String, u64>> {
    const WORDS: [&str; 12] =
        ["ember", "spark", "shuffle", "driver", "executor", "pod", "lease", "stage", "task", "the", "a", "Ünïcode"];
    std::fs::create_dir_all(dir)?;
    let mut counts = BTreeMap::new();
    let mut state = 0x853c_49e6_748f_ea9bu64;
    for file in 0..3 {
        let mut text = String::new();
        for line in 0..2000 {
            let words = 1 + line % 9;
            for w in 0..words {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Skewed: low indices are frequent.
                let r = (state >> 33) % 144;
                let word = WORDS[((r * r) / (144 * 144 / 12)) as usize % WORDS.len()];
                *counts.entry(word.to_string()).or_insert(0) += 1;
                text.push_str(word);
                text.push_str(if w % 4 == 3 { "\t" } else { "  " });
            }
            text.push('\n');
        }
        std::fs::write(dir.join(format!("part-{file}.txt")), text)?;
    }
    Ok(counts)
}

// ---------------------------------------------------------------------------------------
// Set-up pieces.

/// Where a variable of the chart's Deployment gets its value.
enum ChartEnv {
    Literal(String),
    PodName,
    PodNamespace,
}

/// How the chart's Deployment runs the operator, replayed as a local process.
struct OperatorLaunch {
    binary: PathBuf,
    kubeconfig: PathBuf,
    env: Vec<(String, ChartEnv)>,
}

impl OperatorLaunch {
    /// The Deployment's container environment and ServiceAccount.
    fn from_deployment(deployment: &Value) -> Result<(Vec<(String, ChartEnv)>, String)> {
        let pod = &deployment["spec"]["template"]["spec"];
        let sa = pod["serviceAccountName"].as_str().context("Deployment without serviceAccountName")?.to_string();
        let mut env = Vec::new();
        for var in pod["containers"][0]["env"].as_array().context("Deployment container without env")? {
            let name = var["name"].as_str().context("env without name")?.to_string();
            let source = match (var["value"].as_str(), var["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
                (Some(v), _) => ChartEnv::Literal(v.to_string()),
                (None, Some("metadata.name")) => ChartEnv::PodName,
                (None, Some("metadata.namespace")) => ChartEnv::PodNamespace,
                _ => bail!("env {name} of the chart's Deployment has a source this test cannot replay: {var}"),
            };
            env.push((name, source));
        }
        Ok((env, sa))
    }

    fn literal(&self, name: &str) -> Option<&str> {
        self.env.iter().find_map(|(n, v)| match v {
            ChartEnv::Literal(v) if n == name => Some(v.as_str()),
            _ => None,
        })
    }

    /// Starts a replica named `identity` (its pod name) with its output in `log`.
    fn spawn(&self, identity: &str, log: &Path) -> Result<ProcessGuard> {
        let mut cmd = Command::new(&self.binary);
        // Not in a pod: the kubeconfig of the ServiceAccount, not in-cluster config.
        cmd.env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env("KUBECONFIG", &self.kubeconfig);
        for (name, source) in &self.env {
            let value = match source {
                // A pod has its own network namespace; here a free port is taken instead.
                ChartEnv::Literal(_) if name == "EMBER_OPERATOR_HTTP_ADDR" => "127.0.0.1:0",
                ChartEnv::Literal(v) => v.as_str(),
                ChartEnv::PodName => identity,
                ChartEnv::PodNamespace => OPERATOR_NS,
            };
            cmd.env(name, value);
        }
        // Short enough for the unschedulable-executor scenario, long enough for a
        // loaded machine to start a normal executor.
        cmd.env("EMBER_OPERATOR_EXECUTOR_START_TIMEOUT_SECS", EXECUTOR_START_TIMEOUT_SECS.to_string());
        ProcessGuard::spawn(cmd, log)
    }
}

/// A pod the test saw through its watch.
struct PodSeen {
    uid: String,
    name: String,
    app: Option<String>,
    role: Option<String>,
    seen: SystemTime,
    running: Option<SystemTime>,
    /// The Secrets the pod mounts as volumes.
    secret_volumes: Vec<String>,
}

/// What the watches saw: every pod of the namespace, and when each application state
/// first showed. Watch events carry every change, so this is finer than the API's
/// one-second timestamps and misses no short-lived pod.
#[derive(Default)]
struct History {
    pods: Vec<PodSeen>,
    /// (application, state) in order of first appearance.
    states: Vec<(String, String, SystemTime)>,
    pods_synced: bool,
    apps_synced: bool,
}

impl History {
    fn saw_pod(&mut self, pod: &Pod) {
        let now = SystemTime::now();
        let uid = pod.uid().unwrap_or_default();
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if let Some(seen) = self.pods.iter_mut().find(|p| p.uid == uid) {
            if running && seen.running.is_none() {
                seen.running = Some(now);
            }
            return;
        }
        self.pods.push(PodSeen {
            uid,
            name: pod.name_any(),
            app: pod.labels().get(LABEL_EMBER_APP_NAME).cloned(),
            role: pod.labels().get(LABEL_ROLE).cloned(),
            seen: now,
            running: running.then_some(now),
            secret_volumes: pod
                .spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
                .collect(),
        });
    }

    fn saw_app(&mut self, app: &SparkApplication) {
        let state = app.status.as_ref().map(|s| s.application_state.state).unwrap_or_default();
        let (name, state) = (app.name_any(), state.as_str().to_string());
        if !self.states.iter().any(|(a, s, _)| *a == name && *s == state) {
            self.states.push((name, state, SystemTime::now()));
        }
    }

    fn pods_of(&self, app: &str, role: &str) -> Vec<&PodSeen> {
        self.pods.iter().filter(|p| p.app.as_deref() == Some(app) && p.role.as_deref() == Some(role)).collect()
    }

    fn pod(&self, name: &str) -> Option<&PodSeen> {
        self.pods.iter().find(|p| p.name == name)
    }

    /// The states an application went through, in order, without the initial "".
    fn states_of(&self, app: &str) -> Vec<&str> {
        self.states.iter().filter(|(a, s, _)| a == app && !s.is_empty()).map(|(_, s, _)| s.as_str()).collect()
    }

    fn state_seen(&self, app: &str, state: AppState) -> Option<SystemTime> {
        self.states.iter().find(|(a, s, _)| a == app && s == state.as_str()).map(|(_, _, t)| *t)
    }
}

/// Watches the application namespace's pods and applications into `history`.
fn spawn_watchers(client: &kube::Client, history: &Arc<Mutex<History>>) -> Vec<tokio::task::JoinHandle<()>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), APP_NS);
    let apps: Api<SparkApplication> = Api::namespaced(client.clone(), APP_NS);
    let (h1, h2) = (history.clone(), history.clone());
    let watch_pods = tokio::spawn(watcher(pods, watcher::Config::default()).default_backoff().for_each(move |event| {
        let mut h = h1.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => h.saw_pod(&p),
            Ok(watcher::Event::InitDone) => h.pods_synced = true,
            _ => {}
        }
        futures::future::ready(())
    }));
    let watch_apps = tokio::spawn(watcher(apps, watcher::Config::default()).default_backoff().for_each(move |event| {
        let mut h = h2.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Ok(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => h.saw_app(&a),
            Ok(watcher::Event::InitDone) => h.apps_synced = true,
            _ => {}
        }
        futures::future::ready(())
    }));
    vec![watch_pods, watch_apps]
}

/// Lines of a tracing log (`<RFC 3339 time>  LEVEL message fields`) containing `needle`,
/// with their times.
fn log_times(log: &str, needle: &str) -> Vec<Timestamp> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next().and_then(|t| t.parse::<Timestamp>().ok()))
        .collect()
}

fn millis_between(from: SystemTime, to: SystemTime) -> i128 {
    match to.duration_since(from) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    }
}

fn timestamp_to_system(t: Timestamp) -> SystemTime {
    SystemTime::from(t)
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// The SparkApplication document of an example manifest in examples/k8s/.
fn example(file: &str) -> Result<Value> {
    example_document(file, "SparkApplication")
}

/// An example manifest's application with its volumes and mounts removed (the pod
/// runner in process mode: pods see the host's files) and `arguments`
/// pointing at host paths.
fn example_on_host(file: &str, arguments: Value) -> Result<Value> {
    let mut app = example(file)?;
    let spec = app["spec"].as_object_mut().context("spec")?;
    spec.remove("volumes");
    for role in ["driver", "executor"] {
        spec[role].as_object_mut().context("role")?.remove("volumeMounts");
    }
    spec.insert("arguments".to_string(), arguments);
    Ok(app)
}

/// The `word<TAB>count` lines of a directory's part files; a word twice is an error.
fn read_word_counts(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("part-")) {
            for line in std::fs::read_to_string(&path)?.lines() {
                let (word, count) = line.split_once('\t').with_context(|| format!("line {line:?}"))?;
                ensure!(
                    counts.insert(word.to_string(), count.parse::<u64>()?).is_none(),
                    "{word} twice in {}",
                    dir.display()
                );
            }
        }
    }
    Ok(counts)
}

/// Moves streaming input file `i` into `dir` (written under a hidden name first)
/// and adds its words to `counts`.
fn stream_file(dir: &Path, i: usize, counts: &mut BTreeMap<String, u64>) -> Result<()> {
    let words: Vec<String> = (0..30 + i * 5).map(|j| format!("s{}", (i * 7 + j * 11) % 13)).collect();
    for w in &words {
        *counts.entry(w.clone()).or_insert(0) += 1;
    }
    let tmp = dir.join(format!(".in-{i}"));
    std::fs::write(&tmp, words.join(" ") + "\n")?;
    std::fs::rename(&tmp, dir.join(format!("in-{i:02}.txt")))?;
    Ok(())
}

/// A port held on every address (the listener returned) whose next port is free now.
fn held_port_before_a_free_one() -> Result<(u16, std::net::TcpListener)> {
    for _ in 0..100 {
        let held = std::net::TcpListener::bind(("0.0.0.0", 0))?;
        let port = held.local_addr()?.port();
        if port < u16::MAX && std::net::TcpListener::bind(("0.0.0.0", port + 1)).is_ok() {
            return Ok((port, held));
        }
    }
    anyhow::bail!("no free port pair found in 100 tries")
}

/// `GET path` from `address` (HTTP/1.0, 10 s bound); the body of a 200 answer.
fn http_get(address: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = address.parse().with_context(|| format!("address {address}"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).with_context(|| format!("reading {address}{path}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").with_context(|| format!("no HTTP answer: {answer:?}"))?;
    ensure!(head.starts_with("HTTP/1.") && head.split(' ').nth(1) == Some("200"), "GET {address}{path}: {head}");
    Ok(body.to_string())
}

/// A join application that pauses between its two jobs until `pause_file` exists.
fn paused_join(name: &str, pause_file: &Path) -> Result<Value> {
    let mut app = example("sumsq.yaml")?;
    app["metadata"]["name"] = json!(name);
    app["spec"]["arguments"] = json!(JoinJob::TEST.arguments(pause_file));
    Ok(app)
}

fn executor_state(app: &SparkApplication, pod: &str) -> Option<ExecutorState> {
    app.status.as_ref().and_then(|s| s.executor_state.get(pod).copied())
}

// ---------------------------------------------------------------------------------------
// The fixture: control plane, pod runner, operator, watches.

struct E2e {
    watchers: Vec<tokio::task::JoinHandle<()>>,
    // Dropped in this order: the operator stops first (it must not act during the
    // teardown), then the pod runner kills the pods' processes, then the control plane
    // stops, and last the temp dir goes.
    operator: ProcessGuard,
    operator_replicas: u32,
    runner: PodRunner,
    cluster: Cluster,
    launch: OperatorLaunch,
    client: kube::Client,
    apps: Api<SparkApplication>,
    pods: Api<Pod>,
    history: Arc<Mutex<History>>,
    dir: tempfile::TempDir,
}

impl Drop for E2e {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
    }
}

impl E2e {
    async fn start() -> Result<Self> {
        let t = Instant::now();
        let bins = tooling::build_binaries()?;
        report(&format!("e2e: workspace binaries ready in {:.1?} ({})", t.elapsed(), bins.dir.display()));
        let dir = tempfile::Builder::new().prefix("ember-e2e.").tempdir()?;
        let docs = tooling::render_chart(&dir.path().join("helm"), RELEASE, OPERATOR_NS, KUBE_VERSION, &[])?;

        // 1. The CRDs from crds/, installed before the controller manager so that its
        //    garbage collector knows the kind (cluster.sh fails when the server refuses it).
        let t = Instant::now();
        let cluster = Cluster::start_with_crds(Some(&tooling::workspace().join("crds")))?;
        let served = cluster.kubectl_ok(&["api-resources", "--api-group", "ember.dev", "-o", "name"])?;
        let served: BTreeSet<&str> = served.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        ensure!(
            served == BTreeSet::from(["scheduledsparkapplications.ember.dev", "sparkapplications.ember.dev"]),
            "CRDs not served: {served:?}"
        );
        report(&format!("e2e: control plane up with the CRDs in {:.1?}", t.elapsed()));

        // 2. The chart's ServiceAccount and RBAC, and a kubeconfig with that account's token.
        cluster.kubectl_ok(&["create", "namespace", OPERATOR_NS])?;
        let rbac_kinds = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];
        let rbac: Vec<&Value> =
            docs.iter().filter(|d| rbac_kinds.contains(&d["kind"].as_str().unwrap_or_default())).collect();
        let kinds: BTreeSet<&str> = rbac.iter().filter_map(|d| d["kind"].as_str()).collect();
        ensure!(kinds.len() == rbac_kinds.len(), "the chart renders {kinds:?}, expected each of {rbac_kinds:?}");
        let rbac_file = dir.path().join("chart-rbac.yaml");
        let mut text = String::new();
        for doc in &rbac {
            text.push_str("---\n");
            text.push_str(&serde_yaml::to_string(doc)?);
        }
        std::fs::write(&rbac_file, text)?;
        let applied = cluster.kubectl_ok(&["apply", "-f", rbac_file.to_str().context("path")?])?;
        report(&format!("e2e: chart RBAC applied:\n{}", applied.trim_end()));
        let deployment = docs.iter().find(|d| d["kind"] == "Deployment").context("the chart renders no Deployment")?;
        let (env, sa) = OperatorLaunch::from_deployment(deployment)?;
        let kubeconfig = cluster.service_account_kubeconfig(OPERATOR_NS, &sa)?;
        let launch = OperatorLaunch { binary: bins.operator.clone(), kubeconfig, env };

        // The applications' namespace; pods need its default ServiceAccount (admission).
        cluster.kubectl_ok(&["create", "namespace", APP_NS])?;
        poll_until("default ServiceAccount of the application namespace", STEP_TIMEOUT, || async {
            let out = cluster.kubectl(&["-n", APP_NS, "get", "serviceaccount", "default", "-o", "name"])?;
            Ok(out.status.success().then_some(()))
        })
        .await?;

        let client = cluster.client().await?;
        let history = Arc::new(Mutex::new(History::default()));
        let watchers = spawn_watchers(&client, &history);
        poll_until("watches synced", STEP_TIMEOUT, || async {
            let h = history.lock().unwrap_or_else(|e| e.into_inner());
            Ok((h.pods_synced && h.apps_synced).then_some(()))
        })
        .await?;

        let runner = PodRunner::start(&bins.pod_runner, &cluster, APP_NS, &dir.path().join("pods"), Some(&bins.dir))?;
        let operator = launch.spawn("ember-operator-e2e-1", &dir.path().join("operator-1.log"))?;
        Ok(E2e {
            watchers,
            operator,
            operator_replicas: 1,
            runner,
            apps: Api::namespaced(client.clone(), APP_NS),
            pods: Api::namespaced(client.clone(), APP_NS),
            client,
            cluster,
            launch,
            history,
            dir,
        })
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn lease_name(&self) -> &str {
        self.launch.literal("EMBER_OPERATOR_LEASE_NAME").unwrap_or("ember-operator")
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        Ok(Api::<Lease>::namespaced(self.client.clone(), OPERATOR_NS).get_opt(self.lease_name()).await?)
    }

    /// Leader election through the chart's Lease RBAC: `identity` holds the Lease.
    async fn wait_leader(&self, identity: &str) -> Result<()> {
        let lease_name = self.lease_name();
        let t = Instant::now();
        poll_until(&format!("{identity} holding Lease {lease_name}"), STEP_TIMEOUT, || async {
            let holder = self.lease().await?.and_then(|l| l.spec).and_then(|s| s.holder_identity);
            Ok((holder.as_deref() == Some(identity)).then_some(()))
        })
        .await?;
        report(&format!("e2e: operator {identity} leads (Lease {OPERATOR_NS}/{lease_name}) after {:.1?}", t.elapsed()));
        Ok(())
    }

    fn write_manifest(&self, app: &Value) -> Result<PathBuf> {
        let name = app["metadata"]["name"].as_str().context("manifest without name")?;
        let dir = self.path("manifests");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, serde_yaml::to_string(app)?)?;
        Ok(file)
    }

    /// `kubectl apply` of an application into the test namespace, as a user would;
    /// returns the times just before the command and when it returned.
    fn apply(&self, app: &Value) -> Result<(SystemTime, SystemTime)> {
        let file = self.write_manifest(app)?;
        let at = SystemTime::now();
        self.cluster.kubectl_ok(&["-n", APP_NS, "apply", "-f", file.to_str().context("path")?])?;
        Ok((at, SystemTime::now()))
    }

    async fn app(&self, name: &str) -> Result<Option<SparkApplication>> {
        Ok(self.apps.get_opt(name).await?)
    }

    /// Waits for `want`; a different terminal state fails at once with its message.
    async fn wait_state(&self, name: &str, want: AppState) -> Result<SparkApplication> {
        example_jobs::wait_state(&self.apps, name, want, STEP_TIMEOUT, || self.driver_log(name)).await
    }

    /// When the watch saw `app` reach `state`, waiting for the watch to catch up with
    /// what a GET already showed.
    async fn watched(&self, app: &str, state: AppState) -> Result<SystemTime> {
        poll_until(&format!("the watch seeing {app} {}", state.as_str()), STEP_TIMEOUT, || async {
            Ok(self.history().state_seen(app, state))
        })
        .await
    }

    /// Waits until `f` accepts the application.
    async fn wait_app(
        &self,
        name: &str,
        what: &str,
        f: impl Fn(&SparkApplication) -> bool,
    ) -> Result<SparkApplication> {
        poll_until(&format!("{name}: {what}"), STEP_TIMEOUT, || async { Ok(self.app(name).await?.filter(|a| f(a))) })
            .await
    }

    fn driver_log(&self, app: &str) -> String {
        self.runner.container_log(&driver_pod_name(app), CONTAINER_NAME)
    }

    fn driver_log_tail(&self, app: &str, lines: usize) -> String {
        tail(&self.driver_log(app), lines)
    }

    /// Waits for a line of the driver's log holding every one of `parts`.
    async fn wait_driver_log(&self, app: &str, what: &str, parts: &[&str]) -> Result<()> {
        example_jobs::wait_log_line(&format!("{app}: {what}"), STEP_TIMEOUT, parts, || self.driver_log(app)).await
    }

    /// The job's result: the last JSON line of the driver's output.
    fn driver_result(&self, app: &str) -> Result<Value> {
        example_jobs::driver_result(app, &self.driver_log(app))
    }

    async fn app_pods(&self, app: &str) -> Result<Vec<Pod>> {
        Ok(self.pods.list(&ListParams::default().labels(&format!("{LABEL_EMBER_APP_NAME}={app}"))).await?.items)
    }

    /// Events the operator recorded for an application, as (reason, note).
    fn events_of(&self, app: &str) -> Result<Vec<(String, String)>> {
        self.events_of_kind("SparkApplication", app)
    }

    /// Events the operator recorded for an object of `kind`, as (reason, note).
    fn events_of_kind(&self, kind: &str, name: &str) -> Result<Vec<(String, String)>> {
        let out = self.cluster.kubectl_ok(&["-n", APP_NS, "get", "events.v1.events.k8s.io", "-o", "json"])?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["regarding"]["name"] == name && e["regarding"]["kind"] == kind)
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    fn operator_logs(&self) -> String {
        (1..=self.operator_replicas)
            .map(|i| std::fs::read_to_string(self.path(&format!("operator-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("")
    }

    fn ensure_operator_running(&mut self) -> Result<()> {
        ensure!(self.operator.is_running(), "the operator exited:\n{}", tail(&self.operator.output(), 40));
        Ok(())
    }

    /// What helps to see why a step failed.
    fn diagnostics(&self) {
        report("---- e2e diagnostics");
        if let Ok(out) = self.cluster.kubectl(&["-n", APP_NS, "get", "sparkapp,pods,svc", "-o", "wide"]) {
            report(&format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        }
        if let Ok(out) = self.cluster.kubectl(&["-n", APP_NS, "get", "sparkapp", "-o", "yaml"]) {
            report(&format!("--- applications:\n{}", tail(&String::from_utf8_lossy(&out.stdout), 120)));
        }
        report(&format!("--- operator log (tail):\n{}", tail(&self.operator_logs(), 60)));
        report(&format!("--- pod runner log (tail):\n{}", tail(&self.runner.own_log(), 40)));
    }
}

// ---------------------------------------------------------------------------------------
// The scenarios.

/// Timings of one sumsq run, in ms from `kubectl apply`.
struct SumsqTiming {
    kubectl_returned: i128,
    driver_pod: i128,
    driver_listening: i128,
    executor_pods: i128,
    executors_running: i128,
    executors_registered: i128,
    first_tasks: i128,
    completed: i128,
}

impl E2e {
    /// The seed job from examples/k8s/sumsq.yaml: COMPLETED with the exact sum, and how
    /// long each step took from `kubectl apply`.
    async fn sumsq(&self, name: &str) -> Result<SumsqTiming> {
        let mut app = example("sumsq.yaml")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["driver"]["env"] = json!([{ "name": "EMBER_LOG", "value": TIMING_LOG_FILTER }]);
        let n = argument(&app, "--n")?;
        let instances = app["spec"]["executor"]["instances"].as_u64().context("executor.instances")? as usize;
        let (applied, kubectl_returned) = self.apply(&app)?;
        let done = self.wait_state(name, AppState::Completed).await?;
        let completed = self.watched(name, AppState::Completed).await?;
        let result = self.driver_result(name)?;
        let expected = json!({ "count": n, "sum": sumsq_expected(n).to_string() });
        ensure!(result == expected, "{name}: result {result}, expected {expected}");
        let status = done.status.clone().unwrap_or_default();
        ensure!(status.execution_attempts == 1 && status.submission_attempts == 1, "{name}: one run: {status:?}");

        let log = self.driver_log(name);
        let registered = log_times(&log, "executor registered");
        ensure!(
            registered.len() == instances,
            "{name}: {} executors registered, expected {instances}",
            registered.len()
        );
        let at = |t: Timestamp| millis_between(applied, timestamp_to_system(t));
        let first = |needle: &str| -> Result<i128> {
            log_times(&log, needle)
                .first()
                .map(|t| at(*t))
                .with_context(|| format!("no {needle:?} line in {name}'s driver log"))
        };
        // (driver pod seen, last executor pod seen, last executor running), once the pod
        // watch has delivered all of it.
        let pods_seen = poll_until(&format!("the watch seeing {name}'s pods run"), STEP_TIMEOUT, || async {
            let h = self.history();
            let Some(driver) = h.pod(&driver_pod_name(name)) else { return Ok(None) };
            let executors: Option<Vec<&PodSeen>> =
                (1..=instances as i32).map(|id| h.pod(&executor_pod_name(name, id))).collect();
            let Some(executors) = executors else { return Ok(None) };
            let created = executors.iter().map(|p| p.seen).max();
            let running =
                executors.iter().map(|p| p.running).collect::<Option<Vec<_>>>().and_then(|r| r.into_iter().max());
            Ok(created.zip(running).map(|(c, r)| (driver.seen, c, r)))
        })
        .await?;
        let timing = SumsqTiming {
            kubectl_returned: millis_between(applied, kubectl_returned),
            driver_pod: millis_between(applied, pods_seen.0),
            driver_listening: first("driver listening")?,
            executor_pods: millis_between(applied, pods_seen.1),
            executors_running: millis_between(applied, pods_seen.2),
            executors_registered: registered.iter().map(|t| at(*t)).max().unwrap_or_default(),
            first_tasks: first("submitting tasks")?,
            completed: millis_between(applied, completed),
        };
        let h = self.history();
        let states = h.states_of(name);
        ensure!(states == ["SUBMITTED", "RUNNING", "COMPLETED"], "{name} went through {states:?}");
        report(&format!("{name}: {result}"));
        report(&format!(
            "timing {name}: apply→driver pod created {} ms, →driver listening {} ms, →executor pods created {} ms, \
             →executor pods running {} ms, →executors registered {} ms, →first task submitted {} ms, →COMPLETED {} ms \
             (kubectl apply itself returned after {} ms)",
            timing.driver_pod,
            timing.driver_listening,
            timing.executor_pods,
            timing.executors_running,
            timing.executors_registered,
            timing.first_tasks,
            timing.completed,
            timing.kubectl_returned
        ));
        Ok(timing)
    }

    /// examples/k8s/pi.yaml as it is: the exact hit count of its sample stream.
    /// examples/k8s/pi.yaml renamed `pi-auth`, with `spark.authenticate=true`:
    /// exact result (every executor registered and fetched with the secret),
    /// the Secret made by the operator and owned by the application, mounted
    /// into every pod of that application and no other pod, and nowhere in a
    /// pod's environment.
    async fn pi_authenticated(&self) -> Result<()> {
        let name = "pi-auth";
        let mut app = example("pi.yaml")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["sparkConf"]["spark.authenticate"] = json!("true");
        let expected = pi_expected(argument(&app, "--samples")?, argument(&app, "--partitions")?);
        self.apply(&app)?;
        self.wait_state(name, AppState::Completed).await?;
        let result = self.driver_result(name)?;
        ensure!(result == expected, "{name}: result {result}, expected {expected}");

        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(self.client.clone(), APP_NS);
        let uid = self.app(name).await?.and_then(|a| a.metadata.uid).context("the application's uid")?;
        let secret_name = format!("{name}-auth-{}", &uid[..8]);
        let secret = secrets.get(&secret_name).await.with_context(|| format!("the Secret {secret_name}"))?;
        let owner = secret.owner_references().first().map(|o| (o.kind.clone(), o.name.clone()));
        ensure!(owner == Some(("SparkApplication".into(), name.into())), "{secret_name} is owned by {owner:?}");
        let value = secret.data.as_ref().and_then(|d| d.get("secret")).map(|b| b.0.clone()).unwrap_or_default();
        ensure!(value.len() == 64, "{secret_name} holds {} bytes, not a 64-character secret", value.len());
        let value = String::from_utf8(value)?;

        let (drivers, executors) = {
            let h = self.history();
            for pod in &h.pods {
                let mounts = pod.secret_volumes.contains(&secret_name);
                let ours = pod.app.as_deref() == Some(name);
                ensure!(mounts == ours, "pod {} (application {:?}) mounts {:?}", pod.name, pod.app, pod.secret_volumes);
            }
            (h.pods_of(name, "driver").len(), h.pods_of(name, "executor").len())
        };
        ensure!(drivers == 1 && executors >= 2, "{name}: {drivers} driver and {executors} executor pods seen");
        for pod in self.app_pods(name).await? {
            let env = serde_json::to_string(&pod.spec.as_ref().map(|s| &s.containers))?;
            ensure!(!env.contains(&value), "pod {} carries the secret in its spec", pod.name_any());
        }
        ensure!(
            !self.driver_log(name).contains("refused an unauthenticated call"),
            "{name}'s driver refused a call:\n{}",
            self.driver_log_tail(name, 20)
        );
        report(&format!(
            "{name}: {result}; {drivers} driver and {executors} executor pods mount {secret_name}, no other pod"
        ));
        Ok(())
    }

    async fn pi(&self) -> Result<()> {
        let app = example("pi.yaml")?;
        let expected = pi_expected(argument(&app, "--samples")?, argument(&app, "--partitions")?);
        self.apply(&app)?;
        self.wait_state("pi", AppState::Completed).await?;
        let result = self.driver_result("pi")?;
        ensure!(result == expected, "pi: result {result}, expected {expected}");
        report(&format!("pi: {result}"));
        Ok(())
    }

    /// examples/k8s/wordcount.yaml with its input in a temp dir instead of a ConfigMap
    /// volume (process mode: pods read the host's files) and an output dir: the word
    /// totals and every word's count are exact.
    async fn wordcount(&self) -> Result<()> {
        let input = self.path("wordcount-input");
        let output = self.path("wordcount-output");
        let counts = write_corpus(&input)?;
        let app = example_on_host(
            "wordcount.yaml",
            json!([
                "wordcount",
                "--input",
                input.display().to_string(),
                "--output",
                output.display().to_string(),
                "--partitions",
                "4"
            ]),
        )?;
        self.apply(&app)?;
        self.wait_state("wordcount", AppState::Completed).await?;
        let result = self.driver_result("wordcount")?;
        let expected = json!({ "distinct": counts.len(), "total": counts.values().sum::<u64>() });
        ensure!(result == expected, "wordcount: result {result}, expected {expected}");
        let written = read_word_counts(&output)?;
        ensure!(written == counts, "wordcount: per-word counts differ: {written:?} vs {counts:?}");
        report(&format!("wordcount: {result}, and each of the {} words' counts", counts.len()));
        Ok(())
    }

    /// examples/k8s/wordcount-s3.yaml against a real S3 server (moto's) on the host,
    /// which the pods reach on loopback: the example's Secret applied as written and
    /// the endpoint pointed at the server; the input read from the bucket, the counts
    /// written to it, read back and exact.
    async fn wordcount_s3(&self) -> Result<()> {
        let server = s3::S3Server::start();
        server.create_bucket("ember-data");
        let input = self.path("wordcount-s3-input");
        let counts = write_corpus(&input)?;
        for entry in std::fs::read_dir(&input)? {
            let path = entry?.path();
            let name = path.file_name().context("name")?.to_string_lossy().into_owned();
            server.put("ember-data", &format!("wordcount/input/{name}"), &std::fs::read(&path)?);
        }
        let secret = example_document("wordcount-s3.yaml", "Secret")?;
        self.apply(&secret)?;
        let mut app = example("wordcount-s3.yaml")?;
        app["spec"]["sparkConf"]["spark.hadoop.fs.s3a.endpoint"] = json!(server.endpoint());
        self.apply(&app)?;
        self.wait_state("wordcount-s3", AppState::Completed).await?;
        let result = self.driver_result("wordcount-s3")?;
        let expected = json!({ "distinct": counts.len(), "total": counts.values().sum::<u64>() });
        ensure!(result == expected, "wordcount-s3: result {result}, expected {expected}");
        let keys = server.keys("ember-data", "wordcount/output/");
        ensure!(keys.iter().any(|k| k.ends_with("/_SUCCESS")), "no _SUCCESS in {keys:?}");
        ensure!(!keys.iter().any(|k| k.contains("_temporary")), "staging objects left: {keys:?}");
        let mut written = BTreeMap::new();
        for key in keys.iter().filter(|k| k.rsplit('/').next().is_some_and(|n| n.starts_with("part-"))) {
            let text = server.get_text("ember-data", key).with_context(|| format!("reading {key}"))?;
            for line in text.lines() {
                let (word, n) = line.split_once('\t').with_context(|| format!("{key}: {line:?}"))?;
                ensure!(written.insert(word.to_string(), n.parse::<u64>()?).is_none(), "{word} written twice");
            }
        }
        ensure!(written == counts, "wordcount-s3: per-word counts differ: {written:?} vs {counts:?}");
        report(&format!("wordcount-s3: {result}, counts read back from the bucket, {} objects", keys.len()));
        Ok(())
    }

    /// examples/k8s/streaming-wordcount.yaml (restartPolicy Always) with its data in
    /// temp dirs instead of a PersistentVolumeClaim: files counted, the driver pod
    /// deleted mid-stream, the operator starts a new driver that resumes from the
    /// checkpoint, and the running totals of every file are exact.
    async fn streaming_driver_deleted(&self) -> Result<()> {
        let name = "streaming-wordcount";
        let (input, ckpt, out) = (self.path("stream-in"), self.path("stream-ckpt"), self.path("stream-out"));
        for d in [&input, &out] {
            std::fs::create_dir_all(d)?;
        }
        let mut app = example_on_host(
            "streaming-wordcount.yaml",
            json!([
                "file-wordcount",
                "--dir",
                input.display().to_string(),
                "--checkpoint",
                ckpt.display().to_string(),
                "--output",
                out.join("totals").display().to_string(),
                "--batch-ms",
                "200",
                "--checkpoint-interval-ms",
                "400"
            ]),
        )?;
        app["spec"]["restartPolicy"] = json!({"type": "Always", "onFailureRetryInterval": 1});
        self.apply(&app)?;
        self.wait_state(name, AppState::Running).await?;
        self.wait_driver_log(name, "the streaming context started", &["streaming context started"]).await?;
        let mut want = BTreeMap::new();
        for i in 0..4 {
            stream_file(&input, i, &mut want)?;
            self.wait_stream_totals(name, &out, &want).await?;
        }
        let first = self.pods.get(&driver_pod_name(name)).await?;
        let first_uid = first.metadata.uid.clone().context("driver uid")?;
        self.cluster.kubectl_ok(&["-n", APP_NS, "delete", "pod", &driver_pod_name(name), "--wait=false"])?;
        report(&format!("{name}: driver pod {} deleted mid-stream", driver_pod_name(name)));
        let t = Instant::now();
        poll_until(&format!("{name}: a new driver pod running"), STEP_TIMEOUT, || async {
            let pod = self.pods.get_opt(&driver_pod_name(name)).await?;
            Ok(pod
                .filter(|p| p.metadata.uid.as_deref() != Some(first_uid.as_str()))
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .map(|_| ()))
        })
        .await?;
        self.wait_driver_log(
            name,
            "the new driver resuming",
            &["recovering the streaming context from its checkpoint"],
        )
        .await?;
        report(&format!("{name}: new driver resumed from the checkpoint {:.1?} after the deletion", t.elapsed()));
        for i in 4..7 {
            stream_file(&input, i, &mut want)?;
        }
        self.wait_stream_totals(name, &out, &want).await?;
        let attempts = self.app(name).await?.and_then(|a| a.status).map(|s| s.submission_attempts).unwrap_or(0);
        ensure!(attempts >= 2, "{name}: expected a second submission, status says {attempts}");
        self.cluster.kubectl_ok(&["-n", APP_NS, "delete", "sparkapp", name, "--wait=false"])?;
        report(&format!("{name}: totals of {} words exact after the restart (submissions: {attempts})", want.len()));
        Ok(())
    }

    /// Waits until the newest complete `totals-<ms>` directory under `out` holds `want`.
    async fn wait_stream_totals(&self, app: &str, out: &Path, want: &BTreeMap<String, u64>) -> Result<()> {
        poll_until(&format!("{app}: running totals of {} words", want.len()), STEP_TIMEOUT, || async {
            let mut newest: Option<(u64, PathBuf)> = None;
            for entry in std::fs::read_dir(out)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(ms) = name.strip_prefix("totals-").and_then(|t| t.parse::<u64>().ok())
                    && newest.as_ref().is_none_or(|(n, _)| ms > *n)
                {
                    newest = Some((ms, entry.path()));
                }
            }
            let Some((_, dir)) = newest else { return Ok(None) };
            Ok((read_word_counts(&dir)? == *want).then_some(()))
        })
        .await
    }

    /// `kubectl get sparkapp` prints the CRD's columns with the status values.
    fn printer_columns(&self, names: &[&str]) -> Result<()> {
        let table = self.cluster.kubectl_ok(&["-n", APP_NS, "get", "sparkapp"])?;
        report(&format!("kubectl get sparkapp:\n{}", table.trim_end()));
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().context("empty table")?.split_whitespace().collect();
        ensure!(header == ["NAME", "STATE", "ATTEMPTS", "EXECUTORS", "START", "FINISH", "AGE"], "header {header:?}");
        let rows: BTreeMap<&str, Vec<&str>> = lines
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter_map(|cols| cols.first().copied().map(|n| (n, cols)))
            .collect();
        let list: Value =
            serde_json::from_str(&self.cluster.kubectl_ok(&["-n", APP_NS, "get", "sparkapp", "-o", "json"])?)?;
        for name in names {
            let row = rows.get(name).with_context(|| format!("no row for {name}"))?;
            let item = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["metadata"]["name"] == *name)
                .with_context(|| format!("{name} not listed"))?;
            let status = &item["status"];
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let want = [
                name.to_string(),
                text(&status["applicationState"]["state"]),
                text(&status["executionAttempts"]),
                text(&status["runningExecutors"]),
                text(&status["lastSubmissionAttemptTime"]),
                text(&status["terminationTime"]),
            ];
            ensure!(row.len() == 7 && row[..6] == want, "row {row:?}, expected {want:?} and an age");
            ensure!(row[1] == "COMPLETED" && row[2] == "1", "{name}: {row:?}");
        }
        Ok(())
    }

    /// SIGKILL of an executor's process mid-job (between the join's two jobs): the
    /// operator marks it FAILED and creates executor 3, the driver takes it in, and the
    /// job still ends with the exact result.
    async fn executor_killed(&self) -> Result<()> {
        let name = "join-kill";
        let pause = self.path("join-kill.go");
        self.apply(&paused_join(name, &pause)?)?;
        self.wait_driver_log(name, "first job done, paused", &["ember: paused"]).await?;
        let victim = executor_pod_name(name, 1);
        let replacement = executor_pod_name(name, 3);
        let pid = self.runner.kill_pod_process(&self.cluster, APP_NS, &victim, libc::SIGKILL)?;
        let t = Instant::now();
        report(&format!("{name}: killed {victim} (pid {pid}) while the driver waits"));
        let app = self
            .wait_app(name, "executor 1 FAILED, executor 3 RUNNING", |a| {
                executor_state(a, &victim) == Some(ExecutorState::Failed)
                    && executor_state(a, &replacement) == Some(ExecutorState::Running)
            })
            .await?;
        let status = app.status.unwrap_or_default();
        ensure!(status.executor_failures == 1 && status.last_executor_id == 3, "{name}: {status:?}");
        self.wait_driver_log(name, "executor 1 lost", &["executor lost", "executor_id=\"1\""]).await?;
        self.wait_driver_log(name, "executor 3 registered", &["executor registered", "executor_id=3 "]).await?;
        report(&format!("{name}: replacement {replacement} registered {:.1?} after the kill", t.elapsed()));
        std::fs::write(&pause, "")?;
        self.wait_state(name, AppState::Completed).await?;
        let result = self.driver_result(name)?;
        let expected = JoinJob::TEST.expected();
        ensure!(result == expected, "{name}: result {result}, expected {expected}");
        let recomputed = self.driver_log(name).contains("map outputs lost with the executor will be recomputed");
        report(&format!("{name}: {result} (lost map outputs recomputed: {recomputed})"));
        Ok(())
    }

    /// Dynamic allocation (examples/k8s/dynamic-allocation.yaml, paused between its
    /// jobs): the slow wide stage scales the executors from 1 to 4 pods; in the pause,
    /// once idle past the example's shuffle tracking timeout (10 s), they are retired
    /// by the driver (exit 0) down to minExecutors and their pods released, with no
    /// executor failure; the final job recomputes what they held; exact result.
    async fn dynamic_allocation(&self) -> Result<()> {
        let name = "join-dynamic";
        let pause = self.path("join-dynamic.go");
        let mut app = example("dynamic-allocation.yaml")?;
        let mut args = JoinJob::TEST.arguments(&pause);
        args.extend(["--task-ms".to_string(), "3000".to_string()]);
        app["spec"]["arguments"] = json!(args);
        app["spec"]["sparkConf"]["spark.dynamicAllocation.executorIdleTimeout"] = json!("2s");
        let t = Instant::now();
        self.apply(&app)?;
        self.wait_app(name, "scaled up to 4 executor pods", |a| {
            a.status.as_ref().is_some_and(|s| s.last_executor_id >= 4)
        })
        .await?;
        report(&format!("{name}: 4 executor pods {:.1?} after the apply", t.elapsed()));
        self.wait_driver_log(name, "first job done, paused", &["ember: paused"]).await?;
        let app = self
            .wait_app(name, "back to 1 executor, 3 retired and released", |a| {
                let s = a.status.clone().unwrap_or_default();
                let completed = s.executor_state.values().filter(|e| **e == ExecutorState::Completed).count();
                s.running_executors == 1 && completed >= 3
            })
            .await?;
        let status = app.status.unwrap_or_default();
        ensure!(status.executor_failures == 0, "{name}: retired executors counted as failures: {status:?}");
        let retired = self.driver_log(name).lines().filter(|l| l.contains("executor decommissioned")).count();
        ensure!(retired >= 3, "{name}: the driver retired {retired} executors, not at least 3");
        poll_until(&format!("{name}: released pods deleted"), STEP_TIMEOUT, || async {
            let pods = self.app_pods(name).await?;
            let executors = pods.iter().filter(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some("executor"));
            Ok((executors.count() == 1).then_some(()))
        })
        .await?;
        let events = self.events_of(name)?;
        for reason in ["ExecutorsRequested", "ExecutorsReleased"] {
            ensure!(events.iter().any(|(r, _)| r == reason), "{name}: no {reason} event in {events:?}");
        }
        report(&format!("{name}: back to 1 executor {:.1?} after the apply; resuming", t.elapsed()));
        std::fs::write(&pause, "")?;
        self.wait_state(name, AppState::Completed).await?;
        let result = self.driver_result(name)?;
        let expected = JoinJob::TEST.expected();
        ensure!(result == expected, "{name}: result {result}, expected {expected}");
        let status = self.app(name).await?.and_then(|a| a.status).unwrap_or_default();
        ensure!(status.executor_failures == 0, "{name}: {status:?}");
        report(&format!("{name}: {result} in {:.1?}, {} executor pods in all", t.elapsed(), status.last_executor_id));
        Ok(())
    }

    /// An invalid manifest: refused by the schema at admission with the server's message,
    /// or, for what the schema cannot say (without CEL on 1.20), FAILED with the message
    /// in the status, an InvalidSpec event, and no pods.
    async fn invalid_manifests(&self) -> Result<()> {
        let mut app = example("sumsq.yaml")?;
        app["metadata"]["name"] = json!("bad-instances");
        app["spec"]["executor"]["instances"] = json!(-1);
        let file = self.write_manifest(&app)?;
        let out = self.cluster.kubectl(&["-n", APP_NS, "apply", "-f", file.to_str().context("path")?])?;
        let err = stderr_of(&out);
        ensure!(!out.status.success(), "instances -1 was admitted");
        ensure!(
            err.contains("spec.executor.instances") && err.contains("greater than or equal to 0"),
            "refusal does not name the field: {err}"
        );
        ensure!(self.app("bad-instances").await?.is_none(), "bad-instances exists");
        report(&format!("bad-instances refused: {err}"));

        let bad_mount: fn(&mut Value) = |app| {
            app["spec"]["driver"]["volumeMounts"] = json!([{ "name": "missing", "mountPath": "/data" }]);
        };
        // The CRD's CEL rule says the same on 1.25+; 1.20 drops it, the operator does not.
        let bad_file: fn(&mut Value) =
            |app| app["spec"]["mainApplicationFile"] = json!("/opt/ember/bin/ember-examples");
        let cases = [
            (
                "bad-mount",
                bad_mount,
                "invalid spec.driver.volumeMounts[0].name: no volume named \"missing\" in spec.volumes",
            ),
            ("bad-file", bad_file, "invalid spec.mainApplicationFile: \"/opt/ember/bin/ember-examples\" is not"),
        ];
        for (name, break_it, message) in cases {
            let mut app = example("sumsq.yaml")?;
            app["metadata"]["name"] = json!(name);
            break_it(&mut app);
            self.apply(&app)?;
            let failed = self.wait_state(name, AppState::Failed).await?;
            let error = failed.status.and_then(|s| s.application_state.error_message).unwrap_or_default();
            ensure!(error.contains(message), "{name}: errorMessage {error:?} lacks {message:?}");
            let events = self.events_of(name)?;
            ensure!(
                events.iter().any(|(reason, note)| reason == "InvalidSpec" && note.contains(message)),
                "{name}: events {events:?}"
            );
            ensure!(
                self.app_pods(name).await?.is_empty()
                    && self.history().pods.iter().all(|p| p.app.as_deref() != Some(name)),
                "{name} got pods"
            );
            report(&format!("{name}: FAILED: {error}"));
        }
        Ok(())
    }

    /// The operator stops (SIGTERM, as in a rollout) while an application runs and a new
    /// replica takes over: no resubmission (the driver pod's UID stays, no second driver
    /// or extra executor is ever created), and the new replica drives it to COMPLETED.
    async fn operator_restart(&mut self) -> Result<()> {
        let name = "join-restart";
        let pause = self.path("join-restart.go");
        self.apply(&paused_join(name, &pause)?)?;
        self.wait_driver_log(name, "first job done, paused", &["ember: paused"]).await?;
        let running = self
            .wait_app(name, "2 executors running", |a| a.status.as_ref().is_some_and(|s| s.running_executors == 2))
            .await?;
        let driver_uid = self.pods.get(&driver_pod_name(name)).await?.uid().context("driver uid")?;
        self.operator.terminate();
        ensure!(!self.operator.is_running(), "the operator did not stop");
        // Stopped by SIGTERM, the leader releases the Lease: the next replica need not
        // wait for it to expire.
        let lease = self.lease().await?;
        ensure!(
            lease.as_ref().and_then(|l| l.spec.as_ref()).and_then(|s| s.holder_identity.as_deref()).is_none(),
            "the stopped operator still holds the Lease: {lease:?}"
        );
        report(&format!("{name}: operator 1 stopped (Lease released) while {name} runs"));
        self.operator_replicas += 1;
        let identity = format!("ember-operator-e2e-{}", self.operator_replicas);
        self.operator =
            self.launch.spawn(&identity, &self.path(&format!("operator-{}.log", self.operator_replicas)))?;
        self.wait_leader(&identity).await?;
        std::fs::write(&pause, "")?;
        let done = self.wait_state(name, AppState::Completed).await?;
        self.watched(name, AppState::Completed).await?;
        ensure!(self.driver_result(name)? == JoinJob::TEST.expected(), "{name}: wrong result");
        let driver = self.pods.get(&driver_pod_name(name)).await?;
        ensure!(driver.uid().as_deref() == Some(driver_uid.as_str()), "{name}: the driver pod was replaced");
        let status = done.status.unwrap_or_default();
        let before = running.status.unwrap_or_default();
        ensure!(
            status.submission_attempts == 1 && status.execution_attempts == 1 && before.submission_attempts == 1,
            "{name}: resubmitted: {status:?}"
        );
        {
            let h = self.history();
            let drivers = h.pods_of(name, "driver").len();
            let executors = h.pods_of(name, "executor").len();
            ensure!(drivers == 1 && executors == 2, "{name}: {drivers} driver and {executors} executor pods created");
            let states = h.states_of(name);
            ensure!(states == ["SUBMITTED", "RUNNING", "COMPLETED"], "{name} went through {states:?}");
        }
        // Operator 1 is gone, so the new replica wrote COMPLETED; it logs the change
        // after the status write and the event.
        let log = self.path(&format!("operator-{}.log", self.operator_replicas));
        poll_until(&format!("{identity} logging the completion of {name}"), STEP_TIMEOUT, || async {
            let text = std::fs::read_to_string(&log)?;
            Ok(text.lines().any(|l| l.contains(name) && l.contains("COMPLETED")).then_some(()))
        })
        .await?;
        report(&format!("{name}: completed under {identity}, same driver pod {driver_uid}, no resubmission"));
        Ok(())
    }

    /// Deleting a running application: the garbage collector removes its driver,
    /// executors and Service through their owner references; the runner kills the
    /// processes.
    async fn delete_running(&self) -> Result<()> {
        let name = "gc";
        // Never resumed: it is deleted while paused. Its driver's web UI is exposed by a
        // UI Service on port 80 and a driverIngressOptions Service + Ingress.
        let mut app = paused_join(name, &self.path("gc.never"))?;
        // The UI is planned on a port picked free, on the driver pod's own address: the
        // pod runner turns 0.0.0.0 in the configuration into the pod IP (as for the RPC
        // master), so a process of the machine already on 4040 cannot answer for it.
        // The test holds that port on every address, as another process in the driver's
        // pod would: the driver's UI takes the next one, and the operator must find it
        // there and re-target the UI Service (crate ui_port).
        let (ui_port, held) = held_port_before_a_free_one()?;
        app["spec"]["sparkConf"]["spark.ui.port"] = json!(ui_port.to_string());
        app["spec"]["sparkConf"]["spark.driver.bindAddress"] = json!("0.0.0.0");
        app["spec"]["sparkUIOptions"] =
            json!({"servicePort": 80, "servicePortName": "http-ui", "serviceLabels": {"team": "e2e"}});
        app["spec"]["driverIngressOptions"] = json!([{
            "servicePort": ui_port,
            "ingressURLFormat": "{{$appName}}.{{$appNamespace}}.ingress.example.com/ui",
        }]);
        self.apply(&app)?;
        self.wait_driver_log(name, "first job done, paused", &["ember: paused"]).await?;
        self.wait_app(name, "2 executors running", |a| a.status.as_ref().is_some_and(|s| s.running_executors == 2))
            .await?;
        self.web_ui_service(name, ui_port, ui_port + 1).await?;
        drop(held);
        let pods = self.app_pods(name).await?;
        ensure!(pods.len() == 3, "{name}: {} pods", pods.len());
        let uid = self.app(name).await?.and_then(|a| a.uid()).context("uid")?;
        for pod in &pods {
            let owner = pod.owner_references().first().context("no owner reference")?;
            ensure!(owner.uid == uid && owner.controller == Some(true), "{}: owner {owner:?}", pod.name_any());
            // Scrape annotations: the driver's /metrics is on its UI port (where the UI
            // really listens: the operator moved the annotation with it), the executors'
            // on the port the operator gave them (the chart's applicationMetrics.executorPort).
            let want_port = if pod.labels().get(LABEL_ROLE).map(String::as_str) == Some("driver") {
                (ui_port + 1).to_string()
            } else {
                ember_operator::ui::DEFAULT_EXECUTOR_METRICS_PORT.to_string()
            };
            let annotations = pod.annotations();
            ensure!(
                annotations.get("prometheus.io/scrape").map(String::as_str) == Some("true")
                    && annotations.get("prometheus.io/port") == Some(&want_port)
                    && annotations.get("prometheus.io/path").map(String::as_str) == Some("/metrics"),
                "{}: annotations {annotations:?}, expected port {want_port}",
                pod.name_any()
            );
        }
        let t = Instant::now();
        self.cluster.kubectl_ok(&["-n", APP_NS, "delete", "sparkapp", name])?;
        let services: Api<Service> = Api::namespaced(self.client.clone(), APP_NS);
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), APP_NS);
        let owned_services =
            [format!("{name}-driver-svc"), format!("{name}-ui-svc"), format!("{name}-driver-{ui_port}")];
        poll_until(&format!("{name}'s pods, Services and Ingress removed"), STEP_TIMEOUT, || async {
            for svc in &owned_services {
                if services.get_opt(svc).await?.is_some() {
                    return Ok(None);
                }
            }
            let ingress = ingresses.get_opt(&format!("{name}-ing-{ui_port}")).await?;
            Ok((self.app_pods(name).await?.is_empty() && ingress.is_none()).then_some(()))
        })
        .await?;
        report(&format!(
            "{name}: deleted while running; its 3 pods, 3 Services and Ingress were removed in {:.1?}",
            t.elapsed()
        ));
        Ok(())
    }

    /// The driver's UI Service (issue 16): it selects the driver pod and targets the UI's
    /// port, `status.driverInfo` points at it, and the UI answers through it. `planned`
    /// is `spark.ui.port`; the UI listens on `actual` (the next port, `planned` being
    /// taken), which the operator finds, records in `webUITargetPort` and re-targets the
    /// Service at, with a `SparkUIPortMoved` event.
    ///
    /// How "answers through it" is shown without kube-proxy: the API server's service
    /// proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/`) reads the Service's
    /// Endpoints object, and Kubernetes refuses loopback addresses in Endpoints (the
    /// endpoints controller's writes fail validation: "may not be in the loopback range
    /// (127.0.0.0/8)"); the pod proxy refuses loopback pod IPs too. The pod runner's pod
    /// IPs are loopback addresses (127.1.0.x). EndpointSlices have no such rule, so the
    /// control plane's own EndpointSlice controller resolves the Service (its selector,
    /// its target port) to the driver pod's address and port, which is exactly what
    /// kube-proxy would program; the test then does kube-proxy's part and connects there,
    /// and checks that it is this application's UI that answers (its REST API names it).
    async fn web_ui_service(&self, name: &str, planned: u16, actual: u16) -> Result<()> {
        let (ui_port, t) = (planned, Instant::now());
        let svc_name = format!("{name}-ui-svc");
        self.wait_driver_log(name, "web UI started", &["ember: web UI at http://", &format!(":{actual}")]).await?;
        let found = self
            .wait_app(name, "the operator found the driver's UI port", |a| {
                a.status.as_ref().is_some_and(|s| s.driver_info.web_ui_target_port.is_some())
            })
            .await?;
        let found = found.status.and_then(|s| s.driver_info.web_ui_target_port);
        ensure!(found == Some(i32::from(actual)), "webUITargetPort {found:?}, the UI is on {actual}");
        let events = self.events_of(name)?;
        ensure!(
            events.iter().any(|(reason, note)| reason == "SparkUIPortMoved" && note.contains(&actual.to_string())),
            "no SparkUIPortMoved event: {events:?}"
        );
        let services: Api<Service> = Api::namespaced(self.client.clone(), APP_NS);
        let svc = services.get(&svc_name).await.with_context(|| format!("no UI Service {svc_name}"))?;
        let spec = svc.spec.clone().context("Service without spec")?;
        ensure!(spec.type_.as_deref() == Some("ClusterIP"), "{svc_name}: type {:?}", spec.type_);
        let cluster_ip = spec.cluster_ip.clone().filter(|ip| !ip.is_empty() && ip != "None");
        let cluster_ip = cluster_ip.with_context(|| format!("{svc_name} has no cluster IP: {spec:?}"))?;
        let selector = spec.selector.clone().unwrap_or_default();
        let uid = self.app(name).await?.and_then(|a| a.uid()).context("uid")?;
        ensure!(
            selector
                == BTreeMap::from([
                    (LABEL_EMBER_APP_NAME.to_string(), name.to_string()),
                    (LABEL_APP_UID.to_string(), uid),
                    (LABEL_ROLE.to_string(), "driver".to_string())
                ]),
            "{svc_name}: selector {selector:?}"
        );
        let ports = spec.ports.clone().unwrap_or_default();
        ensure!(ports.len() == 1, "{svc_name}: ports {ports:?}");
        ensure!(
            ports[0].name.as_deref() == Some("http-ui")
                && ports[0].port == 80
                && ports[0].target_port == Some(IntOrString::Int(i32::from(actual))),
            "{svc_name}: port {:?}, expected http-ui 80 → {actual} (re-targeted from {planned})",
            ports[0]
        );
        ensure!(svc.labels().get("team").map(String::as_str) == Some("e2e"), "{svc_name}: labels {:?}", svc.labels());
        let uid = self.app(name).await?.and_then(|a| a.uid()).context("uid")?;
        let owner = svc.owner_references().first().context("UI Service without owner")?;
        ensure!(owner.uid == uid && owner.controller == Some(true), "{svc_name}: owner {owner:?}");

        let info = self.app(name).await?.and_then(|a| a.status).context("no status")?.driver_info;
        ensure!(info.web_ui_service_name.as_deref() == Some(svc_name.as_str()), "driverInfo {info:?}");
        ensure!(info.web_ui_port == Some(80), "driverInfo {info:?}");
        ensure!(
            info.web_ui_address == Some(format!("{cluster_ip}:80")),
            "driverInfo {info:?}, cluster IP {cluster_ip}"
        );

        // The control plane resolves the Service to the driver's address and UI port.
        let driver_ip = self
            .app_pods(name)
            .await?
            .into_iter()
            .find(|p| p.name_any() == driver_pod_name(name))
            .and_then(|p| p.status?.pod_ip)
            .context("driver pod without IP")?;
        let (address, port) =
            poll_until(&format!("{svc_name}'s EndpointSlice lists the driver"), STEP_TIMEOUT, || async {
                let out = self.cluster.kubectl_ok(&[
                    "-n",
                    APP_NS,
                    "get",
                    "endpointslices",
                    "-l",
                    &format!("kubernetes.io/service-name={svc_name}"),
                    "-o",
                    "json",
                ])?;
                let list: Value = serde_json::from_str(&out)?;
                for slice in list["items"].as_array().into_iter().flatten() {
                    let port = slice["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"] == "http-ui")
                        .and_then(|p| p["port"].as_u64());
                    for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
                        // The slice may still carry the planned port until the
                        // controller sees the re-targeted Service.
                        if endpoint["targetRef"]["name"] == driver_pod_name(name)
                            && let (Some(address), Some(port)) = (endpoint["addresses"][0].as_str(), port)
                            && port == u64::from(actual)
                        {
                            return Ok(Some((address.to_string(), port)));
                        }
                    }
                }
                Ok(None)
            })
            .await?;
        ensure!(
            address == driver_ip && port == u64::from(actual),
            "endpoint {address}:{port}, driver {driver_ip}:{actual}"
        );
        let body = http_get(&format!("{address}:{port}"), "/api/v1/applications")?;
        let apps: Value = serde_json::from_str(&body).with_context(|| format!("the UI's REST answer {body:?}"))?;
        // The job names itself (spark.app.name "ember-examples"); this application's
        // driver is recognized by its settings: the UI port picked for it, as given in
        // sparkConf, and the operator's executor count.
        let id = apps[0]["id"].as_str().with_context(|| format!("no application in {apps}"))?;
        let env: Value = serde_json::from_str(&http_get(
            &format!("{address}:{port}"),
            &format!("/api/v1/applications/{id}/environment"),
        )?)?;
        let props = env["sparkProperties"].as_array().cloned().unwrap_or_default();
        for (key, want) in [("spark.ui.port", ui_port.to_string()), ("spark.executor.instances", "2".to_string())] {
            ensure!(
                props.contains(&json!([key, want])),
                "the UI at {address}:{port} is another application's: {key} is not {want} in {props:?}"
            );
        }
        let metrics = http_get(&format!("{address}:{port}"), "/metrics")?;
        ensure!(metrics.contains("ember_jobs_total"), "the driver's /metrics lacks ember_jobs_total");
        // For the record: what the API server's service proxy says here (see above).
        let proxied = self.cluster.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{APP_NS}/services/{svc_name}:80/proxy/api/v1/applications"),
        ])?;
        let proxy_said = String::from_utf8_lossy(&proxied.stderr).lines().next().unwrap_or_default().to_string();

        // The driverIngressOptions entry: a Service on the same port, and a valid Ingress
        // (the real API server's validation, the chart's RBAC) routing its path to it.
        let extra = services.get(&format!("{name}-driver-{ui_port}")).await?;
        let extra_port = extra.spec.and_then(|s| s.ports).unwrap_or_default();
        ensure!(
            extra_port.len() == 1 && extra_port[0].port == i32::from(ui_port),
            "{name}-driver-{ui_port}: {extra_port:?}"
        );
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), APP_NS);
        let ingress = ingresses.get(&format!("{name}-ing-{ui_port}")).await?;
        let rule =
            ingress.spec.and_then(|s| s.rules).and_then(|r| r.into_iter().next()).context("Ingress without rule")?;
        ensure!(
            rule.host.as_deref() == Some(&*format!("{name}.{APP_NS}.ingress.example.com")),
            "Ingress rule {rule:?}"
        );
        let path = rule.http.and_then(|h| h.paths.into_iter().next()).context("Ingress without path")?;
        ensure!(
            path.backend.service.map(|s| s.name) == Some(format!("{name}-driver-{ui_port}")),
            "Ingress backend {:?}",
            path.path
        );
        report(&format!(
            "{name}: UI Service {svc_name} {cluster_ip}:80 → driver {address}:{port} (spark.ui.port {planned} was \
             taken; found and re-targeted) answered (REST and /metrics) {:.1?} after the driver paused; the API \
             server's service proxy: {proxy_said}",
            t.elapsed()
        ));
        Ok(())
    }

    /// Issue 15's sharp edges on the real control plane. A kubeflow driver pod labelled
    /// with the same application name survives an Ember application's whole lifecycle;
    /// `onFailureRetries: 2` of a job that fails at once gives exactly 3 runs, each
    /// counted in `executionAttempts`, with no rerun's driver killed; and after a delete
    /// (orphaning its pods) and a recreate under the same name, the old object's pods are
    /// never adopted: the new application says what it waits for, and runs once they go.
    async fn ownership_and_retries(&self) -> Result<()> {
        let name = "owned";
        let kubeflow: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-kubeflow-driver"), "labels": {
                LABEL_APP_NAME: name, LABEL_ROLE: "driver",
                "sparkoperator.k8s.io/launched-by-spark-operator": "true"}},
            "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "spark:4",
                                     "command": ["sleep", "600"]}]},
        }))?;
        let kubeflow_uid = self.pods.create(&Default::default(), &kubeflow).await?.uid();
        let runs_before = self.history().pods.iter().filter(|p| p.name == driver_pod_name(name)).count();

        let mut app = example("sumsq.yaml")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["arguments"] = json!(["no-such-example"]);
        app["spec"]["restartPolicy"] = json!({"type": "OnFailure", "onFailureRetries": 2, "onFailureRetryInterval": 1});
        self.apply(&app)?;
        let failed = self.wait_app(name, "FAILED", |a| {
            a.status.as_ref().is_some_and(|s| s.application_state.state == AppState::Failed)
        });
        let failed = failed.await?;
        let status = failed.status.clone().unwrap_or_default();
        let runs = self.history().pods.iter().filter(|p| p.name == driver_pod_name(name)).count() - runs_before;
        ensure!(
            (runs, status.submission_attempts, status.execution_attempts, status.execution_failures) == (3, 3, 3, 2),
            "{name}: {runs} driver pods, status {status:?}"
        );
        let message = status.application_state.error_message.unwrap_or_default();
        ensure!(message.contains("exited with code 2"), "{name}: {message}");
        let events = self.events_of(name)?;
        ensure!(
            !events.iter().any(|(_, note)| note.contains("was deleted before it started")),
            "a rerun's driver was deleted: {events:?}"
        );

        // Delete, orphaning the pods (the garbage collector strips their owner references
        // but the last run's driver stays, labelled with the old UID), and recreate.
        let old_uid = failed.uid().context("uid")?;
        self.cluster.kubectl_ok(&["-n", APP_NS, "delete", "sparkapp", name, "--cascade=orphan"])?;
        poll_until(&format!("{name} deleted"), STEP_TIMEOUT, || async {
            Ok(self.app(name).await?.is_none().then_some(()))
        })
        .await?;
        let mut app = example("sumsq.yaml")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["arguments"] = json!(["sumsq", "--n", "1000", "--partitions", "4"]);
        self.apply(&app)?;
        self.wait_app(name, "waiting for the earlier object's pods", |a| {
            a.status.as_ref().and_then(|s| s.application_state.error_message.as_deref()).is_some_and(|m| {
                m.contains("earlier SparkApplication named owned") && m.contains(&driver_pod_name(name))
            })
        })
        .await?;
        let old_driver = self.pods.get(&driver_pod_name(name)).await?;
        ensure!(
            old_driver.labels().get(LABEL_APP_UID) == Some(&old_uid),
            "the old driver was adopted: {:?}",
            old_driver.labels()
        );
        self.pods
            .delete_collection(
                &Default::default(),
                &ListParams::default().labels(&format!("{LABEL_APP_UID}={old_uid}")),
            )
            .await?;
        self.wait_state(name, AppState::Completed).await?;
        ensure!(self.driver_result(name)? == json!({"count": 1000, "sum": sumsq_expected(1000).to_string()}));

        let survivor = self.pods.get(&format!("{name}-kubeflow-driver")).await?;
        ensure!(
            survivor.uid() == kubeflow_uid && survivor.metadata.deletion_timestamp.is_none(),
            "the kubeflow pod was touched"
        );
        self.pods.delete(&format!("{name}-kubeflow-driver"), &Default::default()).await?;
        report(&format!(
            "{name}: 3 runs of a failing job for onFailureRetries 2 (executionAttempts 3); the recreated \
             application waited for the orphaned pod, then completed; the kubeflow pod survived"
        ));
        Ok(())
    }

    /// A ScheduledSparkApplication every 4 s with `Forbid`, whose runs are paused joins:
    /// the first run holds, and the times passing meanwhile wait (the status says for
    /// what) without a second run; the first run's driver is deleted, so it fails and,
    /// with `failedRunHistoryLimit: 0`, is deleted; the time that waited runs at once.
    /// Suspended then, the second run completes and is kept (`successfulRunHistoryLimit:
    /// 1`): two runs in all, each with its scheduled time in its name.
    async fn scheduled_forbid(&self) -> Result<()> {
        let name = "every4s";
        let pause = self.path("scheduled-pause");
        let template = paused_join("template", &pause)?["spec"].clone();
        let manifest = json!({
            "apiVersion": "ember.dev/v1alpha1", "kind": "ScheduledSparkApplication",
            "metadata": {"name": name},
            "spec": {"schedule": "@every 4s", "concurrencyPolicy": "Forbid",
                     "successfulRunHistoryLimit": 1, "failedRunHistoryLimit": 0, "template": template},
        });
        let scheduled: Api<ScheduledSparkApplication> = Api::namespaced(self.client.clone(), APP_NS);
        self.apply(&manifest)?;
        let wait_scheduled = |what: String, f: Box<dyn Fn(&ScheduledSparkApplicationStatus) -> bool + Send + Sync>| {
            let scheduled = scheduled.clone();
            async move {
                poll_until(&format!("{name}: {what}"), STEP_TIMEOUT, || async {
                    let s = scheduled.get(name).await?.status.unwrap_or_default();
                    Ok(f(&s).then_some(s))
                })
                .await
            }
        };
        let status = wait_scheduled("a first run".into(), Box::new(|s| !s.active_run_names.is_empty())).await?;
        let first = status.active_run_names[0].clone();
        self.wait_driver_log(&first, "paused", &["ember: paused"]).await?;
        let waiting = format!("waits for {first} to end (concurrencyPolicy Forbid)");
        let w = waiting.clone();
        wait_scheduled(
            "a time passing while the first run holds".into(),
            Box::new(move |s| s.reason.as_deref().is_some_and(|r| r.contains(&w))),
        )
        .await?;
        let runs = |h: &History| -> BTreeSet<String> {
            h.states.iter().map(|(a, _, _)| a.clone()).filter(|a| a.starts_with(&format!("{name}-"))).collect()
        };
        ensure!(runs(&self.history()) == BTreeSet::from([first.clone()]), "Forbid: {:?}", runs(&self.history()));

        self.pods.delete(&driver_pod_name(&first), &Default::default()).await?;
        let f = first.clone();
        let status = wait_scheduled(
            "the waiting time running once the first run failed".into(),
            Box::new(move |s| s.active_run_names.len() == 1 && s.active_run_names[0] != f),
        )
        .await?;
        let second = status.active_run_names[0].clone();
        ensure!(status.past_failed_run_names.is_empty(), "failedRunHistoryLimit 0 kept {status:?}");
        poll_until(&format!("{first} deleted (failedRunHistoryLimit 0)"), STEP_TIMEOUT, || async {
            Ok(self.app(&first).await?.is_none().then_some(()))
        })
        .await?;
        self.wait_driver_log(&second, "paused", &["ember: paused"]).await?;

        self.cluster.kubectl_ok(&[
            "-n",
            APP_NS,
            "patch",
            "scheduledsparkapp",
            name,
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":true}}"#,
        ])?;
        wait_scheduled("suspended".into(), Box::new(|s| s.next_run.is_none())).await?;
        std::fs::write(&pause, b"go")?;
        self.wait_state(&second, AppState::Completed).await?;
        ensure!(self.driver_result(&second)? == JoinJob::TEST.expected(), "{second}'s result");
        let s2 = second.clone();
        let status = wait_scheduled(
            "the second run kept as the one successful run".into(),
            Box::new(move |s| s.past_successful_run_names == [s2.clone()] && s.active_run_names.is_empty()),
        )
        .await?;
        let all = runs(&self.history());
        ensure!(all == BTreeSet::from([first.clone(), second.clone()]), "runs: {all:?}");
        let time_of = |run: &str| -> Result<i64> { Ok(run.rsplit('-').next().context("suffix")?.parse()?) };
        ensure!(time_of(&second)? - time_of(&first)? >= 4, "{first} then {second}");
        let events = self.events_of_kind("ScheduledSparkApplication", name)?;
        let reasons: BTreeSet<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
        ensure!(reasons.is_superset(&BTreeSet::from(["RunCreated", "RunWaiting"])), "events: {events:?}");
        let columns = self.cluster.kubectl_ok(&["-n", APP_NS, "get", "scheduledsparkapp", name])?;
        ensure!(columns.contains("@every 4s") && columns.contains("Scheduled"), "{columns}");
        self.cluster.kubectl_ok(&["-n", APP_NS, "delete", "scheduledsparkapp", name])?;
        poll_until(&format!("{second} garbage-collected with {name}"), STEP_TIMEOUT, || async {
            Ok(self.app(&second).await?.is_none().then_some(()))
        })
        .await?;
        report(&format!(
            "{name}: {first} held while a time passed (Forbid, waiting); failed and deleted (limit 0); \
             {second} started at once and completed, kept as the last successful run {:?}",
            status.past_successful_run_names
        ));
        Ok(())
    }

    /// An executor whose memory request fits no node stays Pending (Unschedulable, as
    /// the pod runner's fit check says, in kube-scheduler's words): with no executor
    /// running, the application fails with that reason once the operator's executor
    /// start timeout passes, and its pods go.
    async fn unschedulable_executor(&self) -> Result<()> {
        let name = "too-big";
        let mut app = example("sumsq.yaml")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["arguments"] = json!(["sumsq", "--n", "1000", "--partitions", "4"]);
        app["spec"]["executor"]["instances"] = json!(1);
        app["spec"]["executor"]["memory"] = json!("16g");
        let t = Instant::now();
        self.apply(&app)?;
        let failed = self
            .wait_app(name, "FAILED", |a| {
                a.status.as_ref().is_some_and(|s| s.application_state.state == AppState::Failed)
            })
            .await?;
        let message = failed.status.and_then(|s| s.application_state.error_message).unwrap_or_default();
        ensure!(
            message.contains(&format!(
                "executor pod {} did not start within {EXECUTOR_START_TIMEOUT_SECS}s: Unschedulable: 0/1 nodes are \
                 available: 1 Insufficient memory.",
                executor_pod_name(name, 1)
            )),
            "{name}: {message}"
        );
        let events = self.events_of(name)?;
        ensure!(events.iter().any(|(reason, _)| reason == "ExecutorPending"), "{name}: events {events:?}");
        poll_until(&format!("{name}'s pods deleted"), STEP_TIMEOUT, || async {
            Ok(self.app_pods(name).await?.is_empty().then_some(()))
        })
        .await?;
        report(&format!("{name}: FAILED {:.1?} after apply: {message}", t.elapsed()));
        Ok(())
    }

    /// timeToLiveSeconds: a finished application is deleted, and its pods with it.
    async fn ttl(&self) -> Result<()> {
        let name = "ttl";
        let mut app = example("sumsq.yaml")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["arguments"] = json!(["sumsq", "--n", "1000", "--partitions", "4"]);
        app["spec"]["timeToLiveSeconds"] = json!(2);
        self.apply(&app)?;
        self.wait_state(name, AppState::Completed).await?;
        ensure!(self.driver_result(name)? == json!({"count": 1000, "sum": sumsq_expected(1000).to_string()}));
        let t = Instant::now();
        poll_until(&format!("{name} removed after its TTL"), STEP_TIMEOUT, || async {
            Ok((self.app(name).await?.is_none() && self.app_pods(name).await?.is_empty()).then_some(()))
        })
        .await?;
        report(&format!(
            "{name}: COMPLETED, then removed with its pods {:.1?} later (timeToLiveSeconds 2)",
            t.elapsed()
        ));
        Ok(())
    }

    /// Nothing the operator did was refused: no 403 in its log, and events were recorded.
    fn operator_was_authorized(&self) -> Result<()> {
        let logs = self.operator_logs();
        let refused: Vec<&str> =
            logs.lines().filter(|l| l.contains("forbidden") || l.contains("could not record event")).collect();
        ensure!(refused.is_empty(), "the operator was refused requests:\n{}", refused.join("\n"));
        let failed_reconciles = logs.lines().filter(|l| l.contains("reconcile failed")).count();
        report(&format!("operator: no request refused; {failed_reconciles} reconciles failed and were retried"));
        let events = self.events_of("sumsq")?;
        let reasons: BTreeSet<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
        for want in ["SparkApplicationSubmitted", "SparkApplicationRunning", "SparkApplicationCompleted"] {
            ensure!(reasons.contains(want), "no {want} event for sumsq: {reasons:?}");
        }
        Ok(())
    }
}

/// Runs one scenario step, unless `EMBER_E2E_ONLY` is set (comma-separated texts) and the
/// step's name contains none of them (for working on one scenario; CI runs them all).
async fn step<T: Default>(name: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    if let Ok(only) = std::env::var("EMBER_E2E_ONLY")
        && !only.split(',').any(|part| name.contains(part.trim()))
    {
        report(&format!("== skipped (EMBER_E2E_ONLY={only:?}): {name}"));
        return Ok(T::default());
    }
    report(&format!("== {name}"));
    let t = Instant::now();
    let result = f.await.with_context(|| format!("step {name:?}"));
    if result.is_ok() {
        report(&format!("ok: {name} ({:.1?})", t.elapsed()));
    }
    result
}

async fn scenarios(e2e: &mut E2e) -> Result<()> {
    step(
        "the operator, as the chart's ServiceAccount, takes the leader Lease",
        e2e.wait_leader("ember-operator-e2e-1"),
    )
    .await?;
    let runs: usize = std::env::var("EMBER_E2E_SUMSQ_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    step("sumsq (examples/k8s/sumsq.yaml): exact sum and timings", async {
        let mut timings = Vec::new();
        for run in 1..=runs {
            let name = if run == 1 { "sumsq".to_string() } else { format!("sumsq-{run}") };
            timings.push(e2e.sumsq(&name).await?);
        }
        if runs > 1 {
            let median = |f: fn(&SumsqTiming) -> i128| {
                let mut v: Vec<i128> = timings.iter().map(f).collect();
                v.sort();
                v[v.len() / 2]
            };
            report(&format!(
                "timing sumsq median of {runs}: →driver pod {} ms, →executors registered {} ms, →first task {} ms, →COMPLETED {} ms",
                median(|t| t.driver_pod),
                median(|t| t.executors_registered),
                median(|t| t.first_tasks),
                median(|t| t.completed)
            ));
        }
        Ok(())
    })
    .await?;
    step("pi (examples/k8s/pi.yaml): exact hit count", e2e.pi()).await?;
    step(
        "pi with spark.authenticate: exact, the secret mounted into that application's pods only",
        e2e.pi_authenticated(),
    )
    .await?;
    step("wordcount (examples/k8s/wordcount.yaml): exact counts", e2e.wordcount()).await?;
    step(
        "wordcount-s3 (examples/k8s/wordcount-s3.yaml): from and to an S3 server, credentials from a Secret",
        e2e.wordcount_s3(),
    )
    .await?;
    step("kubectl get sparkapp: printer columns", async { e2e.printer_columns(&["sumsq", "pi", "wordcount"]) }).await?;
    step("executor killed mid-job: replaced, result exact", e2e.executor_killed()).await?;
    step(
        "streaming (examples/k8s/streaming-wordcount.yaml): driver pod deleted, resumed from the checkpoint",
        e2e.streaming_driver_deleted(),
    )
    .await?;
    step(
        "dynamic allocation (examples/k8s/dynamic-allocation.yaml): 1 → 4 executors for a wide stage, back to 1 when idle, exact",
        e2e.dynamic_allocation(),
    )
    .await?;
    step("invalid manifests: refused by the schema or FAILED with the message", e2e.invalid_manifests()).await?;
    e2e.ensure_operator_running()?;
    step("operator restart mid-application: no resubmission", e2e.operator_restart()).await?;
    step("the driver's UI Service answers; deleting a running application: garbage collection", e2e.delete_running())
        .await?;
    step("timeToLiveSeconds removes a finished application", e2e.ttl()).await?;
    step("an unschedulable executor fails the application with the scheduler's reason", e2e.unschedulable_executor())
        .await?;
    step(
        "ownership and retries: a kubeflow pod survives, retries are exact, a recreated application adopts nothing",
        e2e.ownership_and_retries(),
    )
    .await?;
    step(
        "ScheduledSparkApplication @every 4s, Forbid: one run at a time, history limits kept, suspend",
        e2e.scheduled_forbid(),
    )
    .await?;
    e2e.ensure_operator_running()?;
    step("the chart's RBAC covered every request", async { e2e.operator_was_authorized() }).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_applications_on_a_real_control_plane() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let t = Instant::now();
    let mut e2e = E2e::start().await?;
    report(&format!("e2e: set-up done in {:.1?}", t.elapsed()));
    let result = scenarios(&mut e2e).await;
    if result.is_err() {
        e2e.diagnostics();
    }
    drop(e2e);
    report(&format!("e2e: whole test {:.1?}", t.elapsed()));
    result
}

/// The expected-result functions themselves, on cases worked out by hand and the README's
/// seed result.
#[test]
fn expected_results_agree_with_hand_computed_cases() {
    // f(0) + f(1) = Σ_{i<50} i² + Σ_{i<50} (1+i)² = 40425 + 42925.
    assert_eq!(sumsq_expected(1), 40425);
    assert_eq!(sumsq_expected(2), 40425 + 42925);
    // The README's seed result.
    assert_eq!(sumsq_expected(10_000_000), 16_666_786_667_058_750_000_000);
    let pi = pi_expected(100_000, 4);
    assert!((pi["pi"].as_f64().unwrap() - std::f64::consts::PI).abs() < 0.02, "{pi}");
    let join = JoinJob { large: 1000, small: 10, keys: 20, partitions: 2, seed: 7 };
    // About half of the large rows have a key below 10 of 20.
    let rows = join.expected()["rows"].as_u64().unwrap();
    assert!((400..600).contains(&rows), "{rows}");
    assert_eq!(
        JoinJob::TEST.arguments(Path::new("/p")),
        [
            "join",
            "--large",
            "200000",
            "--small",
            "5000",
            "--keys",
            "10000",
            "--partitions",
            "8",
            "--seed",
            "7",
            "--pause-file",
            "/p"
        ]
    );
}
