//! Against a real kube-apiserver + kube-controller-manager (tests/cluster/):
//! the pod runner binds, runs, reports and deletes pods through the real API.
//!
//! Set EMBER_SKIP_CLUSTER_TESTS=1 to skip (e.g. on a machine where the
//! Kubernetes build cannot run); CI does not set it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use ember_pod_runner::harness::{Cluster, PodRunner, poll_until, report, skip_cluster_tests};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

const NS: &str = "pod-runner-test";
const TIMEOUT: Duration = Duration::from_secs(60);

fn skip() -> bool {
    skip_cluster_tests("the control-plane test")
}

fn pod(name: &str, labels: serde_json::Value, script: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "main",
                "image": "ember:test",
                "command": ["/bin/sh", "-c", script],
                "env": [
                    { "name": "MY_IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } },
                    { "name": "MY_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                    { "name": "GREETING", "value": "hello from $(MY_NAME)" },
                    { "name": "PEER", "value": "http://peer-svc.pod-runner-test.svc:7078" },
                    { "name": "LISTEN", "value": "ember://0.0.0.0:7078" },
                ],
            }],
        },
    }))?)
}

async fn phase_of(pods: &Api<Pod>, name: &str) -> Result<Option<Pod>> {
    Ok(pods.get_opt(name).await?)
}

async fn wait_phase(pods: &Api<Pod>, name: &str, want: &str) -> Result<Pod> {
    poll_until(&format!("pod {name} phase {want}"), TIMEOUT, || async {
        let p = phase_of(pods, name).await?;
        Ok(p.filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(want)))
    })
    .await
}

