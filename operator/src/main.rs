//! The `ember-operator` binary: parses flags and environment into an
//! [`OperatorConfig`] and runs the operator.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use ember_operator::leader::LeaseConfig;
use ember_operator::operator::{self, OperatorConfig};
use ember_operator::state::Settings;
use ember_operator::telemetry::{self, LogFormat};
use ember_operator::ui::UiSettings;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Kubernetes operator for Ember SparkApplications.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Namespaces to watch, comma-separated; empty watches all namespaces.
    #[arg(long, env = "EMBER_OPERATOR_NAMESPACES", value_delimiter = ',', default_value = "")]
    namespaces: Vec<String>,

    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "EMBER_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,

    /// Elect a leader on a Lease, so that several replicas are safe.
    #[arg(long, env = "EMBER_OPERATOR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// Name of the leader Lease.
    #[arg(long, env = "EMBER_OPERATOR_LEASE_NAME", default_value = "ember-operator")]
    lease_name: String,

    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,

    /// Seconds a Lease stays valid without renewal.
    #[arg(long, env = "EMBER_OPERATOR_LEASE_DURATION_SECS", default_value_t = 15)]
    lease_duration_secs: u64,

    /// Seconds between Lease renewals.
    #[arg(long, env = "EMBER_OPERATOR_LEASE_RETRY_SECS", default_value_t = 2)]
    lease_retry_secs: u64,

    /// This replica's identity (its pod name); defaults to the host name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,

    /// Seconds a driver pod may stay pending before the run fails.
    #[arg(long, env = "EMBER_OPERATOR_DRIVER_START_TIMEOUT_SECS", default_value_t = 300)]
    driver_start_timeout_secs: u64,

    /// Seconds an executor pod may stay pending; past it, a run with no executor running
    /// fails with the pod's reason (e.g. Unschedulable).
    #[arg(long, env = "EMBER_OPERATOR_EXECUTOR_START_TIMEOUT_SECS", default_value_t = 300)]
    executor_start_timeout_secs: u64,

    /// Failed executors replaced per run before the operator stops replacing them.
    #[arg(long, env = "EMBER_OPERATOR_MAX_EXECUTOR_FAILURES", default_value_t = 10)]
    max_executor_failures: i32,

    /// OTLP/gRPC endpoint to export spans to; unset disables export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,

    /// Log format.
    #[arg(long, env = "EMBER_OPERATOR_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: Format,

    /// Create a Service in front of each application's web UI (kubeflow's
    /// --enable-ui-service).
    #[arg(long, env = "EMBER_OPERATOR_ENABLE_UI_SERVICE", default_value_t = true, action = clap::ArgAction::Set)]
    enable_ui_service: bool,

    /// URL of an Ingress in front of each application's web UI, `[http[s]://]host[/path]`
    /// with `{{$appName}}` and `{{$appNamespace}}` filled in, e.g.
    /// `{{$appName}}.ingress.example.com`; empty: no Ingress (kubeflow's --ingress-url-format).
    #[arg(long, env = "EMBER_OPERATOR_INGRESS_URL_FORMAT", default_value = "", value_parser = parse_url_format)]
    ingress_url_format: String,

    /// `spec.ingressClassName` of the Ingresses the operator creates; empty: unset.
    #[arg(long, env = "EMBER_OPERATOR_INGRESS_CLASS_NAME", default_value = "")]
    ingress_class_name: String,

    /// Annotations of Ingresses whose application sets none, as a JSON object,
    /// e.g. `{"cert-manager.io/cluster-issuer":"letsencrypt"}`.
    #[arg(long, env = "EMBER_OPERATOR_INGRESS_ANNOTATIONS", default_value = "")]
    ingress_annotations: String,

    /// TLS of Ingresses whose application sets none, as a JSON list of IngressTLS,
    /// e.g. `[{"hosts":["*.example.com"],"secretName":"example-tls"}]`.
    #[arg(long, env = "EMBER_OPERATOR_INGRESS_TLS", default_value = "")]
    ingress_tls: String,

    /// Add prometheus.io/scrape, prometheus.io/port and prometheus.io/path annotations to
    /// driver and executor pods.
    #[arg(long, env = "EMBER_OPERATOR_METRICS_POD_ANNOTATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    metrics_pod_annotations: bool,

    /// `ember.executor.metrics.port` for executors whose application does not set it, so
    /// that their /metrics can be scraped; 0: leave it unset (any free port).
    #[arg(long, env = "EMBER_OPERATOR_EXECUTOR_METRICS_PORT", default_value_t = ember_operator::ui::DEFAULT_EXECUTOR_METRICS_PORT)]
    executor_metrics_port: u16,
}

