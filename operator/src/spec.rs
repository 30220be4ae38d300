//! Checks of a `SparkApplication` that the schema cannot express (or that an API server
//! without CEL, like Kubernetes 1.20, does not enforce), and the parsed values the pod
//! builder needs. Every error names the offending field.

use std::collections::BTreeSet;

use crate::crd::{PodSettings, RestartPolicyType, SparkApplication};
use crate::customization::PodCustom;
use crate::ui::{UiPlan, UiSettings};

/// Longest application name: `<name>-driver-svc` must fit a 63-character Service name.
pub const MAX_APP_NAME_LEN: usize = 63 - "-driver-svc".len();

/// Memory used when a pod's `memory` is unset (Spark's default `1g`).
pub const DEFAULT_MEMORY_MIB: u64 = 1024;

/// Smallest default memory overhead, in MiB (Spark's `MEMORY_OVERHEAD_MIN`).
pub const MIN_MEMORY_OVERHEAD_MIB: u64 = 384;

/// Variables of the pod contract that the operator sets; a user's `env` may not set them.
pub const RESERVED_ENV: [&str; 10] = [
    "EMBER_ROLE",
    "EMBER_MASTER",
    "EMBER_CONF",
    "EMBER_DRIVER_URL",
    "EMBER_EXECUTOR_ID",
    "EMBER_EXECUTOR_CORES",
    "EMBER_EXECUTOR_MEMORY_MB",
    "EMBER_ADVERTISE_ADDRESS",
    "EMBER_AUTH_SECRET",
    "EMBER_AUTH_SECRET_FILE",
];

/// An invalid field of a `SparkApplication`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct SpecError {
    /// JSON path of the field, e.g. `spec.executor.memory`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl SpecError {
    /// An error of `field` (a JSON path such as `spec.executor.memory`).
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError { field: field.into(), reason: reason.into() }
    }
}

/// Resources of one pod role, resolved from the spec and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleResources {
    /// CPU request in cores, and the executor's task slots.
    pub cores: i32,
    /// CPU limit as written in the spec.
    pub core_limit: Option<String>,
    /// Memory for the Ember process, MiB.
    pub memory_mib: u64,
    /// Extra memory for the pod, MiB.
    pub overhead_mib: u64,
}

impl RoleResources {
    /// The pod's memory request and limit, MiB.
    pub fn pod_memory_mib(&self) -> u64 {
        self.memory_mib + self.overhead_mib
    }
}

/// A `SparkApplication` that passed every check, with its parsed values.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSpec {
    /// Absolute path of the job binary inside the image.
    pub binary_path: String,
    /// Driver resources.
    pub driver: RoleResources,
    /// Executor resources.
    pub executor: RoleResources,
    /// The UI port, the Services and Ingresses in front of the driver, and metrics ports.
    pub ui: UiPlan,
    /// `spark.authenticate=true`: the pods mount the application's secret ([`crate::auth`]).
    pub authenticate: bool,
    /// `deps.files` as `spark.files` entries (image paths and `s3a://` URLs).
    pub files: Vec<String>,
    /// The driver pod's customisation.
    pub driver_custom: PodCustom,
    /// The executor pods' customisation.
    pub executor_custom: PodCustom,
    /// Dynamic allocation's bounds, when it is on ([`crate::allocation::bounds`]).
    pub dynamic_allocation: Option<crate::allocation::Bounds>,
}

/// Parses a memory amount in Spark's notation (`512m`, `2g`, `1024k`, a bare number meaning
/// MiB) or as a Kubernetes binary quantity (`512Mi`); returns MiB, rounded up.
pub fn parse_memory_mib(text: &str) -> Option<u64> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits_end == 0 {
        return None;
    }
    let number: u64 = text[..digits_end].parse().ok()?;
    let kib_per_unit: u64 = match &text[digits_end..] {
        "" => 1024,
        "k" | "K" | "kb" | "kB" | "Kb" | "KB" | "Ki" => 1,
        "m" | "M" | "mb" | "mB" | "Mb" | "MB" | "Mi" => 1024,
        "g" | "G" | "gb" | "gB" | "Gb" | "GB" | "Gi" => 1024 * 1024,
        "t" | "T" | "tb" | "tB" | "Tb" | "TB" | "Ti" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let kib = number.checked_mul(kib_per_unit)?;
    Some(kib.div_ceil(1024))
}

