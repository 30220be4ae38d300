//! `ScheduledSparkApplication`: a `SparkApplication` template run on a cron schedule by the
//! operator itself (kubeflow spark-operator's resource of the same name).
//!
//! - [`crd`]: the custom resource types (their CRD is generated like the first one's);
//! - [`schedule`]: cron expressions and `@every` read in a time zone;
//! - [`run`]: the runs' names, labels and owner, and what is read back from them;
//! - [`decide`]: the pure scheduling function, with the time as an argument;
//! - [`reconciler`]: lists the runs, applies the decision, writes the status.

pub mod crd;
pub mod decide;
pub mod reconciler;
pub mod run;
pub mod schedule;
