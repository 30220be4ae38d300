//! The Helm chart: `helm lint` is clean, and every rendered manifest is valid against the
//! Kubernetes API schemas. Validation deserializes each document into k8s-openapi's typed
//! structs (which enforce required fields and value types) and then checks that the typed
//! round trip kept every field (a dropped field is one the API does not know: a typo or a
//! wrong nesting). This needs no network and no API server.

mod round_trip;
mod tooling;

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use round_trip::dropped_fields;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn chart() -> PathBuf {
    tooling::workspace().join("charts/ember-operator")
}

fn helm(args: &[&str]) -> std::process::Output {
    let helm = tooling::install("helm");
    Command::new(helm)
        .args(args)
        .env("HELM_CACHE_HOME", std::env::temp_dir().join("ember-helm-cache"))
        .env("HELM_CONFIG_HOME", std::env::temp_dir().join("ember-helm-config"))
        .env("HELM_DATA_HOME", std::env::temp_dir().join("ember-helm-data"))
        .output()
        .expect("running helm")
}

fn render(sets: &[&str]) -> Vec<Value> {
    render_for(None, sets)
}

/// Renders the chart, optionally for a given Kubernetes version.
fn render_for(kube_version: Option<&str>, sets: &[&str]) -> Vec<Value> {
    let mut args = Vec::new();
    if let Some(version) = kube_version {
        args.extend(["--kube-version", version]);
    }
    for set in sets {
        args.extend(["--set", set]);
    }
    render_args(&args)
}

/// Renders the chart with more `helm template` arguments (`--api-versions`, `-f`).
fn render_args(extra: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec!["template", "ember", chart.to_str().unwrap(), "--namespace", "ember-system"];
    args.extend(extra);
    let output = helm(&args);
    assert!(output.status.success(), "helm template {extra:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The first path where two documents differ; numbers compare by value, since helm's
/// YAML round trip turns integers into floats.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(v), Some(w)) => first_difference(v, w, &format!("{path}.{k}")),
                _ => Some(format!("{path}.{k}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]")))
        }
        (Value::Number(x), Value::Number(y)) => (x.as_f64() != y.as_f64()).then(|| path.to_string()),
        _ => (a != b).then(|| path.to_string()),
    }
}

fn check_typed<T: DeserializeOwned + serde::Serialize>(doc: &Value) -> Result<(), String> {
    let typed: T = serde_path_to_error::deserialize(doc).map_err(|e| e.to_string())?;
    let mut dropped = Vec::new();
    dropped_fields(doc, &serde_json::to_value(&typed).unwrap(), "", &mut dropped);
    if dropped.is_empty() { Ok(()) } else { Err(format!("fields unknown to the API: {dropped:?}")) }
}

fn validate(doc: &Value) -> Result<(), String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("v1", "ServiceAccount") => check_typed::<ServiceAccount>(doc),
        ("v1", "Service") => check_typed::<Service>(doc),
        ("apps/v1", "Deployment") => check_typed::<Deployment>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => check_typed::<ClusterRole>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => check_typed::<ClusterRoleBinding>(doc),
        ("rbac.authorization.k8s.io/v1", "Role") => check_typed::<Role>(doc),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => check_typed::<RoleBinding>(doc),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => check_typed::<CustomResourceDefinition>(doc),
        ("monitoring.coreos.com/v1", "PodMonitor") => check_pod_monitor(doc),
        _ => Err(format!("unexpected object {api_version} {kind}")),
    }
}

/// k8s-openapi has no PodMonitor type: its fields are checked against the names of the
/// Prometheus operator's monitoring.coreos.com/v1 schema that the template uses.
fn check_pod_monitor(doc: &Value) -> Result<(), String> {
    fn only(object: &Value, allowed: &[&str], at: &str) -> Result<(), String> {
        let map = object.as_object().ok_or(format!("{at} is not an object"))?;
        match map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(format!("{at}.{k} is not a field of PodMonitor")),
            None => Ok(()),
        }
    }
    only(doc, &["apiVersion", "kind", "metadata", "spec"], "")?;
    let spec = &doc["spec"];
    only(spec, &["selector", "namespaceSelector", "podMetricsEndpoints"], "spec")?;
    only(&spec["selector"], &["matchLabels", "matchExpressions"], "spec.selector")?;
    only(&spec["namespaceSelector"], &["any", "matchNames"], "spec.namespaceSelector")?;
    let endpoints = spec["podMetricsEndpoints"].as_array().ok_or("spec.podMetricsEndpoints is not a list")?;
    for (i, e) in endpoints.iter().enumerate() {
        let at = format!("spec.podMetricsEndpoints[{i}]");
        only(e, &["port", "path", "interval", "scrapeTimeout", "relabelings"], &at)?;
        if !e["port"].is_string() {
            return Err(format!("{at}.port is not a port name"));
        }
        for r in e["relabelings"].as_array().into_iter().flatten() {
            only(r, &["sourceLabels", "targetLabel", "regex", "replacement"], &format!("{at}.relabelings[]"))?;
        }
    }
    let _: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(spec["selector"].clone()).map_err(|e| format!("spec.selector: {e}"))?;
    Ok(())
}

