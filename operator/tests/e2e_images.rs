//! The operator and the engine from their container images on a real Kubernetes 1.20
//! control plane (tests/cluster/, docs/CLUSTER-TESTS.md): the images built from the
//! project's Dockerfile by tests/images/build.sh, the chart's Deployment run as a
//! podman container of the operator image (in-cluster config, its ServiceAccount's
//! token as the kubelet mounts it), and every driver and executor pod as a container
//! of the engine image, by the pod runner in container mode (`--podman`).
//!
//! Scenarios: the seed job (examples/k8s/sumsq.yaml) exact, with the time from
//! `kubectl apply` to the first task; examples/k8s/wordcount.yaml as written (its
//! ConfigMap mounted into the pods) exact; the job template's manifest with the image
//! the Dockerfile's `job` stage built, exact; an executor's container killed mid-job,
//! replaced, and the job exact.
//!
//! Skipped with the reason where the cluster tests are off (EMBER_SKIP_CLUSTER_TESTS)
//! or podman cannot run a container (`tests/images/build.sh --check`).

mod example_jobs;
mod tooling;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use ember_operator::builder::{CONTAINER_NAME, LABEL_EMBER_APP_NAME, driver_pod_name, executor_pod_name};
use ember_operator::crd::{AppState, ExecutorState, SparkApplication};
use ember_pod_runner::harness::{Cluster, PodRunner, poll_until, report, skip_cluster_tests};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::{Value, json};

use example_jobs::{JoinJob, argument, example_document, sumsq_expected, tail};

const APP_NS: &str = "ember-images";
const OPERATOR_NS: &str = "ember-system";
const RELEASE: &str = "ember";
const KUBE_VERSION: &str = "1.20.2";
const OPERATOR_IMAGE: &str = "localhost/ember-operator";
const ENGINE_IMAGE: &str = "localhost/ember-engine:dev";
const JOB_IMAGE: &str = "localhost/ember-job-template:dev";
const TAG: &str = "dev";
/// Bound of each wait; generous, since the machine may be loaded by other builds.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);
/// The engine's default log filter plus the DAG scheduler's "submitting tasks" line.
const TIMING_LOG_FILTER: &str = "warn,ember=info,ember_executor=info,ember_core=info,ember::scheduler::dag=debug";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Runs tests/images/build.sh with `arg`, bounded (the whole process group is killed
/// after 45 min).
fn images_script(arg: Option<&str>) -> Result<std::process::Output> {
    let script = tooling::workspace().join("tests/images/build.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).args(arg).env("EMBER_IMAGE_TAG", TAG);
    use std::os::unix::process::CommandExt;
    let child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).process_group(0).spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(45 * 60)) {
        Ok(out) => Ok(out?),
        Err(_) => {
            // SAFETY: plain kill(2) of the process group of the child started above
            // (podman build with it).
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            bail!("tests/images/build.sh did not finish within 45 min")
        }
    }
}

/// The whole fixture: control plane, the chart applied with the operator image, one
/// container-mode pod runner per namespace.
struct ImagesE2e {
    // Dropped in this order: the runners remove their containers (the operator's
    // first), then the control plane stops, then the temp dir goes.
    operator_runner: PodRunner,
    apps_runner: PodRunner,
    cluster: Cluster,
    apps: Api<SparkApplication>,
    dir: tempfile::TempDir,
}

