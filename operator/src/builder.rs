//! Pure builders: `SparkApplication` → the driver pod, its headless Service and executor
//! pods, carrying the engine's pod contract (docs/ENVIRONMENT.md).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, LocalObjectReference,
    ObjectFieldSelector, Pod, PodSpec, ResourceRequirements, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::{PodSettings, SparkApplication};
use crate::customization::PodCustom;
use crate::spec::{RoleResources, ValidSpec};

/// Label with the application's name (kubeflow spark-operator's key).
pub const LABEL_APP_NAME: &str = "sparkoperator.k8s.io/app-name";
/// Label with the pod's role: `driver` or `executor` (kubeflow spark-operator's key).
pub const LABEL_ROLE: &str = "spark-role";
/// Label with an executor pod's id.
pub const LABEL_EXECUTOR_ID: &str = "ember.dev/executor-id";
/// Label with the application's name that only Ember sets: unlike [`LABEL_APP_NAME`],
/// which kubeflow's spark-operator sets too, it never matches another operator's pods.
pub const LABEL_EMBER_APP_NAME: &str = "ember.dev/app-name";
/// Label with the UID of the application object a pod belongs to. Every selector the
/// operator acts on includes it, so pods of an earlier application object of the same
/// name (deleted and recreated) are never counted, adopted or deleted as this one's.
pub const LABEL_APP_UID: &str = "ember.dev/app-uid";
/// Label marking objects this operator created.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "ember-operator";

/// Port of the driver's gRPC service (the `ember://0.0.0.0:PORT` master).
pub const DRIVER_RPC_PORT: i32 = 7078;
/// Name of the engine container in every pod.
pub const CONTAINER_NAME: &str = "ember";

/// Role of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The driver.
    Driver,
    /// An executor.
    Executor,
}

impl Role {
    /// Value of the [`LABEL_ROLE`] label and of `EMBER_ROLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Executor => "executor",
        }
    }
}

/// Name of the driver pod.
pub fn driver_pod_name(app_name: &str) -> String {
    format!("{app_name}-driver")
}

/// Name of the headless Service in front of the driver.
pub fn driver_service_name(app_name: &str) -> String {
    format!("{app_name}-driver-svc")
}

/// Name of executor pod `id`.
pub fn executor_pod_name(app_name: &str, id: i32) -> String {
    format!("{app_name}-exec-{id}")
}

/// The URL executors dial to reach the driver, through its headless Service.
pub fn driver_url(app_name: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{DRIVER_RPC_PORT}", driver_service_name(app_name))
}

/// The UID of an application object, as its pods' [`LABEL_APP_UID`] carries it (empty
/// for an object the API server has not stored, as in pure builder tests).
pub fn app_uid(app: &SparkApplication) -> String {
    app.metadata.uid.clone().unwrap_or_default()
}

/// Label selector of every pod under an application's name: kubeflow's key, which every
/// Ember pod carries (also those made before [`LABEL_EMBER_APP_NAME`] existed); the
/// reconciler keeps Ember's own and tells this object's from earlier ones'
/// ([`crate::reconciler::split_by_object`]).
pub fn same_name_selector(app_name: &str) -> String {
    format!("{LABEL_APP_NAME}={app_name}")
}

/// Label selector of every pod of this application object (name and UID).
pub fn app_selector(app: &SparkApplication) -> String {
    format!("{LABEL_EMBER_APP_NAME}={},{LABEL_APP_UID}={}", app.name_any(), app_uid(app))
}

/// Label selector of this application object's executor pods.
pub fn executor_selector(app: &SparkApplication) -> String {
    format!("{},{LABEL_ROLE}=executor", app_selector(app))
}

/// The controller owner reference to the application that every object the operator
/// creates carries.
pub fn owner_reference(app: &SparkApplication) -> OwnerReference {
    // Controller owner reference: deleting the application deletes its pods and Service,
    // and the Controller maps pod and Service events back to the application.
    app.controller_owner_ref(&()).unwrap_or_else(|| OwnerReference {
        api_version: SparkApplication::api_version(&()).into_owned(),
        kind: SparkApplication::kind(&()).into_owned(),
        name: app.name_any(),
        uid: app.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Labels selecting an application's driver pod: Ember's own name and UID labels, so a
/// Service never selects the driver of a kubeflow application of the same name.
pub fn driver_selector_labels(app: &SparkApplication) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_EMBER_APP_NAME.to_string(), app.name_any()),
        (LABEL_APP_UID.to_string(), app_uid(app)),
        (LABEL_ROLE.to_string(), Role::Driver.as_str().to_string()),
    ])
}

