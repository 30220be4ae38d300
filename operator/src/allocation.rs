//! Dynamic allocation on Kubernetes, the operator's half.
//!
//! The driver sizes its executors by its pending tasks (Spark's
//! `ExecutorAllocationManager`; `ember::allocation` in the driver) and removes idle
//! ones itself: it tells such an executor to exit with code 0. It has no Kubernetes
//! rights, so it cannot create pods: it publishes its demand as JSON on its web UI at
//! [`DEMAND_PATH`] (`{"target": 4, "decommissioned": ["2"], …}`), and while the
//! application runs the operator reads it every [`POLL`] and keeps `target` executor
//! pods, between `minExecutors` and `maxExecutors` ([`crate::state`] decides;
//! [`fetch_demand`] reads). Pods of executors the driver retired end `Succeeded`, are
//! not failures, and are deleted; surplus pods that have not started yet are deleted.
//!
//! [`bounds`] reads the settings from `spec.dynamicAllocation` (kubeflow's fields) and
//! `sparkConf` (`spark.dynamicAllocation.*`), and [`conf_entries`] turns the former into
//! the latter for the driver.

use crate::crd::SparkApplicationSpec;
use crate::spec::SpecError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the driver's UI serves its demand.
pub const DEMAND_PATH: &str = "/ember/v1/allocation";

/// How often a running application's demand is read.
pub const POLL: Duration = Duration::from_secs(2);

/// Executor pods created per reconcile unless `spark.kubernetes.allocation.batch.size`
/// says otherwise (Spark's default).
pub const DEFAULT_BATCH: i32 = 5;

/// The driver's configuration key by which the operator tells it whether it follows its
/// demand (`true`/`false`): a driver with dynamic allocation on (from a
/// `sparkConfigMap`, which the operator does not read) but not followed refuses to start
/// rather than retire executors that are never replaced.
pub const MANAGED_KEY: &str = "ember.kubernetes.dynamicAllocation.managed";

/// Bound on one read of the demand.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(1);

/// The executor counts dynamic allocation keeps within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// `minExecutors`.
    pub min: i32,
    /// `maxExecutors` (None: unbounded).
    pub max: Option<i32>,
    /// Executors created at the submission: the largest of `initialExecutors`,
    /// `minExecutors` and `executor.instances`, at most `max` (Spark's rule).
    pub initial: i32,
    /// Most executor pods created in one reconcile
    /// (`spark.kubernetes.allocation.batch.size`, default 5 as in Spark).
    pub batch: i32,
}

impl Bounds {
    /// `wanted` within `min..=max`.
    pub fn clamp(&self, wanted: i32) -> i32 {
        wanted.max(self.min).min(self.max.unwrap_or(i32::MAX))
    }
}

/// One executor registered with the driver, as the demand lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RegisteredExecutor {
    /// Executor id (the pod's `ember.dev/executor-id`).
    pub id: String,
}

/// What the driver asks for, as read from [`DEMAND_PATH`] (the fields the operator
/// uses; the driver publishes more: running tasks, each executor's load).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Demand {
    /// Executors wanted in total.
    pub target: i32,
    /// Tasks waiting for a slot.
    #[serde(default)]
    pub pending_tasks: i64,
    /// Executors registered with the driver (a pod whose executor is among them is
    /// never released as surplus: it may be running tasks already).
    #[serde(default)]
    pub executors: Vec<RegisteredExecutor>,
    /// Executor ids the driver told to exit: their pods no longer count.
    #[serde(default)]
    pub decommissioned: Vec<String>,
}

impl Demand {
    /// Whether executor `id` is registered with the driver.
    pub fn registered(&self, id: i32) -> bool {
        let id = id.to_string();
        self.executors.iter().any(|e| e.id == id)
    }

    /// Whether the driver told executor `id` to exit.
    pub fn retired(&self, id: i32) -> bool {
        let id = id.to_string();
        self.decommissioned.contains(&id)
    }
}

