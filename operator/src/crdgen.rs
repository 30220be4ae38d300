//! Generation of the CRD YAML from the Rust types (see the `crdgen` binary).

use kube::CustomResourceExt;

use crate::crd::SparkApplication;

/// Files that hold the generated CRD, relative to the workspace root; a test fails when
/// either differs from [`crd_yaml`].
pub const CRD_FILES: [&str; 2] = ["crds/sparkapplications.yaml", "charts/ember-operator/files/sparkapplications.yaml"];

/// The CRD as YAML, with a header saying how it was made.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(&SparkApplication::crd())?;
    Ok(format!(
        "# Generated from operator/src/crd.rs by `cargo run -p ember-operator --bin crdgen -- --write`.\n# Do not edit by hand.\n{body}"
    ))
}
