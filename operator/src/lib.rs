//! The Ember Kubernetes operator: the `SparkApplication` CRD and its reconciler.
//!
//! - [`crd`]: the custom resource types (the CRD schema is generated from them);
//! - [`spec`]: checks of a spec that the schema cannot express, and its parsed values;
//! - [`builder`]: pure builders of the driver pod, driver Service and executor pods;
//! - [`customization`]: per-role pod customisation (kubeflow's `SparkPodSpec` fields, `template`);
//! - [`pod_security`]: the pods' security defaults and the restricted Pod Security Standard;
//! - [`state`]: the state machine, a pure function from observations to actions;
//! - [`ownership`]: whose an object is; names are created, never taken from another owner;
//! - [`reconciler`]: observes the cluster, runs the state machine, carries out actions;
//! - [`allocation`]: dynamic allocation: the driver's demand read, executor pods kept to it;
//! - [`scheduled`]: `ScheduledSparkApplication`, applications run on a cron schedule;
//! - [`leader`]: leader election on a coordination.k8s.io Lease;
//! - [`metrics`] and [`http`]: Prometheus metrics and the health endpoints;
//! - [`telemetry`]: tracing setup with optional OTLP export;
//! - [`ui`]: the driver's UI Service and Ingresses, `driverIngressOptions`, scrape settings;
//! - [`auth`]: `spark.authenticate`: a Secret per application, mounted into its pods only.

pub mod allocation;
pub mod auth;
pub mod builder;
pub mod crd;
pub mod crdgen;
pub mod customization;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod ownership;
pub mod pod_security;
pub mod reconciler;
pub mod scheduled;
pub mod spec;
pub mod state;
pub mod telemetry;
pub mod ui;
pub mod ui_port;