fn validate_all(docs: &[Value]) {
    let errors: Vec<String> = docs
        .iter()
        .filter_map(|doc| validate(doc).err().map(|e| format!("{} {}: {e}", doc["kind"], doc["metadata"]["name"])))
        .collect();
    assert!(errors.is_empty(), "invalid rendered manifests:\n{}", errors.join("\n"));
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect();
    kinds.sort();
    kinds
}

#[test]
fn helm_lint_is_clean() {
    let chart = chart();
    let output = helm(&["lint", "--strict", chart.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "helm lint failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn default_render_is_valid_and_least_privilege() {
    let docs = render(&[]);
    validate_all(&docs);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    // The chart's CRDs are the generated ones, kept on uninstall.
    let crds: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    let generated = [
        serde_json::to_value(<ember_operator::crd::SparkApplication as kube::CustomResourceExt>::crd()).unwrap(),
        serde_json::to_value(
            <ember_operator::scheduled::crd::ScheduledSparkApplication as kube::CustomResourceExt>::crd(),
        )
        .unwrap(),
    ];
    for (crd, generated) in crds.iter().zip(&generated) {
        if let Some(path) = first_difference(&crd["spec"], &generated["spec"], "spec") {
            panic!("the chart's CRD {} differs from the generated one at {path}", crd["metadata"]["name"]);
        }
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }

    // No wildcards, no reading of secrets, nothing beyond what the reconciler uses.
    for doc in docs.iter().filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role") {
        for rule in doc["rules"].as_array().unwrap() {
            for key in ["verbs", "resources", "apiGroups"] {
                assert!(!rule[key].as_array().unwrap().contains(&Value::from("*")), "wildcard in {rule}");
            }
            let resources: Vec<&str> =
                rule["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            if resources.contains(&"sparkapplications/finalizers") {
                assert_eq!(
                    resources,
                    ["sparkapplications/finalizers", "scheduledsparkapplications/finalizers"],
                    "{rule}"
                );
                assert_eq!(rule["verbs"], serde_json::json!(["update"]), "{rule}");
            }
            if resources.contains(&"secrets") {
                assert_eq!(resources, ["secrets"], "{rule}");
                assert_eq!(rule["verbs"], serde_json::json!(["create"]), "secrets may only be created: {rule}");
            }
            for resource in resources {
                assert!(
                    [
                        "sparkapplications",
                        "sparkapplications/status",
                        // OwnerReferencesPermissionEnforcement (OpenShift) needs it.
                        "sparkapplications/finalizers",
                        "scheduledsparkapplications",
                        "scheduledsparkapplications/status",
                        "scheduledsparkapplications/finalizers",
                        "pods",
                        "services",
                        "ingresses",
                        "events",
                        "leases",
                        "secrets"
                    ]
                    .contains(&resource),
                    "unexpected resource {resource}"
                );
            }
        }
    }
    let grants_finalizers = docs.iter().filter(|d| d["kind"] == "ClusterRole").any(|d| {
        d["rules"].as_array().unwrap().iter().any(|r| {
            r["resources"]
                == serde_json::json!(["sparkapplications/finalizers", "scheduledsparkapplications/finalizers"])
        })
    });
    assert!(grants_finalizers, "owner references need sparkapplications/finalizers update (OpenShift)");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
}

#[test]
fn namespaced_render_grants_rights_only_in_watched_namespaces() {
    let docs = render(&["watchNamespaces={team-a,team-b}", "replicaCount=2", "otlpEndpoint=http://collector:4317"]);
    validate_all(&docs);
    assert!(!docs.iter().any(|d| d["kind"] == "ClusterRole"));
    let mut role_namespaces: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" && !d["metadata"]["name"].as_str().unwrap().ends_with("leader-election"))
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    role_namespaces.sort();
    assert_eq!(role_namespaces, ["team-a", "team-b"]);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    let value = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone()).unwrap_or(Value::Null);
    assert_eq!(value("EMBER_OPERATOR_NAMESPACES"), "team-a,team-b");
    assert_eq!(value("OTEL_EXPORTER_OTLP_ENDPOINT"), "http://collector:4317");
}

