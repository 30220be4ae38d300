//! Runs the kind end-to-end tests (tests/e2e/kind-e2e.sh) when docker with a running
//! engine and kind are available; otherwise says why it skips. EMBER_E2E=0 skips always.

use std::process::Command;

fn available(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn kind_end_to_end() {
    if std::env::var("EMBER_E2E").as_deref() == Ok("0") {
        eprintln!("SKIP kind e2e: EMBER_E2E=0");
        return;
    }
    let missing: Vec<&str> = [
        ("docker engine", available("docker", &["info"])),
        ("kind", available("kind", &["version"])),
        ("kubectl", available("kubectl", &["version", "--client"])),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        eprintln!("SKIP kind e2e: {} not available (see docs/OPERATOR.md to run them)", missing.join(", "));
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/kind-e2e.sh");
    let status = Command::new("bash").arg(script).status().expect("running tests/e2e/kind-e2e.sh");
    assert!(status.success(), "kind end-to-end tests failed");
}