/// The `spark.dynamicAllocation.*` keys `spec.dynamicAllocation` sets when `enabled`
/// (as kubeflow does; nothing otherwise). `shuffleTrackingTimeout` is milliseconds.
pub fn conf_entries(spec: &SparkApplicationSpec) -> Vec<(String, String)> {
    let Some(d) = spec.dynamic_allocation.as_ref().filter(|d| d.enabled) else {
        return Vec::new();
    };
    let key = |k: &str| format!("spark.dynamicAllocation.{k}");
    let mut out = vec![(key("enabled"), "true".to_string())];
    for (k, v) in [
        ("initialExecutors", d.initial_executors),
        ("minExecutors", d.min_executors),
        ("maxExecutors", d.max_executors),
    ] {
        if let Some(v) = v {
            out.push((key(k), v.to_string()));
        }
    }
    if let Some(ms) = d.shuffle_tracking_timeout {
        out.push((key("shuffleTracking.timeout"), format!("{ms}ms")));
    }
    out
}

/// The bounds when dynamic allocation is on (from `spec.dynamicAllocation`, else
/// `sparkConf`), None when off.
///
/// Errors name the field: a value that is not a boolean or a count, `maxExecutors` 0,
/// `minExecutors` above `maxExecutors`.
pub fn bounds(spec: &SparkApplicationSpec) -> Result<Option<Bounds>, SpecError> {
    let mut conf: BTreeMap<String, (String, String)> =
        spec.spark_conf.iter().map(|(k, v)| (k.clone(), (format!("spec.sparkConf[{k}]"), v.clone()))).collect();
    for (k, v) in conf_entries(spec) {
        let field = k.strip_prefix("spark.dynamicAllocation.").unwrap_or(&k).to_string();
        conf.insert(k, (format!("spec.dynamicAllocation.{field}"), v));
    }
    let enabled = match conf.get("spark.dynamicAllocation.enabled") {
        None => false,
        Some((field, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(SpecError::new(field.clone(), format!("{v:?} is not true or false"))),
        },
    };
    if !enabled {
        return Ok(None);
    }
    let count = |k: &str| -> Result<Option<i32>, SpecError> {
        let Some((field, v)) = conf.get(&format!("spark.dynamicAllocation.{k}")) else { return Ok(None) };
        match v.trim().parse::<i32>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(SpecError::new(field.clone(), format!("{v:?} is not a count of executors"))),
        }
    };
    let min = count("minExecutors")?.unwrap_or(0);
    let max = count("maxExecutors")?;
    if max == Some(0) {
        return Err(SpecError::new("spec.dynamicAllocation.maxExecutors", "must be at least 1"));
    }
    if let Some(max) = max
        && min > max
    {
        return Err(SpecError::new(
            "spec.dynamicAllocation.minExecutors",
            format!("{min} is above maxExecutors ({max})"),
        ));
    }
    let initial = count("initialExecutors")?.unwrap_or(min).max(min).max(spec.executor.instances);
    let batch_key = "spark.kubernetes.allocation.batch.size";
    let batch = match conf.get(batch_key) {
        None => DEFAULT_BATCH,
        Some((field, v)) => match v.trim().parse::<i32>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(SpecError::new(field.clone(), format!("{v:?} is not a positive count of pods"))),
        },
    };
    let bounds = Bounds { min, max, initial: 0, batch };
    Ok(Some(Bounds { initial: bounds.clamp(initial), ..bounds }))
}

