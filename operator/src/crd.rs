//! The `SparkApplication` custom resource.
//!
//! Field names follow kubeflow spark-operator's `v1beta2` API wherever the meaning is the
//! same, so manifests written for that operator need few changes. The API group is Ember's
//! own (`ember.dev`) so that both operators can be installed in one cluster.
//!
//! Doc comments on fields become the descriptions in the generated CRD schema.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, EnvFromSource, EnvVar, PodDNSConfig, Toleration, Volume, VolumeMount};
use k8s_openapi::api::networking::v1::IngressTLS;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spark-style memory amounts: a number with an optional unit, as in `spark.executor.memory`
/// (`512m`, `2g`, `1536` = MiB) or a Kubernetes binary quantity (`512Mi`, `2Gi`).
pub const MEMORY_PATTERN: &str = r"^[0-9]+([kKmMgGtT][bB]?|[KMGT]i)?$";

/// CPU limits are Kubernetes CPU quantities: whole or fractional cores, or millicores.
pub const CPU_QUANTITY_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$";

/// Schema of a Kubernetes object the API server keeps as given
/// (`x-kubernetes-preserve-unknown-fields`): its full schema, once per role, would make
/// the CRD too large for `kubectl apply`. The operator parses it
/// ([`crate::customization::parse`]) and fails the application naming the field when it
/// does not parse.
fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// A list of [`preserved_object`]s.
fn preserved_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

/// What an application ships to its executors (kubeflow's `Dependencies`; `files` only:
/// there are no jars or Python files for a compiled job).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependencies {
    /// Files shipped like `addFile` (Spark's `spark.files`): `local:///path` in the image,
    /// or `s3a://bucket/key`, fetched once by the driver. Tasks find their copy with
    /// `ember::files::get(name)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// GPUs for a pod (kubeflow's `GPUSpec`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GpuSpec {
    /// The extended resource name, e.g. `nvidia.com/gpu` or `amd.com/gpu`.
    pub name: String,
    /// How many: the container's limit of that resource (and so its request).
    #[schemars(range(min = 1))]
    pub quantity: i64,
}

/// A ConfigMap or Secret mounted into the engine container (kubeflow's `NamePath`,
/// `SecretInfo` without `secretType`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamePath {
    /// Name of the ConfigMap or Secret, in the application's namespace.
    pub name: String,
    /// Absolute path of the directory it is mounted at (read-only for a Secret).
    pub path: String,
}

