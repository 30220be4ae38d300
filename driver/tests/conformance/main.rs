//! The RDD conformance suite: each case's result on `local[2]` and on
//! `local-cluster[2,1,512]` must equal what Apache Spark returned for it.
//!
//! Spark's answers are recorded in `spark.jsonl` by `record.sh` (Record.scala run by
//! spark-submit of the pyspark 4.x distribution); CI only reads them. Each line
//! names a case, the Spark operations it exercises, whether the order of its
//! elements is part of Spark's answer, and the elements' `toString` (or Spark's
//! error, when Spark refuses the case: Ember must refuse it too, with an error or a
//! panic). `cases.rs` holds each case's Ember twin.
//!
//! A harness of its own (`harness = false`): the same binary is the executors of
//! `local-cluster` (`ember::entry`). `cargo test --test conformance -- NAME` runs the
//! cases whose names contain NAME.

mod cases;

use ember::prelude::*;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const MASTERS: [&str; 2] = ["local[2]", "local-cluster[2,1,512]"];

/// Cases where Spark returns a meaningless answer and Ember refuses the input
/// instead, with why. Ember must fail these; they count as conforming.
const REFUSED_UNLIKE_SPARK: &[(&str, &str)] = &[(
    "histogram_unsorted_buckets",
    "Spark's histogram binary-searches unsorted bucket bounds and returns meaningless counts; Ember refuses bounds that do not increase",
)];

/// The whole run is bounded: a hang fails the test, naming the case that hung.
const LIMIT: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct Header {
    spark: String,
    scala: String,
    java: String,
}

#[derive(Deserialize)]
struct Recorded {
    case: String,
    op: String,
    #[serde(default)]
    ordered: bool,
    result: Option<Vec<String>>,
    error: Option<String>,
}

fn main() -> ExitCode {
    ember::entry(run)
}

fn run() -> ExitCode {
    let args = Args::parse(std::env::args().skip(1));

    let mut lines = include_str!("spark.jsonl").lines();
    let header: Header = serde_json::from_str(lines.next().expect("a header line")).expect("header");
    let recorded: Vec<Recorded> = lines.map(|l| serde_json::from_str(l).expect("a recorded case")).collect();
    let twins: BTreeMap<&str, cases::CaseFn> = cases::all().into_iter().collect();

    // Both sides must name the same cases: none dropped or added on one side only.
    let names: BTreeSet<&str> = recorded.iter().map(|r| r.case.as_str()).collect();
    let unrecorded: Vec<&&str> = twins.keys().filter(|n| !names.contains(**n)).collect();
    let twinless: Vec<&&str> = names.iter().filter(|n| !twins.contains_key(**n)).collect();
    if !unrecorded.is_empty() || !twinless.is_empty() {
        eprintln!(
            "cases without Spark's answer (run driver/tests/conformance/record.sh): {unrecorded:?}; \
             Spark's cases without an Ember twin in cases.rs: {twinless:?}"
        );
        return ExitCode::FAILURE;
    }
    if args.list {
        for r in &recorded {
            println!("{}: test", r.case);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Recorded> = recorded.iter().filter(|r| args.selects(&r.case)).collect();
    if selected.is_empty() {
        println!("conformance: no case selected by {:?}", std::env::args().skip(1).collect::<Vec<_>>());
        return ExitCode::SUCCESS;
    }
    let operations: BTreeSet<&str> = selected.iter().flat_map(|r| r.op.split(',')).collect();

    let current = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
    watchdog(current.clone());
    // Refused cases panic on purpose; their messages are shown with the case.
    // Any other panic prints as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_CASE.get() {
            default_hook(info);
        }
    }));

    let inputs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/inputs");
    let mut failed = 0;
    for master in MASTERS {
        let started = Instant::now();
        let conf = Conf::new().master(master).app_name("conformance").set("spark.ui.enabled", "false");
        let sc = EmberContext::new(conf).unwrap_or_else(|e| panic!("cannot start {master}: {e}"));
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let env = cases::Env { sc, inputs: inputs.clone(), scratch: scratch.path().to_path_buf() };
        let mut differ = Vec::new();
        for r in &selected {
            *current.lock() = format!("{} on {master}", r.case);
            IN_CASE.set(true);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| twins[r.case.as_str()](&env)));
            IN_CASE.set(false);
            let got = match outcome {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(panic_message(&panic)),
            };
            if let Some(why) = verdict(r, got) {
                differ.push(format!("{} ({}): {why}", r.case, r.op));
            }
        }
        env.sc.stop();
        println!(
            "conformance on {master}: {} cases over {} operations, {} equal to Spark {} (Scala {}, Java {}), {} differ ({:.1} s)",
            selected.len(),
            operations.len(),
            selected.len() - differ.len(),
            header.spark,
            header.scala,
            header.java,
            differ.len(),
            started.elapsed().as_secs_f64()
        );
        for d in &differ {
            println!("  DIFFERS {d}");
        }
        failed += differ.len();
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

