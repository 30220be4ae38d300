//! Test guards: a real control plane (`tests/cluster/cluster.sh`) and a pod
//! runner process. Both are torn down when dropped, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// `tests/cluster/` in the source tree.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("pod-runner lives in tests/cluster").to_path_buf()
}

/// Runs `tests/cluster/build.sh` (a no-op when the build is cached) and
/// returns the directory with kube-apiserver, kube-controller-manager, kubectl.
pub fn build() -> Result<PathBuf> {
    let out = Command::new(scripts_dir().join("build.sh"))
        .stderr(Stdio::inherit())
        .output()
        .context("running tests/cluster/build.sh")?;
    if !out.status.success() {
        bail!("tests/cluster/build.sh failed ({})", out.status);
    }
    let stdout = String::from_utf8(out.stdout)?;
    let dir = stdout.lines().last().context("build.sh printed no binary directory")?;
    Ok(PathBuf::from(dir.trim()))
}

/// A running control plane: etcd, kube-apiserver, kube-controller-manager.
pub struct Cluster {
    state: tempfile::TempDir,
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub server: String,
}

impl Cluster {
    /// Builds (or finds cached) binaries and starts a cluster in a fresh
    /// temp dir. Every wait inside is bounded (cluster.sh).
    pub fn start() -> Result<Self> {
        Self::start_with_crds(None)
    }

    /// Like [`Cluster::start`], installing the CRDs in `crds` (a file or a
    /// directory of YAML; CEL rules stripped) before the controller manager
    /// starts, so its garbage collector knows their kinds from the beginning.
    pub fn start_with_crds(crds: Option<&Path>) -> Result<Self> {
        let bin = build()?;
        // Ports are picked free just before the servers bind them; should
        // another process take one in between, a second start picks anew.
        match Self::start_once(&bin, crds) {
            Ok(c) => Ok(c),
            Err(e) => {
                eprintln!("cluster start failed ({e:#}); trying once more");
                Self::start_once(&bin, crds)
            }
        }
    }

