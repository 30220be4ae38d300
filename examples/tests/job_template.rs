//! The job template (examples/job-template/) followed as README's "Your first
//! job" says: copied into a fresh directory outside the workspace, with `ember` as
//! its only dependency, built with cargo, and run on `local[2]` and on
//! `local-cluster` with exact results. Then programs that must not compile, each
//! checked for the error a newcomer needs to read.
//!
//! The crate is built in target/job-template/ (its own dependency build: a job's
//! features differ from the workspace's), once per checkout; later runs reuse it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::run_bounded as run;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// A fresh copy of the template whose `ember` is this checkout, and cargo
/// building it.
struct JobCrate {
    dir: tempfile::TempDir,
}

impl JobCrate {
    fn new() -> JobCrate {
        let dir = tempfile::tempdir().expect("temp dir");
        let template = workspace().join("examples/job-template");
        let manifest = std::fs::read_to_string(template.join("Cargo.toml")).expect("template Cargo.toml");
        let driver = workspace().join("driver");
        let manifest =
            manifest.replace("path = \"../../driver\"", &format!("path = {:?}", driver.display().to_string()));
        assert!(manifest.contains(&driver.display().to_string()), "the template names ember by path ../../driver");
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::copy(template.join("src/main.rs"), dir.path().join("src/main.rs")).unwrap();
        // The workspace's versions, so that the build needs nothing new.
        std::fs::copy(workspace().join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
        JobCrate { dir }
    }

    fn write_main(&self, source: &str) {
        std::fs::write(self.dir.path().join("src/main.rs"), source).unwrap();
    }

    fn build(&self) -> Output {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--offline", "--quiet", "--manifest-path"])
            .arg(self.dir.path().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(workspace().join("target/job-template"))
            .env_remove("RUSTFLAGS")
            .env("CARGO_TERM_COLOR", "never");
        run(cmd, Duration::from_secs(40 * 60))
    }

    fn binary(&self) -> PathBuf {
        workspace().join("target/job-template/debug/my-ember-job")
    }
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_template_builds_alone_runs_on_both_masters_and_refuses_what_cannot_ship() {
    let job = JobCrate::new();
    let built = job.build();
    assert!(built.status.success(), "the template does not build:\n{}", String::from_utf8_lossy(&built.stderr));

    let input = job.dir.path().join("input.txt");
    std::fs::write(&input, "The cat and the hat.\nA cat, a dog; the DOG!\r\nhat hat\nzebra").unwrap();
    let expected = "hat              3\ncat              2\ndog              2\n4 distinct words\n";
    for master in ["local[2]", "local-cluster[2,1,512]"] {
        let mut cmd = Command::new(job.binary());
        cmd.args(["--master", master, "--conf", "spark.ui.enabled=false"]).arg(&input).arg("3");
        let out = run(cmd, Duration::from_secs(120));
        assert_eq!(stdout_of(&out), expected, "on {master}");
    }
    // A missing argument is the job's own clear error.
    let out = run(Command::new(job.binary()), Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: my-ember-job"));

    let cases: &[(&str, &str, &[&str])] = &[
        (
            "a capture that cannot be serialized names the variable",
            "struct Connection;
             let conn = Connection;
             let _ = rdd.map(Fn!(move |x: u64| { let _ = &conn; x }));",
            &[
                "this `Fn!` closure captures `conn`, of type `Connection`, which cannot be shipped to executors",
                "`conn` is captured here",
            ],
        ),
        (
            "a capture without move says to add it",
            "let k = 3u64;
             let _ = rdd.map(Fn!(|x: u64| x + k));",
            &["this closure captures `k`", "add `move`"],
        ),
        (
            "a macro whose tokens are not expressions asks for the capture list",
            "macro_rules! add_to { (add $x:ident to $t:ident) => { $x + $t }; }
             let total = 1u64;
             let _ = rdd.map(Fn!(move |x: u64| add_to!(add x to total)));",
            &["cannot tell whether `add`, `to`, `total` inside `add_to!`", "Fn!([add, to, total] move |…| …)"],
        ),
        (
            "a closure that captures, passed without Fn!, says to wrap it",
            "let names = vec![String::new()];
             let _ = rdd.map(move |x: u64| names.len() as u64 + x);",
            &["cannot be shipped to executors", "Fn!(move |…| …)"],
        ),
        (
            "a key type that is not an ember::Key is named",
            "let set: std::collections::HashSet<u8> = [1u8].into();
             let _ = sc.parallelize(vec![(set, 1u64)], 1).reduce_by_key(|a: u64, b: u64| a + b);",
            &["HashSet<u8>: Key"],
        ),
        (
            "a closure that captures a copyable value, passed without Fn!, says to wrap it",
            "let k = 3u64;
             let _ = rdd.map(move |x: u64| x + k).count();",
            &["captures variables: write it `Fn!(move |…| …)`"],
        ),
    ];
    for (what, body, needles) in cases {
        job.write_main(&format!(
            "use ember::prelude::*;\nfn main() {{\n let sc = EmberContext::new(Conf::new().master(\"local\")).unwrap();\n \
             let rdd = sc.parallelize(vec![1u64], 1);\n let _ = &rdd;\n {body}\n}}\n"
        ));
        let out = job.build();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: compiled");
        for needle in *needles {
            assert!(stderr.contains(needle), "{what}: no {needle:?} in\n{stderr}");
        }
    }
}
