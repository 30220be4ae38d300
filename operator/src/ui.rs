//! The driver's web UI Service and Ingress, the extra driver Services and Ingresses of
//! `driverIngressOptions`, and the Prometheus scrape settings of the pods: the operator's
//! settings, checks of an application's spec, and pure builders.
//!
//! The ideas and names are kubeflow spark-operator's: a `<app>-ui-svc` Service selecting
//! the driver pod and targeting its UI port (`spark.ui.port`, default 4040), tuned by
//! `sparkUIOptions`; an Ingress `<app>-ui-ingress` when the operator runs with
//! `--ingress-url-format`; `status.driverInfo.webUIAddress` = the Service's cluster IP
//! and port. The scrape annotations (`prometheus.io/scrape|port|path`) are the de facto
//! convention that Prometheus' Kubernetes service discovery examples relabel on.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::crd::{ServiceType, SparkApplication};
use crate::spec::SpecError;

/// Spark's default UI port (`spark.ui.port`).
pub const DEFAULT_UI_PORT: u16 = 4040;
/// Name of the UI Service's port unless `sparkUIOptions.servicePortName` says otherwise
/// (kubeflow's default).
pub const DEFAULT_UI_PORT_NAME: &str = "spark-driver-ui-port";
/// Port executors serve `/metrics` on when `sparkConf` does not set
/// `ember.executor.metrics.port` (kubeflow's default Prometheus port for its exporter).
pub const DEFAULT_EXECUTOR_METRICS_PORT: u16 = 8090;
/// Path of the driver's and the executors' Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// Name of the executor container's metrics port (what a PodMonitor selects).
pub const EXECUTOR_METRICS_PORT_NAME: &str = "metrics";
/// Name of the driver container's UI port, which also serves `/metrics`.
pub const DRIVER_UI_PORT_NAME: &str = "ui";
/// Longest Service name (an RFC 1035 label).
pub const MAX_SERVICE_NAME_LEN: usize = 63;

/// Scrape annotations added to driver and executor pods.
pub const ANNOTATION_SCRAPE: &str = "prometheus.io/scrape";
/// The port to scrape.
pub const ANNOTATION_PORT: &str = "prometheus.io/port";
/// The path to scrape.
pub const ANNOTATION_PATH: &str = "prometheus.io/path";

/// Placeholder of the application's name in an ingress URL format (kubeflow's).
pub const APP_NAME_PLACEHOLDER: &str = "{{$appName}}";
/// Placeholder of the application's namespace in an ingress URL format (kubeflow's).
pub const APP_NAMESPACE_PLACEHOLDER: &str = "{{$appNamespace}}";

/// Operator-wide settings of the UI Service, Ingresses and metrics scraping (flags of the
/// operator process; kubeflow's `--enable-ui-service`, `--ingress-url-format`,
/// `--ingress-class-name`, `--ingress-annotations`, `--ingress-tls`).
#[derive(Debug, Clone, PartialEq)]
pub struct UiSettings {
    /// Create the UI Service for each application whose UI is on.
    pub enable_ui_service: bool,
    /// URL format of the UI Ingress (`{{$appName}}.ingress.example.com`); unset: no Ingress.
    pub ingress_url_format: Option<String>,
    /// `spec.ingressClassName` of every Ingress the operator creates.
    pub ingress_class_name: Option<String>,
    /// Annotations of Ingresses whose application sets none.
    pub ingress_annotations: BTreeMap<String, String>,
    /// TLS of Ingresses whose application sets none.
    pub ingress_tls: Vec<IngressTLS>,
    /// Add `prometheus.io/scrape|port|path` annotations to driver and executor pods.
    pub scrape_annotations: bool,
    /// `ember.executor.metrics.port` given to executors when `sparkConf` does not set it, so
    /// that their metrics port is known; 0 leaves it unset (any free port, not scrapable).
    pub executor_metrics_port: u16,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            enable_ui_service: true,
            ingress_url_format: None,
            ingress_class_name: None,
            ingress_annotations: BTreeMap::new(),
            ingress_tls: Vec::new(),
            scrape_annotations: true,
            executor_metrics_port: DEFAULT_EXECUTOR_METRICS_PORT,
        }
    }
}

