use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use ember_pod_runner::container::Podman;
use ember_pod_runner::runner::{Config, Runner};
use ember_pod_runner::spec::PathMap;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Runs the pods of one namespace as local processes, or as podman containers of
/// their images (a kubelet stand-in for tests).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Namespace whose pods are run.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Name of the Node this runner registers and binds pods to.
    #[arg(long, default_value = "ember-pod-runner")]
    node_name: String,
    /// Local directory standing for the engine image's /opt/ember/bin.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// More image path mappings: IMAGE_PREFIX=LOCAL_DIR (repeatable).
    #[arg(long = "map", value_name = "IMAGE_PREFIX=LOCAL_DIR")]
    maps: Vec<String>,
    /// Container output is saved as <log-dir>/<pod>.<container>.log.
    #[arg(long)]
    log_dir: PathBuf,
    /// Working directories and emptyDir volumes (default: <log-dir>/work).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Address of the first pod; later pods get the next loopback addresses.
    #[arg(long, default_value = "127.1.0.1")]
    first_pod_ip: Ipv4Addr,
    /// Longest grace period honoured for a deleted pod before SIGKILL.
    #[arg(long, default_value_t = 5)]
    max_grace_seconds: u64,
    /// Lines of output kept as a terminated container's message.
    #[arg(long, default_value_t = 20)]
    message_lines: usize,
    /// Container mode: run each container as a container of its image with this
    /// podman executable (e.g. `podman`), instead of as a local process.
    #[arg(long, env = "EMBER_POD_RUNNER_PODMAN")]
    podman: Option<PathBuf>,
    /// containers.conf for podman (CONTAINERS_CONF), e.g. tests/images/containers.conf.
    #[arg(long, env = "CONTAINERS_CONF")]
    containers_conf: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();

    let mut path_map = PathMap::new();
    if let Some(dir) = &args.bin_dir {
        path_map.add("/opt/ember/bin", std::path::absolute(dir)?);
    }
    for m in &args.maps {
        path_map.add_spec(m).map_err(anyhow::Error::msg)?;
    }
    std::fs::create_dir_all(&args.log_dir)?;
    let log_dir = std::path::absolute(&args.log_dir)?;
    let work_dir = match &args.work_dir {
        Some(d) => std::path::absolute(d)?,
        None => log_dir.join("work"),
    };

    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    // What pods get as KUBERNETES_SERVICE_HOST/_PORT: this API server's address.
    let api_server = config.cluster_url.host().map(|h| {
        let port = config.cluster_url.port_u16().unwrap_or(443);
        (h.trim_start_matches('[').trim_end_matches(']').to_string(), port)
    });
    let client = kube::Client::try_from(config)?;
    let cfg = Config {
        namespace: args.namespace,
        node_name: args.node_name,
        path_map,
        log_dir,
        work_dir,
        first_pod_ip: args.first_pod_ip,
        max_grace: Duration::from_secs(args.max_grace_seconds),
        message_lines: args.message_lines.max(1),
        podman: args.podman.map(|program| Podman { program, conf: args.containers_conf }),
        api_server,
    };
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: killing pod processes");
    };
    Runner::new(client, cfg).run(shutdown).await
}