/// Every pod's own labels: kubeflow's keys (for tools and dashboards that know them) and
/// Ember's (which selectors use).
fn base_labels(app: &SparkApplication, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_APP_NAME.to_string(), app.name_any()),
        (LABEL_EMBER_APP_NAME.to_string(), app.name_any()),
        (LABEL_APP_UID.to_string(), app_uid(app)),
        (LABEL_ROLE.to_string(), role.as_str().to_string()),
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
    ])
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_string(), value: Some(value.into()), value_from: None }
}

fn resources(res: &RoleResources) -> ResourceRequirements {
    let memory = Quantity(format!("{}Mi", res.pod_memory_mib()));
    let mut limits = BTreeMap::from([("memory".to_string(), memory.clone())]);
    if let Some(cpu) = &res.core_limit {
        limits.insert("cpu".to_string(), Quantity(cpu.clone()));
    }
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(res.cores.to_string())),
            ("memory".to_string(), memory),
        ])),
        limits: Some(limits),
        ..Default::default()
    }
}

/// The `EMBER_CONF` JSON: the application's `sparkConf` plus the settings the operator
/// derives from the spec (which win over `sparkConf`, as the pods are sized from them),
/// and the executors' metrics port and the UI's proxy base when `sparkConf` leaves them
/// to the operator.
pub fn ember_conf(app: &SparkApplication, valid: &ValidSpec) -> String {
    let mut conf: BTreeMap<String, String> = app.spec.spark_conf.clone();
    if let Some(port) = valid.ui.executor_metrics_conf {
        conf.insert("ember.executor.metrics.port".into(), port.to_string());
    }
    if let Some(base) = &valid.ui.proxy_base_conf {
        conf.insert("spark.ui.proxyBase".into(), base.clone());
    }
    if !valid.files.is_empty() {
        let mut files: Vec<String> = conf.get("spark.files").into_iter().cloned().collect();
        files.extend(valid.files.iter().cloned());
        conf.insert("spark.files".into(), files.join(","));
    }
    conf.insert("spark.app.name".into(), app.name_any());
    // Spark's key; it also tells this driver's UI from others (crate::ui_port).
    conf.insert(crate::ui_port::DRIVER_POD_NAME_KEY.into(), driver_pod_name(&app.name_any()));
    conf.extend(crate::allocation::conf_entries(&app.spec));
    conf.insert(crate::allocation::MANAGED_KEY.into(), valid.dynamic_allocation.is_some().to_string());
    conf.insert("spark.executor.instances".into(), app.spec.executor.instances.to_string());
    conf.insert("spark.executor.cores".into(), valid.executor.cores.to_string());
    conf.insert("spark.executor.memory".into(), format!("{}m", valid.executor.memory_mib));
    serde_json::to_string(&conf).expect("a string map always serializes")
}

/// The role-specific parts of a pod.
struct PodParts<'a> {
    name: String,
    role: Role,
    settings: &'a PodSettings,
    resources: &'a RoleResources,
    command: Vec<String>,
    role_env: Vec<EnvVar>,
    ports: Option<Vec<ContainerPort>>,
    extra_labels: BTreeMap<String, String>,
    /// Port of the pod's Prometheus `/metrics`, when known.
    metrics_port: Option<i32>,
    /// Add the scrape annotations for `metrics_port`.
    scrape: bool,
    /// Mount the application's `spark.authenticate` secret ([`crate::auth`]).
    authenticate: bool,
    /// The role's customisation, laid on last.
    custom: &'a PodCustom,
}

