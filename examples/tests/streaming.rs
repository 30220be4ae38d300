//! The streaming examples as real processes: kill -9 of a driver in the middle
//! of a file stream and a restart from its checkpoint (every file counted once,
//! every batch's output written once), and socket receivers whose executor is
//! killed (restarted elsewhere; with the write-ahead log nothing acknowledged
//! is lost), also with the checkpoint, the write-ahead log and the event log
//! in an object store.

#[path = "../../driver/tests/support/s3.rs"]
mod s3;
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Proc, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");
const CLUSTER: &str = "local-cluster[2,1,256]";

fn job(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--master").arg(CLUSTER).args(args).env("EMBER_LOG", "info").env_remove("EMBER_CONF");
    cmd
}

/// Directories `names` created under `root`.
fn made_dirs<const N: usize>(root: &Path, names: [&str; N]) -> [PathBuf; N] {
    names.map(|name| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Words of input file `i`: a deterministic mix, so totals depend on every file.
fn file_words(i: usize) -> Vec<String> {
    (0..40 + i * 7).map(|j| format!("w{}", (i * 31 + j * 17) % 23)).collect()
}

/// Moves file `i` into `dir` atomically (written under a hidden name first).
fn drop_file(dir: &Path, i: usize) {
    let tmp = dir.join(format!(".part-{i}.tmp"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    for chunk in file_words(i).chunks(9) {
        writeln!(f, "{}", chunk.join(" ")).unwrap();
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(format!("part-{i:03}.txt"))).unwrap();
}

fn expected_totals(files: std::ops::Range<usize>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in files {
        for w in file_words(i) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Complete batch output directories `PREFIX-<ms>`, by time.
fn outputs(out_dir: &Path) -> BTreeMap<u64, PathBuf> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(out_dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(ms) = name.strip_prefix("totals-").and_then(|t| t.parse::<u64>().ok()) {
            found.insert(ms, entry.path());
        }
    }
    found
}

fn read_totals(dir: &Path) -> BTreeMap<String, u64> {
    assert!(dir.join("_SUCCESS").exists(), "{} has no _SUCCESS", dir.display());
    let mut m = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let (w, c) = line.split_once('\t').expect("word<TAB>count");
            assert!(m.insert(w.to_string(), c.parse::<u64>().unwrap()).is_none(), "{w} twice in {}", dir.display());
        }
    }
    m
}

/// Waits (bounded) until the newest batch output holds `want`.
fn wait_for_totals(out_dir: &Path, want: &BTreeMap<String, u64>, driver: &Proc) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((_, newest)) = outputs(out_dir).into_iter().next_back()
            && read_totals(&newest) == *want
        {
            return;
        }
        assert!(Instant::now() < deadline, "totals never reached {want:?}; stderr:\n{}", driver.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_file_stream_driver_killed_mid_stream_resumes_from_its_checkpoint_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let [input, out] = made_dirs(tmp.path(), ["in", "out"]);
    let ckpt = tmp.path().join("ckpt");
    let prefix = out.join("totals");
    let args = [
        "file-wordcount",
        "--dir",
        input.to_str().unwrap(),
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--output",
        prefix.to_str().unwrap(),
        "--batch-ms",
        "200",
        "--checkpoint-interval-ms",
        "400",
    ];

    let first = Proc::spawn(job(&args));
    first.wait_for("streaming context started");
    for i in 0..6 {
        drop_file(&input, i);
        // Spread over batches, so state is checkpointed between them.
        wait_for_totals(&out, &expected_totals(0..i + 1), &first);
    }
    // More files, and the driver dies at once: they may be taken by a batch that
    // never finished, by none, or by one that did.
    for i in 6..9 {
        drop_file(&input, i);
    }
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = Proc::spawn(job(&args));
    second.wait_for("recovering the streaming context from its checkpoint");
    second.wait_for("streaming context started");
    for i in 9..12 {
        drop_file(&input, i);
    }
    let want = expected_totals(0..12);
    wait_for_totals(&out, &want, &second);
    assert!(second.stderr().contains("state restored from the checkpoint"), "{}", second.stderr());
    drop(second);

    // Every batch time has exactly one complete output: no gap (batches missed
    // while the driver was down were run) and no partial directory.
    let all = outputs(&out);
    let times: Vec<u64> = all.keys().copied().collect();
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 200, "batch outputs are not consecutive: {times:?}");
    }
    let mut previous: BTreeMap<String, u64> = BTreeMap::new();
    for dir in all.values() {
        let totals = read_totals(dir);
        for (w, c) in &previous {
            assert!(totals.get(w).is_some_and(|n| n >= c), "running totals went down in {}", dir.display());
        }
        previous = totals;
    }
    assert_eq!(previous, want);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name())
        .collect();
    // A temporary directory of the batch the kill interrupted may remain until that batch runs again.
    assert!(leftovers.len() <= 1, "temporary outputs left: {leftovers:?}");
}

