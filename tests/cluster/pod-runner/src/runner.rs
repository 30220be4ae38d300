//! The pod runner: a stand-in for the kubelet (and the scheduler) for tests
//! against a real API server without nodes.
//!
//! It registers one Node, binds every unscheduled pod of its namespace to it
//! (`pods/binding`), runs each bound pod's containers as local processes, and
//! writes what happens through the `pods/status` subresource. A pod being
//! deleted has its processes killed and is then removed with grace period 0,
//! since no kubelet is there to finalize it. In container mode
//! ([`Config::podman`], module [`crate::container`]) each container runs as a
//! `podman` container of its image instead of as a local process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Node, Pod, PodSpec, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use crate::container::{self, ContainerSpec, Mount, Podman};
use crate::spec::{
    self, Exit, IpAllocator, PathMap, ServiceAddress, expand_vars, resource_field_value, rewrite_service_names,
    selector_matches,
};

/// How the runner is set up (see the binary's flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub node_name: String,
    pub path_map: PathMap,
    /// Container logs go to `<log_dir>/<pod>.<container>.log`.
    pub log_dir: PathBuf,
    /// Per-pod working directories and emptyDir volumes go under here.
    pub work_dir: PathBuf,
    /// The first pod address; later pods get the following ones.
    pub first_pod_ip: Ipv4Addr,
    /// Upper bound on a deleted pod's grace period before SIGKILL.
    pub max_grace: Duration,
    /// Lines of output kept as a terminated container's message.
    pub message_lines: usize,
    /// Container mode: run each container as a podman container of its image
    /// (`path_map` is then unused: the image holds the binaries).
    pub podman: Option<Podman>,
    /// The API server's address as pods reach it (`KUBERNETES_SERVICE_HOST` and
    /// `_PORT`, which the kubelet sets in every container), when known.
    pub api_server: Option<(String, u16)>,
}

const HOST_IP: &str = "127.0.0.1";
const MESSAGE_BYTES: usize = 4096;

/// Why a pod could not be started yet or at all.
enum Prepare {
    /// Try again later (e.g. the Service it names has no running pod yet).
    Defer(String),
    /// The pod can never start here; it is marked Failed with this message.
    Fail(String),
}

/// Everything needed to start (and restart) one container.
#[derive(Debug, Clone)]
struct Launch {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    /// The container's own temporary directory (`TMPDIR`), as a container has
    /// its own /tmp: what a killed process leaves there stays in the pod's dir.
    tmp: PathBuf,
    log: PathBuf,
    /// `terminationMessagePolicy: FallbackToLogsOnError`: the output's tail
    /// becomes the message only when the container failed. (Otherwise it
    /// always does: there is no /dev/termination-log here.)
    message_only_on_error: bool,
    /// Container mode: the image and what podman needs besides argv and env.
    image: Option<ImageLaunch>,
}

/// The container-mode part of a launch: `argv` is then the container's
/// `command` (its first `command_len` elements, when set) followed by `args`.
#[derive(Debug, Clone)]
struct ImageLaunch {
    image: String,
    command_len: Option<usize>,
    working_dir: Option<String>,
    mounts: Vec<Mount>,
    memory_bytes: Option<u64>,
    cpus: Option<f64>,
}

#[derive(Debug, Clone)]
enum CState {
    Waiting,
    /// `pid` is the process's, or in container mode the `podman run` process's
    /// (`container` then names the podman container).
    Running {
        pid: i32,
        started: Time,
        container: Option<String>,
    },
    Terminated {
        exit: Exit,
        started: Time,
        finished: Time,
        message: String,
    },
}

#[derive(Debug)]
struct ContainerRun {
    name: String,
    image: String,
    launch: Launch,
    state: CState,
    last: Option<CState>,
    restarts: i32,
    /// Exited and scheduled to start again (restartPolicy Always/OnFailure).
    restart_pending: bool,
    /// Container mode: the podman name of the latest run (kept after it ends,
    /// as a container's ID stays in its status).
    podman_name: Option<String>,
}

#[derive(Debug)]
struct PodRun {
    name: String,
    ip: Ipv4Addr,
    start_time: Time,
    restart_policy: Option<String>,
    containers: Vec<ContainerRun>,
    deleting: bool,
    /// Status is terminal (Succeeded/Failed) or the pod was abandoned: nothing more to do.
    done: bool,
}

enum Event {
    Exited { uid: String, idx: usize, exit: Exit },
    Restart { uid: String, idx: usize },
    GraceOver { uid: String },
}

pub struct Runner {
    cfg: Config,
    client: Client,
    pods: Api<Pod>,
    runs: HashMap<String, PodRun>,
    /// Pods already bound or force-deleted by us (by uid), to act once.
    bound: HashSet<String>,
    force_deleted: HashSet<String>,
    deferred: HashMap<String, String>,
    ips: IpAllocator,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    node_capacity: BTreeMap<String, String>,
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn time_json(t: &Time) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

impl Runner {
    pub fn new(client: Client, cfg: Config) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let node_capacity = BTreeMap::from([
            ("cpu".to_string(), cpus.to_string()),
            ("memory".to_string(), "8Gi".to_string()),
            ("ephemeral-storage".to_string(), "100Gi".to_string()),
            ("pods".to_string(), "110".to_string()),
        ]);
        Self {
            pods: Api::namespaced(client.clone(), &cfg.namespace),
            ips: IpAllocator::new(cfg.first_pod_ip),
            cfg,
            client,
            runs: HashMap::new(),
            bound: HashSet::new(),
            force_deleted: HashSet::new(),
            deferred: HashMap::new(),
            events_tx,
            events_rx,
            node_capacity,
        }
    }

