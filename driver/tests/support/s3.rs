//! A real S3-compatible server for tests: moto's server (installed from PyPI by
//! tests/tools/install-moto.sh into the target directory) as a child process on a
//! free loopback port, killed when dropped.
// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to install (first run) and start.
const START: Duration = Duration::from_secs(600);

/// A running S3 server.
pub struct S3Server {
    child: Child,
    /// Its address.
    pub address: SocketAddr,
}

fn install() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = std::env::var_os("EMBER_TOOLS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("../tools"));
    std::fs::create_dir_all(&cache).unwrap();
    let script = workspace.join("tests/tools/install-moto.sh");
    let output = Command::new("bash").arg(&script).arg(&cache).output().expect("running install-moto.sh");
    assert!(output.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().lines().last().expect("a path").trim())
}

impl S3Server {
    /// Installs (once) and starts the server; waits until it listens.
    pub fn start() -> S3Server {
        let bin = install();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + START;
        let address = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).expect("moto_server did not say where it listens");
            if let Some(url) = line.split("Running on http://").nth(1) {
                break url.trim().trim_end_matches('/').parse().expect("host:port");
            }
        };
        S3Server { child, address }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The settings that reach this server: its endpoint, path-style access and
    /// test credentials, as `(key, value)` pairs for a `Conf` or `--conf`.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("spark.hadoop.fs.s3a.endpoint", self.endpoint().as_str()),
            ("spark.hadoop.fs.s3a.path.style.access", "true"),
            ("spark.hadoop.fs.s3a.access.key", "testing"),
            ("spark.hadoop.fs.s3a.secret.key", "testing"),
            ("spark.hadoop.fs.s3a.endpoint.region", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let timeout = Duration::from_secs(30);
        let mut stream = TcpStream::connect_timeout(&self.address, timeout).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        // moto checks no signatures (IAM auth is off), but serves private objects
        // only to requests that name credentials: the test user's, unsigned.
        let authorization = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, \
                             SignedHeaders=host, Signature=0";
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\n\
             x-amz-date: 20260101T000000Z\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, text) = self.request("PUT", &format!("/{bucket}"), b"");
        assert_eq!(status, 200, "creating bucket {bucket}: {text}");
    }

    /// Writes an object.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let (status, text) = self.request("PUT", &format!("/{bucket}/{key}"), body);
        assert_eq!(status, 200, "putting {bucket}/{key}: {text}");
    }

    /// An object's body as text, `None` when there is no such object.
    pub fn get_text(&self, bucket: &str, key: &str) -> Option<String> {
        let (status, text) = self.request("GET", &format!("/{bucket}/{key}"), b"");
        (status == 200).then(|| text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
    }

    /// Turns on moto's IAM authentication: from now on only credentials that
    /// exist in its IAM (none, unless a test creates them) are accepted, so
    /// every request, this helper's included, is refused as `InvalidAccessKeyId`.
    pub fn require_credentials(&self) {
        let (status, text) = self.request("POST", "/moto-api/reset-auth", b"0");
        assert_eq!(status, 200, "turning on authentication: {text}");
    }

    /// The keys under `prefix`, sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, text) = self.request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), b"");
        assert_eq!(status, 200, "listing {bucket}/{prefix}: {text}");
        let mut keys: Vec<String> =
            text.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_string).collect();
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
