//! Ember's container images, built from the project's Dockerfile by
//! `tests/images/build.sh` with podman (only the base images are local), then
//! checked for what they promise and run:
//!
//! - non-root (`65532:65532`), no shell, the binaries at the paths the manifests use,
//!   the entrypoints, and the engine image's size over its base under 60 MB;
//! - the seed job in an engine container on `local-cluster[2,1,256]`, exact;
//! - the job template's image (`--target job`): its job next to `ember-examples`,
//!   exact on `local[2]`.
//!
//! Skipped, with the reason, where podman cannot run a container
//! (`tests/images/build.sh --check`). The first build compiles the workspace in
//! release mode inside the build container (minutes); later runs reuse its layers.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::run_bounded as run;

use ember_examples::jobs::sumsq;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn podman(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", workspace().join("tests/images/containers.conf")).args(args);
    cmd
}

/// `podman image inspect --format FORMAT IMAGE`, trimmed.
fn inspect(image: &str, format: &str) -> String {
    let out = run(podman(&["image", "inspect", "--format", format, image]), Duration::from_secs(60));
    succeeded(&format!("inspect {image}"), &out).trim().to_string()
}

const OPERATOR: &str = "localhost/ember-operator:dev";
const ENGINE: &str = "localhost/ember-engine:dev";
const JOB: &str = "localhost/ember-job-template:dev";
const RUNTIME_BASE: &str = "localhost/ember-base/cc-debian12:nonroot";
/// The seed job's container: named, so that it is removed even when the test fails.
const SEED_CONTAINER: &str = "ember-images-test-sumsq";

/// Removes the seed job's container (it uses the host's network) when dropped.
struct RemoveContainer(&'static str);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--ignore", "--time", "0", self.0]).output();
    }
}

#[test]
fn images_built_from_the_dockerfile_keep_their_promises_and_run_the_seed_job() {
    if std::env::var_os("EMBER_SKIP_IMAGE_TESTS").is_some_and(|v| v != "0") {
        eprintln!("EMBER_SKIP_IMAGE_TESTS set: skipping the image tests");
        return;
    }
    let script = workspace().join("tests/images/build.sh");
    let mut check = Command::new("bash");
    check.arg(&script).arg("--check");
    let check = run(check, Duration::from_secs(10 * 60));
    if !check.status.success() {
        eprintln!("SKIPPED: podman cannot run containers here:\n{}", text(&check.stderr));
        return;
    }
    let mut build = Command::new("bash");
    build.arg(&script).env("EMBER_IMAGE_TAG", "dev");
    let build = run(build, Duration::from_secs(45 * 60));
    eprintln!("{}", text(&build.stderr));
    succeeded("tests/images/build.sh", &build);

    // Non-root, and the entrypoints the manifests rely on.
    for (image, entrypoint) in [
        (OPERATOR, "[/usr/local/bin/ember-operator]"),
        (ENGINE, "[/opt/ember/bin/ember-examples]"),
        (JOB, "[/opt/ember/bin/ember-examples]"),
    ] {
        assert_eq!(inspect(image, "{{.Config.User}}"), "65532:65532", "{image} runs as the nonroot user");
        assert_eq!(inspect(image, "{{.Config.Entrypoint}}"), entrypoint, "{image}'s entrypoint");
        // Distroless: no shell to start.
        let shell = run(
            podman(&["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", "true"]),
            Duration::from_secs(120),
        );
        assert!(!shell.status.success(), "{image} has a shell");
        let err = text(&shell.stderr);
        assert!(
            err.contains("no such file") || err.contains("not found"),
            "{image}: /bin/sh refused for the wrong reason: {err}"
        );
    }
    // The binaries answer at their paths, as the non-root user.
    let help = run(podman(&["run", "--rm", "--network", "none", OPERATOR, "--help"]), Duration::from_secs(120));
    assert!(succeeded("ember-operator --help", &help).contains("Usage"));
    let help = run(podman(&["run", "--rm", "--network", "none", ENGINE, "--help"]), Duration::from_secs(120));
    assert!(succeeded("ember-examples --help", &help).contains("sumsq"));
    let help = run(
        podman(&["run", "--rm", "--network", "none", "--entrypoint", "/opt/ember/bin/my-ember-job", JOB]),
        Duration::from_secs(120),
    );
    assert!(text(&help.stderr).contains("usage: my-ember-job"), "{}", text(&help.stderr));

    // Size: what the engine image adds to its base.
    let size = |image: &str| -> u64 { inspect(image, "{{.Size}}").parse().expect("size in bytes") };
    let added = size(ENGINE) - size(RUNTIME_BASE);
    eprintln!(
        "image sizes: operator {} MB, engine {} MB (base {} MB, engine adds {} MB)",
        size(OPERATOR) / 1_000_000,
        size(ENGINE) / 1_000_000,
        size(RUNTIME_BASE) / 1_000_000,
        added / 1_000_000
    );
    assert!(added < 60_000_000, "the engine image adds {added} bytes to its base; the goal is under 60 MB");

    // The seed job in an engine container: the driver starts its executors, inside
    // the same container, as the same binary.
    let n = 1_000_000u64;
    let _remove = RemoveContainer(SEED_CONTAINER);
    let seed = run(
        podman(&[
            "run",
            "--rm",
            "--replace",
            "--name",
            SEED_CONTAINER,
            "--network",
            "host",
            ENGINE,
            "--master",
            "local-cluster[2,1,256]",
            "--conf",
            "spark.ui.enabled=false",
            "sumsq",
            "--n",
            &n.to_string(),
            "--partitions",
            "8",
        ]),
        Duration::from_secs(5 * 60),
    );
    let stdout = succeeded("the seed job in the engine image", &seed);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a result line")).expect("JSON");
    assert_eq!(last, serde_json::json!({ "count": n, "sum": sumsq::expected_sum(n).to_string() }));

    // The job template's image: its job runs there on its input.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("input.txt"), "The cat and the hat.\nA cat, a dog; the DOG!\r\nhat hat\nzebra")
        .unwrap();
    let volume = format!("{}:/data:ro,Z", dir.path().display());
    let job = run(
        podman(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &volume,
            "--entrypoint",
            "/opt/ember/bin/my-ember-job",
            JOB,
            "--master",
            "local[2]",
            "--conf",
            "spark.ui.enabled=false",
            "/data/input.txt",
            "3",
        ]),
        Duration::from_secs(5 * 60),
    );
    assert_eq!(
        succeeded("the job template in its image", &job),
        "hat              3\ncat              2\ndog              2\n4 distinct words\n"
    );
}