/// An ingress URL with the application filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host the Ingress rule matches.
    pub host: String,
    /// The path prefix, empty or starting with `/` (without a trailing `/`).
    pub path: String,
}

impl std::fmt::Display for IngressUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.host, self.path)
    }
}

fn is_dns_subdomain(host: &str) -> bool {
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Fills an ingress URL format (`[http[s]://]host[/path]` with `{{$appName}}` and
/// `{{$appNamespace}}`) for an application.
///
/// Errors (as text): another `{{...}}` placeholder, a scheme other than http(s), a port,
/// query or fragment, or a host that is not a lowercase DNS name once filled in.
pub fn ingress_url(format: &str, app_name: &str, namespace: &str) -> Result<IngressUrl, String> {
    let filled = format.replace(APP_NAME_PLACEHOLDER, app_name).replace(APP_NAMESPACE_PLACEHOLDER, namespace);
    if let Some(start) = filled.find("{{") {
        let rest = &filled[start..];
        let end = rest.find("}}").map(|e| e + 2).unwrap_or(rest.len());
        return Err(format!(
            "unknown placeholder {} (known: {APP_NAME_PLACEHOLDER}, {APP_NAMESPACE_PLACEHOLDER})",
            &rest[..end]
        ));
    }
    let (scheme, rest) = match filled.split_once("://") {
        Some((scheme, rest)) if scheme == "http" || scheme == "https" => (scheme.to_string(), rest),
        Some((scheme, _)) => return Err(format!("scheme {scheme:?} is not http or https")),
        None => ("http".to_string(), filled.as_str()),
    };
    if rest.contains(['?', '#']) {
        return Err(format!("{filled:?} has a query or fragment; an Ingress routes by host and path only"));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.contains(':') {
        return Err(format!("{filled:?} names a port; an Ingress rule's host cannot have one"));
    }
    if !is_dns_subdomain(host) {
        return Err(format!("host {host:?} of {filled:?} is not a lowercase DNS name"));
    }
    Ok(IngressUrl { scheme, host: host.to_string(), path: path.to_string() })
}

/// Checks a Service port name: a DNS-1123 label, as the API server requires of Service
/// ports (container ports are stricter, IANA service names of at most 15 characters).
fn check_port_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a port name (at most 63 lowercase letters, digits and '-', not at either end)"))
    }
}

fn check_port(value: i32) -> Result<(), String> {
    if (1..=65535).contains(&value) { Ok(()) } else { Err(format!("{value} is not a port (1-65535)")) }
}

/// Name of the UI Service (kubeflow's).
pub fn web_ui_service_name(app_name: &str) -> String {
    format!("{app_name}-ui-svc")
}

/// Name of the UI Ingress (kubeflow's).
pub fn web_ui_ingress_name(app_name: &str) -> String {
    format!("{app_name}-ui-ingress")
}

/// Name of the Service of a `driverIngressOptions` entry (kubeflow's).
pub fn driver_ingress_service_name(app_name: &str, port: i32) -> String {
    format!("{app_name}-driver-{port}")
}

/// Name of the Ingress of a `driverIngressOptions` entry (kubeflow's).
pub fn driver_ingress_name(app_name: &str, port: i32) -> String {
    format!("{app_name}-ing-{port}")
}

/// One Service in front of a driver port, and its optional Ingress: the resolved form of
/// `sparkUIOptions` (with the operator's settings) or of a `driverIngressOptions` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverExposure {
    /// Service name.
    pub service_name: String,
    /// Service port name.
    pub port_name: String,
    /// Service port.
    pub port: i32,
    /// The driver's port the Service forwards to.
    pub target_port: i32,
    /// Service type.
    pub service_type: ServiceType,
    /// Annotations of the Service.
    pub service_annotations: BTreeMap<String, String>,
    /// Labels of the Service, besides the operator's.
    pub service_labels: BTreeMap<String, String>,
    /// The Ingress, if any.
    pub ingress: Option<IngressPlan>,
}

