//! Container mode: each container of a pod runs as a `podman` container of the
//! pod's own image, as a kubelet with a container runtime would run it, instead of
//! as a local process of a binary mapped from the image's path.
//!
//! What the pod gets, and how it differs from a kubelet's pod:
//! - the image's ENTRYPOINT and CMD, overridden by the container's `command` and
//!   `args` with Kubernetes' rules (`command` replaces the entrypoint and drops the
//!   image's CMD; `args` alone replaces the CMD);
//! - the host's network, not a network namespace of its own: the pod's own
//!   loopback address (127.1.0.x) stands for its pod IP, as in process mode, so the
//!   engine binds and advertises that address;
//! - volumes as bind mounts: `emptyDir` (writable by any user: the images run as
//!   65532), `secret` and `configMap` (their keys as files, read-only), `hostPath`;
//! - `resources.limits` as `--memory` and `--cpus`;
//! - images are never pulled (`--pull never`): there is no registry here, and a
//!   missing image fails the container with podman's message.
//!
//! This module is the pure half (the `podman run` command line); `runner` starts,
//! signals and removes the containers.

use std::path::PathBuf;

/// Which podman to run and with which containers.conf (`CONTAINERS_CONF`).
#[derive(Debug, Clone)]
pub struct Podman {
    /// The `podman` executable.
    pub program: PathBuf,
    /// A containers.conf for this machine (tests/images/containers.conf: runc, no
    /// default ulimits), or the system's when `None`.
    pub conf: Option<PathBuf>,
}

impl Podman {
    /// Removes the named containers, whatever their state (created, running,
    /// exited), killing them first; missing ones are no error. Waits for podman.
    pub fn remove(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let mut args: Vec<String> =
            ["rm", "--force", "--ignore", "--time", "0"].iter().map(|s| s.to_string()).collect();
        args.extend(names.iter().cloned());
        let _ = self.command(&args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
    }

    /// Removes every container of the runner of `node` (by [`RUNNER_LABEL`]).
    pub fn remove_all(&self, node: &str) {
        let args = ["ps", "--all", "--quiet", "--filter", &format!("label={RUNNER_LABEL}={node}")].map(String::from);
        let Ok(out) = self.command(&args).output() else { return };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
        self.remove(&ids);
    }

    /// A `podman` command with this configuration and `args`.
    pub fn command(&self, args: &[String]) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        if let Some(conf) = &self.conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        cmd.args(args);
        cmd
    }
}

/// A bind mount of a runner directory into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub path: String,
    pub read_only: bool,
}

/// The label every container of a runner carries, with the runner's node name as
/// its value: what the runner removes at start and at shutdown, so that nothing it
/// started outlives it.
pub const RUNNER_LABEL: &str = "dev.ember.pod-runner.node";

/// One container of a pod, as podman runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// podman's name of the container: unique per pod, container and restart.
    pub name: String,
    /// The runner's node name (the [`RUNNER_LABEL`] value).
    pub node: String,
    pub image: String,
    /// Kubernetes `command`: replaces the image's ENTRYPOINT.
    pub command: Option<Vec<String>>,
    /// Kubernetes `args`: replace the image's CMD.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    /// `resources.limits.memory`, bytes.
    pub memory_bytes: Option<u64>,
    /// `resources.limits.cpu`, cores.
    pub cpus: Option<f64>,
}

/// The container's podman name, `k8s_<container>_<pod>_<namespace>_<restart>` as the
/// kubelet's dockershim named them (podman names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`;
/// the parts are DNS labels).
pub fn container_name(namespace: &str, pod: &str, container: &str, restart: i32) -> String {
    format!("k8s_{container}_{pod}_{namespace}_{restart}")
}