/// Desired state of an Ember application: one driver pod and `executor.instances`
/// executor pods running the job binary from `image`.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ember.dev",
    version = "v1alpha1",
    kind = "SparkApplication",
    plural = "sparkapplications",
    singular = "sparkapplication",
    shortname = "sparkapp",
    namespaced,
    status = "SparkApplicationStatus",
    doc = "An Ember (Spark-style) application: a driver pod and its executor pods.",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.applicationState.state"}"#,
    printcolumn = r#"{"name":"Attempts","type":"integer","jsonPath":".status.executionAttempts"}"#,
    printcolumn = r#"{"name":"Executors","type":"integer","jsonPath":".status.runningExecutors"}"#,
    printcolumn = r#"{"name":"Start","type":"string","jsonPath":".status.lastSubmissionAttemptTime"}"#,
    printcolumn = r#"{"name":"Finish","type":"string","jsonPath":".status.terminationTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SparkApplicationSpec {
    /// Language of the application. Ember jobs are Rust binaries, so the only value is `Rust`.
    #[serde(rename = "type", default)]
    pub app_type: ApplicationType,

    /// Deployment mode. Only `cluster` is supported: the driver runs in its own pod.
    #[serde(default)]
    pub mode: DeployMode,

    /// Container image holding the job binary; used by the driver and the executors.
    #[schemars(length(min = 1))]
    pub image: String,

    /// Image pull policy of the driver and executor containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Names of Secrets in the application's namespace used to pull `image`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,

    /// The job binary inside the image, as `local:///absolute/path`.
    #[x_kube(validation = kube::core::Rule::new("self.startsWith('local:///')").message("mainApplicationFile must be a local:/// path inside the image"))]
    pub main_application_file: String,

    /// Arguments passed to the job binary in the driver pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,

    /// Spark configuration (`spark.*` keys) passed to the driver as `EMBER_CONF`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, String>,

    /// Name of a ConfigMap in the application's namespace whose `spark-defaults.conf` key
    /// holds default settings (Spark's properties format). It is mounted at
    /// `/etc/ember/conf` in every pod, with `SPARK_CONF_DIR` pointing there, and the
    /// driver reads it as spark-submit would: `sparkConf` wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_config_map: Option<String>,

    /// Files the driver ships to every executor at its start (kubeflow's `deps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deps: Option<Dependencies>,

    /// The driver pod.
    #[serde(default)]
    pub driver: DriverSpec,

    /// The executor pods.
    #[serde(default)]
    pub executor: ExecutorSpec,

    /// Volumes that the driver and executors can mount with `volumeMounts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,

    /// What to do when the application ends.
    #[serde(default)]
    pub restart_policy: RestartPolicy,

    /// Seconds after the application ends (COMPLETED or FAILED) before the operator
    /// deletes it, and with it every pod and service it owns. Unset keeps it forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub time_to_live_seconds: Option<i64>,

    /// When true, the application's pods are deleted and none are created until it is
    /// set back to false, which submits the application again.
    #[serde(default)]
    pub suspend: bool,

    /// Dynamic allocation (kubeflow's `dynamicAllocation`): the driver computes how many
    /// executors its pending tasks need and publishes that demand on its web UI; the
    /// operator creates or deletes executor pods to match, between `minExecutors` and
    /// `maxExecutors`. `executor.instances` is then only a floor of the initial number.
    /// Setting `spark.dynamicAllocation.enabled=true` in `sparkConf` does the same;
    /// these fields win over the `spark.dynamicAllocation.*` keys they set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_allocation: Option<DynamicAllocation>,

    /// The Service (and, with the operator's `--ingress-url-format`, the Ingress) in front
    /// of the driver's web UI (kubeflow spark-operator's `sparkUIOptions`). The Service
    /// `<name>-ui-svc` is created whenever the UI is on (`spark.ui.enabled`, default true);
    /// these settings adjust it.
    #[serde(rename = "sparkUIOptions", default, skip_serializing_if = "Option::is_none")]
    pub spark_ui_options: Option<SparkUIConfiguration>,

    /// More Services, each with an optional Ingress, in front of other ports of the driver
    /// (kubeflow spark-operator's `driverIngressOptions`): each entry makes a Service
    /// `<name>-driver-<servicePort>` targeting the same port on the driver, and with
    /// `ingressURLFormat` an Ingress `<name>-ing-<servicePort>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub driver_ingress_options: Vec<DriverIngressConfiguration>,
}

/// Kubernetes Service types the operator can create for the driver (a selector-less
/// `ExternalName` Service cannot reach a pod).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    /// A virtual IP reachable inside the cluster.
    #[default]
    ClusterIP,
    /// A ClusterIP Service also open on a port of every node.
    NodePort,
    /// A NodePort Service also behind the cloud provider's load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The value Kubernetes expects in a Service's `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The driver web UI's Service and Ingress (kubeflow spark-operator's `SparkUIConfiguration`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SparkUIConfiguration {
    /// Port of the UI Service, 1-65535. The Service forwards it to the driver's UI port
    /// (`spark.ui.port` in `sparkConf`, default 4040), its target port. Default: the UI
    /// port itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub service_port: Option<i32>,

    /// Name of the Service's port (a DNS label: at most 63 lowercase letters, digits and
    /// '-'). Sidecar proxies such as Istio's Envoy read the protocol from it (`http-ui`).
    /// Default `spark-driver-ui-port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port_name: Option<String>,

    /// Type of the UI Service. Default `ClusterIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,

    /// Annotations added to the UI Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,

    /// Labels added to the UI Service, besides the ones the operator sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_labels: BTreeMap<String, String>,

    /// Annotations of the UI Ingress (e.g. `kubernetes.io/ingress.class: nginx`); replace
    /// the operator's `--ingress-annotations` when set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ingress_annotations: BTreeMap<String, String>,

    /// TLS settings of the UI Ingress (hosts and the Secret with their certificate);
    /// replace the operator's `--ingress-tls` when set.
    #[serde(rename = "ingressTLS", default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_tls: Vec<IngressTLS>,
}