    /// Creates (or refreshes) this runner's Node and marks it Ready.
    pub async fn register_node(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.cfg.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.cfg.node_name,
                    "kubernetes.io/os": "linux",
                    "ember.dev/pod-runner": "true",
                },
            },
        }))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => info!(node = %self.cfg.node_name, "registered node"),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                debug!(node = %self.cfg.node_name, "node exists")
            }
            Err(e) => return Err(e).context("creating the Node"),
        }
        let t = time_json(&now());
        let status = json!({
            "status": {
                "capacity": self.node_capacity,
                "allocatable": self.node_capacity,
                "addresses": [
                    {"type": "InternalIP", "address": HOST_IP},
                    {"type": "Hostname", "address": self.cfg.node_name},
                ],
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "PodRunnerReady",
                    "message": "ember-pod-runner runs this node's pods as local processes",
                    "lastHeartbeatTime": t, "lastTransitionTime": t,
                }],
                "nodeInfo": {
                    "machineID": "", "systemUUID": "", "bootID": "",
                    "kernelVersion": "", "osImage": "ember-pod-runner",
                    "containerRuntimeVersion": "ember-pod-runner://0",
                    "kubeletVersion": "ember-pod-runner", "kubeProxyVersion": "",
                    "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
                },
            }
        });
        nodes
            .patch_status(&self.cfg.node_name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .context("writing the Node's status")?;
        Ok(())
    }

    /// Runs until `shutdown` completes; then kills every process it started.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        if let Some(podman) = self.cfg.podman.clone() {
            // Containers a previous runner of this node left (it was killed): their
            // pods are found Running below and marked Failed, as after a node loss.
            let node = self.cfg.node_name.clone();
            tokio::task::spawn_blocking(move || podman.remove_all(&node)).await?;
        }
        self.register_node().await?;
        let notify = Arc::new(Notify::new());
        let (pod_store, pod_writer) = reflector::store::<Pod>();
        let (svc_store, svc_writer) = reflector::store::<Service>();
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.cfg.namespace);

        let n = notify.clone();
        let pod_watch =
            reflector::reflector(pod_writer, watcher(self.pods.clone(), watcher::Config::default()).default_backoff())
                .for_each(move |ev| {
                    if let Err(e) = ev {
                        warn!("pod watch: {e}");
                    }
                    n.notify_one();
                    futures::future::ready(())
                });
        let n = notify.clone();
        let svc_watch =
            reflector::reflector(svc_writer, watcher(services, watcher::Config::default()).default_backoff()).for_each(
                move |ev| {
                    if let Err(e) = ev {
                        warn!("service watch: {e}");
                    }
                    n.notify_one();
                    futures::future::ready(())
                },
            );
        let watches = tokio::spawn(async move {
            futures::join!(pod_watch, svc_watch);
        });

        pod_store.wait_until_ready().await?;
        svc_store.wait_until_ready().await?;
        info!(namespace = %self.cfg.namespace, node = %self.cfg.node_name, "pod runner ready");

        tokio::pin!(shutdown);
        // Level-triggered: every wake-up looks at the whole namespace again. The
        // tick only retries deferred starts (e.g. waiting for a Service's pod).
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = notify.notified() => {}
                _ = tick.tick() => {}
                Some(ev) = self.events_rx.recv() => self.handle_event(ev).await,
            }
            while let Ok(ev) = self.events_rx.try_recv() {
                self.handle_event(ev).await;
            }
            self.reconcile(&pod_store, &svc_store).await;
        }
        watches.abort();
        self.kill_all();
        Ok(())
    }

    /// Sends `sig` to a running container: to every process of its process
    /// group, and in container mode to the podman container itself (`podman
    /// kill`): `podman run` forwards the signals it can catch, but SIGKILL would
    /// end podman alone and leave the container running.
    fn signal(podman: Option<&Podman>, state: &CState, sig: i32) {
        let CState::Running { pid, container, .. } = state else {
            return;
        };
        if let (Some(podman), Some(name)) = (podman, container) {
            if sig == libc::SIGKILL {
                // `rm --force` kills and removes the container in any state, even one
                // still being created, which `podman kill` would miss.
                let (podman, names) = (podman.clone(), vec![name.clone()]);
                tokio::task::spawn_blocking(move || podman.remove(&names));
            } else {
                let args = ["kill".to_string(), "--signal".to_string(), sig.to_string(), name.clone()];
                let mut cmd = tokio::process::Command::from(podman.command(&args));
                cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
                tokio::spawn(async move {
                    let _ = cmd.status().await;
                });
                return;
            }
        }
        // SAFETY: plain syscall; a negative pid names the process group the
        // container's process leads (it was started with process_group(0)).
        unsafe {
            libc::kill(-pid, sig);
        }
    }

    /// At shutdown: every container killed, and in container mode removed before
    /// the runner exits (synchronously: no task would run after this).
    fn kill_all(&mut self) {
        let mut names = Vec::new();
        for run in self.runs.values() {
            for c in &run.containers {
                if let CState::Running { pid, container, .. } = &c.state {
                    // SAFETY: as in `signal`.
                    unsafe { libc::kill(-*pid, libc::SIGKILL) };
                    names.extend(container.clone());
                }
            }
        }
        if let Some(podman) = &self.cfg.podman {
            podman.remove(&names);
            // And any container of this node whose start was still under way.
            podman.remove_all(&self.cfg.node_name);
        }
    }

    async fn reconcile(&mut self, pod_store: &Store<Pod>, svc_store: &Store<Service>) {
        let pods = pod_store.state();
        let live: HashSet<String> = pods.iter().filter_map(|p| p.uid()).collect();

        // Pods that vanished (force-deleted by someone else): kill their processes.
        let gone: Vec<String> = self.runs.keys().filter(|u| !live.contains(*u)).cloned().collect();
        for uid in gone {
            if let Some(run) = self.runs.remove(&uid) {
                for c in &run.containers {
                    if matches!(c.state, CState::Running { .. }) {
                        info!(pod = %run.name, container = %c.name, "pod gone: killing process");
                        Self::signal(self.cfg.podman.as_ref(), &c.state, libc::SIGKILL);
                    }
                }
            }
        }
        self.bound.retain(|u| live.contains(u));
        self.force_deleted.retain(|u| live.contains(u));
        self.deferred.retain(|u, _| live.contains(u));

        for pod in &pods {
            let Some(uid) = pod.uid() else { continue };
            let name = pod.name_any();
            let spec = pod.spec.clone().unwrap_or_default();
            let node = spec.node_name.clone().unwrap_or_default();

            if pod.metadata.deletion_timestamp.is_some() {
                self.on_deleting(&uid, &name, pod, &node).await;
                continue;
            }
            if node.is_empty() {
                if self.bound.insert(uid.clone()) {
                    match crate::spec::unschedulable(&spec, &self.node_capacity) {
                        // Left pending, as the scheduler leaves a pod that fits no node.
                        Some(why) => self.mark_unschedulable(&name, &why).await,
                        None => self.bind(&name, &uid).await,
                    }
                }
                continue;
            }
            if node != self.cfg.node_name || self.runs.contains_key(&uid) {
                continue;
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            match phase.as_str() {
                "Succeeded" | "Failed" => continue,
                "Running" => {
                    // Started by an earlier runner whose processes are gone:
                    // the same as a node that died.
                    let msg = "the pod runner that ran this pod's process is gone";
                    self.fail_pod(&name, &uid, msg).await;
                    continue;
                }
                _ => {}
            }
            match self.prepare(pod, &spec, &pods, svc_store).await {
                Ok(launches) => {
                    self.deferred.remove(&uid);
                    self.start(&uid, pod, &spec, launches).await;
                }
                Err(Prepare::Defer(why)) => {
                    if self.deferred.get(&uid) != Some(&why) {
                        info!(pod = %name, "not starting yet: {why}");
                        self.deferred.insert(uid.clone(), why);
                    }
                }
                Err(Prepare::Fail(msg)) => {
                    warn!(pod = %name, "cannot run: {msg}");
                    self.fail_pod(&name, &uid, &msg).await;
                }
            }
        }
    }

    /// What kube-scheduler records on a pod that fits no node.
    async fn mark_unschedulable(&self, name: &str, why: &str) {
        info!(pod = %name, "unschedulable: {why}");
        let patch = json!({"status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why,
            "lastTransitionTime": time_json(&now()),
        }]}});
        self.patch_status(name, &patch).await;
    }

    async fn bind(&self, name: &str, uid: &str) {
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": { "name": name, "uid": uid },
            "target": { "apiVersion": "v1", "kind": "Node", "name": self.cfg.node_name },
        });
        let res: kube::Result<Value> =
            self.pods.create_subresource("binding", name, &PostParams::default(), &binding).await;
        match res {
            Ok(_) => info!(pod = %name, node = %self.cfg.node_name, "bound"),
            Err(e) => warn!(pod = %name, "binding failed: {e}"),
        }
    }

    async fn on_deleting(&mut self, uid: &str, name: &str, pod: &Pod, node: &str) {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
        let grace = Duration::from_secs(grace).min(self.cfg.max_grace);
        if let Some(run) = self.runs.get_mut(uid) {
            if run.deleting {
                return;
            }
            run.deleting = true;
            let mut any_running = false;
            for c in &mut run.containers {
                if let CState::Running { pid, .. } = c.state {
                    info!(pod = %name, container = %c.name, pid, "pod deleted: SIGTERM");
                    Self::signal(self.cfg.podman.as_ref(), &c.state, libc::SIGTERM);
                    any_running = true;
                }
            }
            if any_running {
                let tx = self.events_tx.clone();
                let uid = uid.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    let _ = tx.send(Event::GraceOver { uid });
                });
                return;
            }
        } else if node != self.cfg.node_name && !node.is_empty() {
            return; // another node's pod
        }
        self.force_delete(uid, name).await;
    }

    async fn force_delete(&mut self, uid: &str, name: &str) {
        if !self.force_deleted.insert(uid.to_string()) {
            return;
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..DeleteParams::default()
        };
        match self.pods.delete(name, &dp).await {
            Ok(_) => info!(pod = %name, "removed (grace period 0)"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                warn!(pod = %name, "force delete failed: {e}");
                self.force_deleted.remove(uid);
            }
        }
    }

    async fn prepare(
        &self,
        pod: &Pod,
        spec: &PodSpec,
        pods: &[Arc<Pod>],
        svc_store: &Store<Service>,
    ) -> std::result::Result<Vec<Launch>, Prepare> {
        if spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(Prepare::Fail("init containers are not supported by the pod runner".into()));
        }
        let ns = &self.cfg.namespace;
        let name = pod.name_any();
        // Service name → address of a running pod it selects.
        let mut addresses = Vec::new();
        for svc in svc_store.state() {
            let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.clone()) else {
                continue;
            };
            let target = pods.iter().find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && selector_matches(&sel, p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
                    && p.uid().and_then(|u| self.runs.get(&u)).is_some_and(|r| !r.done)
            });
            let address = if let Some(p) = target
                && let Some(run) = p.uid().and_then(|u| self.runs.get(&u))
            {
                run.ip.to_string()
            } else if selector_matches(&sel, pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())) {
                // The Service selects this very pod: it resolves to its own address.
                POD_IP_PLACEHOLDER.to_string()
            } else {
                continue;
            };
            addresses.push(ServiceAddress { name: svc.name_any(), namespace: ns.clone(), address });
        }

        let pod_dir = self.cfg.work_dir.join(&name);
        // Process mode: paths inside the image map to local ones. Container mode:
        // the image holds its own paths; the volumes are mounted where they belong.
        let containers = self.cfg.podman.is_some();
        let mut volume_map = if containers { PathMap::new() } else { self.cfg.path_map.clone() };
        let mut mounts: BTreeMap<String, Vec<Mount>> = BTreeMap::new();
        for v in spec.volumes.iter().flatten() {
            let mut dir = pod_dir.join("volumes").join(&v.name);
            let read_only = if let Some(source) = &v.secret {
                // As the kubelet does: the Secret's keys become files of the
                // volume's mode, and the pod waits while the Secret is missing.
                self.write_secret_volume(source, &dir).await?;
                true
            } else if let Some(source) = &v.config_map {
                self.write_config_map_volume(source, &dir).await?;
                true
            } else if let Some(source) = &v.host_path {
                // The node's own directory: here, this machine's; made when missing,
                // as container runtimes do for a hostPath of no type.
                dir = PathBuf::from(&source.path);
                std::fs::create_dir_all(&dir).map_err(|e| Prepare::Fail(format!("volume {}: {e}", v.name)))?;
                false
            } else if v.empty_dir.is_some() {
                if containers {
                    // Writable by the image's user, whoever it is (the images run as 65532).
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)))
                        .map_err(|e| Prepare::Fail(format!("volume {}: {e}", v.name)))?;
                }
                false
            } else {
                continue;
            };
            for c in &spec.containers {
                for m in c.volume_mounts.iter().flatten() {
                    if m.name == v.name {
                        if containers {
                            mounts.entry(c.name.clone()).or_default().push(Mount {
                                host: dir.clone(),
                                path: m.mount_path.clone(),
                                read_only: read_only || m.read_only.unwrap_or(false),
                            });
                        } else {
                            volume_map.add(&m.mount_path, dir.clone());
                        }
                    }
                }
            }
        }

        let mut launches = Vec::new();
        for c in &spec.containers {
            let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
            // An empty `command` is unset, as in Kubernetes.
            let command_len = c.command.as_ref().map(Vec::len).filter(|n| *n > 0);
            if argv.is_empty() && !containers {
                return Err(Prepare::Fail(format!(
                    "container {}: no command (the pod runner does not know image entrypoints; \
                     container mode runs the image's)",
                    c.name
                )));
            }
            argv.extend(c.args.clone().unwrap_or_default());
            let tmp = pod_dir.join("tmp").join(&c.name);
            let env = self.container_env(pod, c, &tmp).await?;
            let mut unresolved = Vec::new();
            let mut rewrite = |s: &str| {
                let (out, un) = rewrite_service_names(&volume_map.map(s), &addresses);
                unresolved.extend(un);
                spec::rewrite_wildcard_address(&out, POD_IP_PLACEHOLDER)
            };
            let env: Vec<(String, String)> = env
                .into_iter()
                .map(|(k, v)| {
                    let v = rewrite(&v);
                    (k, v)
                })
                .collect();
            let argv: Vec<String> = argv.iter().map(|a| expand_vars(a, &env)).map(|a| rewrite(&a)).collect();
            // A name of a Service that exists but has no running pod yet waits
            // (the kubelet would start the process, which would retry DNS); a
            // name of no Service at all is left as written, like NXDOMAIN.
            unresolved.retain(|n| {
                let svc_name = n.split('.').next().unwrap_or_default();
                let svc_ns = n.split('.').nth(1).unwrap_or_default();
                svc_ns == ns.as_str() && svc_store.state().iter().any(|s| s.name_any() == svc_name)
            });
            if !unresolved.is_empty() {
                unresolved.sort();
                unresolved.dedup();
                return Err(Prepare::Defer(format!("no running pod behind {}", unresolved.join(", "))));
            }
            let image = if containers {
                let limits = c.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
                let limit = |k: &str| limits.get(k).and_then(|q| spec::parse_quantity(&q.0));
                Some(ImageLaunch {
                    image: c.image.clone().unwrap_or_default(),
                    command_len,
                    working_dir: c.working_dir.clone(),
                    mounts: mounts.remove(&c.name).unwrap_or_default(),
                    memory_bytes: limit("memory").map(|b| b as u64),
                    cpus: limit("cpu"),
                })
            } else {
                None
            };
            launches.push(Launch {
                argv,
                env,
                cwd: pod_dir.join("containers").join(&c.name),
                tmp,
                log: spec::log_path(&self.cfg.log_dir, &name, &c.name),
                message_only_on_error: c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
                image,
            });
        }
        Ok(launches)
    }

    /// The Secret or ConfigMap `name` a volume is made from. The pod waits
    /// (`Defer`) while it is missing, unless the volume is `optional`: then the
    /// volume is an empty `dir`, as the kubelet mounts it, and this is `None`.
    async fn volume_source<K>(
        &self,
        name: &str,
        optional: Option<bool>,
        dir: &Path,
        what: &str,
    ) -> std::result::Result<Option<K>, Prepare>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.cfg.namespace);
        match api.get_opt(name).await {
            Ok(Some(object)) => Ok(Some(object)),
            Ok(None) if optional.unwrap_or(false) => {
                std::fs::create_dir_all(dir).map(|()| None).map_err(|e| Prepare::Fail(format!("{what} volume: {e}")))
            }
            Ok(None) => Err(Prepare::Defer(format!("{what} {name} not found"))),
            Err(e) => Err(Prepare::Defer(e.to_string())),
        }
    }

    /// Writes the keys of the Secret `source` names as files under `dir`, with
    /// the volume's `defaultMode` (0644 by default, as the kubelet).
    async fn write_secret_volume(
        &self,
        source: &k8s_openapi::api::core::v1::SecretVolumeSource,
        dir: &Path,
    ) -> std::result::Result<(), Prepare> {
        let name = source.secret_name.clone().unwrap_or_default();
        let Some(secret) = self.volume_source::<Secret>(&name, source.optional, dir, "secret").await? else {
            return Ok(());
        };
        let files = secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        write_volume_files(dir, files, source.default_mode.unwrap_or(0o644) as u32, "secret")
    }

    /// Writes the keys of the ConfigMap `source` names as files under `dir`
    /// (`data` and `binaryData`), with the volume's `defaultMode` (0644 by
    /// default); the pod waits while the ConfigMap is missing. `items` (a subset
    /// of keys at chosen paths) is honoured.
    async fn write_config_map_volume(
        &self,
        source: &k8s_openapi::api::core::v1::ConfigMapVolumeSource,
        dir: &Path,
    ) -> std::result::Result<(), Prepare> {
        let name = source.name.clone();
        let Some(cm) = self.volume_source::<ConfigMap>(&name, source.optional, dir, "configmap").await? else {
            return Ok(());
        };
        let mut files: BTreeMap<String, Vec<u8>> =
            cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        files.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        if let Some(items) = &source.items {
            let mut chosen = BTreeMap::new();
            for item in items {
                match files.get(&item.key) {
                    Some(bytes) => {
                        chosen.insert(item.path.clone(), bytes.clone());
                    }
                    None => return Err(Prepare::Defer(format!("configmap {name} has no key {}", item.key))),
                }
            }
            files = chosen;
        }
        write_volume_files(dir, files, source.default_mode.unwrap_or(0o644) as u32, "configmap")
    }

    /// The container's environment as the kubelet would build it (the pod IP
    /// is filled in by `start`, via the `$POD_IP` placeholder below).
    async fn container_env(
        &self,
        pod: &Pod,
        c: &Container,
        tmp: &Path,
    ) -> std::result::Result<Vec<(String, String)>, Prepare> {
        let ns = &self.cfg.namespace;
        let mut env: Vec<(String, String)> = if self.cfg.podman.is_some() {
            // The image's own PATH, HOME and /tmp apply.
            vec![("HOSTNAME".into(), pod.name_any())]
        } else {
            vec![
                ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
                ("HOSTNAME".into(), pod.name_any()),
                ("HOME".into(), "/root".into()),
                ("TMPDIR".into(), tmp.display().to_string()),
            ]
        };
        if let Some((host, port)) = &self.cfg.api_server {
            // As the kubelet sets them from the `kubernetes` Service: what in-cluster
            // clients (the operator) connect to.
            env.push(("KUBERNETES_SERVICE_HOST".into(), host.clone()));
            env.push(("KUBERNETES_SERVICE_PORT".into(), port.to_string()));
            env.push(("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()));
        }
        let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        };
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        for from in c.env_from.iter().flatten() {
            let prefix = from.prefix.clone().unwrap_or_default();
            if let Some(r) = &from.config_map_ref {
                let optional = r.optional.unwrap_or(false);
                match cms.get_opt(&r.name).await {
                    Ok(Some(cm)) => {
                        for (k, v) in cm.data.unwrap_or_default() {
                            set(&mut env, format!("{prefix}{k}"), v);
                        }
                    }
                    Ok(None) if optional => {}
                    Ok(None) => {
                        return Err(Prepare::Defer(format!("configmap {} not found", r.name)));
                    }
                    Err(e) => return Err(Prepare::Defer(e.to_string())),
                }
            }
            if let Some(r) = &from.secret_ref {
                let optional = r.optional.unwrap_or(false);
                match secrets.get_opt(&r.name).await {
                    Ok(Some(s)) => {
                        for (k, v) in s.data.unwrap_or_default() {
                            set(&mut env, format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into_owned());
                        }
                    }
                    Ok(None) if optional => {}
                    Ok(None) => return Err(Prepare::Defer(format!("secret {} not found", r.name))),
                    Err(e) => return Err(Prepare::Defer(e.to_string())),
                }
            }
        }
        let res = c.resources.clone().unwrap_or_default();
        let q = |m: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect::<BTreeMap<_, _>>()
        };
        let limits = q(res.limits);
        let requests = q(res.requests);
        for e in c.env.iter().flatten() {
            let value = if let Some(v) = &e.value {
                expand_vars(v, &env)
            } else if let Some(from) = &e.value_from {
                if let Some(f) = &from.field_ref {
                    match self.field_value(pod, &f.field_path) {
                        Some(v) => v,
                        None => {
                            return Err(Prepare::Fail(format!(
                                "env {}: unsupported fieldRef {}",
                                e.name, f.field_path
                            )));
                        }
                    }
                } else if let Some(r) = &from.resource_field_ref {
                    resource_field_value(
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        &limits,
                        &requests,
                        &self.node_capacity,
                    )
                    .map_err(|m| Prepare::Fail(format!("env {}: {m}", e.name)))?
                } else if let Some(r) = &from.config_map_key_ref {
                    match cms.get_opt(&r.name).await {
                        Ok(Some(cm)) => match cm.data.unwrap_or_default().get(&r.key) {
                            Some(v) => v.clone(),
                            None if r.optional.unwrap_or(false) => continue,
                            None => {
                                return Err(Prepare::Defer(format!("configmap {} has no key {}", r.name, r.key)));
                            }
                        },
                        Ok(None) if r.optional.unwrap_or(false) => continue,
                        Ok(None) => {
                            return Err(Prepare::Defer(format!("configmap {} not found", r.name)));
                        }
                        Err(err) => return Err(Prepare::Defer(err.to_string())),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match secrets.get_opt(&r.name).await {
                        Ok(Some(s)) => match s.data.unwrap_or_default().get(&r.key) {
                            Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                            None if r.optional.unwrap_or(false) => continue,
                            None => {
                                return Err(Prepare::Defer(format!("secret {} has no key {}", r.name, r.key)));
                            }
                        },
                        Ok(None) if r.optional.unwrap_or(false) => continue,
                        Ok(None) => {
                            return Err(Prepare::Defer(format!("secret {} not found", r.name)));
                        }
                        Err(err) => return Err(Prepare::Defer(err.to_string())),
                    }
                } else {
                    String::new()
                }
            } else {
                String::new()
            };
            set(&mut env, e.name.clone(), value);
        }
        Ok(env)
    }

    /// Downward API `fieldRef` values. `status.podIP` is the placeholder
    /// `POD_IP_PLACEHOLDER`, replaced when the address is assigned.
    fn field_value(&self, pod: &Pod, path: &str) -> Option<String> {
        let md = &pod.metadata;
        let spec = pod.spec.as_ref();
        Some(match path {
            "metadata.name" => pod.name_any(),
            "metadata.namespace" => self.cfg.namespace.clone(),
            "metadata.uid" => md.uid.clone().unwrap_or_default(),
            "spec.nodeName" => self.cfg.node_name.clone(),
            "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
            "status.hostIP" | "status.hostIPs" => HOST_IP.to_string(),
            "status.podIP" | "status.podIPs" => POD_IP_PLACEHOLDER.to_string(),
            _ => {
                let (map, key) = if let Some(k) = path.strip_prefix("metadata.labels['") {
                    (md.labels.as_ref(), k.strip_suffix("']")?)
                } else if let Some(k) = path.strip_prefix("metadata.annotations['") {
                    (md.annotations.as_ref(), k.strip_suffix("']")?)
                } else {
                    return None;
                };
                map.and_then(|m| m.get(key).cloned()).unwrap_or_default()
            }
        })
    }

    async fn start(&mut self, uid: &str, pod: &Pod, spec: &PodSpec, launches: Vec<Launch>) {
        let name = pod.name_any();
        let ip = self.ips.allocate();
        let mut run = PodRun {
            name: name.clone(),
            ip,
            start_time: now(),
            restart_policy: spec.restart_policy.clone(),
            containers: Vec::new(),
            deleting: false,
            done: false,
        };
        for (c, mut launch) in spec.containers.iter().zip(launches) {
            for (_, v) in launch.env.iter_mut() {
                if v.contains(POD_IP_PLACEHOLDER) {
                    *v = v.replace(POD_IP_PLACEHOLDER, &ip.to_string());
                }
            }
            for a in launch.argv.iter_mut() {
                if a.contains(POD_IP_PLACEHOLDER) {
                    *a = a.replace(POD_IP_PLACEHOLDER, &ip.to_string());
                }
            }
            run.containers.push(ContainerRun {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                launch,
                state: CState::Waiting,
                last: None,
                restarts: 0,
                restart_pending: false,
                podman_name: None,
            });
        }
        for idx in 0..run.containers.len() {
            self.spawn_container(uid, &mut run, idx);
        }
        info!(pod = %name, %ip, "started");
        let patch = Self::status_patch(&run);
        run.done = is_terminal(&patch);
        self.runs.insert(uid.to_string(), run);
        self.patch_status(&name, &patch).await;
    }

    fn spawn_container(&self, uid: &str, run: &mut PodRun, idx: usize) {
        let c = &mut run.containers[idx];
        c.restart_pending = false;
        let started = now();
        let container = c
            .launch
            .image
            .as_ref()
            .map(|_| container::container_name(&self.cfg.namespace, &run.name, &c.name, c.restarts));
        let spawned = match (&self.cfg.podman, &container) {
            (Some(podman), Some(name)) => Self::spawn_image(podman, &c.launch, name, &self.cfg.node_name),
            _ => Self::spawn_process(&c.launch),
        };
        match spawned {
            Ok(mut child) => {
                let pid = child.id().map(|p| p as i32).unwrap_or(-1);
                info!(pod = %run.name, container = %c.name, pid, argv = ?c.launch.argv, podman = ?container, "process started");
                c.podman_name = container.clone();
                c.state = CState::Running { pid, started, container };
                let tx = self.events_tx.clone();
                let uid = uid.to_string();
                tokio::spawn(async move {
                    let exit = match child.wait().await {
                        Ok(status) => Exit::from_status(status),
                        Err(_) => Exit { code: 255, signal: None },
                    };
                    let _ = tx.send(Event::Exited { uid, idx, exit });
                });
            }
            Err(e) => {
                // Like a container runtime that cannot start the command.
                let msg = format!("starting {:?}: {e:#}", c.launch.argv);
                warn!(pod = %run.name, container = %c.name, "{msg}");
                let _ = std::fs::write(&c.launch.log, format!("{msg}\n"));
                c.state = CState::Terminated {
                    exit: Exit { code: 128, signal: None },
                    started: started.clone(),
                    finished: started,
                    message: msg,
                };
            }
        }
    }

    /// Container mode: `podman run` of the container's image in the foreground,
    /// its output (the container's) into the container's log.
    fn spawn_image(podman: &Podman, l: &Launch, name: &str, node: &str) -> Result<tokio::process::Child> {
        let image = l.image.as_ref().context("container mode without an image")?;
        if image.image.is_empty() {
            bail!("the container has no image");
        }
        if let Some(dir) = l.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let (command, args) = match image.command_len {
            Some(n) => (Some(l.argv[..n].to_vec()), l.argv[n..].to_vec()),
            None => (None, l.argv.clone()),
        };
        let spec = ContainerSpec {
            name: name.to_string(),
            node: node.to_string(),
            image: image.image.clone(),
            command,
            args,
            env: l.env.clone(),
            working_dir: image.working_dir.clone(),
            mounts: image.mounts.clone(),
            memory_bytes: image.memory_bytes,
            cpus: image.cpus,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&l.log)
            .with_context(|| format!("opening {}", l.log.display()))?;
        let log2 = log.try_clone()?;
        let mut cmd = tokio::process::Command::from(podman.command(&container::run_args(&spec)));
        cmd.stdin(std::process::Stdio::null()).stdout(log).stderr(log2).process_group(0).kill_on_drop(true);
        cmd.spawn().with_context(|| format!("starting {}", podman.program.display()))
    }

    fn spawn_process(l: &Launch) -> Result<tokio::process::Child> {
        std::fs::create_dir_all(&l.cwd).with_context(|| format!("creating {}", l.cwd.display()))?;
        std::fs::create_dir_all(&l.tmp).with_context(|| format!("creating {}", l.tmp.display()))?;
        if let Some(dir) = l.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&l.log)
            .with_context(|| format!("opening {}", l.log.display()))?;
        let log2 = log.try_clone()?;
        let mut cmd = tokio::process::Command::new(&l.argv[0]);
        cmd.args(&l.argv[1..])
            .env_clear()
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&l.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| anyhow!(e))?;
        Ok(child)
    }

    async fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Exited { uid, idx, exit } => self.on_exit(&uid, idx, exit).await,
            Event::Restart { uid, idx } => {
                let Some(mut run) = self.runs.remove(&uid) else {
                    return;
                };
                if !run.deleting {
                    run.containers[idx].restarts += 1;
                    self.spawn_container(&uid, &mut run, idx);
                    let patch = Self::status_patch(&run);
                    let name = run.name.clone();
                    self.runs.insert(uid, run);
                    self.patch_status(&name, &patch).await;
                } else {
                    self.runs.insert(uid, run);
                }
            }
            Event::GraceOver { uid } => {
                if let Some(run) = self.runs.get(&uid) {
                    for c in &run.containers {
                        if let CState::Running { pid, .. } = c.state {
                            info!(pod = %run.name, container = %c.name, pid, "grace period over: SIGKILL");
                            Self::signal(self.cfg.podman.as_ref(), &c.state, libc::SIGKILL);
                        }
                    }
                }
            }
        }
    }

    async fn on_exit(&mut self, uid: &str, idx: usize, exit: Exit) {
        let message_lines = self.cfg.message_lines;
        let Some(run) = self.runs.get_mut(uid) else {
            return;
        };
        let c = &mut run.containers[idx];
        let running = c.state.clone();
        let CState::Running { started, .. } = running.clone() else {
            return;
        };
        // Leftover children of the container's command go with it (in container
        // mode: a container whose `podman run` was killed).
        Self::signal(self.cfg.podman.as_ref(), &running, libc::SIGKILL);
        let output = std::fs::read(&c.launch.log).unwrap_or_default();
        let message = if c.launch.message_only_on_error && exit.code == 0 {
            String::new()
        } else {
            spec::tail_lines(&output, message_lines, MESSAGE_BYTES)
        };
        info!(pod = %run.name, container = %c.name, code = exit.code, "process exited");
        c.state = CState::Terminated { exit, started, finished: now(), message };
        let name = run.name.clone();
        if run.deleting {
            let all_done = run.containers.iter().all(|c| !matches!(c.state, CState::Running { .. }));
            if all_done {
                self.force_delete(uid, &name).await;
            }
            return;
        }
        if spec::should_restart(run.restart_policy.as_deref(), exit) {
            let c = &mut run.containers[idx];
            c.last = Some(c.state.clone());
            c.restart_pending = true;
            let tx = self.events_tx.clone();
            let uid = uid.to_string();
            // A short, fixed back-off: a crashing container does not spin.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = tx.send(Event::Restart { uid, idx });
            });
        }
        let patch = Self::status_patch(run);
        run.done = is_terminal(&patch);
        self.patch_status(&name, &patch).await;
    }

    fn container_state_json(s: &CState) -> Value {
        match s {
            CState::Waiting => json!({"waiting": {"reason": "ContainerCreating"}}),
            CState::Running { started, .. } => {
                json!({"running": {"startedAt": time_json(started)}})
            }
            CState::Terminated { exit, started, finished, message } => {
                let mut t = json!({
                    "exitCode": exit.code,
                    "reason": exit.reason(),
                    "message": message,
                    "startedAt": time_json(started),
                    "finishedAt": time_json(finished),
                });
                if let Some(sig) = exit.signal {
                    t["signal"] = json!(sig);
                }
                json!({"terminated": t})
            }
        }
    }

    /// The whole pod status, as a merge patch for `pods/status`.
    fn status_patch(run: &PodRun) -> Value {
        let running = run.containers.iter().any(|c| matches!(c.state, CState::Running { .. }) || c.restart_pending);
        let exits: Vec<Exit> = run
            .containers
            .iter()
            .filter_map(|c| match &c.state {
                CState::Terminated { exit, .. } => Some(*exit),
                _ => None,
            })
            .collect();
        let phase =
            if running || exits.len() < run.containers.len() { "Running" } else { spec::terminal_phase(&exits) };
        let ready = run.containers.iter().all(|c| matches!(c.state, CState::Running { .. }));
        let t = time_json(&now());
        let cond = |ty: &str, ok: bool| json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastTransitionTime": t});
        let statuses: Vec<Value> = run
            .containers
            .iter()
            .map(|c| {
                let pid = match &c.state {
                    CState::Running { pid, .. } => *pid,
                    _ => 0,
                };
                let container = c.podman_name.clone();
                let mut s = json!({
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "containerID": format!("ember-pod-runner://{}/{}", run.name, c.name),
                    "ready": matches!(c.state, CState::Running { .. }),
                    "started": matches!(c.state, CState::Running { .. }),
                    "restartCount": c.restarts,
                    "state": Self::container_state_json(&c.state),
                });
                if let Some(name) = container {
                    s["containerID"] = json!(format!("podman://{name}"));
                } else if pid > 0 {
                    s["containerID"] = json!(format!("ember-pod-runner://{pid}"));
                }
                if let Some(last) = &c.last {
                    s["lastState"] = Self::container_state_json(last);
                }
                s
            })
            .collect();
        json!({
            "status": {
                "phase": phase,
                "hostIP": HOST_IP,
                "podIP": run.ip.to_string(),
                "podIPs": [{"ip": run.ip.to_string()}],
                "startTime": time_json(&run.start_time),
                "conditions": [
                    cond("PodScheduled", true),
                    cond("Initialized", true),
                    cond("ContainersReady", ready),
                    cond("Ready", ready),
                ],
                "containerStatuses": statuses,
            }
        })
    }

    async fn patch_status(&self, name: &str, patch: &Value) {
        if let Err(e) = self.pods.patch_status(name, &PatchParams::default(), &Patch::Merge(patch)).await {
            warn!(pod = %name, "status update failed: {e}");
        }
    }

    async fn fail_pod(&mut self, name: &str, uid: &str, message: &str) {
        let patch = json!({
            "status": {
                "phase": "Failed",
                "reason": "PodRunnerError",
                "message": message,
            }
        });
        self.runs.insert(
            uid.to_string(),
            PodRun {
                name: name.to_string(),
                ip: Ipv4Addr::LOCALHOST,
                start_time: now(),
                restart_policy: Some("Never".into()),
                containers: Vec::new(),
                deleting: false,
                done: true,
            },
        );
        self.patch_status(name, &patch).await;
    }
}