/// An Ingress routing a URL to a Service port.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressPlan {
    /// Ingress name.
    pub name: String,
    /// The URL it serves.
    pub url: IngressUrl,
    /// `spec.ingressClassName`.
    pub class_name: Option<String>,
    /// Annotations (the application's, else the operator's).
    pub annotations: BTreeMap<String, String>,
    /// TLS (the application's, else the operator's).
    pub tls: Vec<IngressTLS>,
}

/// Everything the operator exposes of an application's driver.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UiPlan {
    /// The driver's UI port (`spark.ui.port`, default 4040), when the UI is on.
    pub ui_port: Option<i32>,
    /// The UI Service (and Ingress), when the UI is on and the operator creates it.
    pub web_ui: Option<DriverExposure>,
    /// The `driverIngressOptions` Services, in spec order.
    pub driver_ingresses: Vec<DriverExposure>,
    /// Port of the executors' `/metrics`, when known (fixed in `sparkConf` or by the
    /// operator).
    pub executor_metrics_port: Option<i32>,
    /// `ember.executor.metrics.port` to add to the driver's configuration (the operator's
    /// default, when `sparkConf` does not set it).
    pub executor_metrics_conf: Option<i32>,
    /// Add scrape annotations to the pods.
    pub scrape_annotations: bool,
    /// `spark.ui.proxyBase` to add to the driver's configuration: the path of the UI
    /// Ingress' URL, which the Ingress strips, so that the pages' links go back
    /// through it (as kubeflow sets it). None for a host-only URL, or when `sparkConf`
    /// sets it.
    pub proxy_base_conf: Option<String>,
}

fn conf_bool(conf: &BTreeMap<String, String>, key: &str, default: bool) -> Result<bool, SpecError> {
    match conf.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(SpecError::new(format!("spec.sparkConf[{key}]"), format!("{v:?} is not true or false"))),
    }
}

fn conf_port(conf: &BTreeMap<String, String>, key: &str) -> Result<Option<i32>, SpecError> {
    let Some(text) = conf.get(key) else { return Ok(None) };
    match text.trim().parse::<u16>() {
        Ok(port) => Ok(Some(i32::from(port))),
        Err(_) => Err(SpecError::new(format!("spec.sparkConf[{key}]"), format!("{text:?} is not a port (0-65535)"))),
    }
}

fn ingress_plan(
    name: String,
    format: &str,
    field: &str,
    app: &SparkApplication,
    annotations: &BTreeMap<String, String>,
    tls: &[IngressTLS],
    settings: &UiSettings,
) -> Result<IngressPlan, SpecError> {
    let url = ingress_url(format, &app.name_any(), &app.namespace().unwrap_or_default())
        .map_err(|reason| SpecError::new(field, reason))?;
    Ok(IngressPlan {
        name,
        url,
        class_name: settings.ingress_class_name.clone(),
        annotations: if annotations.is_empty() { settings.ingress_annotations.clone() } else { annotations.clone() },
        tls: if tls.is_empty() { settings.ingress_tls.clone() } else { tls.to_vec() },
    })
}