/// A line server like `nc -lk`: accepts connections one after the other.
struct LineServer {
    port: u16,
    connections: std::sync::mpsc::Receiver<std::net::TcpStream>,
}

impl LineServer {
    fn start() -> LineServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, connections) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if tx.send(conn).is_err() {
                    return;
                }
            }
        });
        LineServer { port, connections }
    }

    /// The next receiver that connects (bounded wait).
    fn next_connection(&self, driver: &Proc) -> std::net::TcpStream {
        self.connections
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no receiver connected within {WAIT:?}; stderr:\n{}", driver.stderr()))
    }
}

/// Lines of `n` words from a small vocabulary; the word counts they make.
fn lines(seed: usize, n: usize) -> (String, BTreeMap<String, u64>) {
    let mut text = String::new();
    let mut counts = BTreeMap::new();
    for i in 0..n {
        let words: Vec<String> = (0..5).map(|j| format!("v{}", (seed * 13 + i * 7 + j * 3) % 8)).collect();
        for w in &words {
            *counts.entry(w.clone()).or_insert(0) += 1;
        }
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    (text, counts)
}

fn add(mut a: BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    for (w, c) in b {
        *a.entry(w.clone()).or_insert(0) += c;
    }
    a
}

fn receiver_pid(line: &str) -> i32 {
    let pid = line.split_whitespace().find_map(|f| f.strip_prefix("pid=")).expect("pid= in the receiver's log line");
    pid.parse().unwrap()
}

fn stateful_args<'a>(port: &'a str, ckpt: &'a Path, prefix: &'a Path, batch_ms: &'a str) -> Vec<&'a str> {
    vec![
        "--conf",
        "spark.streaming.receiver.writeAheadLog.enable=true",
        "--conf",
        "spark.streaming.blockInterval=50ms",
        "stateful-wordcount",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--output",
        prefix.to_str().unwrap(),
        "--batch-ms",
        batch_ms,
    ]
}

/// The driver of a job, logging the streaming crate's debug lines (blocks
/// received, state checkpointed), with its temp files (an object store's staged
/// uploads) under `dirs`, so that what a killed driver leaves goes with them.
fn debug_driver(dirs: &SocketJobDirs, args: &[&str]) -> Proc {
    let mut cmd = job(args);
    cmd.env("EMBER_LOG", "info,ember_streaming=debug").env("TMPDIR", dirs.tmp.path());
    Proc::spawn(cmd)
}

/// The stateful socket job with 100 ms batches on a local `master`, with `conf`
/// (`--conf k=v` arguments) before the job's own, logging at `log`.
fn local_stateful_driver(master: &str, conf: &[&str], dirs: &SocketJobDirs, port: &str, log: &str) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["--master", master]).args(conf).args(stateful_args(port, &dirs.ckpt, &dirs.prefix, "100"));
    cmd.env("EMBER_LOG", log).env_remove("EMBER_CONF");
    Proc::spawn(cmd)
}

/// Kills a driver (SIGKILL) and reaps it.
fn kill(mut driver: Proc) {
    driver.child.kill().unwrap();
    driver.child.wait().unwrap();
}

/// Temp dirs of a stateful socket job: checkpoint, output dir, output prefix.
struct SocketJobDirs {
    tmp: tempfile::TempDir,
    ckpt: PathBuf,
    out: PathBuf,
    prefix: PathBuf,
}

impl SocketJobDirs {
    fn new() -> SocketJobDirs {
        let tmp = tempfile::tempdir().unwrap();
        let (ckpt, out) = (tmp.path().join("ckpt"), tmp.path().join("out"));
        std::fs::create_dir_all(&out).unwrap();
        let prefix = out.join("totals");
        SocketJobDirs { tmp, ckpt, out, prefix }
    }
}

#[test]
fn a_socket_receiver_whose_executor_dies_restarts_on_another_and_loses_nothing_stored() {
    let d = SocketJobDirs::new();
    let (ckpt, out, prefix) = (&d.ckpt, &d.out, &d.prefix);
    let server = LineServer::start();
    let port = server.port.to_string();
    let mut cmd = Command::new(BIN);
    // Three executors: one dies with the receiver, two remain for a block and its replica.
    cmd.arg("--master").arg("local-cluster[3,1,256]").args(stateful_args(&port, ckpt, prefix, "200"));
    cmd.env("EMBER_LOG", "info").env_remove("EMBER_CONF");
    let driver = Proc::spawn(cmd);

    let first_pid = receiver_pid(&driver.wait_for("receiver started"));
    let mut conn = server.next_connection(&driver);
    let (text, first) = lines(1, 40);
    conn.write_all(text.as_bytes()).unwrap();
    wait_for_totals(out, &first, &driver);

    // SAFETY: kill(2) on a child executor process of this test.
    assert_eq!(unsafe { libc::kill(first_pid, libc::SIGKILL) }, 0);
    let second_pid = loop {
        let pid = receiver_pid(&driver.wait_for("receiver started"));
        if pid != first_pid {
            break pid;
        }
    };
    assert_ne!(second_pid, first_pid);
    let mut conn = server.next_connection(&driver);
    let (text, second) = lines(2, 25);
    conn.write_all(text.as_bytes()).unwrap();
    wait_for_totals(out, &add(first, &second), &driver);
}

