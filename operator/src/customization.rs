//! Pod customisation per role (kubeflow spark-operator v1beta2's `SparkPodSpec` fields):
//! parsed and checked from the spec ([`parse`]), then laid onto the pod the builder made
//! ([`apply`]).
//!
//! The large Kubernetes objects (`securityContext`, `podSecurityContext`, `lifecycle`,
//! `initContainers`, `sidecars`, `template`) are kept as given by the API server
//! (`x-kubernetes-preserve-unknown-fields`), since their full schemas, twice, would make
//! the CRD too large for `kubectl apply`; they are parsed here into the Kubernetes types,
//! and a field that does not parse fails the application with its path.
//!
//! `template` is kubeflow v2's pod template: a whole pod (metadata and spec) under the
//! operator's own fields. Objects merge key by key, lists of named items (containers,
//! volumes, env, ports, mounts) merge by name, and wherever both set a value the
//! operator's wins, so the pod contract and the selectors' labels always hold.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvFromSource, Lifecycle, Pod, PodDNSConfig, PodSecurityContext, PodTemplateSpec,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::crd::{GpuSpec, NamePath, PodSettings};
use crate::spec::SpecError;

/// Suffix of the volumes `configMaps` mount (kubeflow's names).
const CONFIG_MAP_VOLUME_SUFFIX: &str = "-vol";
/// Suffix of the volumes `secrets` mount.
const SECRET_VOLUME_SUFFIX: &str = "-secret-vol";

/// A role's customisation, parsed and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodCustom {
    /// Image of this role instead of `spec.image`.
    pub image: Option<String>,
    /// CPU request instead of `cores`.
    pub core_request: Option<String>,
    /// GPU limit.
    pub gpu: Option<GpuSpec>,
    /// The engine container's security context, replacing the default.
    pub security_context: Option<SecurityContext>,
    /// The pod's security context, replacing the default.
    pub pod_security_context: Option<PodSecurityContext>,
    /// Containers run before the engine's.
    pub init_containers: Vec<Container>,
    /// Containers run beside the engine's.
    pub sidecars: Vec<Container>,
    /// `priorityClassName`.
    pub priority_class_name: Option<String>,
    /// `schedulerName`.
    pub scheduler_name: Option<String>,
    /// `hostNetwork`.
    pub host_network: Option<bool>,
    /// `dnsConfig`.
    pub dns_config: Option<PodDNSConfig>,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_period_seconds: Option<i64>,
    /// The engine container's lifecycle hooks.
    pub lifecycle: Option<Lifecycle>,
    /// `envFrom` of the engine container.
    pub env_from: Vec<EnvFromSource>,
    /// ConfigMaps mounted at their paths.
    pub config_maps: Vec<NamePath>,
    /// Secrets mounted at their paths.
    pub secrets: Vec<NamePath>,
    /// The pod template the operator's pod is laid over.
    pub template: Option<PodTemplateSpec>,
}

fn parse_value<T: DeserializeOwned>(value: &Value, field: &str) -> Result<T, SpecError> {
    serde_json::from_value(value.clone()).map_err(|e| SpecError::new(field, format!("not a valid object: {e}")))
}

