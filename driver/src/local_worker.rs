//! Spark's standalone Worker, for `local-cluster`: starts the executor
//! processes (this very binary in its executor role), keeps the tail of each
//! one's stderr, notices when one exits, says how (exit code or signal, and its
//! last log lines) and starts a replacement.
//!
//! Replacement follows Spark's Master and Worker: an executor that exits while
//! the application runs is relaunched under a new id, unless
//! `spark.deploy.maxExecutorRetries` executors in a row (default 10) failed
//! without one registering in between. Then the application runs on what is
//! left; a job with no executor at all fails after the scheduler's bounded wait
//! (`spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout`).

use ember_core::error::{EmberError, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Spark's default for `spark.deploy.maxExecutorRetries`.
pub const DEFAULT_MAX_EXECUTOR_RETRIES: usize = 10;

/// Lines of an exited executor's stderr quoted in the error of a task it ran.
pub const LOG_TAIL_LINES: usize = 20;

/// Bytes of each executor's stderr the worker keeps.
const LOG_TAIL_BYTES: usize = 64 << 10;

/// How long a lost connection waits for the executor process to be seen
/// exiting, to say how it ended.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// How one executor process ended.
#[derive(Debug, Clone)]
pub struct ExecutorExit {
    pub status: ExitStatus,
    /// Its last [`LOG_TAIL_LINES`] lines of stderr.
    pub log_tail: Vec<String>,
}

impl ExecutorExit {
    /// `the executor process exited with code 3`, `… was killed by signal 6 (SIGABRT)`.
    pub fn status_text(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("the executor process exited with code {code}"),
            (None, Some(signal)) => format!(
                "the executor process was killed by signal {signal} ({}){}",
                signal_name(signal),
                if self.status.core_dumped() { ", core dumped" } else { "" }
            ),
            (None, None) => format!("the executor process ended ({})", self.status),
        }
    }
}