fn pod(app: &SparkApplication, parts: PodParts<'_>) -> Pod {
    let PodParts {
        name,
        role,
        settings,
        resources: res,
        command,
        role_env,
        ports,
        extra_labels,
        metrics_port,
        scrape,
        authenticate,
        custom,
    } = parts;
    // User labels first, so the operator's own labels (which selectors rely on) win.
    let mut labels = settings.labels.clone();
    labels.extend(base_labels(app, role));
    labels.extend(extra_labels);
    // User env first; validation already refused user values for the contract's variables.
    let mut container_env = settings.env.clone();
    container_env.extend(role_env);
    let mut volume_mounts = settings.volume_mounts.clone();
    // Scrape annotations first, so a user's own `prometheus.io/*` annotations win.
    let mut annotations = match metrics_port {
        Some(port) if scrape => crate::ui::scrape_annotations(port),
        _ => BTreeMap::new(),
    };
    annotations.extend(settings.annotations.clone());

    let mounted: Vec<&str> = settings.volume_mounts.iter().map(|m| m.name.as_str()).collect();
    // Only the volumes this role mounts: an unused volume (say, a PVC only executors use)
    // must not hold up scheduling of the other role's pods.
    let mut volumes: Vec<Volume> =
        app.spec.volumes.iter().filter(|v| mounted.contains(&v.name.as_str())).cloned().collect();
    if authenticate {
        let (volume, mount, env) = crate::auth::pod_parts(app);
        volumes.push(volume);
        volume_mounts.push(mount);
        container_env.push(env);
    }
    if let Some(map) = &app.spec.spark_config_map {
        volumes.push(Volume {
            name: SPARK_CONF_VOLUME.to_string(),
            config_map: Some(ConfigMapVolumeSource { name: map.clone(), ..Default::default() }),
            ..Default::default()
        });
        volume_mounts.push(VolumeMount {
            name: SPARK_CONF_VOLUME.to_string(),
            mount_path: SPARK_CONF_DIR.to_string(),
            read_only: Some(true),
            ..Default::default()
        });
        container_env.push(env("SPARK_CONF_DIR", SPARK_CONF_DIR));
    }
    // Spill and shuffle files on a volume of the pod, not the container's writable
    // layer, unless the application brings its own spark-local-dir-* volume (Spark's
    // convention on Kubernetes).
    let template_local_dir = custom
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref()?.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.name.starts_with(LOCAL_DIR_VOLUME_PREFIX)));
    if !template_local_dir && !settings.volume_mounts.iter().any(|m| m.name.starts_with(LOCAL_DIR_VOLUME_PREFIX)) {
        volumes.push(local_dir_volume(app, role));
        volume_mounts.push(VolumeMount {
            name: LOCAL_DIR_VOLUME.to_string(),
            mount_path: LOCAL_DIR_PATH.to_string(),
            ..Default::default()
        });
        container_env.push(env("EMBER_LOCAL_DIRS", LOCAL_DIR_PATH));
    }

    let container = Container {
        name: CONTAINER_NAME.to_string(),
        image: Some(app.spec.image.clone()),
        image_pull_policy: app.spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: Some(command),
        env: Some(container_env),
        ports,
        resources: Some(resources(res)),
        volume_mounts: (!volume_mounts.is_empty()).then_some(volume_mounts),
        // When the job fails without writing a termination message, the end of its log
        // becomes the message, which the operator copies into status.errorMessage.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        security_context: Some(crate::pod_security::default_security_context()),
        ..Default::default()
    };

    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: app.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner_reference(app)]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".to_string()),
            service_account_name: settings.service_account.clone(),
            // Ember processes never call the Kubernetes API.
            automount_service_account_token: Some(false),
            security_context: Some(crate::pod_security::default_pod_security_context()),
            node_selector: (!settings.node_selector.is_empty()).then(|| settings.node_selector.clone()),
            tolerations: (!settings.tolerations.is_empty()).then(|| settings.tolerations.clone()),
            affinity: settings.affinity.clone(),
            volumes: (!volumes.is_empty()).then_some(volumes),
            image_pull_secrets: (!app.spec.image_pull_secrets.is_empty()).then(|| {
                app.spec.image_pull_secrets.iter().map(|name| LocalObjectReference { name: name.clone() }).collect()
            }),
            ..Default::default()
        }),
        status: None,
    };
    crate::customization::apply(pod, custom)
}