/// Reads the driver's demand from its UI at `ip:port`, within [`FETCH_TIMEOUT`]. None
/// when it does not answer with one (not up yet, or unreachable).
pub async fn fetch_demand(ip: &str, port: u16) -> Option<Demand> {
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
    let value = crate::ui_port::fetch_json(&format!("http://{host}:{port}{DEMAND_PATH}"), FETCH_TIMEOUT).await?;
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> SparkApplicationSpec {
        let mut base = serde_json::json!({"image": "i", "mainApplicationFile": "local:///job"});
        base.as_object_mut().unwrap().extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn kubeflow_fields_become_spark_keys_and_win_over_spark_conf() {
        let s = spec(serde_json::json!({
            "sparkConf": {"spark.dynamicAllocation.maxExecutors": "9"},
            "executor": {"instances": 2},
            "dynamicAllocation": {"enabled": true, "initialExecutors": 1, "minExecutors": 1, "maxExecutors": 4,
                "shuffleTrackingTimeout": 3000}
        }));
        let entries: BTreeMap<String, String> = conf_entries(&s).into_iter().collect();
        assert_eq!(entries["spark.dynamicAllocation.enabled"], "true");
        assert_eq!(entries["spark.dynamicAllocation.maxExecutors"], "4");
        assert_eq!(entries["spark.dynamicAllocation.shuffleTracking.timeout"], "3000ms");
        // initial: the largest of initialExecutors (1), minExecutors (1), instances (2).
        assert_eq!(bounds(&s).unwrap(), Some(Bounds { min: 1, max: Some(4), initial: 2, batch: DEFAULT_BATCH }));
        // Off: the fields set nothing, and sparkConf alone can turn it on.
        let off = spec(serde_json::json!({"dynamicAllocation": {"enabled": false, "maxExecutors": 4}}));
        assert!(conf_entries(&off).is_empty());
        assert_eq!(bounds(&off).unwrap(), None);
        let conf_only = spec(serde_json::json!({"sparkConf": {"spark.dynamicAllocation.enabled": "true",
            "spark.kubernetes.allocation.batch.size": "2"}}));
        assert_eq!(bounds(&conf_only).unwrap(), Some(Bounds { min: 0, max: None, initial: 1, batch: 2 }));
    }

    #[test]
    fn bad_bounds_name_their_field() {
        let err = |json| bounds(&spec(json)).unwrap_err();
        let e = err(serde_json::json!({"dynamicAllocation": {"enabled": true, "minExecutors": 5, "maxExecutors": 2}}));
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("spec.dynamicAllocation.minExecutors", "5 is above maxExecutors (2)")
        );
        let e = err(serde_json::json!({"dynamicAllocation": {"enabled": true, "maxExecutors": 0}}));
        assert_eq!(e.field, "spec.dynamicAllocation.maxExecutors");
        let e = err(serde_json::json!({"sparkConf": {"spark.dynamicAllocation.enabled": "yes"}}));
        assert_eq!(e.field, "spec.sparkConf[spark.dynamicAllocation.enabled]");
        let e = err(serde_json::json!({"sparkConf": {"spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.minExecutors": "-1"}}));
        assert_eq!(e.field, "spec.sparkConf[spark.dynamicAllocation.minExecutors]");
        let e = err(serde_json::json!({"sparkConf": {"spark.dynamicAllocation.enabled": "true",
            "spark.kubernetes.allocation.batch.size": "0"}}));
        assert_eq!(e.field, "spec.sparkConf[spark.kubernetes.allocation.batch.size]");
    }

    #[test]
    fn the_drivers_demand_parses() {
        let d: Demand = serde_json::from_value(serde_json::json!({"target": 4, "minExecutors": 1,
            "maxExecutors": null, "pendingTasks": 12, "runningTasks": 4,
            "executors": [{"id": "1", "runningTasks": 1, "idleMs": 0}], "decommissioned": ["2"]}))
        .unwrap();
        assert_eq!(
            d,
            Demand {
                target: 4,
                pending_tasks: 12,
                executors: vec![RegisteredExecutor { id: "1".into() }],
                decommissioned: vec!["2".into()]
            }
        );
        assert!(d.registered(1) && !d.registered(2) && d.retired(2) && !d.retired(1));
    }

    #[tokio::test]
    async fn reads_the_demand_from_a_real_http_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route(
            DEMAND_PATH,
            axum::routing::get(|| async {
                ([(http::header::CONTENT_TYPE, "application/json")], r#"{"target": 3, "decommissioned": []}"#)
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let demand = fetch_demand("127.0.0.1", port).await;
        assert_eq!(demand, Some(Demand { target: 3, ..Default::default() }));
        // A closed port: nothing, within the timeout.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(fetch_demand("127.0.0.1", closed_port).await, None);
    }
}