/// Parses and checks a role's customisation; `field` is `driver` or `executor`.
///
/// Errors: a Kubernetes object that does not parse, a sidecar or init container without
/// a name or named like the engine container, a negative grace period, a GPU quantity
/// below 1, a `configMaps`/`secrets` path that is not absolute.
pub fn parse(settings: &PodSettings, field: &str) -> Result<PodCustom, SpecError> {
    let at = |name: &str| format!("spec.{field}.{name}");
    let parse_containers = |values: &[Value], name: &str| -> Result<Vec<Container>, SpecError> {
        let mut containers = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let container: Container = parse_value(value, &format!("{}[{i}]", at(name)))?;
            let problem = if container.name.is_empty() {
                Some("a container needs a name".to_string())
            } else if container.name == crate::builder::CONTAINER_NAME {
                Some(format!("{:?} is the engine container's name", crate::builder::CONTAINER_NAME))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(SpecError::new(format!("{}[{i}].name", at(name)), problem));
            }
            containers.push(container);
        }
        Ok(containers)
    };
    if let Some(secs) = settings.termination_grace_period_seconds
        && secs < 0
    {
        return Err(SpecError::new(at("terminationGracePeriodSeconds"), format!("{secs} is below the minimum of 0")));
    }
    if let Some(gpu) = &settings.gpu
        && (gpu.quantity < 1 || gpu.name.trim().is_empty())
    {
        return Err(SpecError::new(
            at("gpu"),
            "needs a resource name (e.g. nvidia.com/gpu) and a quantity of at least 1",
        ));
    }
    let mut volume_names = std::collections::BTreeSet::new();
    for (list, name, suffix) in [
        (&settings.config_maps, "configMaps", CONFIG_MAP_VOLUME_SUFFIX),
        (&settings.secrets, "secrets", SECRET_VOLUME_SUFFIX),
    ] {
        for (i, item) in list.iter().enumerate() {
            if !item.path.starts_with('/') {
                return Err(SpecError::new(
                    format!("{}[{i}].path", at(name)),
                    format!("{:?} is not an absolute path", item.path),
                ));
            }
            // The volume's name is a DNS-1123 label made from the object's name.
            let volume = format!("{}{suffix}", item.name);
            let label = volume.len() <= 63
                && volume.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && volume.starts_with(|c: char| c.is_ascii_alphanumeric());
            if !label || !volume_names.insert(volume.clone()) {
                return Err(SpecError::new(
                    format!("{}[{i}].name", at(name)),
                    format!(
                        "{:?} gives the volume name {volume:?}, which is not a DNS-1123 label of at most 63 \
                         characters or is used twice",
                        item.name
                    ),
                ));
            }
        }
    }
    let template: Option<PodTemplateSpec> =
        settings.template.as_ref().map(|v| parse_value(v, &at("template"))).transpose()?;
    Ok(PodCustom {
        image: settings.image.clone().filter(|i| !i.trim().is_empty()),
        core_request: settings.core_request.clone(),
        gpu: settings.gpu.clone(),
        security_context: settings
            .security_context
            .as_ref()
            .map(|v| parse_value(v, &at("securityContext")))
            .transpose()?,
        pod_security_context: settings
            .pod_security_context
            .as_ref()
            .map(|v| parse_value(v, &at("podSecurityContext")))
            .transpose()?,
        init_containers: parse_containers(&settings.init_containers, "initContainers")?,
        sidecars: parse_containers(&settings.sidecars, "sidecars")?,
        priority_class_name: settings.priority_class_name.clone(),
        scheduler_name: settings.scheduler_name.clone(),
        host_network: settings.host_network,
        dns_config: settings.dns_config.clone(),
        termination_grace_period_seconds: settings.termination_grace_period_seconds,
        lifecycle: settings.lifecycle.as_ref().map(|v| parse_value(v, &at("lifecycle"))).transpose()?,
        env_from: settings.env_from.clone(),
        config_maps: settings.config_maps.clone(),
        secrets: settings.secrets.clone(),
        template,
    })
}

/// Lays `custom` onto `pod` (built by [`crate::builder`], engine container first), then
/// `pod` over the role's `template`.
pub fn apply(mut pod: Pod, custom: &PodCustom) -> Pod {
    let spec = pod.spec.get_or_insert_with(Default::default);
    if let Some(context) = &custom.pod_security_context {
        spec.security_context = Some(context.clone());
    }
    if !custom.init_containers.is_empty() {
        spec.init_containers = Some(custom.init_containers.iter().map(with_default_security).collect());
    }
    spec.priority_class_name = custom.priority_class_name.clone().or(spec.priority_class_name.take());
    spec.scheduler_name = custom.scheduler_name.clone().or(spec.scheduler_name.take());
    if let Some(host) = custom.host_network {
        spec.host_network = Some(host);
        if host {
            // As kubeflow does: the pod keeps resolving cluster names.
            spec.dns_policy = Some("ClusterFirstWithHostNet".to_string());
        }
    }
    spec.dns_config = custom.dns_config.clone().or(spec.dns_config.take());
    spec.termination_grace_period_seconds =
        custom.termination_grace_period_seconds.or(spec.termination_grace_period_seconds);
    let mut volumes = spec.volumes.take().unwrap_or_default();
    let mut mounts = Vec::new();
    for item in &custom.config_maps {
        let name = format!("{}{CONFIG_MAP_VOLUME_SUFFIX}", item.name);
        volumes.push(Volume {
            name: name.clone(),
            config_map: Some(ConfigMapVolumeSource { name: item.name.clone(), ..Default::default() }),
            ..Default::default()
        });
        mounts.push(VolumeMount { name, mount_path: item.path.clone(), ..Default::default() });
    }
    for item in &custom.secrets {
        let name = format!("{}{SECRET_VOLUME_SUFFIX}", item.name);
        volumes.push(Volume {
            name: name.clone(),
            secret: Some(SecretVolumeSource { secret_name: Some(item.name.clone()), ..Default::default() }),
            ..Default::default()
        });
        mounts.push(VolumeMount { name, mount_path: item.path.clone(), read_only: Some(true), ..Default::default() });
    }
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    if let Some(engine) = spec.containers.first_mut() {
        if let Some(image) = &custom.image {
            engine.image = Some(image.clone());
        }
        if let Some(context) = &custom.security_context {
            engine.security_context = Some(context.clone());
        }
        if let Some(lifecycle) = &custom.lifecycle {
            engine.lifecycle = Some(lifecycle.clone());
        }
        if !custom.env_from.is_empty() {
            engine.env_from = Some(custom.env_from.clone());
        }
        if !mounts.is_empty() {
            engine.volume_mounts.get_or_insert_with(Vec::new).extend(mounts);
        }
        let resources = engine.resources.get_or_insert_with(Default::default);
        if let Some(cpu) = &custom.core_request {
            resources.requests.get_or_insert_with(BTreeMap::new).insert("cpu".into(), Quantity(cpu.clone()));
        }
        if let Some(gpu) = &custom.gpu {
            resources
                .limits
                .get_or_insert_with(BTreeMap::new)
                .insert(gpu.name.clone(), Quantity(gpu.quantity.to_string()));
        }
    }
    spec.containers.extend(custom.sidecars.iter().map(with_default_security));
    match &custom.template {
        Some(template) => over_template(template, pod),
        None => pod,
    }
}

