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
    let chart = chart();
    let mut args = vec!["template", "ember", chart.to_str().unwrap(), "--namespace", "ember-system"];
    if let Some(version) = kube_version {
        args.extend(["--kube-version", version]);
    }
    for set in sets {
        args.extend(["--set", set]);
    }
    let output = helm(&args);
    assert!(output.status.success(), "helm template {sets:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
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
        _ => Err(format!("unexpected object {api_version} {kind}")),
    }
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
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    // The chart's CRD is the generated one, kept on uninstall.
    let crd = docs.iter().find(|d| d["kind"] == "CustomResourceDefinition").unwrap();
    let generated =
        serde_json::to_value(<ember_operator::crd::SparkApplication as kube::CustomResourceExt>::crd()).unwrap();
    if let Some(path) = first_difference(&crd["spec"], &generated["spec"], "spec") {
        panic!("the chart's CRD differs from the generated one at {path}");
    }
    assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");

    // No wildcards, no secrets, nothing beyond what the reconciler uses.
    for doc in docs.iter().filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role") {
        for rule in doc["rules"].as_array().unwrap() {
            for key in ["verbs", "resources", "apiGroups"] {
                assert!(!rule[key].as_array().unwrap().contains(&Value::from("*")), "wildcard in {rule}");
            }
            let resources: Vec<&str> =
                rule["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            for resource in resources {
                assert!(
                    ["sparkapplications", "sparkapplications/status", "pods", "services", "events", "leases"]
                        .contains(&resource),
                    "unexpected resource {resource}"
                );
            }
        }
    }
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
    let crd = docs.iter().find(|d| d["kind"] == "CustomResourceDefinition").unwrap();
    let text = serde_json::to_string(crd).unwrap();
    assert!(
        !text.contains("x-kubernetes-validations"),
        "a CEL rule the template does not strip for servers before 1.25"
    );
    // Everything else is the generated CRD; the schema checks that need no CEL stay.
    assert!(text.contains(r#""pattern""#));
    let recent = render(&[]);
    let recent_crd = recent.iter().find(|d| d["kind"] == "CustomResourceDefinition").unwrap();
    assert!(serde_json::to_string(recent_crd).unwrap().contains("x-kubernetes-validations"));
}
