//! Speculative execution on local-cluster: one slow executor out of four, with
//! speculation on and off, result exactness, part files written once, and
//! accumulators counted once per partition, also in an object store.

#[path = "../../driver/tests/support/s3.rs"]
mod s3;

use ember_examples::jobs::diagnostics::straggler_record;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");
const CLUSTER: &str = "local-cluster[4,1,256]";
const WAIT: Duration = Duration::from_secs(120);
const TASKS: usize = 24;
const RECORDS: u64 = 1000;
const BASE_MS: u64 = 200;
const DELAY_MS: u64 = 3000;

/// The tests measure wall times: they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Run {
    json: Value,
    stderr: String,
}

/// Runs the straggler job to completion (bounded) and parses its JSON line.
fn straggler(master: &str, speculation: bool, delay_ms: u64, extra: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.arg("--master")
        .arg(master)
        .arg("--conf")
        .arg(format!("spark.speculation={speculation}"))
        .args(["straggler", "--tasks", &TASKS.to_string(), "--records", &RECORDS.to_string()])
        .args(["--base-ms", &BASE_MS.to_string(), "--delay-ms", &delay_ms.to_string()])
        .args(extra)
        .env("EMBER_LOG", "info")
        .env_remove("EMBER_CONF")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ember-examples");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("straggler job did not finish within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "job failed ({status}); stderr:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_else(|| panic!("no output; stderr:\n{stderr}"));
    let json = serde_json::from_str(last).unwrap_or_else(|e| panic!("{last:?} is not JSON ({e}); stderr:\n{stderr}"));
    Run { json, stderr }
}

fn wall_ms(run: &Run) -> f64 {
    run.json["wall_ms"].as_f64().expect("wall_ms")
}

fn spec(run: &Run, key: &str) -> u64 {
    run.json["speculation"][key].as_u64().unwrap_or_else(|| panic!("speculation.{key} in {}", run.json))
}

/// Exact result, and the accumulator counted every partition exactly once.
fn assert_exact(run: &Run) {
    assert_eq!(run.json["exact"], Value::Bool(true), "{}", run.json);
    assert_eq!(run.json["records_counted"].as_u64(), Some(TASKS as u64 * RECORDS), "{}", run.json);
}

/// `key=value` of a log line (values may be quoted).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    Some(rest.split(' ').next().unwrap_or("").trim_matches('"'))
}

#[test]
fn one_slow_executor_costs_little_with_speculation_and_the_delay_without() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let baseline = straggler(CLUSTER, true, DELAY_MS, &[]);
    let speculated = straggler(CLUSTER, true, DELAY_MS, &["--slow-executor", "2"]);
    let plain = straggler(CLUSTER, false, DELAY_MS, &["--slow-executor", "2"]);
    for run in [&baseline, &speculated, &plain] {
        assert_exact(run);
    }
    let (base, fast, slow) = (wall_ms(&baseline), wall_ms(&speculated), wall_ms(&plain));
    eprintln!("wall ms: no slow executor {base:.0}, slow + speculation {fast:.0}, slow without {slow:.0}");

    // With speculation: within 1.5x of the job with no slow executor, and far from
    // waiting for the slow task.
    assert!(fast <= 1.5 * base, "speculation: {fast:.0} ms vs {base:.0} ms with no slow executor");
    assert!(fast < DELAY_MS as f64, "speculation still waited for the slow task: {fast:.0} ms");
    assert!(spec(&speculated, "launched") >= 1 && spec(&speculated, "won") >= 1, "{}", speculated.json);
    // Every copy is accounted for: it won, was killed, or (at most one per
    // partition) was still racing when the job ended.
    assert!(spec(&speculated, "won") + spec(&speculated, "killed") <= spec(&speculated, "launched"));

    // Without speculation the job waits for the slow task: base + delay.
    assert_eq!(spec(&plain, "launched"), 0);
    assert!(slow >= (BASE_MS + DELAY_MS) as f64, "no speculation yet only {slow:.0} ms");
    assert!(slow - fast >= DELAY_MS as f64 / 2.0, "speculation saved only {:.0} ms", slow - fast);

    // The driver logged each launch: a copy of a task on the slow executor, and
    // the winner of each race never ran on the slow executor.
    let launches: Vec<&str> = speculated.stderr.lines().filter(|l| l.contains("launching a copy")).collect();
    assert_eq!(launches.len() as u64, spec(&speculated, "launched"));
    for l in &launches {
        assert_eq!(field(l, "executor_id"), Some("2"), "copied a task not on the slow executor: {l}");
        assert!(field(l, "copy_attempt").is_some_and(|a| a != "0"), "copies are numbered attempts: {l}");
    }
    let won: Vec<&str> = speculated.stderr.lines().filter(|l| l.contains("first attempt finished")).collect();
    assert!(!won.is_empty());
    for l in &won {
        assert_ne!(field(l, "winner_executor"), Some("2"), "{l}");
        assert_eq!(field(l, "loser_executor"), Some("2"), "{l}");
    }
}