/// A Service, and optionally an Ingress, in front of one port of the driver (kubeflow
/// spark-operator's `DriverIngressConfiguration`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverIngressConfiguration {
    /// Port of the Service, 1-65535, and the port of the driver it targets.
    #[schemars(range(min = 1, max = 65535))]
    pub service_port: i32,

    /// Name of the Service's port (a DNS label). Default `driver-ing-<servicePort>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port_name: Option<String>,

    /// Type of the Service. Default `ClusterIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,

    /// Annotations added to the Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,

    /// Labels added to the Service, besides the ones the operator sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_labels: BTreeMap<String, String>,

    /// URL of the Ingress, `[http[s]://]host[/path]`, where `{{$appName}}` and
    /// `{{$appNamespace}}` are replaced by the application's name and namespace, e.g.
    /// `{{$appName}}.ingress.example.com`. Unset: no Ingress.
    #[serde(rename = "ingressURLFormat", default, skip_serializing_if = "Option::is_none")]
    pub ingress_url_format: Option<String>,

    /// Annotations of the Ingress; replace the operator's `--ingress-annotations` when set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ingress_annotations: BTreeMap<String, String>,

    /// TLS settings of the Ingress; replace the operator's `--ingress-tls` when set.
    #[serde(rename = "ingressTLS", default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_tls: Vec<IngressTLS>,
}

/// Language of the application.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ApplicationType {
    /// A Rust binary linked against Ember.
    #[default]
    Rust,
}

/// Deployment mode.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeployMode {
    /// The driver runs in a pod of its own, created by the operator.
    #[default]
    #[serde(rename = "cluster")]
    Cluster,
}

/// Kubernetes image pull policy.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    /// Always pull the image.
    Always,
    /// Pull the image only when it is not on the node.
    IfNotPresent,
    /// Never pull the image.
    Never,
}

impl ImagePullPolicy {
    /// The value Kubernetes expects in a container's `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// Settings shared by the driver and the executor pods.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSettings {
    /// Number of CPU cores: the pod's CPU request, and the executor's task slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cores: Option<i32>,

    /// CPU limit as a Kubernetes CPU quantity (`1`, `1.5`, `500m`). Unset leaves the CPU
    /// unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CPU_QUANTITY_PATTERN))]
    pub core_limit: Option<String>,

    /// Memory for the Ember process, in Spark's notation (`512m`, `2g`; a bare number is
    /// MiB) or as a binary quantity (`512Mi`). Default `1g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = MEMORY_PATTERN))]
    pub memory: Option<String>,

    /// Memory added to `memory` for the pod's request and limit, in the same notation.
    /// Default: the larger of 384 MiB and 10% of `memory`, as in Spark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = MEMORY_PATTERN))]
    pub memory_overhead: Option<String>,

    /// Labels added to the pods, besides the ones the operator sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Annotations added to the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Environment variables added to the container. The `EMBER_*` variables of the pod
    /// contract are set by the operator and cannot be overridden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Service account the pods run as. Ember pods need no Kubernetes API rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,

    /// Node selector of the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Mounts of the application's `volumes` into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,