/// Checks a Kubernetes CPU quantity as accepted by the schema: `2`, `1.5` or `500m`.
fn is_cpu_quantity(text: &str) -> bool {
    let body = text.strip_suffix('m').unwrap_or(text);
    let mut parts = body.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && match frac {
            None => true,
            Some(f) => !text.ends_with('m') && digits(f),
        }
}

fn role_resources(
    settings: &PodSettings,
    field: &str,
    volume_names: &BTreeSet<&str>,
) -> Result<RoleResources, SpecError> {
    let cores = settings.cores.unwrap_or(1);
    if cores < 1 {
        return Err(SpecError::new(format!("spec.{field}.cores"), format!("{cores} is below the minimum of 1")));
    }
    if let Some(limit) = &settings.core_limit
        && !is_cpu_quantity(limit)
    {
        return Err(SpecError::new(
            format!("spec.{field}.coreLimit"),
            format!("{limit:?} is not a CPU quantity (expected e.g. 2, 1.5 or 500m)"),
        ));
    }
    let memory_mib = match &settings.memory {
        None => DEFAULT_MEMORY_MIB,
        Some(text) => match parse_memory_mib(text) {
            Some(0) => {
                return Err(SpecError::new(format!("spec.{field}.memory"), "must be more than zero"));
            }
            Some(mib) => mib,
            None => {
                return Err(SpecError::new(
                    format!("spec.{field}.memory"),
                    format!("{text:?} is not a memory amount (expected e.g. 512m, 2g or 512Mi)"),
                ));
            }
        },
    };
    let overhead_mib = match &settings.memory_overhead {
        None => MIN_MEMORY_OVERHEAD_MIB.max(memory_mib / 10),
        Some(text) => parse_memory_mib(text).ok_or_else(|| {
            SpecError::new(
                format!("spec.{field}.memoryOverhead"),
                format!("{text:?} is not a memory amount (expected e.g. 384m or 1g)"),
            )
        })?,
    };
    for (i, var) in settings.env.iter().enumerate() {
        if RESERVED_ENV.contains(&var.name.as_str()) {
            return Err(SpecError::new(
                format!("spec.{field}.env[{i}].name"),
                format!("{} is set by the operator and cannot be overridden", var.name),
            ));
        }
    }
    for (i, mount) in settings.volume_mounts.iter().enumerate() {
        if !volume_names.contains(mount.name.as_str()) {
            return Err(SpecError::new(
                format!("spec.{field}.volumeMounts[{i}].name"),
                format!("no volume named {:?} in spec.volumes", mount.name),
            ));
        }
    }
    Ok(RoleResources { cores, core_limit: settings.core_limit.clone(), memory_mib, overhead_mib })
}

/// Checks the application and resolves its resources, with the operator's default UI
/// settings (see [`validate_with`]).
pub fn validate(app: &SparkApplication) -> Result<ValidSpec, SpecError> {
    validate_with(app, &UiSettings::default())
}

