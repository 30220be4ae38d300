//! `spark.authenticate` on Kubernetes: a secret per application, in a Secret
//! owned by the application and mounted into that application's pods only.
//!
//! When an application's `sparkConf` sets `spark.authenticate=true`, the
//! reconciler creates the Secret `<app>-auth-<uid>` before the driver pod
//! (create only: an existing one is kept, so a resubmitted driver and its
//! executors keep agreeing; the operator has no right to read Secrets). The
//! name carries the first 8 characters of the application's UID, so an
//! application deleted and created again under its name never picks up the
//! old one's Secret while garbage collection removes it. Every pod of the
//! application mounts it read-only at [`MOUNT_PATH`] and reads it through
//! `EMBER_AUTH_SECRET_FILE` (docs/SECURITY.md). The secret never appears in a
//! pod spec, an environment variable or `sparkConf`, and the Secret goes when
//! the application is deleted (owner reference). The namespace is the trust
//! boundary: whoever may create pods or Secrets there can read or plant one.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{EnvVar, Secret, SecretVolumeSource, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::crd::SparkApplication;

/// The `sparkConf` key that turns authentication on (Spark's).
pub const AUTHENTICATE_CONF: &str = "spark.authenticate";

/// Name of the pod volume holding the secret; user volumes may not take it.
pub const VOLUME_NAME: &str = "ember-auth";

/// Where the secret's Secret is mounted in every pod of the application.
pub const MOUNT_PATH: &str = "/etc/ember/auth";

/// The Secret's key holding the secret (a file of that name under [`MOUNT_PATH`]).
pub const SECRET_KEY: &str = "secret";

/// Name of the Secret holding the secret of `app` (`<name>-auth-<uid[..8]>`).
pub fn secret_name(app: &SparkApplication) -> String {
    let uid = app.metadata.uid.as_deref().unwrap_or_default();
    format!("{}-auth-{}", app.name_any(), &uid[..uid.len().min(8)])
}

/// The Secret holding `secret` (the text every process of the application
/// signs with), owned by the application.
pub fn auth_secret(app: &SparkApplication, secret: &str) -> Secret {
    let app_name = app.name_any();
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(app)),
            namespace: app.namespace(),
            labels: Some(BTreeMap::from([
                (crate::builder::LABEL_APP_NAME.to_string(), app_name.clone()),
                (crate::builder::LABEL_MANAGED_BY.to_string(), crate::builder::MANAGED_BY.to_string()),
            ])),
            owner_references: Some(vec![crate::builder::owner_reference(app)]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        immutable: Some(true),
        data: Some(BTreeMap::from([(SECRET_KEY.to_string(), ByteString(secret.as_bytes().to_vec()))])),
        ..Default::default()
    }
}