/// Resolves what the operator exposes of an application's driver, checking the spec's
/// UI settings.
///
/// Errors name the field: `spark.ui.enabled` not a boolean, `spark.ui.port` or
/// `ember.executor.metrics.port` not a port, a UI port of 0 (any free port, which no
/// Service can target) while the UI Service is on, a bad port or port name, a
/// `driverIngressOptions` port used twice or whose Service name would pass 63 characters,
/// an ingress URL format that does not give a URL.
pub fn plan(app: &SparkApplication, settings: &UiSettings) -> Result<UiPlan, SpecError> {
    let spec = &app.spec;
    let name = app.name_any();
    let conf = &spec.spark_conf;
    let ui_enabled = conf_bool(conf, "spark.ui.enabled", true)?;
    let ui_port = conf_port(conf, "spark.ui.port")?.unwrap_or(i32::from(DEFAULT_UI_PORT));
    let ui_port = ui_enabled.then_some(ui_port);

    let web_ui = match ui_port {
        Some(target) if settings.enable_ui_service => {
            if target == 0 {
                return Err(SpecError::new(
                    "spec.sparkConf[spark.ui.port]",
                    "0 (any free port) cannot be reached through the UI Service; set a port, or spark.ui.enabled=false",
                ));
            }
            let options = spec.spark_ui_options.clone().unwrap_or_default();
            let port = options.service_port.unwrap_or(target);
            check_port(port).map_err(|r| SpecError::new("spec.sparkUIOptions.servicePort", r))?;
            let port_name = options.service_port_name.clone().unwrap_or_else(|| DEFAULT_UI_PORT_NAME.to_string());
            check_port_name(&port_name).map_err(|r| SpecError::new("spec.sparkUIOptions.servicePortName", r))?;
            let ingress = match &settings.ingress_url_format {
                Some(format) => Some(ingress_plan(
                    web_ui_ingress_name(&name),
                    format,
                    "the operator's --ingress-url-format",
                    app,
                    &options.ingress_annotations,
                    &options.ingress_tls,
                    settings,
                )?),
                None => None,
            };
            Some(DriverExposure {
                service_name: web_ui_service_name(&name),
                port_name,
                port,
                target_port: target,
                service_type: options.service_type.unwrap_or_default(),
                service_annotations: options.service_annotations,
                service_labels: options.service_labels,
                ingress,
            })
        }
        _ => None,
    };

    let mut driver_ingresses = Vec::new();
    for (i, options) in spec.driver_ingress_options.iter().enumerate() {
        let field = |f: &str| format!("spec.driverIngressOptions[{i}].{f}");
        let port = options.service_port;
        check_port(port).map_err(|r| SpecError::new(field("servicePort"), r))?;
        if spec.driver_ingress_options[..i].iter().any(|o| o.service_port == port) {
            return Err(SpecError::new(field("servicePort"), format!("{port} is used by an earlier entry")));
        }
        let service_name = driver_ingress_service_name(&name, port);
        if service_name.len() > MAX_SERVICE_NAME_LEN {
            return Err(SpecError::new(
                field("servicePort"),
                format!("the Service name {service_name:?} is longer than {MAX_SERVICE_NAME_LEN} characters"),
            ));
        }
        let port_name = options.service_port_name.clone().unwrap_or_else(|| format!("driver-ing-{port}"));
        check_port_name(&port_name).map_err(|r| SpecError::new(field("servicePortName"), r))?;
        let ingress = match &options.ingress_url_format {
            Some(format) => Some(ingress_plan(
                driver_ingress_name(&name, port),
                format,
                &field("ingressURLFormat"),
                app,
                &options.ingress_annotations,
                &options.ingress_tls,
                settings,
            )?),
            None => None,
        };
        driver_ingresses.push(DriverExposure {
            service_name,
            port_name,
            port,
            target_port: port,
            service_type: options.service_type.unwrap_or_default(),
            service_annotations: options.service_annotations.clone(),
            service_labels: options.service_labels.clone(),
            ingress,
        });
    }

    let (executor_metrics_port, executor_metrics_conf) = match conf_port(conf, "ember.executor.metrics.port")? {
        Some(0) => (None, None),
        Some(port) => (Some(port), None),
        None if settings.executor_metrics_port == 0 => (None, None),
        None => {
            let port = i32::from(settings.executor_metrics_port);
            (Some(port), Some(port))
        }
    };
    let proxy_base_conf = web_ui
        .as_ref()
        .and_then(|ui| ui.ingress.as_ref())
        .map(|ingress| ingress.url.path.clone())
        .filter(|path| !path.is_empty() && !conf.contains_key("spark.ui.proxyBase"));
    Ok(UiPlan {
        ui_port,
        web_ui,
        driver_ingresses,
        executor_metrics_port,
        executor_metrics_conf,
        scrape_annotations: settings.scrape_annotations,
        proxy_base_conf,
    })
}