/// The status, then the log tail, one indented line each.
impl fmt::Display for ExecutorExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status_text())?;
        if !self.log_tail.is_empty() {
            write!(f, "; the last lines of its stderr:")?;
            for line in &self.log_tail {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL, e.g. the out-of-memory killer",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// The variables of `spark.authenticate` and TLS, which executors get from the
/// driver's settings only.
const SECURITY_ENV: [&str; 6] = [
    ember_core::security::SECRET_ENV,
    ember_core::security::SECRET_FILE_ENV,
    ember_core::tls::CERT_CHAIN_ENV,
    ember_core::tls::PRIVATE_KEY_ENV,
    ember_core::tls::TRUST_STORE_ENV,
    ember_core::tls::SERVER_NAME_ENV,
];

/// What every executor the worker starts gets.
#[derive(Clone)]
pub struct LaunchSpec {
    pub exe: PathBuf,
    pub driver_url: String,
    pub cores: usize,
    pub memory_mb: u64,
    /// Executor i binds the i-th of these (round robin).
    pub bind_addresses: Vec<String>,
    /// `spark.local.dir`: where executors make their work dirs (and where the
    /// worker removes those of executors that could not).
    pub local_dirs: Vec<PathBuf>,
    /// Extra environment: the allocator settings, the application's secret
    /// and TLS files.
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for LaunchSpec {
    /// Everything but the environment's values, which may hold the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("exe", &self.exe)
            .field("driver_url", &self.driver_url)
            .field("cores", &self.cores)
            .field("memory_mb", &self.memory_mb)
            .field("bind_addresses", &self.bind_addresses)
            .field("local_dirs", &self.local_dirs)
            .field("env", &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Default)]
struct State {
    spec: Option<LaunchSpec>,
    running: HashMap<String, Child>,
    /// Seen to end, exit status not read yet.
    ending: std::collections::HashSet<String>,
    exits: HashMap<String, ExecutorExit>,
    tails: HashMap<String, Arc<Mutex<VecDeque<u8>>>>,
    pumps: Vec<JoinHandle<()>>,
    launched: usize,
    /// Told to exit by dynamic allocation: not relaunched, not reported lost.
    decommissioned: std::collections::HashSet<String>,
    /// Dynamic allocation decides how many executors run ([`LocalWorker::request_total`]).
    dynamic: bool,
    failures_in_a_row: usize,
    stopping: bool,
}

type LaunchJob = Box<dyn FnOnce() + Send>;

/// The executors this driver started, see the module docs.
pub struct LocalWorker {
    state: Mutex<State>,
    exited: Condvar,
    max_retries: usize,
    /// The thread every executor process is started from (see [`Self::on_launcher`]).
    launcher: Mutex<Option<std::sync::mpsc::Sender<LaunchJob>>>,
}

impl LocalWorker {
    /// A worker that relaunches up to `max_retries` failed executors in a row.
    pub fn new(max_retries: usize) -> Arc<Self> {
        Arc::new(Self { state: Mutex::default(), exited: Condvar::new(), max_retries, launcher: Mutex::new(None) })
    }

    /// Starts `count` executors (ids `1..=count`) as `spec` says.
    ///
    /// Errors: the process could not be started.
    pub fn launch(self: &Arc<Self>, spec: LaunchSpec, count: usize) -> Result<()> {
        self.state.lock().spec = Some(spec);
        for _ in 0..count {
            self.launch_one()?;
        }
        Ok(())
    }

    /// Runs `f` on the worker's launcher thread and returns its result.
    ///
    /// Executors ask the kernel to kill them when their parent goes
    /// (`PR_SET_PDEATHSIG`), and Linux ties that to the *thread* that forked
    /// them: an executor started from a thread that then ends (the stderr pump
    /// that relaunches a lost executor, a short-lived thread that created the
    /// context) is killed at once. So every executor is started from this one
    /// thread, which lives until [`Self::stop`].
    fn on_launcher<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let gone = || EmberError::Internal("the executor launcher thread is gone".into());
        let mut launcher = self.launcher.lock();
        if launcher.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<LaunchJob>();
            std::thread::Builder::new()
                .name("ember-launcher".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })
                .map_err(|e| EmberError::Internal(format!("cannot start the executor launcher thread: {e}")))?;
            *launcher = Some(tx);
        }
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        let job: LaunchJob = Box::new(move || {
            let _ = reply_tx.send(f());
        });
        launcher.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        drop(launcher);
        reply_rx.recv().map_err(|_| gone())
    }

    fn launch_one(self: &Arc<Self>) -> Result<String> {
        let worker = self.clone();
        self.on_launcher(move || worker.launch_one_here())?
    }

    fn launch_one_here(self: &Arc<Self>) -> Result<String> {
        let mut st = self.state.lock();
        if st.stopping {
            return Err(EmberError::Stopped);
        }
        let spec = st.spec.clone().ok_or_else(|| EmberError::Internal("no executor launch spec".into()))?;
        st.launched += 1;
        let index = st.launched;
        let id = index.to_string();
        let bind = spec
            .bind_addresses
            .get((index - 1) % spec.bind_addresses.len().max(1))
            .cloned()
            .unwrap_or("127.0.0.1".into());
        // Executors' stdout goes to the driver's stderr: the driver's stdout is the job's output.
        let stdout = std::io::stderr().lock();
        let stdout =
            std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned().map(Stdio::from).unwrap_or_else(|_| Stdio::null());
        let mut command = Command::new(&spec.exe);
        // Security settings come from this driver only (`spec.env`), never
        // from the driver's own environment: a stray variable would turn
        // checks on that the driver does not pass, or name two secrets.
        for key in SECURITY_ENV {
            command.env_remove(key);
        }
        for (key, value) in &spec.env {
            command.env(key, value);
        }
        let mut child = command
            .env("EMBER_ROLE", "executor")
            .env("EMBER_DRIVER_URL", &spec.driver_url)
            .env("EMBER_EXECUTOR_ID", &id)
            .env("EMBER_EXECUTOR_CORES", spec.cores.to_string())
            .env("EMBER_EXECUTOR_MEMORY_MB", spec.memory_mb.to_string())
            .env("EMBER_BIND_ADDRESS", &bind)
            .env("EMBER_PARENT_PID", std::process::id().to_string())
            .env("EMBER_LOCAL_DIRS", join_dirs(&spec.local_dirs))
            .env_remove("EMBER_MASTER")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EmberError::Internal(format!("cannot start executor {id} ({}): {e}", spec.exe.display())))?;
        tracing::info!(executor_id = %id, pid = child.id(), bind = %bind, "executor process started");
        let stderr = child.stderr.take().expect("piped above");
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        st.tails.insert(id.clone(), tail.clone());
        st.running.insert(id.clone(), child);
        let worker = self.clone();
        let pump_id = id.clone();
        let pump = std::thread::Builder::new()
            .name(format!("ember-worker-{id}"))
            .spawn(move || {
                pump_stderr(stderr, &tail);
                worker.child_exited(&pump_id);
            })
            .map_err(|e| EmberError::Internal(format!("cannot start the stderr thread of executor {id}: {e}")))?;
        st.pumps.push(pump);
        Ok(id)
    }

    /// The executor's stderr closed: it exited. Records how and relaunches it.
    fn child_exited(self: &Arc<Self>, id: &str) {
        let Some(mut child) = ({
            let mut st = self.state.lock();
            let child = st.running.remove(id);
            if child.is_some() {
                st.ending.insert(id.to_string());
            }
            child
        }) else {
            return;
        };
        let pid = child.id();
        let status = match child.wait() {
            Ok(status) => status,
            Err(e) => {
                tracing::warn!(executor_id = id, error = %e, "cannot read an executor's exit status");
                self.state.lock().ending.remove(id);
                self.exited.notify_all();
                return;
            }
        };
        let relaunch = {
            let mut st = self.state.lock();
            st.ending.remove(id);
            // A killed executor could not remove its work dirs; its shuffle
            // files are lost with it anyway (map outputs are recomputed).
            if let Some(spec) = &st.spec {
                ember_executor::env::remove_work_dirs(&spec.local_dirs, id, pid);
            }
            let log_tail = st.tails.remove(id).map(|t| last_lines(&t.lock(), LOG_TAIL_LINES)).unwrap_or_default();
            let exit = ExecutorExit { status, log_tail };
            let retired = st.decommissioned.contains(id) && exit.status.success();
            if retired {
                tracing::info!(executor_id = id, "decommissioned executor process ended");
            } else if !st.stopping {
                tracing::warn!(executor_id = id, status = %exit.status_text(), "executor process ended");
            }
            st.exits.insert(id.to_string(), exit);
            self.exited.notify_all();
            if st.stopping || retired {
                false
            } else if st.failures_in_a_row < self.max_retries {
                st.failures_in_a_row += 1;
                !st.dynamic
            } else {
                tracing::error!(
                    executor_id = id,
                    failures_in_a_row = st.failures_in_a_row,
                    "not relaunching the executor: spark.deploy.maxExecutorRetries executors in a row failed"
                );
                false
            }
        };
        if relaunch {
            match self.launch_one() {
                Ok(new_id) => tracing::info!(executor_id = id, new_executor_id = %new_id, "relaunched a lost executor"),
                Err(e) => tracing::error!(executor_id = id, error = %e, "cannot relaunch a lost executor"),
            }
        }
    }

    /// Dynamic allocation retires `executor_id`: when it exits cleanly it is
    /// neither relaunched nor reported as lost.
    pub fn decommissioned(&self, executor_id: &str) {
        self.state.lock().decommissioned.insert(executor_id.to_string());
    }

    /// Dynamic allocation's request (Spark's `requestTotalExecutors`): starts
    /// executors until `total` are running (never stops any: idle executors are
    /// decommissioned by the driver). From the first call on, an executor that
    /// fails is not relaunched by the worker itself (the next request replaces
    /// it, so the two never both do), and once `spark.deploy.maxExecutorRetries`
    /// executors in a row failed without one registering, nothing more is
    /// started. Returns how many it started.
    ///
    /// Errors: a process could not be started, or no launch spec was given.
    pub fn request_total(self: &Arc<Self>, total: usize) -> Result<usize> {
        let missing = {
            let mut st = self.state.lock();
            st.dynamic = true;
            if st.stopping || st.spec.is_none() || st.failures_in_a_row >= self.max_retries {
                return Ok(0);
            }
            total.saturating_sub(st.running.keys().filter(|id| !st.decommissioned.contains(*id)).count())
        };
        for _ in 0..missing {
            self.launch_one()?;
        }
        Ok(missing)
    }

    /// An executor registered with the driver: failures are no longer back to back.
    pub fn registered(&self) {
        self.state.lock().failures_in_a_row = 0;
    }

    /// Whether this worker started `executor_id`.
    pub fn started(&self, executor_id: &str) -> bool {
        let st = self.state.lock();
        st.running.contains_key(executor_id) || st.ending.contains(executor_id) || st.exits.contains_key(executor_id)
    }

    /// How `executor_id` ended, waiting up to `wait` for it to end (None: not
    /// one of ours, or still running).
    pub fn exit_of(&self, executor_id: &str, wait: Duration) -> Option<ExecutorExit> {
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        loop {
            if let Some(exit) = st.exits.get(executor_id) {
                return Some(exit.clone());
            }
            if !st.running.contains_key(executor_id) && !st.ending.contains(executor_id) {
                return None;
            }
            if self.exited.wait_until(&mut st, deadline).timed_out() {
                return st.exits.get(executor_id).cloned();
            }
        }
    }

    /// `reason` for the loss of `executor_id`, with how its process ended when it
    /// is one of ours (waiting up to 2 s to see it end).
    pub fn explain_loss(&self, executor_id: &str, reason: &str) -> String {
        if !self.started(executor_id) {
            return reason.to_string();
        }
        match self.exit_of(executor_id, EXIT_WAIT) {
            Some(exit) => format!("{reason}; {exit}"),
            None => reason.to_string(),
        }
    }

    /// Every executor of ours that exited, with how. Called while the
    /// executors start, any of them is a start-up failure.
    pub fn exited_ids(&self) -> Vec<(String, ExecutorExit)> {
        self.state.lock().exits.iter().map(|(id, e)| (id.clone(), e.clone())).collect()
    }

    /// No more relaunches: the application is stopping.
    pub fn stop_relaunching(&self) {
        self.state.lock().stopping = true;
    }

    /// Stops relaunching; waits up to `timeout` for the executors still running
    /// to exit (they were told to), kills the rest, and removes the work dirs
    /// of those that could not (executors that exited before had theirs
    /// removed then).
    pub fn stop(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (mut children, local_dirs): (Vec<(String, Child)>, Vec<PathBuf>) = {
            let mut st = self.state.lock();
            st.stopping = true;
            let local_dirs = st.spec.as_ref().map(|s| s.local_dirs.clone()).unwrap_or_default();
            (st.running.drain().collect(), local_dirs)
        };
        for (id, child) in &mut children {
            let pid = child.id();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    _ => {
                        tracing::warn!(executor_id = %id, "executor did not exit in time; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
            // An executor killed from outside could not remove its work dirs.
            ember_executor::env::remove_work_dirs(&local_dirs, id, pid);
        }
        // The stderr pumps end at EOF, now that every process is gone; waiting for
        // them keeps the executors' last lines in the driver's stderr.
        let pumps = std::mem::take(&mut self.state.lock().pumps);
        for pump in pumps {
            let _ = pump.join();
        }
        // No executor is left to outlive the launcher thread.
        self.launcher.lock().take();
    }
}

/// `dirs` as `EMBER_LOCAL_DIRS` spells them: comma-separated.
fn join_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",")
}

/// Copies `stderr` to this process's stderr until EOF, keeping its tail.
fn pump_stderr(mut stderr: impl Read, tail: &Mutex<VecDeque<u8>>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let _ = std::io::stderr().write_all(&buf[..n]);
                let mut tail = tail.lock();
                tail.extend(&buf[..n]);
                let excess = tail.len().saturating_sub(LOG_TAIL_BYTES);
                tail.drain(..excess);
            }
        }
    }
}

/// The last `n` non-empty lines of `bytes`.
fn last_lines(bytes: &VecDeque<u8>, n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(&bytes.iter().copied().collect::<Vec<u8>>()).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}
