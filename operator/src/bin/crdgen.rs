//! Prints the SparkApplication and ScheduledSparkApplication CRDs as YAML, generated from
//! the Rust types.
//!
//! `cargo run -p ember-operator --bin crdgen` prints both (as two YAML documents); with
//! `--write` it updates `crds/*.yaml` and the Helm chart's copies.

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let write = std::env::args().any(|a| a == "--write");
    if write {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (path, yaml) in ember_operator::crdgen::generated_files()? {
            std::fs::write(root.join(path), &yaml)?;
            eprintln!("wrote {path}");
        }
    } else {
        print!("{}---\n{}", ember_operator::crdgen::crd_yaml()?, ember_operator::crdgen::scheduled_crd_yaml()?);
    }
    Ok(())
}
