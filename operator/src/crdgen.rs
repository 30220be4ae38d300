//! Generation of the CRD YAML from the Rust types (see the `crdgen` binary).

use kube::CustomResourceExt;

use crate::crd::SparkApplication;
use crate::scheduled::crd::ScheduledSparkApplication;

/// Files that hold the generated `SparkApplication` CRD, relative to the workspace root; a
/// test fails when either differs from [`crd_yaml`].
pub const CRD_FILES: [&str; 2] = ["crds/sparkapplications.yaml", "charts/ember-operator/files/sparkapplications.yaml"];

/// Files that hold the generated `ScheduledSparkApplication` CRD; a test fails when either
/// differs from [`scheduled_crd_yaml`].
pub const SCHEDULED_CRD_FILES: [&str; 2] =
    ["crds/scheduledsparkapplications.yaml", "charts/ember-operator/files/scheduledsparkapplications.yaml"];

fn with_header(source: &str, body: String) -> String {
    format!(
        "# Generated from {source} by `cargo run -p ember-operator --bin crdgen -- --write`.\n# Do not edit by hand.\n{body}"
    )
}

/// The `SparkApplication` CRD as YAML, with a header saying how it was made.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    Ok(with_header("operator/src/crd.rs", serde_yaml::to_string(&SparkApplication::crd())?))
}

/// The `ScheduledSparkApplication` CRD as YAML, with a header saying how it was made.
pub fn scheduled_crd_yaml() -> Result<String, serde_yaml::Error> {
    Ok(with_header("operator/src/scheduled/crd.rs", serde_yaml::to_string(&ScheduledSparkApplication::crd())?))
}

/// Every generated file (path relative to the workspace root) with its content.
pub fn generated_files() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    let apps = crd_yaml()?;
    let scheduled = scheduled_crd_yaml()?;
    Ok(CRD_FILES
        .iter()
        .map(|p| (*p, apps.clone()))
        .chain(SCHEDULED_CRD_FILES.iter().map(|p| (*p, scheduled.clone())))
        .collect())
}