impl ImagesE2e {
    async fn start() -> Result<Self> {
        let bins = tooling::build_binaries()?;
        let dir = tempfile::Builder::new().prefix("ember-e2e-images.").tempdir()?;
        let docs = tooling::render_chart(
            &dir.path().join("helm"),
            RELEASE,
            OPERATOR_NS,
            KUBE_VERSION,
            &[&format!("image.repository={OPERATOR_IMAGE}"), &format!("image.tag={TAG}"), "image.pullPolicy=Never"],
        )?;
        let cluster = Cluster::start_with_crds(Some(&tooling::workspace().join("crds")))?;
        cluster.kubectl_ok(&["create", "namespace", OPERATOR_NS])?;
        cluster.kubectl_ok(&["create", "namespace", APP_NS])?;
        for ns in [OPERATOR_NS, APP_NS] {
            poll_until(&format!("default ServiceAccount of {ns}"), STEP_TIMEOUT, || async {
                let out = cluster.kubectl(&["-n", ns, "get", "serviceaccount", "default", "-o", "name"])?;
                Ok(out.status.success().then_some(()))
            })
            .await?;
        }
        let conf = tooling::workspace().join("tests/images/containers.conf");
        let operator_runner = PodRunner::start_containers(
            &bins.pod_runner,
            &cluster,
            OPERATOR_NS,
            &dir.path().join("operator-pods"),
            &conf,
            "ember-images-system",
            "127.2.0.1",
        )?;
        let apps_runner = PodRunner::start_containers(
            &bins.pod_runner,
            &cluster,
            APP_NS,
            &dir.path().join("pods"),
            &conf,
            "ember-images-apps",
            "127.1.0.1",
        )?;

        // The chart as `helm install` would apply it (its CRDs are already served).
        let mut text = String::new();
        for doc in docs.iter().filter(|d| d["kind"] != "CustomResourceDefinition") {
            text.push_str("---\n");
            text.push_str(&serde_yaml::to_string(doc)?);
        }
        let chart_file = dir.path().join("chart.yaml");
        std::fs::write(&chart_file, text)?;
        let applied = cluster.kubectl_ok(&["-n", OPERATOR_NS, "apply", "-f", chart_file.to_str().context("path")?])?;
        report(&format!("e2e-images: chart applied:\n{}", applied.trim_end()));
        let client = cluster.client().await?;
        Ok(ImagesE2e { operator_runner, apps_runner, apps: Api::namespaced(client, APP_NS), cluster, dir })
    }

    /// The operator's pod, from the chart's Deployment, leads through its Lease.
    async fn wait_operator(&self) -> Result<String> {
        let t = Instant::now();
        let client = self.cluster.client().await?;
        let leases: Api<Lease> = Api::namespaced(client, OPERATOR_NS);
        let holder = poll_until("the operator pod holding its Lease", STEP_TIMEOUT, || async {
            let holder = leases.get_opt("ember-operator").await?.and_then(|l| l.spec).and_then(|s| s.holder_identity);
            Ok(holder)
        })
        .await
        .with_context(|| self.operator_logs())?;
        let pods = self.cluster.kubectl_ok(&["-n", OPERATOR_NS, "get", "pods", "-o", "name"])?;
        ensure!(
            pods.lines().any(|p| p.trim_start_matches("pod/") == holder),
            "the Lease is held by {holder:?}, not by one of the pods {pods:?}"
        );
        let image = self.cluster.kubectl_ok(&[
            "-n",
            OPERATOR_NS,
            "get",
            "pod",
            &holder,
            "-o",
            "jsonpath={.spec.containers[0].image} {.status.containerStatuses[0].containerID}",
        ])?;
        ensure!(image.starts_with(&format!("{OPERATOR_IMAGE}:{TAG} podman://")), "operator pod: {image}");
        report(&format!("e2e-images: operator pod {holder} leads after {:.1?} ({image})", t.elapsed()));
        Ok(holder)
    }