/// Checks the application and resolves its resources and what the operator exposes of
/// its driver under the operator's `ui` settings ([`crate::ui::plan`]).
pub fn validate_with(app: &SparkApplication, ui: &UiSettings) -> Result<ValidSpec, SpecError> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    if name.len() > MAX_APP_NAME_LEN {
        return Err(SpecError::new(
            "metadata.name",
            format!(
                "{} characters is longer than {MAX_APP_NAME_LEN}, the most that leaves room for the driver Service's suffix",
                name.len()
            ),
        ));
    }
    if !is_dns1035_label(name) {
        return Err(SpecError::new(
            "metadata.name",
            format!(
                "{name:?} is not a valid name for the driver's Services (<name>-driver-svc, <name>-ui-svc): it must be \
                 a DNS-1035 label, lowercase letters, digits and '-', starting with a letter and ending with a letter \
                 or digit"
            ),
        ));
    }
    let spec = &app.spec;
    if spec.image.trim().is_empty() {
        return Err(SpecError::new("spec.image", "must not be empty"));
    }
    let binary_path = match spec.main_application_file.strip_prefix("local://") {
        Some(path) if path.starts_with('/') && path.len() > 1 => path.to_string(),
        _ => {
            return Err(SpecError::new(
                "spec.mainApplicationFile",
                format!(
                    "{:?} is not a local:///absolute/path to the job binary in the image",
                    spec.main_application_file
                ),
            ));
        }
    };
    if spec.executor.instances < 0 {
        return Err(SpecError::new(
            "spec.executor.instances",
            format!("{} is below the minimum of 0", spec.executor.instances),
        ));
    }
    if let Some(ttl) = spec.time_to_live_seconds
        && ttl < 0
    {
        return Err(SpecError::new("spec.timeToLiveSeconds", format!("{ttl} is below the minimum of 0")));
    }
    let policy = &spec.restart_policy;
    for (field, value) in [
        ("onFailureRetries", policy.on_failure_retries.map(i64::from)),
        ("onFailureRetryInterval", policy.on_failure_retry_interval),
        ("onSubmissionFailureRetries", policy.on_submission_failure_retries.map(i64::from)),
        ("onSubmissionFailureRetryInterval", policy.on_submission_failure_retry_interval),
    ] {
        if let Some(v) = value
            && v < 0
        {
            return Err(SpecError::new(
                format!("spec.restartPolicy.{field}"),
                format!("{v} is below the minimum of 0"),
            ));
        }
    }
    // The CRD's CEL rule, for servers without CEL.
    if policy.policy_type != RestartPolicyType::OnFailure
        && (policy.on_failure_retries.is_some() || policy.on_submission_failure_retries.is_some())
    {
        return Err(SpecError::new("spec.restartPolicy", "retry counts apply only to restartPolicy.type OnFailure"));
    }
    let authenticate = authenticate(&spec.spark_conf)?;
    let mut volume_names = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().enumerate() {
        if volume.name == crate::auth::VOLUME_NAME {
            return Err(SpecError::new(
                format!("spec.volumes[{i}].name"),
                format!("{:?} is the operator's own volume (the spark.authenticate secret)", volume.name),
            ));
        }
        if !volume_names.insert(volume.name.as_str()) {
            return Err(SpecError::new(
                format!("spec.volumes[{i}].name"),
                format!("{:?} is used by more than one volume", volume.name),
            ));
        }
    }
    let driver = role_resources(&spec.driver.pod, "driver", &volume_names)?;
    let executor = role_resources(&spec.executor.pod, "executor", &volume_names)?;
    let ui = crate::ui::plan(app, ui)?;
    let mut files = Vec::new();
    for (i, file) in spec.deps.iter().flat_map(|d| d.files.iter()).enumerate() {
        let shipped = match file.strip_prefix("local://") {
            Some(path) if path.starts_with('/') && path.len() > 1 && !path.contains(',') => path.to_string(),
            None if file.starts_with("s3a://") && !file.contains(',') => file.clone(),
            _ => {
                return Err(SpecError::new(
                    format!("spec.deps.files[{i}]"),
                    format!("{file:?}: only local:///path (in the image) and s3a:// files can be shipped"),
                ));
            }
        };
        files.push(shipped);
    }
    if let Some(map) = &spec.spark_config_map
        && map.trim().is_empty()
    {
        return Err(SpecError::new("spec.sparkConfigMap", "must name a ConfigMap"));
    }
    let dynamic_allocation = crate::allocation::bounds(spec)?;
    if dynamic_allocation.is_some() && ui.ui_port.is_none() {
        return Err(SpecError::new(
            "spec.sparkConf[spark.ui.enabled]",
            "dynamic allocation needs the driver's web UI: the operator reads the driver's executor demand there",
        ));
    }
    let driver_custom = crate::customization::parse(&spec.driver.pod, "driver")?;
    let executor_custom = crate::customization::parse(&spec.executor.pod, "executor")?;
    Ok(ValidSpec {
        binary_path,
        driver,
        executor,
        ui,
        authenticate,
        files,
        driver_custom,
        executor_custom,
        dynamic_allocation,
    })
}

