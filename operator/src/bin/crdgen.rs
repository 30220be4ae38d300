//! Prints the SparkApplication CRD as YAML, generated from the Rust types.
//!
//! `cargo run -p ember-operator --bin crdgen > crds/sparkapplications.yaml`, or with
//! `--write` it updates both `crds/sparkapplications.yaml` and the Helm chart's copy.

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let yaml = ember_operator::crdgen::crd_yaml()?;
    if std::env::args().any(|a| a == "--write") {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for path in ember_operator::crdgen::CRD_FILES {
            std::fs::write(root.join(path), &yaml)?;
            eprintln!("wrote {path}");
        }
    } else {
        print!("{yaml}");
    }
    Ok(())
}
