//! The pods' security defaults, and a check of a pod against the Kubernetes "restricted"
//! Pod Security Standard (<https://kubernetes.io/docs/concepts/security/pod-security-standards/>,
//! policy version 1.25 and later), which a namespace labelled
//! `pod-security.kubernetes.io/enforce: restricted` applies at admission.
//!
//! The engine image runs as the numeric user 65532 (Dockerfile), so `runAsNonRoot` can be
//! verified by the kubelet without a `runAsUser`.

use k8s_openapi::api::core::v1::{Capabilities, Container, Pod, PodSecurityContext, SeccompProfile, SecurityContext};

/// The default pod security context: non-root, the runtime's default seccomp profile.
pub fn default_pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), localhost_profile: None }),
        ..Default::default()
    }
}

/// The default security context of the engine container: no privilege escalation, every
/// capability dropped, non-root, the runtime's default seccomp profile.
pub fn default_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_string()]), add: None }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), localhost_profile: None }),
        ..Default::default()
    }
}

/// Volume types the restricted standard allows.
const RESTRICTED_VOLUME_TYPES: [&str; 8] =
    ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/// What in `pod` breaks the restricted Pod Security Standard, one line per finding;
/// empty when it passes. Covers the baseline controls too (host namespaces, privileged,
/// host ports, hostPath volumes).
pub fn restricted_violations(pod: &Pod) -> Vec<String> {
    let mut found = Vec::new();
    let Some(spec) = &pod.spec else { return vec!["no pod spec".to_string()] };
    for (flag, on) in [("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc)] {
        if on == Some(true) {
            found.push(format!("{flag} is true"));
        }
    }
    for volume in spec.volumes.iter().flatten() {
        let json = serde_json::to_value(volume).unwrap_or_default();
        let kinds: Vec<&String> =
            json.as_object().into_iter().flat_map(|m| m.keys()).filter(|k| *k != "name").collect();
        if let Some(kind) = kinds.iter().find(|k| !RESTRICTED_VOLUME_TYPES.contains(&k.as_str())) {
            found.push(format!("volume {} is of type {kind}", volume.name));
        }
    }
    let pod_context = spec.security_context.clone().unwrap_or_default();
    if pod_context.run_as_user == Some(0) {
        found.push("the pod runs as user 0".to_string());
    }
    let pod_seccomp_ok = seccomp_ok(pod_context.seccomp_profile.as_ref());
    if pod_context.seccomp_profile.is_some() && !pod_seccomp_ok {
        found.push("the pod's seccomp profile is Unconfined".to_string());
    }
    let containers = spec.init_containers.iter().flatten().chain(spec.containers.iter());
    for container in containers {
        check_container(container, &pod_context, pod_seccomp_ok, &mut found);
    }
    found
}

fn seccomp_ok(profile: Option<&SeccompProfile>) -> bool {
    profile.is_some_and(|p| p.type_ == "RuntimeDefault" || p.type_ == "Localhost")
}

fn check_container(c: &Container, pod_context: &PodSecurityContext, pod_seccomp_ok: bool, found: &mut Vec<String>) {
    let name = &c.name;
    let context = c.security_context.clone().unwrap_or_default();
    if context.privileged == Some(true) {
        found.push(format!("container {name} is privileged"));
    }
    if context.allow_privilege_escalation != Some(false) {
        found.push(format!("container {name} does not set allowPrivilegeEscalation: false"));
    }
    let capabilities = context.capabilities.clone().unwrap_or_default();
    if !capabilities.drop.iter().flatten().any(|c| c == "ALL") {
        found.push(format!("container {name} does not drop ALL capabilities"));
    }
    if let Some(added) = capabilities.add.iter().flatten().find(|c| *c != "NET_BIND_SERVICE") {
        found.push(format!("container {name} adds capability {added}"));
    }
    let non_root = context.run_as_non_root.or(pod_context.run_as_non_root);
    if non_root != Some(true) {
        found.push(format!("container {name} does not set runAsNonRoot: true (nor does the pod)"));
    }
    if context.run_as_user == Some(0) {
        found.push(format!("container {name} runs as user 0"));
    }
    match &context.seccomp_profile {
        Some(profile) if !seccomp_ok(Some(profile)) => {
            found.push(format!("container {name}'s seccomp profile is {}", profile.type_));
        }
        None if !pod_seccomp_ok => {
            found
                .push(format!("container {name} has no RuntimeDefault or Localhost seccomp profile (nor has the pod)"));
        }
        _ => {}
    }
    for port in c.ports.iter().flatten() {
        if port.host_port.is_some_and(|p| p != 0) {
            found.push(format!("container {name} uses host port {}", port.host_port.unwrap_or_default()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_restricted_control_is_checked() {
        let good = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                security_context: Some(default_pod_security_context()),
                containers: vec![Container {
                    name: "ember".into(),
                    security_context: Some(default_security_context()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(restricted_violations(&good), Vec::<String>::new());
        let broken = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut json = serde_json::to_value(&good).unwrap();
            f(&mut json);
            restricted_violations(&serde_json::from_value(json).unwrap())
        };
        type Edit<'a> = &'a dyn Fn(&mut serde_json::Value);
        let cases: Vec<(Edit, &str)> = vec![
            (&|p| p["spec"]["hostNetwork"] = true.into(), "hostNetwork is true"),
            (&|p| p["spec"]["containers"][0]["securityContext"]["privileged"] = true.into(), "is privileged"),
            (
                &|p| p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = true.into(),
                "allowPrivilegeEscalation",
            ),
            (
                &|p| {
                    p["spec"]["containers"][0]["securityContext"]["capabilities"] =
                        serde_json::json!({"add": ["SYS_ADMIN"], "drop": ["ALL"]})
                },
                "adds capability SYS_ADMIN",
            ),
            (
                &|p| {
                    p["spec"]["securityContext"]["runAsNonRoot"] = false.into();
                    p["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = serde_json::Value::Null;
                },
                "runAsNonRoot",
            ),
            (
                &|p| {
                    p["spec"]["containers"][0]["securityContext"]["seccompProfile"] =
                        serde_json::json!({"type": "Unconfined"})
                },
                "seccomp profile is Unconfined",
            ),
            (
                &|p| p["spec"]["volumes"] = serde_json::json!([{"name": "host", "hostPath": {"path": "/"}}]),
                "volume host is of type hostPath",
            ),
            (
                &|p| p["spec"]["initContainers"] = serde_json::json!([{"name": "setup"}]),
                "container setup does not set allowPrivilegeEscalation",
            ),
        ];
        for (edit, want) in cases {
            let found = broken(edit);
            assert!(found.iter().any(|f| f.contains(want)), "{want}: {found:?}");
        }
    }
}