/// Checks an ingress URL format by filling it in for a sample application.
fn parse_url_format(format: &str) -> Result<String, String> {
    if !format.is_empty() {
        ember_operator::ui::ingress_url(format, "app", "namespace")?;
    }
    Ok(format.to_string())
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(flag: &str, text: &str) -> anyhow::Result<T> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text).with_context(|| format!("--{flag} is not valid JSON of the expected shape: {text}"))
}

impl Args {
    fn into_config(self) -> anyhow::Result<OperatorConfig> {
        let ui = UiSettings {
            enable_ui_service: self.enable_ui_service,
            ingress_url_format: (!self.ingress_url_format.is_empty()).then_some(self.ingress_url_format),
            ingress_class_name: (!self.ingress_class_name.is_empty()).then_some(self.ingress_class_name),
            ingress_annotations: parse_json("ingress-annotations", &self.ingress_annotations)?,
            ingress_tls: parse_json("ingress-tls", &self.ingress_tls)?,
            scrape_annotations: self.metrics_pod_annotations,
            executor_metrics_port: self.executor_metrics_port,
        };
        let identity =
            self.identity.or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "ember-operator".to_string());
        Ok(OperatorConfig {
            namespaces: self.namespaces.into_iter().filter(|n| !n.is_empty()).collect(),
            http_addr: self.http_addr,
            leader_election: self.leader_election.then(|| LeaseConfig {
                name: self.lease_name,
                namespace: self.lease_namespace,
                identity: identity.clone(),
                lease_duration: Duration::from_secs(self.lease_duration_secs),
                retry_period: Duration::from_secs(self.lease_retry_secs),
            }),
            identity,
            settings: Settings {
                driver_start_timeout: Duration::from_secs(self.driver_start_timeout_secs),
                executor_start_timeout: Duration::from_secs(self.executor_start_timeout_secs),
                max_executor_failures: self.max_executor_failures,
                ui,
            },
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let format = match args.log_format {
        Format::Text => LogFormat::Text,
        Format::Json => LogFormat::Json,
    };
    let provider = telemetry::init(format, args.otlp_endpoint.as_deref())?;
    let config = args.into_config()?;
    tracing::info!(?config, "starting ember-operator");
    let client = kube::Client::try_default().await.context("connecting to the Kubernetes API server")?;
    let result = operator::run(client, config, shutdown_signal()).await;
    if let Some(provider) = provider {
        let _ = provider.shutdown();
    }
    result.context("ember-operator stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_map_to_the_config() {
        let args = Args::try_parse_from([
            "ember-operator",
            "--namespaces",
            "team-a,team-b",
            "--http-addr",
            "127.0.0.1:9090",
            "--leader-election",
            "false",
            "--identity",
            "op-0",
            "--driver-start-timeout-secs",
            "60",
        ])
        .unwrap();
        let config = args.into_config().unwrap();
        assert_eq!(config.namespaces, ["team-a", "team-b"]);
        assert_eq!(config.http_addr.port(), 9090);
        assert_eq!(config.leader_election, None);
        assert_eq!(config.identity, "op-0");
        assert_eq!(config.settings.driver_start_timeout, Duration::from_secs(60));
        assert_eq!(config.settings.ui, UiSettings::default());
    }

    #[test]
    fn ui_flags_map_to_the_settings() {
        let args = Args::try_parse_from([
            "ember-operator",
            "--enable-ui-service",
            "false",
            "--ingress-url-format",
            "{{$appName}}.ingress.example.com",
            "--ingress-class-name",
            "nginx",
            "--ingress-annotations",
            r#"{"cert-manager.io/cluster-issuer":"letsencrypt"}"#,
            "--ingress-tls",
            r#"[{"hosts":["*.ingress.example.com"],"secretName":"wildcard"}]"#,
            "--metrics-pod-annotations",
            "false",
            "--executor-metrics-port",
            "9100",
        ])
        .unwrap();
        let ui = args.into_config().unwrap().settings.ui;
        assert!(!ui.enable_ui_service && !ui.scrape_annotations);
        assert_eq!(ui.ingress_url_format.as_deref(), Some("{{$appName}}.ingress.example.com"));
        assert_eq!(ui.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(ui.ingress_annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert_eq!(ui.ingress_tls[0].secret_name.as_deref(), Some("wildcard"));
        assert_eq!(ui.executor_metrics_port, 9100);

        let err = Args::try_parse_from(["ember-operator", "--ingress-url-format", "{{$appId}}.example.com"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown placeholder {{$appId}}"), "{err}");
        let bad_json = Args::try_parse_from(["ember-operator", "--ingress-tls", "{"]).unwrap().into_config();
        assert!(bad_json.unwrap_err().to_string().contains("--ingress-tls is not valid JSON"));
    }
}