/// Whether `name` is an RFC 1035 label as Kubernetes requires of Service names: 1–63
/// characters of `a-z`, `0-9` and `-`, starting with a letter, ending with a letter or
/// digit. The application name prefixes every Service the operator makes, so it is
/// checked before any object is created (the schema accepts any DNS-1123 subdomain, such
/// as `1st.job`).
pub fn is_dns1035_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `sparkConf` turns `spark.authenticate` on. Errors: a value that is
/// not a boolean, or a secret given in `sparkConf`, where anyone who can read
/// the pod would read it (the operator makes and mounts one per application).
fn authenticate(conf: &std::collections::BTreeMap<String, String>) -> Result<bool, SpecError> {
    for key in ["spark.authenticate.secret", "spark.authenticate.secret.file"] {
        if conf.contains_key(key) {
            return Err(SpecError::new(
                format!("spec.sparkConf[{key:?}]"),
                "leave the secret out: with spark.authenticate=true the operator generates one per application \
                 and mounts it from a Secret into that application's pods only",
            ));
        }
    }
    // As the engine reads booleans (`Conf::get_bool`), so that the two agree.
    match conf.get(crate::auth::AUTHENTICATE_CONF).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if ["true", "1", "yes"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "0", "no"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(SpecError::new(
            format!("spec.sparkConf[{:?}]", crate::auth::AUTHENTICATE_CONF),
            format!("{v:?} is not a boolean (true or false)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MEMORY_PATTERN, SparkApplicationSpec};
    use std::collections::BTreeMap;

    #[test]
    fn memory_notations() {
        let cases = [
            ("512m", Some(512)),
            ("512M", Some(512)),
            ("512mb", Some(512)),
            ("512Mi", Some(512)),
            ("1g", Some(1024)),
            ("2Gi", Some(2048)),
            ("1536", Some(1536)),
            ("1024k", Some(1)),
            ("1k", Some(1)),
            ("1t", Some(1024 * 1024)),
            ("", None),
            ("m", None),
            ("1.5g", None),
            ("12x", None),
            ("-1g", None),
            ("1 g", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_memory_mib(text), want, "{text:?}");
        }
        // The schema's pattern is what the API server enforces; keep the parser in step.
        assert_eq!(MEMORY_PATTERN, r"^[0-9]+([kKmMgGtT][bB]?|[KMGT]i)?$");
    }

    #[test]
    fn cpu_quantities() {
        for ok in ["1", "2", "1.5", "500m", "0.25"] {
            assert!(is_cpu_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.5m", "1.", ".5", "one", "1c"] {
            assert!(!is_cpu_quantity(bad), "{bad}");
        }
    }

    fn app(spec_json: serde_json::Value) -> SparkApplication {
        let spec: SparkApplicationSpec = serde_json::from_value(spec_json).unwrap();
        let mut app = SparkApplication::new("job", spec);
        app.metadata.namespace = Some("ns".into());
        app
    }

    #[test]
    fn defaults_follow_spark() {
        let valid = validate(&app(serde_json::json!({
            "image": "img", "mainApplicationFile": "local:///opt/ember/bin/ember-examples",
            "executor": {"memory": "4g"}
        })))
        .unwrap();
        assert_eq!(valid.binary_path, "/opt/ember/bin/ember-examples");
        assert_eq!(valid.driver.memory_mib, 1024);
        assert_eq!(valid.driver.overhead_mib, 384);
        assert_eq!(valid.executor.memory_mib, 4096);
        assert_eq!(valid.executor.overhead_mib, 409);
        assert_eq!(valid.executor.cores, 1);
    }

    /// Every CEL rule of the generated CRD is checked by the operator too (servers before
    /// 1.25 drop the rules): each rule has a spec here that breaks it, and validation
    /// refuses that spec with the rule's message. A new rule without an entry fails.
    #[test]
    fn every_cel_rule_of_the_crd_is_also_checked_by_the_operator() {
        fn rules(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
            match value {
                serde_json::Value::Object(map) => {
                    for rule in map.get("x-kubernetes-validations").and_then(|v| v.as_array()).into_iter().flatten() {
                        out.push((
                            rule["rule"].as_str().unwrap_or_default().to_string(),
                            rule["message"].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                    map.values().for_each(|v| rules(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| rules(v, out)),
                _ => {}
            }
        }
        let crd = serde_json::to_value(<SparkApplication as kube::CustomResourceExt>::crd()).unwrap();
        let mut found = Vec::new();
        rules(&crd, &mut found);
        // Rule → a spec breaking it, and the field the operator's check names.
        let breaking: BTreeMap<&str, (serde_json::Value, &str)> = BTreeMap::from([
            (
                "self.startsWith('local:///')",
                (
                    serde_json::json!({"image": "img", "mainApplicationFile": "s3a://bucket/job"}),
                    "spec.mainApplicationFile",
                ),
            ),
            (
                "self.type == 'OnFailure' || (!has(self.onFailureRetries) && !has(self.onSubmissionFailureRetries))",
                (
                    serde_json::json!({"image": "img", "mainApplicationFile": "local:///bin/job",
                                       "restartPolicy": {"type": "Always", "onFailureRetries": 2}}),
                    "spec.restartPolicy",
                ),
            ),
        ]);
        assert!(!found.is_empty());
        for (rule, message) in &found {
            let (spec, field) =
                breaking.get(rule.as_str()).unwrap_or_else(|| panic!("no operator check listed for CEL rule {rule}"));
            let err = validate(&app(spec.clone())).expect_err(rule);
            assert_eq!(err.field, *field, "{rule} ({message}): {err}");
        }
        assert_eq!(found.len(), breaking.len(), "a listed rule is no longer in the CRD: {found:?}");
    }

    #[test]
    fn each_invalid_field_is_named() {
        let base = serde_json::json!({"image": "img", "mainApplicationFile": "local:///bin/job"});
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (serde_json::json!({"mainApplicationFile": "/bin/job"}), "spec.mainApplicationFile"),
            (serde_json::json!({"mainApplicationFile": "local://"}), "spec.mainApplicationFile"),
            (serde_json::json!({"image": " "}), "spec.image"),
            (serde_json::json!({"executor": {"instances": -1}}), "spec.executor.instances"),
            (serde_json::json!({"executor": {"memory": "lots"}}), "spec.executor.memory"),
            (serde_json::json!({"driver": {"memory": "0"}}), "spec.driver.memory"),
            (serde_json::json!({"driver": {"memoryOverhead": "1.5g"}}), "spec.driver.memoryOverhead"),
            (serde_json::json!({"driver": {"cores": 0}}), "spec.driver.cores"),
            (serde_json::json!({"executor": {"coreLimit": "two"}}), "spec.executor.coreLimit"),
            (serde_json::json!({"timeToLiveSeconds": -5}), "spec.timeToLiveSeconds"),
            (
                serde_json::json!({"restartPolicy": {"type": "OnFailure", "onFailureRetries": -1}}),
                "spec.restartPolicy.onFailureRetries",
            ),
            (
                serde_json::json!({"executor": {"env": [{"name": "EMBER_ROLE", "value": "driver"}]}}),
                "spec.executor.env[0].name",
            ),
            (
                serde_json::json!({"driver": {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}}),
                "spec.driver.volumeMounts[0].name",
            ),
        ];
        for (patch, field) in cases {
            let mut spec = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let err = validate(&app(spec)).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        let mut long = app(base.clone());
        long.metadata.name = Some("a".repeat(MAX_APP_NAME_LEN + 1));
        assert_eq!(validate(&long).unwrap_err().field, "metadata.name");
        for bad in ["1st-job", "my.job", "job-", "Job"] {
            let mut named = app(base.clone());
            named.metadata.name = Some(bad.to_string());
            let err = validate(&named).unwrap_err();
            assert_eq!(err.field, "metadata.name", "{bad}");
            assert!(err.to_string().contains("DNS-1035"), "{err}");
        }
        for good in ["a", "etl-2", "x1"] {
            let mut named = app(base.clone());
            named.metadata.name = Some(good.to_string());
            assert!(validate(&named).is_ok(), "{good}");
        }
    }
}