    fn operator_logs(&self) -> String {
        let mut out = String::from("pod runner (operator namespace):\n");
        out.push_str(&tail(&self.operator_runner.own_log(), 30));
        if let Ok(entries) = std::fs::read_dir(&self.operator_runner.log_dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    out.push_str(&format!("\n--- {}:\n", e.path().display()));
                    out.push_str(&tail(&std::fs::read_to_string(e.path()).unwrap_or_default(), 30));
                }
            }
        }
        out
    }

    fn apply(&self, doc: &Value) -> Result<SystemTime> {
        let name = doc["metadata"]["name"].as_str().context("manifest without name")?;
        let kind = doc["kind"].as_str().unwrap_or("doc").to_lowercase();
        let file = self.dir.path().join(format!("{kind}-{name}.yaml"));
        std::fs::write(&file, serde_yaml::to_string(doc)?)?;
        let at = SystemTime::now();
        self.cluster.kubectl_ok(&["-n", APP_NS, "apply", "-f", file.to_str().context("path")?])?;
        Ok(at)
    }

    async fn app(&self, name: &str) -> Result<Option<SparkApplication>> {
        Ok(self.apps.get_opt(name).await?)
    }

    fn driver_log(&self, app: &str) -> String {
        self.apps_runner.container_log(&driver_pod_name(app), CONTAINER_NAME)
    }

    async fn wait_state(&self, name: &str, want: AppState) -> Result<SparkApplication> {
        example_jobs::wait_state(&self.apps, name, want, STEP_TIMEOUT, || self.driver_log(name))
            .await
            .with_context(|| format!("--- driver log tail:\n{}", tail(&self.driver_log(name), 30)))
    }

    async fn wait_driver_log(&self, app: &str, what: &str, parts: &[&str]) -> Result<()> {
        example_jobs::wait_log_line(&format!("{app}: {what}"), STEP_TIMEOUT, parts, || self.driver_log(app)).await
    }

    /// The job's result: the last JSON line of the driver's output.
    fn driver_result(&self, app: &str) -> Result<Value> {
        example_jobs::driver_result(app, &self.driver_log(app))
    }

    /// Every pod of the application still there (the driver; executors are removed
    /// when the job ends) ran as a container of the engine image.
    fn ran_from_the_engine_image(&self, app: &str) -> Result<usize> {
        let out = self.cluster.kubectl_ok(&[
            "-n",
            APP_NS,
            "get",
            "pods",
            "-l",
            &format!("{LABEL_EMBER_APP_NAME}={app}"),
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].containerID}{\"\\n\"}{end}",
        ])?;
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        for line in &lines {
            ensure!(line.starts_with(&format!("{ENGINE_IMAGE} podman://")), "{app}: a pod ran as {line:?}");
        }
        Ok(lines.len())
    }

    /// The seed job from the engine image; returns ms from `kubectl apply` to the first
    /// task submitted.
    async fn sumsq(&self) -> Result<i128> {
        let name = "sumsq";
        let mut app = example_document("sumsq.yaml", "SparkApplication")?;
        app["spec"]["image"] = json!(ENGINE_IMAGE);
        app["spec"]["imagePullPolicy"] = json!("Never");
        app["spec"]["driver"]["env"] = json!([{ "name": "EMBER_LOG", "value": TIMING_LOG_FILTER }]);
        let n: u64 = argument(&app, "--n")?;
        let applied = self.apply(&app)?;
        self.wait_state(name, AppState::Completed).await?;
        let result = self.driver_result(name)?;
        let expected = json!({ "count": n, "sum": sumsq_expected(n).to_string() });
        ensure!(result == expected, "{name}: result {result}, expected {expected}");
        let log = self.driver_log(name);
        let first_task = log
            .lines()
            .find(|l| l.contains("submitting tasks"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| t.parse::<Timestamp>().ok())
            .context("no timed 'submitting tasks' line in the driver log")?;
        let first_task = SystemTime::from(first_task);
        let ms = first_task.duration_since(applied).map(|d| d.as_millis() as i128).unwrap_or(0);
        let pods = self.ran_from_the_engine_image(name)?;
        report(&format!(
            "e2e-images: {name}: {result}; {pods} remaining pod(s) ran from {ENGINE_IMAGE}; apply→first task {ms} ms"
        ));
        Ok(ms)
    }

    /// examples/k8s/wordcount.yaml as written (ConfigMap and application), with the
    /// engine image: exact counts of the ConfigMap's text.
    async fn wordcount(&self) -> Result<()> {
        let config_map = example_document("wordcount.yaml", "ConfigMap")?;
        let input = config_map["data"]["input.txt"].as_str().context("the ConfigMap's input.txt")?;
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for word in input.split_whitespace() {
            *counts.entry(word).or_default() += 1;
        }
        let mut app = example_document("wordcount.yaml", "SparkApplication")?;
        app["spec"]["image"] = json!(ENGINE_IMAGE);
        app["spec"]["imagePullPolicy"] = json!("Never");
        self.apply(&config_map)?;
        self.apply(&app)?;
        self.wait_state("wordcount", AppState::Completed).await?;
        let result = self.driver_result("wordcount")?;
        let expected = json!({ "distinct": counts.len(), "total": counts.values().sum::<u64>() });
        ensure!(result == expected, "wordcount: result {result}, expected {expected}");
        let pods = self.ran_from_the_engine_image("wordcount")?;
        report(&format!(
            "e2e-images: wordcount: {result}; {pods} remaining pod(s) ran from {ENGINE_IMAGE}, input from the ConfigMap"
        ));
        Ok(())
    }

    /// examples/job-template/k8s/my-ember-job.yaml as written but for the image's name:
    /// the template's job, from the image the Dockerfile's `job` stage built, counts
    /// the words of its ConfigMap exactly.
    async fn job_template(&self) -> Result<()> {
        let path = tooling::workspace().join("examples/job-template/k8s/my-ember-job.yaml");
        let text = std::fs::read_to_string(&path)?;
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)?;
            docs.push(value);
        }
        let [config_map, mut app] =
            <[Value; 2]>::try_from(docs).map_err(|d| anyhow::anyhow!("{} documents", d.len()))?;
        ensure!(config_map["kind"] == "ConfigMap" && app["kind"] == "SparkApplication", "the template's manifest");
        app["spec"]["image"] = json!(JOB_IMAGE);
        app["spec"]["imagePullPolicy"] = json!("Never");
        self.apply(&config_map)?;
        self.apply(&app)?;
        self.wait_state("my-ember-job", AppState::Completed).await?;
        let log = self.driver_log("my-ember-job");
        let printed: Vec<&str> =
            log.lines().filter(|l| l.ends_with(" distinct words") || l.split_whitespace().count() == 2).collect();
        let want = ["hat              3", "cat              2", "dog              2", "3 distinct words"];
        ensure!(printed == want, "my-ember-job printed {printed:?}, expected {want:?}:\n{}", tail(&log, 20));
        report(&format!("e2e-images: my-ember-job from {JOB_IMAGE}: {printed:?}"));
        Ok(())
    }

    /// An executor's container SIGKILLed between the join's two jobs (the driver waits
    /// on a pause file in a hostPath volume): executor 1 FAILED, executor 3 replaces it,
    /// and the result is exact.
    async fn executor_killed(&self) -> Result<()> {
        let name = "join-kill";
        let pause_dir = self.dir.path().join("pause");
        std::fs::create_dir_all(&pause_dir)?;
        let join = JoinJob::TEST;
        let mut app = example_document("sumsq.yaml", "SparkApplication")?;
        app["metadata"]["name"] = json!(name);
        app["spec"]["image"] = json!(ENGINE_IMAGE);
        app["spec"]["imagePullPolicy"] = json!("Never");
        app["spec"]["arguments"] = json!(join.arguments(Path::new("/pause/go")));
        app["spec"]["volumes"] = json!([{ "name": "pause", "hostPath": { "path": pause_dir.display().to_string() } }]);
        app["spec"]["driver"]["volumeMounts"] = json!([{ "name": "pause", "mountPath": "/pause" }]);
        self.apply(&app)?;
        self.wait_driver_log(name, "first job done, paused", &["ember: paused"]).await?;
        let victim = executor_pod_name(name, 1);
        let replacement = executor_pod_name(name, 3);
        let pid = self.apps_runner.kill_pod_process(&self.cluster, APP_NS, &victim, libc::SIGKILL)?;
        let t = Instant::now();
        report(&format!("e2e-images: {name}: killed {victim}'s container (pid {pid}) while the driver waits"));
        poll_until(&format!("{name}: executor 1 FAILED, executor 3 RUNNING"), STEP_TIMEOUT, || async {
            let Some(app) = self.app(name).await? else { return Ok(None) };
            let state = |pod: &str| app.status.as_ref().and_then(|s| s.executor_state.get(pod).copied());
            Ok((state(&victim) == Some(ExecutorState::Failed) && state(&replacement) == Some(ExecutorState::Running))
                .then_some(()))
        })
        .await?;
        self.wait_driver_log(name, "executor 3 registered", &["executor registered", "executor_id=3 "]).await?;
        report(&format!("e2e-images: {name}: replacement {replacement} registered {:.1?} after the kill", t.elapsed()));
        std::fs::write(pause_dir.join("go"), "")?;
        self.wait_state(name, AppState::Completed).await?;
        let result = self.driver_result(name)?;
        let expected = join.expected();
        ensure!(result == expected, "{name}: result {result}, expected {expected}");
        report(&format!("e2e-images: {name}: {result}"));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_and_engine_images_run_applications_on_a_real_control_plane() -> Result<()> {
    if skip_cluster_tests("the end-to-end test of the images on the real control plane") {
        return Ok(());
    }
    if std::env::var_os("EMBER_SKIP_IMAGE_TESTS").is_some_and(|v| v != "0") {
        report("EMBER_SKIP_IMAGE_TESTS set: skipping the end-to-end test of the images");
        return Ok(());
    }
    let check = images_script(Some("--check"))?;
    if !check.status.success() {
        report(&format!(
            "SKIPPED the images end-to-end test: podman cannot run containers here: {}",
            text(&check.stderr)
        ));
        return Ok(());
    }
    let t = Instant::now();
    let built = images_script(None)?;
    ensure!(built.status.success(), "tests/images/build.sh failed:\n{}", text(&built.stderr));
    report(&format!("e2e-images: images ready in {:.1?}:\n{}", t.elapsed(), text(&built.stderr)));

    let e2e = ImagesE2e::start().await?;
    let t = Instant::now();
    e2e.wait_operator().await?;
    let first_task = e2e.sumsq().await?;
    e2e.wordcount().await?;
    e2e.job_template().await?;
    e2e.executor_killed().await?;
    report(&format!(
        "e2e-images: all scenarios passed in {:.1?}; sumsq apply→first task {first_task} ms with images",
        t.elapsed()
    ));
    Ok(())
}