async fn wait_gone(pods: &Api<Pod>, name: &str) -> Result<()> {
    poll_until(&format!("pod {name} removed"), TIMEOUT, || async {
        Ok(phase_of(pods, name).await?.is_none().then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_on_a_real_api_server() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let t0 = Instant::now();
    let crd = ember_pod_runner::harness::scripts_dir().join("fixtures/widgets-crd.yaml");
    let cluster = Cluster::start_with_crds(Some(&crd))?;
    report(&format!("control plane up in {:.1?}", t0.elapsed()));

    // The CI log shows which API server this is.
    let version = cluster.kubectl_ok(&["version", "-o", "json"])?;
    println!("kubectl version -o json:\n{version}");
    let client = cluster.client().await?;
    let info = client.apiserver_version().await?;
    report(&format!("real API server: {} ({} {})", info.git_version, info.go_version, info.platform));
    ensure!(info.git_version.starts_with("v1."), "odd version {info:?}");

    cluster.kubectl_ok(&["create", "namespace", NS])?;
    // Pods need the namespace's default ServiceAccount (admission), which the
    // controller manager creates.
    poll_until("default ServiceAccount token", TIMEOUT, || async {
        let out =
            cluster.kubectl(&["-n", NS, "get", "serviceaccount", "default", "-o", "jsonpath={.secrets[0].name}"])?;
        Ok((out.status.success() && !out.stdout.is_empty()).then_some(()))
    })
    .await?;

    let logs = tempfile::tempdir()?;
    let runner = PodRunner::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_ember-pod-runner")),
        &cluster,
        NS,
        logs.path(),
        None,
    )?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let result = scenario(&cluster, &client, &pods, &runner).await;
    if result.is_err() {
        eprintln!("--- pod runner log ---\n{}", runner.own_log());
    }
    result
}

async fn scenario(cluster: &Cluster, client: &kube::Client, pods: &Api<Pod>, runner: &PodRunner) -> Result<()> {
    let pp = PostParams::default();

    // 1. A pod whose command fails with exit code 3 ends Failed through the
    //    status subresource, with the exit code and its output as message.
    let t = Instant::now();
    pods.create(
        &pp,
        &pod(
            "exit3",
            json!({"app": "exit3"}),
            "echo hello; test -d \"$TMPDIR\" && echo \"ip=$MY_IP $GREETING listen=$LISTEN tmp=$TMPDIR\"; exit 3",
        )?,
    )
    .await?;
    let p = wait_phase(pods, "exit3", "Failed").await?;
    report(&format!("exit3: created → Failed in {:.1?}", t.elapsed()));
    let status = p.status.clone().context("status")?;
    let cs = &status.container_statuses.clone().context("containerStatuses")?[0];
    let term = cs.state.as_ref().and_then(|s| s.terminated.clone()).context("terminated state")?;
    ensure!(term.exit_code == 3, "exit code {}", term.exit_code);
    ensure!(term.reason.as_deref() == Some("Error"));
    let msg = term.message.unwrap_or_default();
    ensure!(msg.contains("hello"), "termination message {msg:?}");
    let ip = status.pod_ip.context("podIP")?;
    ensure!(ip.starts_with("127."), "podIP {ip}");
    let log = runner.container_log("exit3", "main");
    ensure!(
        log.contains(&format!(
            "ip={ip} hello from exit3 listen=ember://{ip}:7078 tmp={}",
            runner.log_dir.join("work/exit3/tmp/main").display()
        )),
        "downward API env in log: {log:?}"
    );
    ensure!(
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("ember-pod-runner"),
        "bound to the runner's node"
    );
    let printed = cluster.kubectl_ok(&["-n", NS, "get", "pod", "exit3", "-o", "wide"])?;
    println!("{printed}");
    pods.delete("exit3", &DeleteParams::default()).await?;
    wait_gone(pods, "exit3").await?;

    // 2. A Service name in env resolves to the address of the pod it selects;
    //    a deleted running pod has its process killed and is removed.
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "peer-svc" },
        "spec": { "clusterIP": "None", "selector": { "app": "peer" }, "ports": [{ "port": 7078 }] },
    }))?;
    Api::<Service>::namespaced(client.clone(), NS).create(&pp, &svc).await?;
    pods.create(&pp, &pod("client", json!({"app": "client"}), "echo \"peer=$PEER\"")?).await?;
    pods.create(&pp, &pod("peer", json!({"app": "peer"}), "echo up; exec sleep 300")?).await?;
    let peer = wait_phase(pods, "peer", "Running").await?;
    let peer_ip = peer.status.and_then(|s| s.pod_ip).context("peer podIP")?;
    wait_phase(pods, "client", "Succeeded").await?;
    let log = runner.container_log("client", "main");
    ensure!(log.contains(&format!("peer=http://{peer_ip}:7078")), "service name rewritten: {log:?}");
    let pid: i32 = cluster
        .kubectl_ok(&["-n", NS, "get", "pod", "peer", "-o", "jsonpath={.status.containerStatuses[0].containerID}"])?
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()
        .context("pid in containerID")?;
    ensure!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let t = Instant::now();
    pods.delete("peer", &DeleteParams::default()).await?;
    wait_gone(pods, "peer").await?;
    report(&format!("peer: delete → removed in {:.1?}", t.elapsed()));
    poll_until("peer process gone", TIMEOUT, || async {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting to be reaped.
        Ok((stat.is_empty() || stat.contains(") Z ")).then_some(()))
    })
    .await?;
    pods.delete("client", &DeleteParams::default()).await?;
    wait_gone(pods, "client").await?;
    Api::<Service>::namespaced(client.clone(), NS).delete("peer-svc", &DeleteParams::default()).await?;
    // Pods below name peer-svc too: with no such Service the name stays as written.

    // 3. A container process killed from outside (a lost executor) ends the
    //    pod Failed with 128+9, as a kubelet would report it.
    pods.create(&pp, &pod("victim", json!({"app": "victim"}), "echo up; exec sleep 300")?).await?;
    wait_phase(pods, "victim", "Running").await?;
    let pid = runner.kill_pod_process(cluster, NS, "victim", libc::SIGKILL)?;
    report(&format!("victim: killed pid {pid}"));
    let p = wait_phase(pods, "victim", "Failed").await?;
    let code = p
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c[0].state.clone())
        .and_then(|s| s.terminated)
        .map(|t| t.exit_code);
    ensure!(code == Some(137), "exit code after SIGKILL: {code:?}");

    // 4a. restartPolicy OnFailure: the container is started again in the same
    //     working directory; the second run succeeds.
    let mut flaky = pod(
        "flaky",
        json!({"app": "flaky"}),
        "if [ -e marker ]; then echo second; exit 0; fi; touch marker; echo first; exit 1",
    )?;
    flaky.spec.as_mut().context("spec")?.restart_policy = Some("OnFailure".into());
    pods.create(&pp, &flaky).await?;
    let p = wait_phase(pods, "flaky", "Succeeded").await?;
    let cs = p.status.and_then(|s| s.container_statuses).context("containerStatuses")?;
    ensure!(cs[0].restart_count == 1, "restartCount {}", cs[0].restart_count);
    let log = runner.container_log("flaky", "main");
    ensure!(log == "first\nsecond\n", "flaky log {log:?}");

    // 4b. Garbage collection by the real controller manager: deleting the
    //    owner removes the pod (the runner kills it and finalizes the delete).
    let owner: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "owner" },
    }))?;
    let owner = Api::<ConfigMap>::namespaced(client.clone(), NS).create(&pp, &owner).await?;
    let mut owned = pod("owned", json!({"app": "owned"}), "exec sleep 300")?;
    owned.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.metadata.uid.clone().context("owner uid")?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    pods.create(&pp, &owned).await?;
    wait_phase(pods, "owned", "Running").await?;
    let t = Instant::now();
    Api::<ConfigMap>::namespaced(client.clone(), NS).delete("owner", &DeleteParams::background()).await?;
    wait_gone(pods, "owned").await?;
    report(&format!("owned: owner deleted → pod removed by GC in {:.1?}", t.elapsed()));

    // 5. The CRD (installed before the controller manager) serves objects,
    //    validates them, and prints its columns.
    let widget = |size: &str| {
        format!(
            "apiVersion: test.ember.dev/v1\nkind: Widget\nmetadata: {{name: w, namespace: {NS}}}\nspec: {{size: {size}}}\n"
        )
    };
    let apply = |yaml: String| -> Result<std::process::Output> {
        let f = tempfile::NamedTempFile::new()?;
        std::fs::write(f.path(), yaml)?;
        cluster.kubectl(&["apply", "-f", f.path().to_str().context("path")?])
    };
    let bad = apply(widget("[1, 2]"))?;
    ensure!(!bad.status.success(), "a list is no int-or-string");
    report(&format!("invalid widget refused: {}", String::from_utf8_lossy(&bad.stderr).trim()));
    ensure!(apply(widget("\"3Gi\""))?.status.success());
    let table = cluster.kubectl_ok(&["-n", NS, "get", "widgets"])?;
    report(&table);
    ensure!(table.contains("SIZE") && table.contains("STATE") && table.contains("3Gi"), "printer columns: {table}");

    // 6. RBAC is enforced: a ServiceAccount without grants is refused.
    let sa = cluster.service_account_kubeconfig(NS, "nobody")?;
    let out = cluster.kubectl_as(&sa, &["-n", NS, "get", "pods"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success()
            && err.contains("system:serviceaccount:pod-runner-test:nobody")
            && err.contains("forbidden"),
        "expected RBAC refusal, got: {err}"
    );
    Ok(())
}