/// Writes `files` (path under the volume → bytes) into `dir` with `mode`, as the
/// kubelet materializes a Secret or ConfigMap volume (`what` names it in errors).
fn write_volume_files(
    dir: &Path,
    files: BTreeMap<String, Vec<u8>>,
    mode: u32,
    what: &str,
) -> std::result::Result<(), Prepare> {
    use std::os::unix::fs::PermissionsExt;
    let io = |e: std::io::Error| Prepare::Fail(format!("{what} volume {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    for (key, bytes) in files {
        let path = dir.join(&key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, bytes).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    Ok(())
}

fn is_terminal(patch: &Value) -> bool {
    let phase = &patch["status"]["phase"];
    phase == "Succeeded" || phase == "Failed"
}

/// Stands for the pod's address in env values until one is assigned.
const POD_IP_PLACEHOLDER: &str = "\u{1}ember-pod-ip\u{1}";

#[cfg(test)]
mod tests {
    use super::*;

    fn container(state: CState) -> ContainerRun {
        ContainerRun {
            name: "main".into(),
            image: "img".into(),
            launch: Launch {
                argv: vec!["/bin/true".into()],
                env: vec![],
                cwd: PathBuf::from("/tmp"),
                tmp: PathBuf::from("/tmp"),
                log: PathBuf::from("/tmp/x.log"),
                message_only_on_error: false,
                image: None,
            },
            state,
            last: None,
            restarts: 0,
            restart_pending: false,
            podman_name: None,
        }
    }

    fn pod(containers: Vec<ContainerRun>) -> PodRun {
        PodRun {
            name: "p".into(),
            ip: Ipv4Addr::new(127, 1, 0, 7),
            start_time: now(),
            restart_policy: Some("Never".into()),
            containers,
            deleting: false,
            done: false,
        }
    }

    fn terminated(code: i32) -> CState {
        CState::Terminated {
            exit: Exit { code, signal: None },
            started: now(),
            finished: now(),
            message: "last words".into(),
        }
    }

    #[test]
    fn status_follows_the_processes() {
        let running = CState::Running { pid: 42, started: now(), container: None };
        let p = pod(vec![container(running.clone())]);
        let s = Runner::status_patch(&p);
        assert_eq!(s["status"]["phase"], "Running");
        assert_eq!(s["status"]["podIP"], "127.1.0.7");
        let cs = &s["status"]["containerStatuses"][0];
        assert_eq!(cs["containerID"], "ember-pod-runner://42");
        assert_eq!(cs["ready"], true);
        assert!(cs["state"]["running"]["startedAt"].is_string());
        assert!(!is_terminal(&s));

        let p = pod(vec![container(terminated(0)), container(running)]);
        assert_eq!(Runner::status_patch(&p)["status"]["phase"], "Running");

        let p = pod(vec![container(terminated(0)), container(terminated(3))]);
        let s = Runner::status_patch(&p);
        assert_eq!(s["status"]["phase"], "Failed");
        let t = &s["status"]["containerStatuses"][1]["state"]["terminated"];
        assert_eq!(t["exitCode"], 3);
        assert_eq!(t["reason"], "Error");
        assert_eq!(t["message"], "last words");
        assert!(is_terminal(&s));

        let p = pod(vec![container(terminated(0))]);
        assert_eq!(Runner::status_patch(&p)["status"]["phase"], "Succeeded");
    }

    #[test]
    fn a_restarting_container_keeps_the_pod_running() {
        let mut c = container(terminated(1));
        c.last = Some(terminated(1));
        c.restart_pending = true;
        c.restarts = 2;
        let s = Runner::status_patch(&pod(vec![c]));
        assert_eq!(s["status"]["phase"], "Running");
        let cs = &s["status"]["containerStatuses"][0];
        assert_eq!(cs["restartCount"], 2);
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);

        // Restarted once, then succeeded for good (OnFailure): the pod is done.
        let mut c = container(terminated(0));
        c.last = Some(terminated(1));
        c.restarts = 1;
        let s = Runner::status_patch(&pod(vec![c]));
        assert_eq!(s["status"]["phase"], "Succeeded");
    }
}