/// The scrape annotations of a pod whose metrics are on `port`.
pub fn scrape_annotations(port: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ANNOTATION_SCRAPE.to_string(), "true".to_string()),
        (ANNOTATION_PORT.to_string(), port.to_string()),
        (ANNOTATION_PATH.to_string(), METRICS_PATH.to_string()),
    ])
}

/// The Service of a [`DriverExposure`]: selects the application's driver pod and forwards
/// `port` to the driver's `target_port`. Controller-owned by the application, labelled as
/// the operator's (so the Controller watches it).
pub fn driver_exposure_service(app: &SparkApplication, exposure: &DriverExposure) -> Service {
    let selector = crate::builder::driver_selector_labels(app);
    let mut labels = exposure.service_labels.clone();
    labels.extend(selector.clone());
    labels.insert(crate::builder::LABEL_MANAGED_BY.to_string(), crate::builder::MANAGED_BY.to_string());
    Service {
        metadata: ObjectMeta {
            name: Some(exposure.service_name.clone()),
            namespace: app.namespace(),
            labels: Some(labels),
            annotations: (!exposure.service_annotations.is_empty()).then(|| exposure.service_annotations.clone()),
            owner_references: Some(vec![crate::builder::owner_reference(app)]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(exposure.service_type.as_str().to_string()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(exposure.port_name.clone()),
                port: exposure.port,
                target_port: Some(IntOrString::Int(exposure.target_port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// The Ingress of a [`DriverExposure`] (None without one): one rule for the URL's host,
/// routing its path to the Service's port. A URL with a path gets the
/// `nginx.ingress.kubernetes.io/rewrite-target` annotation and a regex path, so the driver
/// sees paths from `/` (as kubeflow does for the Ingress NGINX Controller).
pub fn driver_exposure_ingress(app: &SparkApplication, exposure: &DriverExposure) -> Option<Ingress> {
    let plan = exposure.ingress.as_ref()?;
    let mut annotations = plan.annotations.clone();
    let (path, path_type) = if plan.url.path.is_empty() {
        ("/".to_string(), "Prefix")
    } else {
        annotations.insert("nginx.ingress.kubernetes.io/rewrite-target".into(), "/$2".into());
        (format!("{}(/|$)(.*)", plan.url.path), "ImplementationSpecific")
    };
    let mut labels = crate::builder::driver_selector_labels(app);
    labels.insert(crate::builder::LABEL_MANAGED_BY.to_string(), crate::builder::MANAGED_BY.to_string());
    Some(Ingress {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: app.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![crate::builder::owner_reference(app)]),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: plan.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(plan.url.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(path),
                        path_type: path_type.to_string(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: exposure.service_name.clone(),
                                port: Some(ServiceBackendPort { number: Some(exposure.port), name: None }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            tls: (!plan.tls.is_empty()).then(|| plan.tls.clone()),
            default_backend: None,
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SparkApplicationSpec;

    fn app(extra: serde_json::Value) -> SparkApplication {
        let mut spec = serde_json::json!({"image": "img", "mainApplicationFile": "local:///bin/job"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let spec: SparkApplicationSpec = serde_json::from_value(spec).unwrap();
        let mut app = SparkApplication::new("pi", spec);
        app.metadata.namespace = Some("jobs".into());
        app.metadata.uid = Some("uid-7".into());
        app
    }

    #[test]
    fn ingress_urls_are_filled_and_checked() {
        let url = ingress_url("{{$appName}}.ingress.example.com", "pi", "jobs").unwrap();
        assert_eq!(url, IngressUrl { scheme: "http".into(), host: "pi.ingress.example.com".into(), path: "".into() });
        assert_eq!(url.to_string(), "http://pi.ingress.example.com");
        let url = ingress_url("https://spark.example.com/{{$appNamespace}}/{{$appName}}/", "pi", "jobs").unwrap();
        assert_eq!((url.host.as_str(), url.path.as_str()), ("spark.example.com", "/jobs/pi"));
        assert_eq!(url.to_string(), "https://spark.example.com/jobs/pi");
        for (bad, why) in [
            ("{{$appId}}.example.com", "unknown placeholder {{$appId}}"),
            ("ftp://x.example.com", "scheme \"ftp\""),
            ("x.example.com:8080", "port"),
            ("X.Example.com", "not a lowercase DNS name"),
            ("", "not a lowercase DNS name"),
            ("x.example.com/?a=b", "query"),
        ] {
            let err = ingress_url(bad, "pi", "jobs").unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_ui_service_targets_spark_ui_port_and_selects_the_driver() {
        let app = app(serde_json::json!({
            "sparkConf": {"spark.ui.port": "4050"},
            "sparkUIOptions": {"servicePort": 80, "servicePortName": "http-ui", "serviceType": "NodePort",
                               "serviceAnnotations": {"a": "b"}, "serviceLabels": {"team": "data"}}
        }));
        let plan = plan(&app, &UiSettings::default()).unwrap();
        assert_eq!(plan.ui_port, Some(4050));
        let ui = plan.web_ui.clone().unwrap();
        assert_eq!((ui.service_name.as_str(), ui.port, ui.target_port), ("pi-ui-svc", 80, 4050));
        assert_eq!(ui.ingress, None, "no --ingress-url-format, no Ingress");
        let svc = driver_exposure_service(&app, &ui);
        assert_eq!(svc.metadata.name.as_deref(), Some("pi-ui-svc"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some("jobs"));
        let labels = svc.metadata.labels.clone().unwrap();
        assert_eq!(labels["team"], "data");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "ember-operator");
        assert_eq!(svc.metadata.annotations.clone().unwrap()["a"], "b");
        let owner = &svc.metadata.owner_references.clone().unwrap()[0];
        assert_eq!((owner.uid.as_str(), owner.controller), ("uid-7", Some(true)));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.cluster_ip, None, "not headless: the API server allocates a cluster IP");
        let selector = spec.selector.unwrap();
        assert_eq!(selector.len(), 3);
        assert_eq!(
            (
                selector["ember.dev/app-name"].as_str(),
                selector["ember.dev/app-uid"].as_str(),
                selector["spark-role"].as_str()
            ),
            ("pi", "uid-7", "driver")
        );
        let port = &spec.ports.unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http-ui"), 80));
        assert_eq!(port.target_port, Some(IntOrString::Int(4050)));
    }

    #[test]
    fn defaults_are_kubeflows() {
        let app = app(serde_json::json!({}));
        let plan = plan(&app, &UiSettings::default()).unwrap();
        let ui = plan.web_ui.unwrap();
        assert_eq!((ui.port, ui.target_port, ui.port_name.as_str()), (4040, 4040, "spark-driver-ui-port"));
        assert_eq!(ui.service_type, ServiceType::ClusterIP);
        assert_eq!(plan.executor_metrics_port, Some(8090));
        assert_eq!(plan.executor_metrics_conf, Some(8090));
        assert!(plan.driver_ingresses.is_empty());
    }

    #[test]
    fn no_service_when_the_ui_is_off_or_the_operator_creates_none() {
        let off = app(serde_json::json!({"sparkConf": {"spark.ui.enabled": "false", "spark.ui.port": "0"}}));
        let plan_off = plan(&off, &UiSettings::default()).unwrap();
        assert_eq!((plan_off.ui_port, plan_off.web_ui), (None, None));
        let on = app(serde_json::json!({}));
        let disabled = UiSettings { enable_ui_service: false, ..UiSettings::default() };
        let p = plan(&on, &disabled).unwrap();
        assert_eq!((p.ui_port, p.web_ui), (Some(4040), None));
    }

    #[test]
    fn the_ui_ingress_follows_the_operators_url_format() {
        let settings = UiSettings {
            ingress_url_format: Some("https://spark.example.com/{{$appNamespace}}/{{$appName}}".into()),
            ingress_class_name: Some("nginx".into()),
            ingress_annotations: BTreeMap::from([("from".into(), "operator".into())]),
            ..UiSettings::default()
        };
        let app = app(serde_json::json!({"sparkUIOptions": {
            "ingressTLS": [{"hosts": ["spark.example.com"], "secretName": "tls"}]}}));
        let full = plan(&app, &settings).unwrap();
        assert_eq!(full.proxy_base_conf.as_deref(), Some("/jobs/pi"), "the pages link back through the Ingress");
        let ui = full.web_ui.unwrap();
        let ingress = driver_exposure_ingress(&app, &ui).unwrap();
        assert_eq!(ingress.metadata.name.as_deref(), Some("pi-ui-ingress"));
        let annotations = ingress.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["from"], "operator", "the application sets none: the operator's");
        assert_eq!(annotations["nginx.ingress.kubernetes.io/rewrite-target"], "/$2");
        let spec = ingress.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("tls"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("spark.example.com"));
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(path.path.as_deref(), Some("/jobs/pi(/|$)(.*)"));
        assert_eq!(path.path_type, "ImplementationSpecific");
        let backend = path.backend.service.as_ref().unwrap();
        assert_eq!((backend.name.as_str(), backend.port.as_ref().unwrap().number), ("pi-ui-svc", Some(4040)));

        // A host-only URL routes every path, unrewritten; the application's annotations win.
        let settings = UiSettings { ingress_url_format: Some("{{$appName}}.example.com".into()), ..settings };
        let app = crate::ui::tests::app(serde_json::json!({"sparkUIOptions": {"ingressAnnotations": {"mine": "yes"}}}));
        let host_only = plan(&app, &settings).unwrap();
        assert_eq!(host_only.proxy_base_conf, None, "served at /: no proxy base");
        let ui = host_only.web_ui.unwrap();
        let ingress = driver_exposure_ingress(&app, &ui).unwrap();
        assert_eq!(ingress.metadata.annotations.unwrap(), BTreeMap::from([("mine".into(), "yes".into())]));
        let path = &ingress.spec.unwrap().rules.unwrap()[0].http.clone().unwrap().paths[0];
        assert_eq!((path.path.as_deref(), path.path_type.as_str()), (Some("/"), "Prefix"));
    }

    #[test]
    fn driver_ingress_options_make_a_service_each() {
        let app = app(serde_json::json!({"driverIngressOptions": [
            {"servicePort": 15002, "ingressURLFormat": "{{$appName}}-connect.example.com"},
            {"servicePort": 7078, "servicePortName": "rpc", "serviceType": "LoadBalancer"}
        ]}));
        let plan = plan(&app, &UiSettings::default()).unwrap();
        let [connect, rpc] = &plan.driver_ingresses[..] else { panic!("{plan:?}") };
        assert_eq!(
            (connect.service_name.as_str(), connect.port_name.as_str()),
            ("pi-driver-15002", "driver-ing-15002")
        );
        assert_eq!((connect.port, connect.target_port), (15002, 15002));
        let ingress = driver_exposure_ingress(&app, connect).unwrap();
        assert_eq!(ingress.metadata.name.as_deref(), Some("pi-ing-15002"));
        assert_eq!(ingress.spec.unwrap().rules.unwrap()[0].host.as_deref(), Some("pi-connect.example.com"));
        assert_eq!(driver_exposure_ingress(&app, rpc), None);
        let svc = driver_exposure_service(&app, rpc);
        assert_eq!(svc.spec.unwrap().type_.as_deref(), Some("LoadBalancer"));
    }

    #[test]
    fn bad_ui_settings_name_the_field() {
        let cases = [
            (serde_json::json!({"sparkConf": {"spark.ui.port": "0"}}), "spec.sparkConf[spark.ui.port]"),
            (serde_json::json!({"sparkConf": {"spark.ui.port": "http"}}), "spec.sparkConf[spark.ui.port]"),
            (serde_json::json!({"sparkConf": {"spark.ui.enabled": "yes"}}), "spec.sparkConf[spark.ui.enabled]"),
            (
                serde_json::json!({"sparkConf": {"ember.executor.metrics.port": "99999"}}),
                "spec.sparkConf[ember.executor.metrics.port]",
            ),
            (serde_json::json!({"sparkUIOptions": {"servicePort": 0}}), "spec.sparkUIOptions.servicePort"),
            (
                serde_json::json!({"sparkUIOptions": {"servicePortName": "Spark_UI"}}),
                "spec.sparkUIOptions.servicePortName",
            ),
            (
                serde_json::json!({"driverIngressOptions": [{"servicePort": 80}, {"servicePort": 80}]}),
                "spec.driverIngressOptions[1].servicePort",
            ),
            (
                serde_json::json!({"driverIngressOptions": [{"servicePort": 80, "ingressURLFormat": "{{$appName}}:80"}]}),
                "spec.driverIngressOptions[0].ingressURLFormat",
            ),
        ];
        for (extra, field) in cases {
            let err = plan(&app(extra.clone()), &UiSettings::default()).unwrap_err();
            assert_eq!(err.field, field, "{extra}: {err}");
        }
        let mut long = app(serde_json::json!({"driverIngressOptions": [{"servicePort": 15002}]}));
        long.metadata.name = Some("a".repeat(52));
        let err = plan(&long, &UiSettings::default()).unwrap_err();
        assert!(err.reason.contains("longer than 63"), "{err}");
        // Port 0 is fine when no Service targets it.
        let disabled = UiSettings { enable_ui_service: false, ..UiSettings::default() };
        assert!(plan(&app(serde_json::json!({"sparkConf": {"spark.ui.port": "0"}})), &disabled).is_ok());
    }

    #[test]
    fn executor_metrics_port_comes_from_spark_conf_or_the_operator() {
        let fixed = plan(
            &app(serde_json::json!({"sparkConf": {"ember.executor.metrics.port": "9000"}})),
            &UiSettings::default(),
        )
        .unwrap();
        assert_eq!((fixed.executor_metrics_port, fixed.executor_metrics_conf), (Some(9000), None));
        let any =
            plan(&app(serde_json::json!({"sparkConf": {"ember.executor.metrics.port": "0"}})), &UiSettings::default())
                .unwrap();
        assert_eq!((any.executor_metrics_port, any.executor_metrics_conf), (None, None));
        let unset = UiSettings { executor_metrics_port: 0, ..UiSettings::default() };
        let none = plan(&app(serde_json::json!({})), &unset).unwrap();
        assert_eq!((none.executor_metrics_port, none.executor_metrics_conf), (None, None));
        assert_eq!(
            scrape_annotations(4040),
            BTreeMap::from([
                ("prometheus.io/path".to_string(), "/metrics".to_string()),
                ("prometheus.io/port".to_string(), "4040".to_string()),
                ("prometheus.io/scrape".to_string(), "true".to_string()),
            ])
        );
    }
}
