//! `spark.ssl.rpc` with real processes: a `local-cluster` application whose
//! driver, executors and block servers speak only TLS (certificates made here
//! with rcgen, signed by a test CA), and a plaintext caller that gets nothing.

mod support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::Path;
use std::process::Command;
use support::Proc;

/// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`: a CA and a
/// certificate it signed for `localhost` and 127.0.0.1.
fn write_certificates(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

#[test]
fn with_tls_a_job_runs_over_encrypted_rpc_and_a_plaintext_caller_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_certificates(dir.path());
    let pause = dir.path().join("go");
    let file = |name: &str| dir.path().join(name).display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF").env_remove("EMBER_AUTH_SECRET").env("EMBER_LOG", "info");
    cmd.args(["--master", "local-cluster[2,1,256]", "--conf", "spark.ssl.rpc.enabled=true"]);
    for (key, name) in [("certChain", "cert.pem"), ("privateKey", "key.pem"), ("trustStore", "ca.pem")] {
        cmd.args(["--conf", &format!("spark.ssl.rpc.{key}={}", file(name))]);
    }
    // Several broadcast pieces and a shuffle: executors call each other too.
    cmd.args(["--conf", "spark.broadcast.blockSize=64k"]);
    cmd.args(["lookup-table", "--pause-file", pause.to_str().unwrap()]);
    let app = Proc::spawn(cmd);
    let listening = app.wait_for("driver listening on");
    let driver = listening.rsplit(' ').next().unwrap().trim().to_string();
    app.wait_for("ember: broadcast ");

    // A caller speaking plaintext gRPC gets no answer at all.
    let mut probe = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    probe.env_remove("EMBER_CONF").env_remove("EMBER_AUTH_SECRET").env("EMBER_LOG", "warn");
    probe.args(["auth-probe", "--driver", &driver]);
    let probe = Proc::spawn(probe);
    let seen = probe.seen.clone();
    let (code, out) = probe.finish();
    let err = seen.lock().unwrap().join("\n");
    // Either the connection fails, or the call dies in transport: both are
    // transport errors, never an answer.
    if code == Some(0) {
        // tonic reports the TLS server's reply to plaintext HTTP/2 as a
        // transport error or as an h2 protocol error, depending on timing.
        let transport_error = ["error Unknown: transport error", "error Internal: h2 protocol error"]
            .iter()
            .any(|e| out.contains(&format!("\"map_outputs\":\"{e}")));
        assert!(transport_error, "a plaintext caller got: {out}");
    } else {
        assert!(err.contains("transport error") || err.contains("connect"), "the probe failed otherwise: {err}");
    }

    std::fs::write(&pause, b"").unwrap();
    let (result, stderr) = app.result_and_stderr();
    assert_eq!(result["keys"], 100, "{result}");
    assert_eq!(result["total"], 100_000, "{result}");
    assert!(!stderr.contains("refused"), "{stderr}");
}

#[test]
fn a_missing_certificate_file_stops_the_driver_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.pem").display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF").env("EMBER_LOG", "warn");
    cmd.args(["--master", "local-cluster[1,1,256]", "--conf", "spark.ssl.rpc.enabled=true"]);
    for key in ["certChain", "privateKey", "trustStore"] {
        cmd.args(["--conf", &format!("spark.ssl.rpc.{key}={absent}")]);
    }
    cmd.args(["sumsq", "--n", "10"]);
    let app = Proc::spawn(cmd);
    let seen = app.seen.clone();
    let (code, _) = app.finish();
    let stderr = seen.lock().unwrap().join("\n");
    assert_ne!(code, Some(0));
    assert!(stderr.contains("certificate chain") && stderr.contains("absent.pem"), "{stderr}");
}
