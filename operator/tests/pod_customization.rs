//! Pod customisation per role (issue 15, item 1): the pod each field yields, the defaults
//! against the restricted Pod Security Standard, the pod template merged under the
//! operator's fields, and clear errors for fields that do not parse. Pure: builders only.

use ember_operator::builder::{CONTAINER_NAME, LOCAL_DIR_PATH, LOCAL_DIR_VOLUME, driver_pod, executor_pod};
use ember_operator::crd::SparkApplication;
use ember_operator::pod_security::restricted_violations;
use ember_operator::spec::validate;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

fn app(driver: Value, executor: Value, extra: Value) -> SparkApplication {
    let mut spec = json!({
        "image": "ember-engine:1",
        "mainApplicationFile": "local:///opt/ember/bin/job",
        "driver": driver,
        "executor": executor,
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "ember.dev/v1alpha1", "kind": "SparkApplication",
        "metadata": {"name": "etl", "namespace": "jobs", "uid": "uid-1"},
        "spec": spec,
    }))
    .unwrap()
}

fn pods(app: &SparkApplication) -> (Pod, Pod) {
    let valid = validate(app).unwrap();
    (driver_pod(app, &valid), executor_pod(app, &valid, 1))
}

fn engine(pod: &Pod) -> &Container {
    pod.spec.as_ref().unwrap().containers.iter().find(|c| c.name == CONTAINER_NAME).unwrap()
}

#[test]
fn default_pods_pass_the_restricted_pod_security_standard() {
    let (driver, executor) = pods(&app(json!({}), json!({"instances": 2}), json!({})));
    assert_eq!(restricted_violations(&driver), Vec::<String>::new());
    assert_eq!(restricted_violations(&executor), Vec::<String>::new());
    // Spill and shuffle files go to a per-pod emptyDir.
    for pod in [&driver, &executor] {
        let volume = pod.spec.as_ref().unwrap().volumes.iter().flatten().find(|v| v.name == LOCAL_DIR_VOLUME).unwrap();
        assert_eq!(volume.empty_dir.as_ref().unwrap().size_limit, None);
        let mount = engine(pod).volume_mounts.iter().flatten().find(|m| m.name == LOCAL_DIR_VOLUME).unwrap();
        assert_eq!(mount.mount_path, LOCAL_DIR_PATH);
    }
}

#[test]
fn each_field_yields_its_part_of_the_pod() {
    let role = json!({
        "image": "ember-engine:gpu",
        "coreRequest": "500m",
        "gpu": {"name": "nvidia.com/gpu", "quantity": 2},
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "podSecurityContext": {"fsGroup": 2000, "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "fetch", "image": "busybox", "command": ["true"]}],
        "sidecars": [{"name": "log-agent", "image": "fluent-bit:3"}],
        "priorityClassName": "batch-high",
        "schedulerName": "volcano",
        "dnsConfig": {"nameservers": ["10.0.0.10"], "searches": ["corp.example"]},
        "terminationGracePeriodSeconds": 90,
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/flush"]}}},
        "envFrom": [{"configMapRef": {"name": "job-env"}}, {"secretRef": {"name": "job-keys"}}],
        "configMaps": [{"name": "lookup", "path": "/etc/lookup"}],
        "secrets": [{"name": "gcs-key", "path": "/etc/keys"}],
    });
    let mut executor = role.clone();
    executor["instances"] = json!(1);
    let extra = json!({"sparkConf": {
        "spark.kubernetes.executor.volumes.emptyDir.spark-local-dir-1.options.sizeLimit": "50Gi",
        "spark.kubernetes.local.dirs.tmpfs": "true"}});
    let (driver, executor) = pods(&app(role, executor, extra));
    for pod in [&driver, &executor] {
        let spec = pod.spec.as_ref().unwrap();
        let c = engine(pod);
        assert_eq!(c.image.as_deref(), Some("ember-engine:gpu"));
        let res = c.resources.as_ref().unwrap();
        assert_eq!(res.requests.as_ref().unwrap()["cpu"].0, "500m");
        assert_eq!(res.limits.as_ref().unwrap()["nvidia.com/gpu"].0, "2");
        assert_eq!(c.security_context.as_ref().unwrap().run_as_user, Some(1000));
        assert_eq!(spec.security_context.as_ref().unwrap().fs_group, Some(2000));
        assert_eq!(spec.init_containers.as_ref().unwrap()[0].name, "fetch");
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [CONTAINER_NAME, "log-agent"]);
        assert_eq!(spec.priority_class_name.as_deref(), Some("batch-high"));
        assert_eq!(spec.scheduler_name.as_deref(), Some("volcano"));
        assert_eq!(spec.dns_config.as_ref().unwrap().searches.as_ref().unwrap(), &["corp.example"]);
        assert_eq!(spec.termination_grace_period_seconds, Some(90));
        let pre_stop = c.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
        assert_eq!(pre_stop.exec.as_ref().unwrap().command.as_ref().unwrap(), &["/bin/flush"]);
        assert_eq!(c.env_from.as_ref().unwrap().len(), 2);
        let volumes = spec.volumes.as_ref().unwrap();
        let lookup = volumes.iter().find(|v| v.config_map.as_ref().is_some_and(|m| m.name == "lookup")).unwrap();
        let key =
            volumes.iter().find(|v| v.secret.as_ref().is_some_and(|s| s.secret_name.as_deref() == Some("gcs-key")));
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert!(mounts.iter().any(|m| m.name == lookup.name && m.mount_path == "/etc/lookup"));
        let key = key.unwrap();
        assert!(mounts.iter().any(|m| m.name == key.name && m.mount_path == "/etc/keys" && m.read_only == Some(true)));
        let local = volumes.iter().find(|v| v.name == LOCAL_DIR_VOLUME).unwrap().empty_dir.clone().unwrap();
        assert_eq!(local.medium.as_deref(), Some("Memory"));
        // The role-specific size limit is the executor's only.
        let want = (pod.metadata.name.as_deref() == Some("etl-exec-1")).then(|| "50Gi".to_string());
        assert_eq!(local.size_limit.map(|q| q.0), want);
        assert_eq!(restricted_violations(pod), Vec::<String>::new(), "what was given is still restricted");
    }

    // hostNetwork keeps cluster DNS, and is reported as breaking the standard.
    let (driver, _) = pods(&app(json!({"hostNetwork": true}), json!({}), json!({})));
    let spec = driver.spec.as_ref().unwrap();
    assert_eq!((spec.host_network, spec.dns_policy.as_deref()), (Some(true), Some("ClusterFirstWithHostNet")));
    assert_eq!(restricted_violations(&driver), ["hostNetwork is true"]);
}