/// Volume of the application's `sparkConfigMap`.
pub const SPARK_CONF_VOLUME: &str = "spark-conf-vol";
/// Where `sparkConfigMap` is mounted (`SPARK_CONF_DIR`).
pub const SPARK_CONF_DIR: &str = "/etc/ember/conf";

/// Name of the emptyDir volume for spill and shuffle files (Spark's `spark-local-dir-1`).
pub const LOCAL_DIR_VOLUME: &str = "spark-local-dir-1";
/// Volumes named with this prefix are local dirs (Spark's convention on Kubernetes).
pub const LOCAL_DIR_VOLUME_PREFIX: &str = "spark-local-dir-";
/// Where [`LOCAL_DIR_VOLUME`] is mounted; the engine's `EMBER_LOCAL_DIRS`.
pub const LOCAL_DIR_PATH: &str = "/var/data/spark-local-dir-1";

/// The local dir volume of a role: an emptyDir, sized by Spark's
/// `spark.kubernetes.<role>.volumes.emptyDir.spark-local-dir-1.options.sizeLimit` when
/// `sparkConf` sets it, in memory with `spark.kubernetes.local.dirs.tmpfs=true`.
fn local_dir_volume(app: &SparkApplication, role: Role) -> Volume {
    let conf = &app.spec.spark_conf;
    let size_key = format!("spark.kubernetes.{}.volumes.emptyDir.{LOCAL_DIR_VOLUME}.options.sizeLimit", role.as_str());
    let tmpfs = conf.get("spark.kubernetes.local.dirs.tmpfs").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Volume {
        name: LOCAL_DIR_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: tmpfs.then(|| "Memory".to_string()),
            size_limit: conf.get(&size_key).map(|s| Quantity(s.trim().to_string())),
        }),
        ..Default::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort { name: Some(name.into()), container_port: port, protocol: Some("TCP".into()), ..Default::default() }
}

/// The driver pod: the job binary with `arguments`, in the driver role.
pub fn driver_pod(app: &SparkApplication, valid: &ValidSpec) -> Pod {
    let app_name = app.name_any();
    let mut command = vec![valid.binary_path.clone()];
    command.extend(app.spec.arguments.iter().cloned());
    let role_env = vec![
        env("EMBER_ROLE", Role::Driver.as_str()),
        env("EMBER_MASTER", format!("ember://0.0.0.0:{DRIVER_RPC_PORT}")),
        env("EMBER_CONF", ember_conf(app, valid)),
    ];
    let mut ports = vec![container_port("driver-rpc", DRIVER_RPC_PORT)];
    // The UI's port also serves the driver's Prometheus /metrics.
    let ui_port = valid.ui.ui_port.filter(|p| *p != 0);
    if let Some(port) = ui_port {
        ports.push(container_port(crate::ui::DRIVER_UI_PORT_NAME, port));
    }
    pod(
        app,
        PodParts {
            name: driver_pod_name(&app_name),
            role: Role::Driver,
            settings: &app.spec.driver.pod,
            resources: &valid.driver,
            command,
            role_env,
            ports: Some(ports),
            extra_labels: BTreeMap::new(),
            metrics_port: ui_port,
            scrape: valid.ui.scrape_annotations,
            authenticate: valid.authenticate,
            custom: &valid.driver_custom,
        },
    )
}

/// mimalloc settings of executor containers (the engine's allocator): freed memory goes
/// back to the system at once and arenas are committed as used, so an executor's RSS
/// follows its memory budget rather than the allocator's caches (85 MB against 46 MB in
/// the engine's shuffle-memory test; docs/BENCHMARKS.md). The same as `local-cluster`
/// executors get (`ember::cluster::EXECUTOR_ALLOCATOR_ENV`).
pub const EXECUTOR_ALLOCATOR_ENV: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0")];