    /// Image of this role's pods instead of `spec.image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// CPU request as a Kubernetes CPU quantity (`500m`, `1.5`) instead of `cores`;
    /// `cores` still gives an executor's task slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CPU_QUANTITY_PATTERN))]
    pub core_request: Option<String>,

    /// GPUs of the engine container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,

    /// The engine container's `securityContext` (a Kubernetes SecurityContext). Default:
    /// what the "restricted" Pod Security Standard asks (no privilege escalation, all
    /// capabilities dropped, non-root, seccomp RuntimeDefault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub security_context: Option<serde_json::Value>,

    /// The pod's `securityContext` (a Kubernetes PodSecurityContext). Default:
    /// `runAsNonRoot: true` and seccomp `RuntimeDefault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub pod_security_context: Option<serde_json::Value>,

    /// Containers run to completion before the engine's (Kubernetes Containers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "preserved_list")]
    pub init_containers: Vec<serde_json::Value>,

    /// Containers run beside the engine's (Kubernetes Containers), e.g. a log shipper.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "preserved_list")]
    pub sidecars: Vec<serde_json::Value>,

    /// The pods' `priorityClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// The pods' `schedulerName` (e.g. a batch scheduler's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,

    /// Run the pods in the node's network namespace (DNS policy
    /// `ClusterFirstWithHostNet`). Breaks the "restricted" Pod Security Standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,

    /// The pods' `dnsConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDNSConfig>,

    /// Seconds between SIGTERM and SIGKILL when a pod is deleted (Kubernetes' default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,

    /// The engine container's `lifecycle` hooks (a Kubernetes Lifecycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub lifecycle: Option<serde_json::Value>,

    /// `envFrom` of the engine container: every key of ConfigMaps and Secrets as
    /// variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    /// ConfigMaps mounted into the engine container, each at its `path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<NamePath>,

    /// Secrets mounted read-only into the engine container, each at its `path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<NamePath>,

    /// A whole pod template (a Kubernetes PodTemplateSpec: `metadata` and `spec`) the
    /// operator's pod is laid over, as kubeflow v2's `template`: anything the operator
    /// does not set comes from it; where both set a value the operator's wins, and lists
    /// of named items (containers, volumes, env) merge by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub template: Option<serde_json::Value>,
}

/// The driver pod.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverSpec {
    /// Resources, placement and environment of the driver pod.
    #[serde(flatten)]
    pub pod: PodSettings,
}

/// The executor pods.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorSpec {
    /// Number of executor pods. Zero runs every task in the driver's own process.
    #[serde(default = "default_instances")]
    #[schemars(range(min = 0))]
    pub instances: i32,

    /// Resources, placement and environment of each executor pod.
    #[serde(flatten)]
    pub pod: PodSettings,
}

fn default_instances() -> i32 {
    1
}

impl Default for ExecutorSpec {
    fn default() -> Self {
        ExecutorSpec { instances: default_instances(), pod: PodSettings::default() }
    }
}

/// Dynamic allocation settings (kubeflow v1beta2 names). Each field becomes the
/// `spark.dynamicAllocation.*` key Spark reads; the other keys
/// (`executorIdleTimeout`, `schedulerBacklogTimeout`, …) go in `sparkConf`.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DynamicAllocation {
    /// Turns dynamic allocation on (`spark.dynamicAllocation.enabled`).
    #[serde(default)]
    pub enabled: bool,
    /// Executors at the start (`initialExecutors`; the larger of it, `minExecutors` and
    /// `executor.instances` is used, as in Spark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_executors: Option<i32>,
    /// Fewest executors kept (`minExecutors`, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_executors: Option<i32>,
    /// Most executors created (`maxExecutors`, default unbounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_executors: Option<i32>,
    /// Milliseconds an idle executor holding shuffle outputs a live RDD may still read
    /// is kept (`shuffleTracking.timeout`; unset: until the shuffle is cleaned up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub shuffle_tracking_timeout: Option<i64>,
}