    fn start_once(bin: &Path, crds: Option<&Path>) -> Result<Self> {
        let bin = bin.to_path_buf();
        let state = tempfile::Builder::new().prefix("ember-cluster.").tempdir()?;
        let status = Command::new(scripts_dir().join("cluster.sh"))
            .arg("start")
            .arg(state.path())
            .env("EMBER_CLUSTER_BIN", &bin)
            .envs(crds.map(|c| ("EMBER_CLUSTER_CRDS", c)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .context("running tests/cluster/cluster.sh start")?;
        // From here on, Drop stops whatever was started.
        let mut cluster = Cluster { kubeconfig: state.path().join("kubeconfig"), state, bin, server: String::new() };
        if !status.success() {
            bail!("tests/cluster/cluster.sh start failed ({status})");
        }
        let env = std::fs::read_to_string(cluster.state.path().join("env"))?;
        cluster.server = env
            .lines()
            .find_map(|l| l.strip_prefix("export EMBER_CLUSTER_SERVER="))
            .map(|v| v.trim_matches('\'').to_string())
            .context("no EMBER_CLUSTER_SERVER in env")?;
        Ok(cluster)
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// `kubectl` (the one built with the cluster) as cluster admin.
    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.kubectl_as(&self.kubeconfig, args)
    }

    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Result<Output> {
        Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .context("running kubectl")
    }

    /// `kubectl` that must succeed; returns its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.kubectl(args)?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// A kube client as cluster admin.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from(&self.kubeconfig).await
    }

    /// A kubeconfig authenticating as ServiceAccount `ns/sa` with its real
    /// token (the namespace and account are created when missing).
    pub fn service_account_kubeconfig(&self, ns: &str, sa: &str) -> Result<PathBuf> {
        let out = self.state.path().join(format!("{ns}.{sa}.kubeconfig"));
        let status = Command::new(scripts_dir().join("cluster.sh"))
            .args(["sa-kubeconfig"])
            .arg(self.state.path())
            .args([ns, sa])
            .arg(&out)
            .stderr(Stdio::inherit())
            .status()?;
        if !status.success() {
            bail!("cluster.sh sa-kubeconfig {ns} {sa} failed");
        }
        Ok(out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(scripts_dir().join("cluster.sh"))
            .arg("stop")
            .arg(self.state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status();
        // The TempDir removes the state dir after this.
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// A child process with its output in a log file; SIGTERM (then SIGKILL
/// after 10 s) on drop. For the pod runner, and for the operator in end-to-end
/// tests (`terminate` + a new `spawn` is an operator restart).
pub struct ProcessGuard {
    child: Child,
    pub log: PathBuf,
}

impl ProcessGuard {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        cmd.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
        let child = cmd.spawn().with_context(|| format!("starting {:?}", cmd.get_program()))?;
        Ok(ProcessGuard { child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL if it is still there after 10 s; waits for it.
    pub fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child process by its pid.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A running `ember-pod-runner` process; stopped on drop (it kills its pods'
/// processes when it gets SIGTERM).
pub struct PodRunner {
    process: ProcessGuard,
    pub log_dir: PathBuf,
    pub runner_log: PathBuf,
}

impl PodRunner {
    /// Starts `binary` (the ember-pod-runner executable) for `namespace`.
    /// Container logs go to `log_dir`; `bin_dir` stands for /opt/ember/bin.
    pub fn start(
        binary: &Path,
        cluster: &Cluster,
        namespace: &str,
        log_dir: &Path,
        bin_dir: Option<&Path>,
    ) -> Result<Self> {
        let mut extra = Vec::new();
        if let Some(b) = bin_dir {
            extra.push("--bin-dir".to_string());
            extra.push(b.display().to_string());
        }
        Self::start_with(binary, cluster, namespace, log_dir, &extra)
    }

    /// Starts `binary` for `namespace` in container mode: each container a podman
    /// container of its image (`CONTAINERS_CONF` from `containers_conf`). Another
    /// runner may serve another namespace at the same time: `node_name` and
    /// `first_pod_ip` tell them apart.
    pub fn start_containers(
        binary: &Path,
        cluster: &Cluster,
        namespace: &str,
        log_dir: &Path,
        containers_conf: &Path,
        node_name: &str,
        first_pod_ip: &str,
    ) -> Result<Self> {
        let extra: Vec<String> = vec![
            "--podman".into(),
            "podman".into(),
            "--containers-conf".into(),
            containers_conf.display().to_string(),
            "--node-name".into(),
            node_name.into(),
            "--first-pod-ip".into(),
            first_pod_ip.into(),
        ];
        Self::start_with(binary, cluster, namespace, log_dir, &extra)
    }

    /// Starts `binary` for `namespace` with `extra` flags.
    pub fn start_with(
        binary: &Path,
        cluster: &Cluster,
        namespace: &str,
        log_dir: &Path,
        extra: &[String],
    ) -> Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let runner_log = log_dir.join("pod-runner.log");
        let mut cmd = Command::new(binary);
        // The mode is the caller's choice, not the environment's.
        cmd.env_remove("EMBER_POD_RUNNER_PODMAN");
        cmd.arg("--kubeconfig").arg(&cluster.kubeconfig).args(["--namespace", namespace]).arg("--log-dir").arg(log_dir);
        cmd.args(extra);
        let process = ProcessGuard::spawn(cmd, &runner_log)?;
        Ok(PodRunner { process, log_dir: log_dir.to_path_buf(), runner_log })
    }

    /// The saved output of one container.
    pub fn container_log(&self, pod: &str, container: &str) -> String {
        std::fs::read_to_string(crate::spec::log_path(&self.log_dir, pod, container)).unwrap_or_default()
    }

    /// Sends `signal` to the process of a running pod's first container (as
    /// when a machine loses an executor); returns its pid. The pid comes from
    /// the containerID the runner reports: `ember-pod-runner://<pid>`, or in
    /// container mode `podman://<name>`, whose main process podman names.
    pub fn kill_pod_process(&self, cluster: &Cluster, namespace: &str, pod: &str, signal: i32) -> Result<i32> {
        let id = cluster.kubectl_ok(&[
            "-n",
            namespace,
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ])?;
        let pid: i32 = if let Some(name) = id.strip_prefix("podman://") {
            let out = Command::new("podman")
                .args(["inspect", "--format", "{{.State.Pid}}", name])
                .output()
                .context("podman inspect")?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|p| *p > 0).with_context(|| {
                format!("pod {pod}: container {name} has no process: {}", String::from_utf8_lossy(&out.stderr))
            })?
        } else {
            id.strip_prefix("ember-pod-runner://")
                .and_then(|p| p.parse().ok())
                .with_context(|| format!("pod {pod} has no running process (containerID {id:?})"))?
        };
        // SAFETY: plain syscall on a pid this runner started.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill {pid}: {}", std::io::Error::last_os_error());
        }
        Ok(pid)
    }

    /// The runner's own log (for failure messages).
    pub fn own_log(&self) -> String {
        self.process.output()
    }
}

/// Writes a line to the real stderr: libtest captures `println!`/`eprintln!` of
/// passing tests, and the CI log must show the cluster tests' steps and timings.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether the cluster tests are switched off (`EMBER_SKIP_CLUSTER_TESTS`, e.g.
/// on a machine without root); says so, naming the skipped `test`.
pub fn skip_cluster_tests(test: &str) -> bool {
    if std::env::var_os("EMBER_SKIP_CLUSTER_TESTS").is_some_and(|v| v != "0") {
        report(&format!("EMBER_SKIP_CLUSTER_TESTS set: skipping {test}"));
        return true;
    }
    false
}

/// Polls `f` every 100 ms until it returns `Some`, failing after `timeout`.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
