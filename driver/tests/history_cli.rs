//! `ember history-server --dir DIR`: the binary serves the applications of an
//! event-log directory (here one written by an in-process context), local or
//! in an object store.

mod support {
    pub mod http;
    pub mod s3;
}

use ember::prelude::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the server however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_history_server_binary_serves_an_event_log_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = Conf::new()
        .master("local[2]")
        .app_name("cli-test")
        .set("spark.ui.enabled", "false")
        .set("spark.eventLog.enabled", "true")
        .set("spark.eventLog.dir", dir.path().display().to_string());
    let sc = EmberContext::new(conf).expect("context");
    assert_eq!(sc.range(0, 10, 1, 2).expect("range").count().expect("job"), 10);
    let app_id = sc.app_id().to_string();
    sc.stop();

    let (child, address) = serve(&dir.path().display().to_string(), &[]);
    let apps = support::http::get_json(address, "/api/v1/applications");
    drop(child);
    assert_eq!(apps[0]["id"], app_id);
    assert_eq!(apps[0]["name"], "cli-test");
    assert_eq!(apps[0]["attempts"][0]["completed"], true);
}

/// Runs `ember history-server` on `dir` (given through its environment variable)
/// with `extra` arguments; returns it and the address it announces.
fn serve(dir: &str, extra: &[String]) -> (KillOnDrop, std::net::SocketAddr) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(["history-server", "--port", "0", "--host", "127.0.0.1", "--update-interval", "1s"])
            .args(extra)
            .env("EMBER_HISTORY_LOG_DIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ember"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let address = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("the server announces its address");
        if let Some(rest) = line.split("history server at http://").nth(1) {
            break rest.split_whitespace().next().expect("address").parse().expect("socket address");
        }
    };
    (child, address)
}

#[test]
fn the_history_server_binary_serves_an_event_log_prefix_of_an_object_store() {
    let server = support::s3::S3Server::start();
    server.create_bucket("logs");
    let settings = server.settings();
    let conf = settings.iter().fold(
        Conf::new()
            .master("local[2]")
            .app_name("s3-history")
            .set("spark.ui.enabled", "false")
            .set("spark.eventLog.enabled", "true")
            .set("spark.eventLog.dir", "s3a://logs/spark-events"),
        |c, (k, v)| c.set(k.as_str(), v.as_str()),
    );
    let sc = EmberContext::new(conf).expect("context");
    assert_eq!(sc.range(0, 10, 1, 2).expect("range").count().expect("job"), 10);
    let app_id = sc.app_id().to_string();
    sc.stop();

    let args: Vec<String> = settings.iter().flat_map(|(k, v)| ["--conf".to_string(), format!("{k}={v}")]).collect();
    let (child, address) = serve("s3a://logs/spark-events", &args);
    let apps = support::http::get_json(address, "/api/v1/applications");
    let jobs = support::http::get_json(address, &format!("/api/v1/applications/{app_id}/jobs"));
    drop(child);
    assert_eq!(apps[0]["id"], app_id);
    assert_eq!(apps[0]["name"], "s3-history");
    assert_eq!(apps[0]["attempts"][0]["completed"], true);
    assert_eq!(jobs[0]["status"], "SUCCEEDED", "{jobs}");
}