/// When to run the application again after it ends.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = kube::core::Rule::new("self.type == 'OnFailure' || (!has(self.onFailureRetries) && !has(self.onSubmissionFailureRetries))").message("retry counts apply only to restartPolicy.type OnFailure"))]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicy {
    /// `Never` (default), `OnFailure` (rerun a failed run up to `onFailureRetries` times)
    /// or `Always` (rerun after every end, successful or not).
    #[serde(rename = "type", default)]
    pub policy_type: RestartPolicyType,

    /// How many times a failed run is rerun (`OnFailure` only). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub on_failure_retries: Option<i32>,

    /// Seconds to wait before the first rerun of a failed run; doubled for each further
    /// attempt, up to 16 times this value. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub on_failure_retry_interval: Option<i64>,

    /// How many times a submission that the API server rejected (driver pod or service
    /// not created) is retried (`OnFailure` only). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub on_submission_failure_retries: Option<i32>,

    /// Seconds to wait before retrying a failed submission; doubled for each further
    /// attempt, up to 16 times this value. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub on_submission_failure_retry_interval: Option<i64>,
}

/// Restart policy type.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RestartPolicyType {
    /// Never rerun.
    #[default]
    Never,
    /// Rerun failed runs, up to the configured retries.
    OnFailure,
    /// Rerun after every end.
    Always,
}

/// Observed state of the application, written only by the operator.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SparkApplicationStatus {
    /// The application's state and, when it failed, why.
    #[serde(default)]
    pub application_state: ApplicationState,

    /// Conditions in the Kubernetes style: one per condition type, with the time it last
    /// changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<AppCondition>,

    /// The `metadata.generation` of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The driver pod and its UI service of the current run.
    #[serde(default)]
    pub driver_info: DriverInfo,

    /// State of each executor pod of the current run, by pod name: PENDING, RUNNING,
    /// COMPLETED, FAILED or UNKNOWN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub executor_state: BTreeMap<String, ExecutorState>,

    /// Executor pods of the current run that are pending or running.
    #[serde(default)]
    pub running_executors: i32,

    /// The highest executor id handed out in the current run; replacements get the next.
    #[serde(default)]
    pub last_executor_id: i32,

    /// Executor pods of the current run that failed or vanished and were replaced.
    #[serde(default)]
    pub executor_failures: i32,

    /// How many times the driver pod and service were submitted to the API server.
    #[serde(default)]
    pub submission_attempts: i32,

    /// How many times the driver pod started running.
    #[serde(default)]
    pub execution_attempts: i32,

    /// Failed submissions since the last successful one; drives submission retries.
    #[serde(default)]
    pub submission_failures: i32,

    /// Failed runs counted against `restartPolicy.onFailureRetries`.
    #[serde(default)]
    pub execution_failures: i32,

    /// When the application was last submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_submission_attempt_time: Option<Time>,

    /// When a PENDING_RERUN application is submitted again (after its backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_time: Option<Time>,

    /// When the last run ended (COMPLETED or FAILED), or the last submission failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_time: Option<Time>,
}

/// The application's state.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationState {
    /// The state, with kubeflow spark-operator's names.
    #[serde(default)]
    pub state: AppState,

    /// Why the application failed, or why its last run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Application states (kubeflow spark-operator's names).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AppState {
    /// Not yet seen by the operator.
    #[default]
    #[serde(rename = "")]
    New,
    /// The driver pod and service were created; the driver is not running yet.
    #[serde(rename = "SUBMITTED")]
    Submitted,
    /// The driver pod runs; executors are created and kept at `executor.instances`.
    #[serde(rename = "RUNNING")]
    Running,
    /// The driver exited with code 0.
    #[serde(rename = "COMPLETED")]
    Completed,
    /// The application failed for good: invalid spec, or a failed run with no retries left.
    #[serde(rename = "FAILED")]
    Failed,
    /// The API server rejected the submission and no retries are left.
    #[serde(rename = "SUBMISSION_FAILED")]
    SubmissionFailed,
    /// A rerun is due: old pods are deleted and a new submission follows after backoff.
    #[serde(rename = "PENDING_RERUN")]
    PendingRerun,
    /// `spec.suspend` is true: no pods run.
    #[serde(rename = "SUSPENDED")]
    Suspended,
}

