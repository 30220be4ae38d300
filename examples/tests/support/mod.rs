//! Running `ember-examples` jobs as real processes in tests: stderr read line by
//! line (to wait for log events), stdout kept for the result line, killed on drop.
// Each test crate uses a different part of this module.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The longest any test waits for a process event.
pub const WAIT: Duration = Duration::from_secs(180);

/// A process whose stderr is read line by line; killed when dropped.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
    /// The stderr reader: done once the pipe closes, with every line in `seen`.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    /// The process's `EMBER_LOCAL_DIRS` unless the test gave one: whatever a
    /// killed driver's executors leave there goes with the test, not into /tmp.
    _local_dirs: Option<tempfile::TempDir>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let given = cmd.get_envs().any(|(k, _)| k == "EMBER_LOCAL_DIRS");
        let local_dirs = (!given).then(|| tempfile::tempdir().expect("a temp dir for spark.local.dir"));
        if let Some(dir) = &local_dirs {
            cmd.env("EMBER_LOCAL_DIRS", dir.path());
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                seen2.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        Proc { child, lines, seen, stdout: Some(stdout), stderr_reader: Some(stderr_reader), _local_dirs: local_dirs }
    }

    /// The first stderr line containing `needle` (bounded wait).
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within {WAIT:?}; stderr:\n{}", self.stderr()),
            }
        }
    }

    pub fn stderr(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }

    /// Waits for exit; returns (exit code, stdout).
    pub fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "process did not exit within {WAIT:?}; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = self.stdout.take().unwrap().join().unwrap();
        // Every stderr line read before the caller looks at `seen` (the process has
        // exited; a child of it could still hold the pipe, hence the bound).
        if let Some(reader) = self.stderr_reader.take() {
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        (status.code(), out)
    }

    /// The JSON of the last stdout line, asserting success.
    pub fn result(self) -> Value {
        self.result_and_stderr().0
    }

    /// The JSON of the last stdout line, asserting success, and the whole stderr.
    pub fn result_and_stderr(self) -> (Value, String) {
        let stderr_seen = self.seen.clone();
        let (code, out) = self.finish();
        let stderr = stderr_seen.lock().unwrap().join("\n");
        assert_eq!(code, Some(0), "job failed; stderr:\n{stderr}");
        let last = out.lines().last().unwrap_or_else(|| panic!("no output; stderr:\n{stderr}"));
        let json = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("last line {last:?} is not JSON ({e}); stderr:\n{stderr}"));
        (json, stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end within `limit`, killing its process group after (a
/// cargo or podman build and its helpers with it).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            // SAFETY: plain kill(2) of the process group of the child started above.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

/// `ember-examples --master MASTER ARGS…` with info-level logs and no `EMBER_CONF`.
pub fn job(master: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.arg("--master").arg(master).args(args).env("EMBER_LOG", "info").env_remove("EMBER_CONF");
    cmd
}

#[path = "../../../driver/tests/support/http.rs"]
pub mod http;

/// A join whose first job (two shuffles, 4 partitions) runs before it waits for
/// `pause` (give a path that never appears to hold the application open).
pub fn paused_join_args(pause: &std::path::Path) -> Vec<String> {
    let args = ["join", "--large", "20000", "--small", "1000", "--keys", "2000", "--partitions", "4", "--pause-file"];
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push(pause.to_str().expect("utf-8 path").to_string());
    v
}

/// A straggler job on 2 executors whose executor 2 holds its task for 10 minutes:
/// a job that stays running while a test looks at it.
pub const STUCK_STRAGGLER: [&str; 11] =
    ["straggler", "--tasks", "6", "--records", "10", "--base-ms", "20", "--slow-executor", "2", "--delay-ms", "600000"];

/// `ember-examples` on `local-cluster[2,1,256]` with its web UI on any free port.
pub fn spawn_with_ui<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-examples"));
    cmd.env_remove("EMBER_CONF").args(["--master", "local-cluster[2,1,256]", "--conf", "spark.ui.port=0"]).args(args);
    Proc::spawn(cmd)
}

/// The loopback address of the URL in a log line (`… http://0.0.0.0:PORT/…`).
///
/// # Panics
/// When the line holds no `http://host:port` URL, naming the line.
pub fn loopback_address_in(line: &str) -> std::net::SocketAddr {
    let port = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|host_port| host_port.trim().rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no http://host:port URL in the line {line:?}"));
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