/// The arguments of `podman run` for `spec` (after the program name). An empty
/// `command` counts as unset, as in Kubernetes.
pub fn run_args(spec: &ContainerSpec) -> Vec<String> {
    // `--replace`: a container of the same name left by a killed runner goes.
    let mut a: Vec<String> =
        ["run", "--rm", "--replace", "--pull", "never", "--network", "host", "--log-driver", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    a.extend(["--name".to_string(), spec.name.clone()]);
    a.extend(["--label".to_string(), format!("{RUNNER_LABEL}={}", spec.node)]);
    for (k, v) in &spec.env {
        a.extend(["--env".to_string(), format!("{k}={v}")]);
    }
    for m in &spec.mounts {
        let mode = if m.read_only { ":ro" } else { "" };
        a.extend(["--volume".to_string(), format!("{}:{}{mode}", m.host.display(), m.path)]);
    }
    if let Some(dir) = &spec.working_dir {
        a.extend(["--workdir".to_string(), dir.clone()]);
    }
    if let Some(bytes) = spec.memory_bytes {
        a.extend(["--memory".to_string(), bytes.to_string()]);
    }
    if let Some(cpus) = spec.cpus {
        a.extend(["--cpus".to_string(), format!("{cpus}")]);
    }
    if let Some(command) = spec.command.as_ref().filter(|c| !c.is_empty()) {
        // The JSON form keeps each element whole; podman then ignores the image's CMD,
        // as Kubernetes does when `command` is set.
        a.extend(["--entrypoint".to_string(), serde_json::to_string(command).expect("strings serialize")]);
    }
    a.push(spec.image.clone());
    a.extend(spec.args.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: container_name("ns", "app-driver", "spark-kubernetes-driver", 0),
            node: "node-1".into(),
            image: "localhost/ember-engine:dev".into(),
            command: None,
            args: vec!["sumsq".into(), "--n".into(), "10".into()],
            env: vec![("POD_IP".into(), "127.1.0.3".into()), ("A".into(), "x=y z".into())],
            working_dir: None,
            mounts: vec![
                Mount { host: "/w/app/volumes/tok".into(), path: "/var/run/secrets/x".into(), read_only: true },
                Mount { host: "/w/app/volumes/data".into(), path: "/data".into(), read_only: false },
            ],
            memory_bytes: Some(512 * 1024 * 1024),
            cpus: Some(0.5),
        }
    }

    #[test]
    fn args_keep_the_entrypoint_and_pass_everything_else() {
        let a = run_args(&spec());
        let s = a.join(" ");
        assert!(
            s.starts_with(
                "run --rm --replace --pull never --network host --log-driver none \
                 --name k8s_spark-kubernetes-driver_app-driver_ns_0 --label dev.ember.pod-runner.node=node-1 "
            ),
            "{s}"
        );
        assert!(a.windows(2).any(|w| w == ["--env", "A=x=y z"]));
        assert!(a.windows(2).any(|w| w == ["--volume", "/w/app/volumes/tok:/var/run/secrets/x:ro"]));
        assert!(a.windows(2).any(|w| w == ["--volume", "/w/app/volumes/data:/data"]));
        assert!(a.windows(2).any(|w| w == ["--memory", "536870912"]));
        assert!(a.windows(2).any(|w| w == ["--cpus", "0.5"]));
        assert!(!a.contains(&"--entrypoint".to_string()));
        assert_eq!(&a[a.len() - 4..], ["localhost/ember-engine:dev", "sumsq", "--n", "10"]);
    }

    #[test]
    fn a_command_replaces_the_entrypoint_whole() {
        let mut s = spec();
        s.command = Some(vec!["/opt/ember/bin/my job".into(), "--flag".into()]);
        s.args.clear();
        s.working_dir = Some("/work".into());
        let a = run_args(&s);
        assert!(a.windows(2).any(|w| w == ["--entrypoint", r#"["/opt/ember/bin/my job","--flag"]"#]));
        assert!(a.windows(2).any(|w| w == ["--workdir", "/work"]));
        assert_eq!(a.last().map(String::as_str), Some("localhost/ember-engine:dev"));
        s.command = Some(vec![]);
        assert!(!run_args(&s).contains(&"--entrypoint".to_string()), "an empty command is unset");
    }
}