/// Executor pod `id`: the job binary without arguments, in the executor role.
pub fn executor_pod(app: &SparkApplication, valid: &ValidSpec, id: i32) -> Pod {
    let app_name = app.name_any();
    let namespace = app.namespace().unwrap_or_default();
    let mut role_env = vec![
        env("EMBER_ROLE", Role::Executor.as_str()),
        env("EMBER_DRIVER_URL", driver_url(&app_name, &namespace)),
        env("EMBER_EXECUTOR_ID", id.to_string()),
        env("EMBER_EXECUTOR_CORES", valid.executor.cores.to_string()),
        env("EMBER_EXECUTOR_MEMORY_MB", valid.executor.memory_mib.to_string()),
        EnvVar {
            name: "EMBER_ADVERTISE_ADDRESS".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".into()),
                    field_path: "status.podIP".into(),
                }),
                ..Default::default()
            }),
        },
    ];
    // Unless the application sets them: see [`EXECUTOR_ALLOCATOR_ENV`].
    for (name, value) in EXECUTOR_ALLOCATOR_ENV {
        if !app.spec.executor.pod.env.iter().any(|e| e.name == name) {
            role_env.push(env(name, value));
        }
    }
    pod(
        app,
        PodParts {
            name: executor_pod_name(&app_name, id),
            role: Role::Executor,
            settings: &app.spec.executor.pod,
            resources: &valid.executor,
            command: vec![valid.binary_path.clone()],
            role_env,
            ports: valid
                .ui
                .executor_metrics_port
                .map(|port| vec![container_port(crate::ui::EXECUTOR_METRICS_PORT_NAME, port)]),
            extra_labels: BTreeMap::from([(LABEL_EXECUTOR_ID.to_string(), id.to_string())]),
            metrics_port: valid.ui.executor_metrics_port,
            scrape: valid.ui.scrape_annotations,
            authenticate: valid.authenticate,
            custom: &valid.executor_custom,
        },
    )
}