thread_local! {
    /// Set while this thread runs a case: its panics are the case's answer.
    static IN_CASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// libtest's arguments, as `cargo test` passes them to every test binary: each
/// case is a test of its own (`--list` names them); a filter selects the cases
/// whose names contain it (`--exact`: equal it), and `conformance`, the binary's
/// name, selects them all; `--skip` leaves cases out; `--ignored` runs none (no
/// case is ignored). Other options are accepted and have no effect here.
struct Args {
    list: bool,
    exact: bool,
    ignored_only: bool,
    filters: Vec<String>,
    skips: Vec<String>,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Self {
        const WITH_VALUE: [&str; 6] = ["--test-threads", "--format", "--color", "--logfile", "--shuffle-seed", "-Z"];
        let mut parsed =
            Args { list: false, exact: false, ignored_only: false, filters: Vec::new(), skips: Vec::new() };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => parsed.list = true,
                "--exact" => parsed.exact = true,
                "--ignored" => parsed.ignored_only = true,
                "--skip" => parsed.skips.extend(args.next()),
                "conformance" => {}
                a if WITH_VALUE.contains(&a) => {
                    args.next();
                }
                a if a.starts_with('-') => {}
                _ => parsed.filters.push(arg),
            }
        }
        parsed
    }

    fn selects(&self, case: &str) -> bool {
        let matches = |f: &String| if self.exact { case == f } else { case.contains(f.as_str()) };
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

/// Why Ember's answer is not Spark's, or None when it is.
fn verdict(recorded: &Recorded, got: Result<Vec<String>, String>) -> Option<String> {
    if let Some((_, why)) = REFUSED_UNLIKE_SPARK.iter().find(|(name, _)| *name == recorded.case) {
        return got.ok().map(|v| format!("Ember must refuse it ({why}) but returned {v:?}"));
    }
    match (&recorded.error, &recorded.result, got) {
        (Some(_), _, Err(_)) => None,
        (Some(spark), _, Ok(v)) => Some(format!("Spark refuses it ({spark}) but Ember returned {v:?}")),
        (None, Some(_), Err(e)) => Some(format!("Ember failed: {e}")),
        (None, Some(want), Ok(mut got)) => {
            let mut want = want.clone();
            if !recorded.ordered {
                want.sort();
                got.sort();
            }
            (got != want).then(|| format!("\n      Spark: {want:?}\n      Ember: {got:?}"))
        }
        (None, None, _) => Some("the recorded line has neither a result nor an error".into()),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
    format!("panicked: {}", text.unwrap_or_default())
}

/// Ends the process if the run outlives `LIMIT`, naming the case it was on.
fn watchdog(current: std::sync::Arc<parking_lot::Mutex<String>>) {
    std::thread::spawn(move || {
        std::thread::sleep(LIMIT);
        eprintln!("conformance: still running after {LIMIT:?}, on {}", current.lock());
        std::process::exit(2);
    });
}