/// A new secret: 32 random bytes as hex.
pub fn generate_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The volume, its mount and the variable that give a pod of `app` the secret.
pub fn pod_parts(app: &SparkApplication) -> (Volume, VolumeMount, EnvVar) {
    let volume = Volume {
        name: VOLUME_NAME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name(app)),
            // Read-only, and readable whatever user the image runs as (the
            // kubelet makes the files root's; the volume is the pod's own).
            default_mode: Some(0o444),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mount = VolumeMount {
        name: VOLUME_NAME.into(),
        mount_path: MOUNT_PATH.into(),
        read_only: Some(true),
        ..Default::default()
    };
    let env = EnvVar {
        name: "EMBER_AUTH_SECRET_FILE".into(),
        value: Some(format!("{MOUNT_PATH}/{SECRET_KEY}")),
        value_from: None,
    };
    (volume, mount, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{driver_pod, executor_pod};
    use crate::crd::SparkApplicationSpec;
    use crate::spec::validate;
    use k8s_openapi::api::core::v1::Pod;

    fn app(name: &str, spark_conf: serde_json::Value) -> SparkApplication {
        let spec: SparkApplicationSpec = serde_json::from_value(serde_json::json!({
            "image": "ember-engine:dev",
            "mainApplicationFile": "local:///opt/ember/bin/ember-examples",
            "sparkConf": spark_conf,
            "executor": {"instances": 2,
                          "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "volumes": [{"name": "data", "emptyDir": {}}]
        }))
        .unwrap();
        let mut app = SparkApplication::new(name, spec);
        app.metadata.namespace = Some("jobs".into());
        app.metadata.uid = Some(format!("uid-{name}"));
        app
    }

    /// (Secrets the pod mounts, its EMBER_AUTH_SECRET_FILE).
    fn mounted_secrets(pod: &Pod) -> (Vec<String>, Option<String>) {
        let spec = pod.spec.as_ref().unwrap();
        let secrets = spec.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.clone()).collect();
        let c = &spec.containers[0];
        let env = c.env.iter().flatten().find(|e| e.name == "EMBER_AUTH_SECRET_FILE").and_then(|e| e.value.clone());
        if let Some(path) = &env {
            let mount = c.volume_mounts.iter().flatten().find(|m| m.name == VOLUME_NAME).expect("mounted");
            assert_eq!(mount.read_only, Some(true));
            assert!(path.starts_with(&mount.mount_path), "{path}");
        }
        (secrets, env)
    }

    #[test]
    fn every_pod_of_an_authenticating_application_mounts_its_own_secret_and_no_other_pod_does() {
        let secure = app("secure", serde_json::json!({"spark.authenticate": "true"}));
        let valid = validate(&secure).unwrap();
        assert!(valid.authenticate);
        let file = Some("/etc/ember/auth/secret".to_string());
        for pod in [driver_pod(&secure, &valid), executor_pod(&secure, &valid, 1), executor_pod(&secure, &valid, 2)] {
            assert_eq!(mounted_secrets(&pod), (vec!["secure-auth-uid-secu".to_string()], file.clone()));
            let conf = pod.spec.as_ref().unwrap().containers[0].env.iter().flatten().find(|e| e.name == "EMBER_CONF");
            assert!(conf.is_none_or(|e| !e.value.as_deref().unwrap_or_default().contains("secret")));
        }
        let executor_volumes = executor_pod(&secure, &valid, 1).spec.unwrap().volumes.unwrap();
        assert_eq!(executor_volumes.len(), 3, "the user's volume and the local dir stay");

        let plain = app("plain", serde_json::json!({}));
        let valid = validate(&plain).unwrap();
        assert!(!valid.authenticate);
        for pod in [driver_pod(&plain, &valid), executor_pod(&plain, &valid, 1)] {
            assert_eq!(mounted_secrets(&pod), (vec![], None));
        }

        let secret = auth_secret(&secure, "s3cret");
        assert_eq!(secret.metadata.name.as_deref(), Some("secure-auth-uid-secu"));
        assert_eq!(secret.metadata.owner_references.unwrap()[0].uid, "uid-secure");
        assert_eq!(secret.data.unwrap()[SECRET_KEY].0, b"s3cret");
    }

    #[test]
    fn secrets_in_spark_conf_bad_booleans_and_the_reserved_volume_name_are_refused() {
        for (conf, field) in [
            (serde_json::json!({"spark.authenticate": "maybe"}), "spec.sparkConf[\"spark.authenticate\"]"),
            (
                serde_json::json!({"spark.authenticate": "true", "spark.authenticate.secret": "x"}),
                "spec.sparkConf[\"spark.authenticate.secret\"]",
            ),
            (
                serde_json::json!({"spark.authenticate.secret.file": "/s"}),
                "spec.sparkConf[\"spark.authenticate.secret.file\"]",
            ),
        ] {
            let err = validate(&app("bad", conf.clone())).unwrap_err();
            assert_eq!(err.field, field, "{conf}: {err}");
        }
        let mut taken = app("taken", serde_json::json!({}));
        taken.spec.volumes[0].name = VOLUME_NAME.into();
        taken.spec.executor.pod.volume_mounts[0].name = VOLUME_NAME.into();
        assert_eq!(validate(&taken).unwrap_err().field, "spec.volumes[0].name");
    }

    #[test]
    fn secrets_are_random_hex_of_32_bytes() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