impl AppState {
    /// Every state, for metrics that report a zero for states no application is in.
    pub const ALL: [AppState; 8] = [
        AppState::New,
        AppState::Submitted,
        AppState::Running,
        AppState::Completed,
        AppState::Failed,
        AppState::SubmissionFailed,
        AppState::PendingRerun,
        AppState::Suspended,
    ];

    /// The state's name as written in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::New => "",
            AppState::Submitted => "SUBMITTED",
            AppState::Running => "RUNNING",
            AppState::Completed => "COMPLETED",
            AppState::Failed => "FAILED",
            AppState::SubmissionFailed => "SUBMISSION_FAILED",
            AppState::PendingRerun => "PENDING_RERUN",
            AppState::Suspended => "SUSPENDED",
        }
    }

    /// The application has ended and will not run again unless its spec changes.
    pub fn is_terminal(self) -> bool {
        matches!(self, AppState::Completed | AppState::Failed | AppState::SubmissionFailed)
    }
}

/// State of one executor pod.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExecutorState {
    /// Created, not running yet.
    #[serde(rename = "PENDING")]
    Pending,
    /// Running.
    #[serde(rename = "RUNNING")]
    Running,
    /// Exited with code 0.
    #[serde(rename = "COMPLETED")]
    Completed,
    /// Exited with an error, or was deleted while the application ran.
    #[serde(rename = "FAILED")]
    Failed,
    /// The kubelet cannot report on the pod.
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

/// A condition of the application, in the Kubernetes style.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppCondition {
    /// Condition type: `Submitted`, `Running`, `Completed`, `Failed`, `PendingRerun` or
    /// `Suspended`; the one matching the current state is `True`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason of the last change, in PascalCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Where to find the driver.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverInfo {
    /// Name of the driver pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Name of the Service in front of the driver's web UI (`<name>-ui-svc`); unset when
    /// the UI is off (`spark.ui.enabled=false`) or the operator runs with
    /// `--enable-ui-service=false`.
    #[serde(default, rename = "webUIServiceName", skip_serializing_if = "Option::is_none")]
    pub web_ui_service_name: Option<String>,
    /// Port of the web UI on that Service (`sparkUIOptions.servicePort`, else the UI port).
    #[serde(default, rename = "webUIPort", skip_serializing_if = "Option::is_none")]
    pub web_ui_port: Option<i32>,
    /// In-cluster address of the web UI: the Service's cluster IP and port (`ip:port`), set
    /// once the API server has allocated the IP.
    #[serde(default, rename = "webUIAddress", skip_serializing_if = "Option::is_none")]
    pub web_ui_address: Option<String>,
    /// Name of the Ingress in front of the UI Service (`<name>-ui-ingress`), when the
    /// operator runs with `--ingress-url-format`.
    #[serde(default, rename = "webUIIngressName", skip_serializing_if = "Option::is_none")]
    pub web_ui_ingress_name: Option<String>,
    /// URL of the web UI through that Ingress: the URL format with the application filled
    /// in (`http://` when the format names no scheme).
    #[serde(default, rename = "webUIIngressAddress", skip_serializing_if = "Option::is_none")]
    pub web_ui_ingress_address: Option<String>,
    /// The driver's port the web UI was found listening on once the driver ran:
    /// `spark.ui.port`, or a later port when that one was taken in the driver pod (the
    /// UI Service is then re-targeted at it). Unset until found.
    #[serde(default, rename = "webUITargetPort", skip_serializing_if = "Option::is_none")]
    pub web_ui_target_port: Option<i32>,
}