#[test]
fn save_as_text_file_with_speculation_writes_each_part_file_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = straggler(CLUSTER, true, DELAY_MS, &["--slow-executor", "2", "--output", out.to_str().unwrap()]);
    assert_eq!(run.json["records_counted"].as_u64(), Some(TASKS as u64 * RECORDS), "{}", run.json);
    assert!(spec(&run, "won") >= 1, "no speculative copy won: {}", run.json);
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut expected: Vec<String> = (0..TASKS).map(|p| format!("part-{p:05}")).collect();
    expected.push("_SUCCESS".into());
    expected.sort();
    assert_eq!(names, expected, "exactly one file per partition, no leftovers");
    for p in 0..TASKS as u64 {
        let text = std::fs::read_to_string(out.join(format!("part-{p:05}"))).unwrap();
        let want: String = (p * RECORDS..(p + 1) * RECORDS).map(|i| format!("{}\n", straggler_record(i))).collect();
        assert!(text == want, "part-{p:05} does not hold exactly its partition's records once");
    }
}

#[test]
fn save_to_an_object_store_with_speculation_writes_each_part_object_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let store = s3::S3Server::start();
    store.create_bucket("spec");
    let settings: Vec<String> = store.settings().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut extra: Vec<&str> = vec!["--slow-executor", "2", "--output", "s3a://spec/out"];
    // `--conf` after the job's name replaces the ones before it (clap's global
    // arguments): repeat spark.speculation with the store's settings.
    extra.extend(["--conf", "spark.speculation=true"]);
    extra.extend(settings.iter().flat_map(|kv| ["--conf", kv.as_str()]));
    let run = straggler(CLUSTER, true, DELAY_MS, &extra);
    assert_eq!(run.json["records_counted"].as_u64(), Some(TASKS as u64 * RECORDS), "{}", run.json);
    assert!(spec(&run, "won") >= 1, "no speculative copy won: {}", run.json);
    // A loser still uploading when the job ended may leave an object under
    // out/_temporary/, which readers skip; everything else is exactly the output.
    let names: Vec<String> =
        store.keys("spec", "out/").into_iter().filter(|k| !k.starts_with("out/_temporary/")).collect();
    let mut expected: Vec<String> = (0..TASKS).map(|p| format!("out/part-{p:05}")).collect();
    expected.push("out/_SUCCESS".into());
    expected.sort();
    assert_eq!(names, expected, "exactly one object per partition");
    for p in 0..TASKS as u64 {
        let text = store.get_text("spec", &format!("out/part-{p:05}")).unwrap();
        let want: String = (p * RECORDS..(p + 1) * RECORDS).map(|i| format!("{}\n", straggler_record(i))).collect();
        assert!(text == want, "part-{p:05} does not hold exactly its partition's records once");
    }
}

#[test]
fn local_mode_never_speculates() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One executor ("driver"): a copy could only run where the original runs.
    let run = straggler("local[4]", true, 300, &["--slow-executor", "driver"]);
    assert_exact(&run);
    assert_eq!(spec(&run, "launched"), 0, "{}", run.json);
}