#[test]
fn a_received_block_outlives_its_receivers_executor_on_its_replica_without_the_write_ahead_log() {
    let d = SocketJobDirs::new();
    let (ckpt, out, prefix) = (&d.ckpt, &d.out, &d.prefix);
    let server = LineServer::start();
    let port = server.port.to_string();
    let mut args = stateful_args(&port, ckpt, prefix, "4000");
    assert_eq!(args[1], "spark.streaming.receiver.writeAheadLog.enable=true");
    args[1] = "spark.streaming.receiver.writeAheadLog.enable=false";
    let mut cmd = Command::new(BIN);
    // Three executors: the receiver's (killed), its replica's, and one more.
    cmd.arg("--master").arg("local-cluster[3,1,256]").args(args);
    cmd.env("EMBER_LOG", "info,ember_streaming=debug").env_remove("EMBER_CONF");
    let driver = Proc::spawn(cmd);
    let started = driver.wait_for("receiver started");
    assert!(started.contains("replica=Some"), "no replica chosen: {started}");
    let mut conn = server.next_connection(&driver);
    let (text, want) = lines(4, 30);
    conn.write_all(text.as_bytes()).unwrap();
    // Long batches: every line is in a block, stored twice, before a batch takes it.
    let received = driver.wait_for("total_records=30");
    assert!(received.contains("holders=2"), "the block was not replicated: {received}");
    // SAFETY: kill(2) on a child executor process of this test.
    assert_eq!(unsafe { libc::kill(receiver_pid(&started), libc::SIGKILL) }, 0);
    wait_for_totals(out, &want, &driver);
}

#[test]
fn with_the_write_ahead_log_a_killed_driver_loses_no_acknowledged_line() {
    let d = SocketJobDirs::new();
    let (ckpt, out, prefix) = (&d.ckpt, &d.out, &d.prefix);
    let server = LineServer::start();
    let port = server.port.to_string();
    // Long batches: the lines are acknowledged (logged) well before a batch takes them.
    let args = stateful_args(&port, ckpt, prefix, "3000");
    let driver = debug_driver(&d, &args);
    driver.wait_for("receiver started");
    let mut conn = server.next_connection(&driver);
    let (text, want) = lines(3, 37);
    conn.write_all(text.as_bytes()).unwrap();
    driver.wait_for("total_records=37");
    kill(driver);
    drop(conn);

    let restarted = debug_driver(&d, &args);
    restarted.wait_for("receiver started");
    let _conn = server.next_connection(&restarted);
    wait_for_totals(out, &want, &restarted);
}

#[test]
fn checkpoint_write_ahead_log_and_event_log_in_an_object_store_survive_a_killed_driver() {
    let store = s3::S3Server::start();
    store.create_bucket("ckpt");
    let d = SocketJobDirs::new();
    let (out, prefix) = (&d.out, &d.prefix);
    let ckpt = Path::new("s3a://ckpt/wordcount");
    let server = LineServer::start();
    let port = server.port.to_string();
    let settings: Vec<String> = store
        .settings()
        .into_iter()
        .chain([
            ("spark.eventLog.enabled".to_string(), "true".to_string()),
            ("spark.eventLog.dir".to_string(), "s3a://ckpt/events".to_string()),
        ])
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut args: Vec<&str> = settings.iter().flat_map(|kv| ["--conf", kv.as_str()]).collect();
    args.extend(stateful_args(&port, ckpt, prefix, "1000"));
    let driver = debug_driver(&d, &args);
    driver.wait_for("receiver started");
    let mut conn = server.next_connection(&driver);
    let (first, want_first) = lines(5, 23);
    conn.write_all(first.as_bytes()).unwrap();
    wait_for_totals(out, &want_first, &driver);
    // A state checkpoint (every 10 s here), so the restart restores state from the bucket.
    driver.wait_for("state checkpointed");
    let (second, want_second) = lines(6, 31);
    conn.write_all(second.as_bytes()).unwrap();
    driver.wait_for("total_records=54");
    kill(driver);
    drop(conn);
    let keys = store.keys("ckpt", "wordcount/");
    for part in ["wordcount/checkpoint-", "wordcount/state/", "wordcount/receivedData/"] {
        assert!(keys.iter().any(|k| k.starts_with(part)), "no {part}… in the bucket: {keys:?}");
    }
    assert!(
        store.keys("ckpt", "events/").iter().any(|k| k.ends_with(".inprogress")),
        "the killed driver's in-progress event log: {:?}",
        store.keys("ckpt", "events/")
    );

    let restarted = debug_driver(&d, &args);
    restarted.wait_for("receiver started");
    let _conn = server.next_connection(&restarted);
    wait_for_totals(out, &add(want_first, &want_second), &restarted);
}