/// A user's container, with the default security context when it sets none, so the pod
/// stays within the restricted Pod Security Standard unless asked otherwise.
fn with_default_security(container: &Container) -> Container {
    let mut container = container.clone();
    if container.security_context.is_none() {
        container.security_context = Some(crate::pod_security::default_security_context());
    }
    container
}

/// `pod` laid over `template`: the template's metadata and spec, with every value the
/// operator set winning.
fn over_template(template: &PodTemplateSpec, pod: Pod) -> Pod {
    let mut base = serde_json::json!({
        "metadata": serde_json::to_value(template.metadata.clone().unwrap_or_default()).unwrap_or_default(),
        "spec": serde_json::to_value(template.spec.clone().unwrap_or_default()).unwrap_or_default(),
    });
    let ours = serde_json::to_value(&pod).unwrap_or_default();
    merge(&mut base, ours, "");
    // Both sides were pods; the merge of two pods is a pod.
    serde_json::from_value(base).unwrap_or(pod)
}

/// The key that identifies an item of the list at `key` (Kubernetes' merge keys):
/// `mountPath` for volume mounts, `name` for other lists of named items.
fn merge_key(key: &str) -> &'static str {
    if key == "volumeMounts" { "mountPath" } else { "name" }
}

/// Merges `ours` (the value at `key`) into `base`: objects key by key; lists of keyed
/// items ([`merge_key`]) item by item, where a container present in both merges field by
/// field and any other item of ours replaces the template's whole (a volume or a
/// variable has exactly one source, so two would not be merged into one); anything else
/// replaced by `ours`.
fn merge(base: &mut Value, ours: Value, key: &str) {
    match (base, ours) {
        (Value::Object(base), Value::Object(ours)) => {
            for (key, value) in ours {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value, &key),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(ours))
            if ours.iter().chain(base.iter()).all(|v| v.get(merge_key(key)).is_some_and(Value::is_string)) =>
        {
            let id = merge_key(key);
            let containers = key == "containers" || key == "initContainers";
            for item in ours {
                match base.iter_mut().find(|b| b.get(id) == item.get(id)) {
                    Some(existing) if containers => merge(existing, item, ""),
                    Some(existing) => *existing = item,
                    None => base.push(item),
                }
            }
        }
        (base, ours) => *base = ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_lists_merge_by_name_and_ours_wins() {
        let mut base = serde_json::json!({
            "metadata": {"labels": {"team": "a", "spark-role": "x"}},
            "spec": {"containers": [{"name": "ember", "image": "theirs", "workingDir": "/w"}, {"name": "log-agent"}],
                     "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k"}]}
        });
        merge(
            &mut base,
            serde_json::json!({
                "metadata": {"labels": {"spark-role": "driver"}},
                "spec": {"containers": [{"name": "ember", "image": "ours"}], "tolerations": [{"key": "mine"}]}
            }),
            "",
        );
        assert_eq!(base["metadata"]["labels"], serde_json::json!({"team": "a", "spark-role": "driver"}));
        assert_eq!(
            base["spec"]["containers"][0],
            serde_json::json!({"name": "ember", "image": "ours", "workingDir": "/w"})
        );
        assert_eq!(base["spec"]["containers"][1]["name"], "log-agent");
        assert_eq!(base["spec"]["nodeSelector"]["disk"], "ssd");
        assert_eq!(base["spec"]["tolerations"], serde_json::json!([{"key": "mine"}]), "unnamed lists are replaced");

        // A volume or variable of ours replaces the template's whole; mounts are keyed by
        // their path.
        let mut base = serde_json::json!({"volumes": [{"name": "spark-local-dir-1", "hostPath": {"path": "/mnt"}}],
            "containers": [{"name": "ember", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                            "volumeMounts": [{"name": "data", "mountPath": "/a"}]}]});
        merge(
            &mut base,
            serde_json::json!({"volumes": [{"name": "spark-local-dir-1", "emptyDir": {}}],
                "containers": [{"name": "ember", "env": [{"name": "A", "value": "1"}],
                                "volumeMounts": [{"name": "data", "mountPath": "/b", "subPath": "b"}]}]}),
            "",
        );
        assert_eq!(base["volumes"], serde_json::json!([{"name": "spark-local-dir-1", "emptyDir": {}}]));
        assert_eq!(base["containers"][0]["env"], serde_json::json!([{"name": "A", "value": "1"}]));
        assert_eq!(base["containers"][0]["volumeMounts"].as_array().unwrap().len(), 2);
    }
}
