//! The CRD YAML in crds/ (and the chart's copy) must be what the Rust types generate, the
//! schema must be structural (Kubernetes 1.20 rejects non-structural schemas for v1
//! CRDs), and the example manifests must be valid applications.

use std::path::{Path, PathBuf};

use ember_operator::crd::SparkApplication;
use ember_operator::crdgen::generated_files;
use ember_operator::scheduled::crd::ScheduledSparkApplication;
use kube::CustomResourceExt;
mod round_trip;

use round_trip::dropped_fields;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn crd_files_match_the_rust_types() {
    for (file, generated) in generated_files().unwrap() {
        let on_disk = std::fs::read_to_string(workspace().join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"));
        assert!(
            on_disk == generated,
            "{file} differs from the CRD generated from the Rust types; regenerate it with\n  cargo run -p ember-operator --bin crdgen -- --write"
        );
    }
}

/// Checks the rules of a structural schema that generated schemas can break: every node
/// has a type (unless it is int-or-string or preserves unknown fields), no `$ref`, and
/// `anyOf`/`oneOf`/`allOf` branches carry no types or defaults of their own.
fn check_structural(schema: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if obj.contains_key("$ref") {
        errors.push(format!("{path}: $ref"));
    }
    let exempt = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !exempt {
        errors.push(format!("{path}: no type"));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for (i, branch) in obj.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for banned in ["type", "default", "nullable", "description"] {
                if branch.get(banned).is_some() {
                    errors.push(format!("{path}.{key}[{i}]: has {banned}"));
                }
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            check_structural(sub, &format!("{path}.{name}"), errors);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &format!("{path}[]"), errors);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        check_structural(extra, &format!("{path}{{}}"), errors);
    }
}

#[test]
fn crd_schema_is_structural_and_described() {
    let crd = serde_json::to_value(SparkApplication::crd()).unwrap();
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "sparkapp");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let columns: Vec<&str> =
        version["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["State", "Attempts", "Executors", "Start", "Finish", "Age"]);
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut errors = Vec::new();
    check_structural(schema, "", &mut errors);
    assert!(errors.is_empty(), "non-structural schema:\n{}", errors.join("\n"));

    // Every field of our own types is described (the descriptions are the doc comments).
    let spec = &schema["properties"]["spec"];
    for field in [
        "type",
        "mode",
        "image",
        "imagePullPolicy",
        "imagePullSecrets",
        "mainApplicationFile",
        "arguments",
        "sparkConf",
        "driver",
        "executor",
        "volumes",
        "restartPolicy",
        "timeToLiveSeconds",
        "suspend",
        "sparkUIOptions",
        "driverIngressOptions",
    ] {
        let description = spec["properties"][field]["description"].as_str().unwrap_or("");
        assert!(!description.is_empty(), "spec.{field} has no description");
    }
    // kubeflow's names for the UI Service and the driver's Ingresses, each described.
    let ui = &spec["properties"]["sparkUIOptions"]["properties"];
    let ingress = &spec["properties"]["driverIngressOptions"]["items"]["properties"];
    let shared = ["servicePort", "servicePortName", "serviceType", "serviceAnnotations", "serviceLabels"];
    let ingress_fields = ["ingressAnnotations", "ingressTLS"];
    for field in shared.iter().chain(&ingress_fields) {
        for (what, props) in [("sparkUIOptions", ui), ("driverIngressOptions[]", ingress)] {
            let description = props[*field]["description"].as_str().unwrap_or("");
            assert!(!description.is_empty(), "spec.{what}.{field} has no description");
        }
    }
    assert!(!ingress["ingressURLFormat"]["description"].as_str().unwrap_or("").is_empty());
    assert_eq!(
        spec["properties"]["driverIngressOptions"]["items"]["required"],
        serde_json::json!(["servicePort"]),
        "servicePort is required, as in kubeflow"
    );
    assert_eq!(ui["serviceType"]["enum"], serde_json::json!(["ClusterIP", "NodePort", "LoadBalancer"]));
    let driver_info = &schema["properties"]["status"]["properties"]["driverInfo"]["properties"];
    for field in ["podName", "webUIServiceName", "webUIPort", "webUIAddress", "webUIIngressName", "webUIIngressAddress"]
    {
        let description = driver_info[field]["description"].as_str().unwrap_or("");
        assert!(!description.is_empty(), "status.driverInfo.{field} has no description");
    }
    let executor = &spec["properties"]["executor"]["properties"];
    for field in [
        "instances",
        "cores",
        "coreLimit",
        "memory",
        "memoryOverhead",
        "labels",
        "annotations",
        "env",
        "serviceAccount",
        "nodeSelector",
        "tolerations",
        "affinity",
        "volumeMounts",
    ] {
        assert!(
            executor[field]["description"].as_str().is_some_and(|d| !d.is_empty()),
            "spec.executor.{field} has no description"
        );
    }
    // Admission-time checks that need no CEL (so they hold on Kubernetes 1.20 too).
    assert_eq!(executor["instances"]["minimum"], 0.0);
    assert!(executor["memory"]["pattern"].is_string());
    let restart = &spec["properties"]["restartPolicy"];
    let types: Vec<&str> =
        restart["properties"]["type"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(types, ["Never", "OnFailure", "Always"]);
    // CEL rules where a rule fits (stripped by API servers without CEL).
    assert!(restart["x-kubernetes-validations"].is_array());
    assert!(spec["properties"]["mainApplicationFile"]["x-kubernetes-validations"].is_array());
    let status = &schema["properties"]["status"]["properties"];
    for field in [
        "applicationState",
        "conditions",
        "observedGeneration",
        "driverInfo",
        "executorState",
        "submissionAttempts",
        "executionAttempts",
        "lastSubmissionAttemptTime",
        "terminationTime",
    ] {
        assert!(status[field].is_object(), "status.{field} missing");
    }
}

#[test]
fn example_manifests_are_valid_applications() {
    let mut seen = 0;
    let mut seen_scheduled = 0;
    let dirs = [workspace().join("examples/k8s"), workspace().join("examples/job-template/k8s")];
    for entry in dirs.iter().flat_map(|dir| std::fs::read_dir(dir).unwrap()) {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            if value["kind"] == "ScheduledSparkApplication" {
                let scheduled: ScheduledSparkApplication =
                    serde_path_to_error::deserialize(&value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mut dropped = Vec::new();
                dropped_fields(&value, &serde_json::to_value(&scheduled).unwrap(), "", &mut dropped);
                assert!(dropped.is_empty(), "{}: unknown fields {dropped:?}", path.display());
                let mut scheduled = scheduled;
                scheduled.metadata.namespace = Some("default".into());
                if let Err(e) = ember_operator::scheduled::decide::validate(&scheduled, &Default::default()) {
                    panic!("{}: {e}", path.display());
                }
                seen_scheduled += 1;
                continue;
            }
            if value["kind"] != "SparkApplication" {
                continue;
            }
            let app: SparkApplication =
                serde_path_to_error::deserialize(&value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut dropped = Vec::new();
            dropped_fields(&value, &serde_json::to_value(&app).unwrap(), "", &mut dropped);
            assert!(dropped.is_empty(), "{}: unknown fields {dropped:?}", path.display());
            assert_eq!(value["apiVersion"], "ember.dev/v1alpha1");
            if let Err(e) = ember_operator::spec::validate(&app) {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "expected the sumsq, pi and wordcount examples and the job template's");
    assert!(seen_scheduled >= 1, "expected the scheduled sumsq example");
}

#[test]
fn scheduled_crd_is_structural_and_embeds_the_application_spec() {
    let crd = serde_json::to_value(ScheduledSparkApplication::crd()).unwrap();
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["group"], "ember.dev");
    assert_eq!(crd["spec"]["names"]["kind"], "ScheduledSparkApplication");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "scheduledsparkapp");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let columns: Vec<&str> =
        version["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["Schedule", "Suspend", "State", "Last Run", "Next Run", "Age"]);
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut errors = Vec::new();
    check_structural(schema, "", &mut errors);
    assert!(errors.is_empty(), "non-structural schema:\n{}", errors.join("\n"));
    let spec = &schema["properties"]["spec"]["properties"];
    for field in [
        "schedule",
        "timeZone",
        "template",
        "suspend",
        "concurrencyPolicy",
        "successfulRunHistoryLimit",
        "failedRunHistoryLimit",
    ] {
        assert!(spec[field]["description"].as_str().is_some_and(|d| !d.is_empty()), "spec.{field} has no description");
    }
    assert_eq!(spec["concurrencyPolicy"]["enum"], serde_json::json!(["Allow", "Forbid", "Replace"]));
    assert_eq!(spec["successfulRunHistoryLimit"]["minimum"], 0.0);
    // The template is the whole application spec, with its own checks.
    let app = serde_json::to_value(SparkApplication::crd()).unwrap();
    let app_spec = &app["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let template = &spec["template"]["properties"];
    assert_eq!(
        template.as_object().unwrap().keys().collect::<Vec<_>>(),
        app_spec.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert!(template["mainApplicationFile"]["x-kubernetes-validations"].is_array());
    let status = &schema["properties"]["status"]["properties"];
    for field in [
        "scheduleState",
        "reason",
        "lastRun",
        "lastRunName",
        "nextRun",
        "activeRunNames",
        "pastSuccessfulRunNames",
        "pastFailedRunNames",
        "observedGeneration",
    ] {
        assert!(status[field]["description"].as_str().is_some_and(|d| !d.is_empty()), "status.{field} missing");
    }
}