#[test]
fn two_replicas_without_leader_election_are_refused() {
    let chart = chart();
    let output = helm(&[
        "template",
        "ember",
        chart.to_str().unwrap(),
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=false",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("leaderElection"));
}

#[test]
fn kubernetes_1_20_gets_the_crd_without_cel_rules() {
    let docs = render_for(Some("1.20.2"), &[]);
    validate_all(&docs);
    let crds: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    assert_eq!(crds.len(), 2, "SparkApplication and ScheduledSparkApplication");
    for crd in crds {
        let text = serde_json::to_string(crd).unwrap();
        assert!(
            !text.contains("x-kubernetes-validations"),
            "a CEL rule the template does not strip for servers before 1.25 in {}",
            crd["metadata"]["name"]
        );
        // Everything else is the generated CRD; the schema checks that need no CEL stay.
        assert!(text.contains(r#""pattern""#));
    }
    let recent = render(&[]);
    for crd in recent.iter().filter(|d| d["kind"] == "CustomResourceDefinition") {
        assert!(serde_json::to_string(crd).unwrap().contains("x-kubernetes-validations"));
    }
}

fn env_of(docs: &[Value]) -> std::collections::BTreeMap<String, String> {
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str()?.to_string())))
        .collect()
}

#[test]
fn ui_and_scrape_values_reach_the_operator() {
    // Defaults: UI Services on, no Ingress, scrape annotations on, executors on 8090.
    let env = env_of(&render(&[]));
    assert_eq!(env["EMBER_OPERATOR_ENABLE_UI_SERVICE"], "true");
    assert_eq!(env["EMBER_OPERATOR_INGRESS_URL_FORMAT"], "");
    assert_eq!(env["EMBER_OPERATOR_METRICS_POD_ANNOTATIONS"], "true");
    assert_eq!(env["EMBER_OPERATOR_EXECUTOR_METRICS_PORT"], "8090");
    assert_eq!(env["EMBER_OPERATOR_INGRESS_TLS"], "[]");

    // The ingress URL format holds {{...}}, which --set would read as a list: a values file.
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        r#"
sparkUI:
  ingressURLFormat: "{{$appName}}.ingress.example.com"
  ingressClassName: nginx
  ingressAnnotations: {cert-manager.io/cluster-issuer: letsencrypt}
  ingressTLS: [{hosts: ["*.ingress.example.com"], secretName: wildcard}]
applicationMetrics:
  podAnnotations: false
  executorPort: 9100
"#,
    )
    .unwrap();
    let docs = render_args(&["-f", values.to_str().unwrap()]);
    validate_all(&docs);
    let env = env_of(&docs);
    assert_eq!(env["EMBER_OPERATOR_INGRESS_URL_FORMAT"], "{{$appName}}.ingress.example.com");
    assert_eq!(env["EMBER_OPERATOR_INGRESS_CLASS_NAME"], "nginx");
    let annotations: Value = serde_json::from_str(&env["EMBER_OPERATOR_INGRESS_ANNOTATIONS"]).unwrap();
    assert_eq!(annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
    let tls: Vec<k8s_openapi::api::networking::v1::IngressTLS> =
        serde_json::from_str(&env["EMBER_OPERATOR_INGRESS_TLS"]).unwrap();
    assert_eq!(tls[0].secret_name.as_deref(), Some("wildcard"));
    assert_eq!(env["EMBER_OPERATOR_METRICS_POD_ANNOTATIONS"], "false");
    assert_eq!(env["EMBER_OPERATOR_EXECUTOR_METRICS_PORT"], "9100");
    // The operator may apply and watch Ingresses.
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let ingress_rule = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"] == serde_json::json!(["ingresses"]))
        .expect("a rule for ingresses");
    assert_eq!(ingress_rule["apiGroups"], serde_json::json!(["networking.k8s.io"]));
    for verb in ["get", "list", "watch", "create", "patch"] {
        assert!(ingress_rule["verbs"].as_array().unwrap().contains(&Value::from(verb)), "{verb}");
    }
}

#[test]
fn pod_monitor_only_when_enabled_and_the_prometheus_operator_is_there() {
    let pod_monitors = |docs: &[Value]| docs.iter().filter(|d| d["kind"] == "PodMonitor").cloned().collect::<Vec<_>>();
    let has_crd = ["--api-versions", "monitoring.coreos.com/v1/PodMonitor"];
    // Off by default, even where the kind exists.
    assert!(pod_monitors(&render_args(&has_crd)).is_empty());
    // Enabled, but the cluster has no Prometheus operator: nothing it would refuse.
    assert!(pod_monitors(&render(&["applicationMetrics.podMonitor.enabled=true"])).is_empty());
    // Enabled and served.
    let docs = render_args(&[
        "--api-versions",
        "monitoring.coreos.com/v1/PodMonitor",
        "--set",
        "applicationMetrics.podMonitor.enabled=true",
        "--set",
        "applicationMetrics.podMonitor.labels.release=prometheus",
    ]);
    validate_all(&docs);
    let [pm] = &pod_monitors(&docs)[..] else { panic!("one PodMonitor expected") };
    assert_eq!(pm["metadata"]["namespace"], "ember-system");
    assert_eq!(pm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(pm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/managed-by"], "ember-operator");
    assert_eq!(pm["spec"]["namespaceSelector"]["any"], true);
    let endpoints: Vec<(String, String, String)> = pm["spec"]["podMetricsEndpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["port"].as_str().unwrap().into(),
                e["path"].as_str().unwrap().into(),
                e["interval"].as_str().unwrap().into(),
            )
        })
        .collect();
    // The container port names the operator gives the driver's UI and executors' metrics.
    assert_eq!(
        endpoints,
        [
            (ember_operator::ui::DRIVER_UI_PORT_NAME.into(), "/metrics".into(), "30s".into()),
            (ember_operator::ui::EXECUTOR_METRICS_PORT_NAME.into(), "/metrics".into(), "30s".into()),
        ]
    );
    // The driver is scraped at its prometheus.io/port annotation, which the operator
    // moves when the UI took another port (crate::ui_port); without the annotation the
    // named port stays. Applied as Prometheus applies a relabeling: the source labels
    // joined by ';', the regex anchored, `$n` replaced.
    let driver_address = |address: &str, annotation: &str| -> String {
        let relabel = pm["spec"]["podMetricsEndpoints"][0]["relabelings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["targetLabel"] == "__address__")
            .expect("an __address__ relabeling")
            .clone();
        let labels = [("__address__", address), ("__meta_kubernetes_pod_annotation_prometheus_io_port", annotation)];
        let joined: Vec<&str> = relabel["sourceLabels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| labels.iter().find(|(k, _)| l == k).expect("a known label").1)
            .collect();
        let re = regex::Regex::new(&format!("^(?:{})$", relabel["regex"].as_str().unwrap())).unwrap();
        let replacement = relabel["replacement"].as_str().unwrap().replace("$1", "${1}").replace("$2", "${2}");
        match re.captures(&joined.join(";")) {
            Some(c) => {
                let mut out = String::new();
                c.expand(&replacement, &mut out);
                out
            }
            None => address.to_string(),
        }
    };
    assert_eq!(driver_address("10.0.0.7:4040", "4041"), "10.0.0.7:4041");
    assert_eq!(driver_address("[fd00::7]:4040", "4041"), "[fd00::7]:4041");
    assert_eq!(driver_address("10.0.0.7:4040", ""), "10.0.0.7:4040", "no annotation: the named port");
    // With watched namespaces, only those.
    let docs = render_args(&[
        "--api-versions",
        "monitoring.coreos.com/v1/PodMonitor",
        "--set",
        "applicationMetrics.podMonitor.enabled=true",
        "--set",
        "watchNamespaces={team-a}",
    ]);
    let [pm] = &pod_monitors(&docs)[..] else { panic!("one PodMonitor expected") };
    assert_eq!(pm["spec"]["namespaceSelector"], serde_json::json!({"matchNames": ["team-a"]}));
}