#[test]
fn the_pod_template_is_merged_under_the_operators_fields() {
    let template = json!({
        "metadata": {"labels": {"cost-center": "42", "spark-role": "not-this"}, "annotations": {"team": "data"}},
        "spec": {
            "containers": [{"name": "ember", "workingDir": "/work", "image": "not-this",
                            "env": [{"name": "TZ", "value": "UTC"}]},
                           {"name": "proxy", "image": "envoy:1"}],
            "nodeSelector": {"pool": "batch"},
            "restartPolicy": "Always",
            "hostAliases": [{"ip": "10.1.1.1", "hostnames": ["db.internal"]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    });
    let (driver, executor) = pods(&app(json!({"template": template}), json!({"template": template}), json!({})));
    for pod in [&driver, &executor] {
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["cost-center"], "42");
        assert_ne!(labels["spark-role"], "not-this", "the operator's labels win");
        assert_eq!(pod.metadata.annotations.as_ref().unwrap()["team"], "data");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"), "the operator's value wins");
        assert_eq!(spec.node_selector.as_ref().unwrap()["pool"], "batch");
        assert_eq!(spec.host_aliases.as_ref().unwrap()[0].ip, "10.1.1.1");
        let c = engine(pod);
        assert_eq!(c.image.as_deref(), Some("ember-engine:1"));
        assert_eq!(c.working_dir.as_deref(), Some("/work"), "the template fills what the operator leaves");
        let env = c.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "TZ") && env.iter().any(|e| e.name == "EMBER_ROLE"));
        assert!(spec.containers.iter().any(|c| c.name == "proxy"));
        let volumes: Vec<&str> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert!(volumes.contains(&"scratch") && volumes.contains(&LOCAL_DIR_VOLUME), "{volumes:?}");
    }
}

#[test]
fn fields_that_do_not_parse_fail_with_their_path() {
    let cases = [
        (json!({"securityContext": {"runAsUser": "root"}}), json!({}), "spec.driver.securityContext"),
        (json!({}), json!({"sidecars": [{"image": "no-name"}]}), "spec.executor.sidecars[0].name"),
        (json!({}), json!({"sidecars": [{"name": 7}]}), "spec.executor.sidecars[0]"),
        (json!({"initContainers": [{"name": "ember"}]}), json!({}), "spec.driver.initContainers[0].name"),
        (json!({"template": {"spec": {"containers": "x"}}}), json!({}), "spec.driver.template"),
        (json!({}), json!({"configMaps": [{"name": "c", "path": "relative"}]}), "spec.executor.configMaps[0].path"),
        (json!({"gpu": {"name": "nvidia.com/gpu", "quantity": 0}}), json!({}), "spec.driver.gpu"),
    ];
    for (driver, executor, field) in cases {
        let err = validate(&app(driver, executor, json!({}))).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn spark_config_map_and_deps_files_reach_the_pods() {
    let extra = json!({
        "sparkConfigMap": "etl-defaults",
        "deps": {"files": ["local:///opt/data/lookup.csv", "s3a://bucket/model.bin"]},
        "sparkConf": {"spark.files": "/opt/data/extra.txt"},
    });
    let (driver, executor) = pods(&app(json!({}), json!({}), extra));
    for pod in [&driver, &executor] {
        let spec = pod.spec.as_ref().unwrap();
        let volume = spec.volumes.iter().flatten().find(|v| v.name == "spark-conf-vol").unwrap();
        assert_eq!(volume.config_map.as_ref().unwrap().name, "etl-defaults");
        let c = engine(pod);
        let mount = c.volume_mounts.iter().flatten().find(|m| m.name == "spark-conf-vol").unwrap();
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/etc/ember/conf", Some(true)));
        let dir = c.env.iter().flatten().find(|e| e.name == "SPARK_CONF_DIR").unwrap();
        assert_eq!(dir.value.as_deref(), Some("/etc/ember/conf"));
    }
    let conf = engine(&driver).env.iter().flatten().find(|e| e.name == "EMBER_CONF").unwrap().value.clone().unwrap();
    let conf: serde_json::Map<String, Value> = serde_json::from_str(&conf).unwrap();
    assert_eq!(conf["spark.files"], "/opt/data/extra.txt,/opt/data/lookup.csv,s3a://bucket/model.bin");

    let bad = app(json!({}), json!({}), json!({"deps": {"files": ["https://example.com/x.csv"]}}));
    let err = validate(&bad).unwrap_err();
    assert_eq!(err.field, "spec.deps.files[0]", "{err}");
    assert!(err.to_string().contains("only local:///path"), "{err}");
}