/// A streaming job that ends leaves nothing in its local dirs: its stopped
/// streaming context lets go of the `EmberContext`, whose executor removes its
/// work directory (received blocks, shuffle files) as a batch job's does.
#[test]
fn a_finished_streaming_job_leaves_no_work_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let [input, local] = made_dirs(tmp.path(), ["in", "local"]);
    let ckpt = tmp.path().join("ckpt");
    drop_file(&input, 0);
    let prefix = tmp.path().join("totals");
    let mut cmd = Command::new(BIN);
    cmd.args(["--master", "local[2]", "file-wordcount", "--dir", input.to_str().unwrap()])
        .args(["--checkpoint", ckpt.to_str().unwrap(), "--output", prefix.to_str().unwrap()])
        .args(["--batch-ms", "100", "--batches", "3"])
        .env("EMBER_LOCAL_DIRS", &local)
        .env_remove("EMBER_CONF");
    let (code, stdout) = Proc::spawn(cmd).finish();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("\"batches\":3"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&local).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left in the local dir: {left:?}");
}

/// Received blocks past the executor's memory budget for them (a quarter of
/// its memory) go to disk, and the block pusher encodes the next block into the
/// buffer of one written there: every batch still reads exactly what was received.
#[test]
fn received_blocks_past_their_memory_budget_come_back_from_disk_exactly() {
    let d = SocketJobDirs::new();
    let server = LineServer::start();
    let port = server.port.to_string();
    // 16 KiB of executor memory: 4 KiB of received blocks in memory, the rest on disk.
    let conf = ["--conf", "spark.executor.memory=16k"];
    let driver = local_stateful_driver("local[2]", &conf, &d, &port, "info,ember_executor::stream_blocks=debug");
    let mut conn = server.next_connection(&driver);
    let mut want = BTreeMap::new();
    for seed in 0..3 {
        let (text, counts) = lines(seed, 3000);
        conn.write_all(text.as_bytes()).unwrap();
        want = add(want, &counts);
        wait_for_totals(&d.out, &want, &driver);
    }
    assert!(driver.stderr().contains("received block stored on disk"), "no block went to disk:\n{}", driver.stderr());
}

/// A receiver holds no task slot (unlike Spark's, which holds a core): with a
/// single core, batches still run beside it.
#[test]
fn a_socket_stream_on_local_1_processes_its_batches_beside_its_receiver() {
    let d = SocketJobDirs::new();
    let server = LineServer::start();
    let port = server.port.to_string();
    let driver = local_stateful_driver("local[1]", &[], &d, &port, "info");
    let mut conn = server.next_connection(&driver);
    let (text, first) = lines(3, 30);
    conn.write_all(text.as_bytes()).unwrap();
    wait_for_totals(&d.out, &first, &driver);
    let (text, second) = lines(4, 20);
    conn.write_all(text.as_bytes()).unwrap();
    wait_for_totals(&d.out, &add(first, &second), &driver);
}

#[test]
fn sigterm_with_stop_gracefully_on_shutdown_processes_what_was_received_and_exits_cleanly() {
    let server = LineServer::start();
    let port = server.port.to_string();
    let mut cmd = job(&[
        "--conf",
        "spark.streaming.stopGracefullyOnShutdown=true",
        "--conf",
        "spark.streaming.blockInterval=50ms",
        "network-wordcount",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        // Long batches: the lines are received long before a batch would take them.
        "--batch-ms",
        "60000",
    ]);
    cmd.env("EMBER_LOG", "info,ember_streaming=debug");
    let driver = Proc::spawn(cmd);
    driver.wait_for("streaming context started");
    let mut conn = server.next_connection(&driver);
    conn.write_all(b"uno dos dos\ntres tres tres\n").unwrap();
    driver.wait_for("total_records=2");
    // SAFETY: kill(2) on the child process this test started.
    assert_eq!(unsafe { libc::kill(driver.child.id() as i32, libc::SIGTERM) }, 0);
    let (code, stdout) = driver.finish();
    assert_eq!(code, Some(0), "stdout:\n{stdout}");
    for line in ["(uno,1)", "(dos,2)", "(tres,3)"] {
        assert!(stdout.lines().any(|l| l == line), "{line} not printed:\n{stdout}");
    }
    assert!(stdout.lines().last().unwrap().contains("\"batches\":1"), "{stdout}");
}
