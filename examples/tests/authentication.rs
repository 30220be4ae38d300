//! `spark.authenticate` with real processes: an application on `local-cluster`
//! runs with it on, and a second process of the same binary calls it as an
//! executor would, with the right secret, a wrong one and none.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::Proc;

const SECRET: &str = "a-test-secret-of-thirty-two-byte";

/// `ember-examples auth-probe` against the driver at `driver`, with `secret` in
/// its environment (none: no secret at all).
fn probe(driver: &str, block_server: Option<&str>, broadcast: &str, secret: Option<&str>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF").env_remove("EMBER_AUTH_SECRET_FILE").env("EMBER_LOG", "warn");
    cmd.args(["auth-probe", "--driver", driver, "--broadcast", broadcast]);
    if let Some(address) = block_server {
        cmd.args(["--block-server", address]);
    }
    match secret {
        Some(secret) => cmd.env("EMBER_AUTH_SECRET", secret),
        None => cmd.env_remove("EMBER_AUTH_SECRET"),
    };
    Proc::spawn(cmd).result()
}

/// `lookup-table` on `master` with authentication on and its pause file at
/// `pause`, started; returns it with its driver's `host:port`.
fn start_app(master: &str, pause: &Path) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF").env_remove("EMBER_AUTH_SECRET").env("EMBER_LOG", "info");
    cmd.args(["--master", master]);
    cmd.args(["--conf", "spark.authenticate=true", "--conf", &format!("spark.authenticate.secret={SECRET}")]);
    // Several pieces, so that the executors fetch them from each other.
    cmd.args(["--conf", "spark.broadcast.blockSize=64k"]);
    cmd.args(["lookup-table", "--pause-file", pause.to_str().unwrap()]);
    let app = Proc::spawn(cmd);
    let listening = app.wait_for("driver listening on");
    let driver = listening.rsplit(' ').next().unwrap().trim().to_string();
    (app, driver)
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[test]
fn with_spark_authenticate_a_job_runs_and_a_process_without_the_secret_can_neither_register_nor_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let (app, driver) = start_app("local-cluster[2,1,256]", &pause);
    let ids = app.wait_for("ember: broadcast ");
    let broadcast = ids.split("broadcast ").nth(1).unwrap().split(',').next().unwrap().trim().to_string();

    // The right secret: every call goes through (the control).
    let right = probe(&driver, None, &broadcast, Some(SECRET));
    for name in ["map_outputs", "shuffle_block", "piece_from_driver", "register"] {
        assert!(field(&right, name).starts_with("ok "), "{name} with the right secret: {right}");
    }
    let block_server = field(&right, "block_server").to_string();
    assert!(field(&right, "register").contains("secret in the conf sent: false"), "{right}");

    // A wrong secret and none: every call refused, on the driver and the block server.
    for secret in [Some("not-the-secret-but-long-enough-too"), None] {
        let wrong = probe(&driver, Some(&block_server), &broadcast, secret);
        for name in ["map_outputs", "shuffle_block", "piece_from_executor", "piece_from_driver", "register"] {
            assert!(field(&wrong, name).starts_with("refused: "), "{name} with secret {secret:?}: {wrong}");
        }
    }
    let wrong = probe(&driver, Some(&block_server), &broadcast, Some("not-the-secret-but-long-enough-too"));
    assert!(field(&wrong, "register").contains("wrong secret"), "{wrong}");

    // The application saw and logged the refusals, and still finishes exactly.
    std::fs::write(&pause, b"").unwrap();
    let (result, stderr) = app.result_and_stderr();
    assert_eq!(result["keys"], 100, "{result}");
    assert_eq!(result["total"], 100_000, "{result}");
    let refusals = stderr.lines().filter(|l| l.contains("refused an unauthenticated call")).count();
    assert!(refusals >= 10, "{refusals} refusals logged; stderr:\n{stderr}");
    assert!(stderr.contains("server=\"driver\"") || stderr.contains("server=driver"), "{stderr}");
    assert!(stderr.contains("block server"), "{stderr}");
}

#[test]
fn an_executor_with_a_wrong_secret_is_refused_and_says_so() {
    // A driver on an ember:// master with authentication on, and an executor
    // process of the same binary given the wrong secret: it exits as refused.
    let dir = tempfile::tempdir().unwrap();
    let pause = dir.path().join("go");
    let (app, driver) = start_app("ember://127.0.0.1:0", &pause);

    let executor = |secret: &str, id: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
        cmd.env_remove("EMBER_CONF")
            .env("EMBER_ROLE", "executor")
            .env("EMBER_DRIVER_URL", format!("http://{driver}"))
            .env("EMBER_EXECUTOR_ID", id)
            .env("EMBER_BIND_ADDRESS", "127.0.0.1")
            .env("EMBER_AUTH_SECRET", secret)
            .env("EMBER_CONNECT_TIMEOUT_SECS", "30")
            .arg("auth-probe")
            .args(["--driver", "unused"]);
        Proc::spawn(cmd)
    };
    let intruder = executor("not-the-secret-but-long-enough-too", "intruder");
    let stderr = intruder.seen.clone();
    let (code, _) = intruder.finish();
    let stderr = stderr.lock().unwrap().join("\n");
    assert_eq!(code, Some(3), "refused executors exit with 3; stderr:\n{stderr}");
    assert!(stderr.contains("refused by the driver") && stderr.contains("wrong secret"), "{stderr}");
    app.wait_for("refused an unauthenticated call");

    // The same binary with the right secret registers and runs the job.
    let _good = executor(SECRET, "1");
    app.wait_for("ember: broadcast ");
    std::fs::write(&pause, b"").unwrap();
    let result = app.result();
    assert_eq!(result["total"], 100_000, "{result}");
}