/// The headless Service executors reach the driver through (gRPC, and the web UI's port
/// when the UI is on, as in Spark's own driver Service).
pub fn driver_service(app: &SparkApplication, valid: &ValidSpec) -> Service {
    let app_name = app.name_any();
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let selector = driver_selector_labels(app);
    let mut labels = selector.clone();
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    Service {
        metadata: ObjectMeta {
            name: Some(driver_service_name(&app_name)),
            namespace: app.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(app)]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector),
            // The driver has no readiness probe; executors must resolve it as soon as it runs.
            publish_not_ready_addresses: Some(true),
            ports: Some(
                std::iter::once(port("driver-rpc", DRIVER_RPC_PORT))
                    .chain(valid.ui.ui_port.filter(|p| *p != 0).map(|p| port(crate::ui::DRIVER_UI_PORT_NAME, p)))
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SparkApplicationSpec;
    use crate::spec::validate;

    fn app() -> SparkApplication {
        let spec: SparkApplicationSpec = serde_json::from_value(serde_json::json!({
            "image": "ember-engine:dev",
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": "local:///opt/ember/bin/ember-examples",
            "arguments": ["sumsq", "--n", "1000"],
            "sparkConf": {"spark.speculation": "true"},
            "driver": {"cores": 1, "memory": "512m", "labels": {"team": "data"}},
            "executor": {"instances": 2, "cores": 2, "coreLimit": "2500m", "memory": "4g",
                          "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "unused", "emptyDir": {}}]
        }))
        .unwrap();
        let mut app = SparkApplication::new("sumsq", spec);
        app.metadata.namespace = Some("jobs".into());
        app.metadata.uid = Some("uid-1".into());
        app
    }

    fn env_of(pod: &Pod) -> BTreeMap<String, EnvVar> {
        pod.spec.as_ref().unwrap().containers[0].env.clone().unwrap().into_iter().map(|e| (e.name.clone(), e)).collect()
    }

    fn value(env: &BTreeMap<String, EnvVar>, name: &str) -> String {
        env[name].value.clone().unwrap()
    }

    #[test]
    fn driver_pod_carries_the_driver_contract() {
        let app = app();
        let pod = driver_pod(&app, &validate(&app).unwrap());
        assert_eq!(pod.metadata.name.as_deref(), Some("sumsq-driver"));
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_APP_NAME], "sumsq");
        assert_eq!(labels[LABEL_ROLE], "driver");
        assert_eq!(labels["team"], "data");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("SparkApplication", "uid-1"));
        assert_eq!(owner.controller, Some(true));

        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        let volumes: Vec<_> = spec.volumes.clone().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(volumes, [LOCAL_DIR_VOLUME], "the driver mounts only its local dir");
        assert_eq!(value(&env_of(&pod), "EMBER_LOCAL_DIRS"), LOCAL_DIR_PATH);
        let c = &spec.containers[0];
        assert_eq!(c.command.clone().unwrap(), ["/opt/ember/bin/ember-examples", "sumsq", "--n", "1000"]);
        assert_eq!(c.args, None);
        let env = env_of(&pod);
        assert_eq!(value(&env, "EMBER_ROLE"), "driver");
        assert_eq!(value(&env, "EMBER_MASTER"), "ember://0.0.0.0:7078");
        let conf: BTreeMap<String, String> = serde_json::from_str(&value(&env, "EMBER_CONF")).unwrap();
        assert_eq!(conf["spark.speculation"], "true");
        assert_eq!(conf["spark.executor.instances"], "2");
        assert_eq!(conf["spark.app.name"], "sumsq");
        assert_eq!(conf["spark.executor.cores"], "2");
        assert_eq!(conf["spark.executor.memory"], "4096m");
        let ports: Vec<_> = c.ports.clone().unwrap().into_iter().map(|p| (p.name.unwrap(), p.container_port)).collect();
        assert_eq!(ports, [("driver-rpc".into(), 7078), ("ui".into(), 4040)]);
        let res = c.resources.clone().unwrap();
        assert_eq!(res.requests.as_ref().unwrap()["cpu"].0, "1");
        // 512 MiB + the 384 MiB minimum overhead.
        assert_eq!(res.requests.as_ref().unwrap()["memory"].0, "896Mi");
        assert_eq!(res.limits.as_ref().unwrap()["memory"].0, "896Mi");
        assert!(!res.limits.as_ref().unwrap().contains_key("cpu"));
    }

    #[test]
    fn executor_pod_carries_the_executor_contract() {
        let app = app();
        let pod = executor_pod(&app, &validate(&app).unwrap(), 3);
        assert_eq!(pod.metadata.name.as_deref(), Some("sumsq-exec-3"));
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_ROLE], "executor");
        assert_eq!(labels[LABEL_EXECUTOR_ID], "3");
        let spec = pod.spec.as_ref().unwrap();
        let c = &spec.containers[0];
        assert_eq!(c.command.clone().unwrap(), ["/opt/ember/bin/ember-examples"]);
        let env = env_of(&pod);
        assert_eq!(value(&env, "EMBER_ROLE"), "executor");
        assert_eq!(value(&env, "EMBER_DRIVER_URL"), "http://sumsq-driver-svc.jobs.svc:7078");
        assert_eq!(value(&env, "EMBER_EXECUTOR_ID"), "3");
        assert_eq!(value(&env, "EMBER_EXECUTOR_CORES"), "2");
        assert_eq!(value(&env, "EMBER_EXECUTOR_MEMORY_MB"), "4096");
        assert_eq!(value(&env, "MIMALLOC_PURGE_DELAY"), "0");
        assert_eq!(value(&env, "MIMALLOC_ARENA_EAGER_COMMIT"), "0");
        let advertise = env["EMBER_ADVERTISE_ADDRESS"].value_from.clone().unwrap();
        assert_eq!(advertise.field_ref.unwrap().field_path, "status.podIP");
        assert!(!env.contains_key("EMBER_CONF"));
        let res = c.resources.clone().unwrap();
        assert_eq!(res.requests.as_ref().unwrap()["cpu"].0, "2");
        assert_eq!(res.limits.as_ref().unwrap()["cpu"].0, "2500m");
        // 4096 MiB + 10% overhead.
        assert_eq!(res.limits.as_ref().unwrap()["memory"].0, "4505Mi");
        let volumes: Vec<_> = spec.volumes.clone().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(volumes, ["data", LOCAL_DIR_VOLUME], "only mounted volumes, and the local dir");
    }

    #[test]
    fn the_applications_allocator_settings_win_and_appear_once() {
        let mut app = app();
        app.spec.executor.pod.env =
            vec![EnvVar { name: "MIMALLOC_PURGE_DELAY".into(), value: Some("50".into()), value_from: None }];
        let pod = executor_pod(&app, &validate(&app).unwrap(), 1);
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let purge: Vec<_> = env.iter().filter(|e| e.name == "MIMALLOC_PURGE_DELAY").collect();
        assert_eq!(purge.len(), 1, "{env:?}");
        assert_eq!(purge[0].value.as_deref(), Some("50"));
        assert!(env.iter().any(|e| e.name == "MIMALLOC_ARENA_EAGER_COMMIT"), "the other one is still set");
    }

    #[test]
    fn driver_service_is_headless_and_selects_the_driver() {
        let app = app();
        let svc = driver_service(&app, &validate(&app).unwrap());
        assert_eq!(svc.metadata.name.as_deref(), Some("sumsq-driver-svc"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        let selector = spec.selector.unwrap();
        assert_eq!(selector[LABEL_EMBER_APP_NAME], "sumsq");
        assert_eq!(selector[LABEL_APP_UID], app.metadata.uid.clone().unwrap_or_default());
        assert_eq!(selector[LABEL_ROLE], "driver");
        assert!(!selector.contains_key(LABEL_APP_NAME), "kubeflow's label would select kubeflow's driver too");
        let ports: Vec<_> = spec.ports.unwrap().into_iter().map(|p| p.port).collect();
        assert_eq!(ports, [7078, 4040]);
    }

    #[test]
    fn pods_carry_scrape_annotations_and_metrics_ports() {
        let mut app = app();
        app.spec.spark_conf.insert("spark.ui.port".into(), "4050".into());
        app.spec.driver.pod.annotations.insert("prometheus.io/path".into(), "/custom".into());
        let valid = validate(&app).unwrap();
        let driver = driver_pod(&app, &valid);
        let annotations = driver.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], "4050", "the UI's port serves the driver's /metrics");
        assert_eq!(annotations["prometheus.io/path"], "/custom", "the user's annotation wins");
        let ports: Vec<_> = driver.spec.unwrap().containers[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port))
            .collect();
        assert_eq!(ports, [("driver-rpc".into(), 7078), ("ui".into(), 4050)]);
        let env = env_of(&driver_pod(&app, &valid));
        let conf: BTreeMap<String, String> = serde_json::from_str(&value(&env, "EMBER_CONF")).unwrap();
        assert_eq!(conf["ember.executor.metrics.port"], "8090", "the operator fixes the executors' metrics port");

        let exec = executor_pod(&app, &valid, 1);
        let annotations = exec.metadata.annotations.clone().unwrap();
        assert_eq!(
            (annotations["prometheus.io/port"].as_str(), annotations["prometheus.io/path"].as_str()),
            ("8090", "/metrics")
        );
        let port = &exec.spec.unwrap().containers[0].ports.clone().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.container_port), (Some("metrics"), 8090));

        // The UI off: no UI port anywhere, no driver scrape annotations; a user's executor
        // metrics port is kept and announced.
        app.spec.spark_conf.insert("spark.ui.enabled".into(), "false".into());
        app.spec.spark_conf.insert("ember.executor.metrics.port".into(), "9100".into());
        app.spec.driver.pod.annotations.clear();
        let valid = validate(&app).unwrap();
        let driver = driver_pod(&app, &valid);
        assert_eq!(driver.metadata.annotations, None);
        assert_eq!(driver.spec.unwrap().containers[0].ports.clone().unwrap().len(), 1);
        let svc_ports = driver_service(&app, &valid).spec.unwrap().ports.unwrap();
        assert_eq!(svc_ports.iter().map(|p| p.port).collect::<Vec<_>>(), [7078]);
        let env = env_of(&driver_pod(&app, &valid));
        let conf: BTreeMap<String, String> = serde_json::from_str(&value(&env, "EMBER_CONF")).unwrap();
        assert_eq!(conf["ember.executor.metrics.port"], "9100");
        let exec = executor_pod(&app, &valid, 1);
        assert_eq!(exec.metadata.annotations.unwrap()["prometheus.io/port"], "9100");

        // Annotations off (the operator's --metrics-pod-annotations=false).
        let settings = crate::ui::UiSettings { scrape_annotations: false, ..Default::default() };
        let valid = crate::spec::validate_with(&app, &settings).unwrap();
        assert_eq!(executor_pod(&app, &valid, 1).metadata.annotations, None);
    }
}
