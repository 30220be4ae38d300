//! The driver's web UI in a real headless browser (Debian's chromium): the pages
//! of a running job and of a finished one, as a person would load them. The
//! browser is installed by tests/tools/install-chromium.sh; when it cannot be,
//! the test says so and skips. With EMBER_UPDATE_SCREENSHOTS=1 the screenshots
//! are also copied to docs/images/.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Proc, STUCK_STRAGGLER, http, loopback_address_in, paused_join_args, spawn_with_ui};

/// chromium's path, or None (with the reason printed) when it cannot be had.
fn chromium() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/install-chromium.sh");
    let out = Command::new("bash").arg(&script).stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "skipping the browser test: chromium is not available ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

struct Browser {
    bin: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Runs chromium headless on `url` with `action` (`--dump-dom` or `--screenshot=…`),
    /// bounded by a minute; returns its stdout.
    fn run(&self, url: &str, action: &str) -> String {
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,960",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .arg(action)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish {url} within a minute");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reader.join().expect("reader")
    }

    fn dom(&self, url: &str) -> String {
        self.run(url, "--dump-dom")
    }

    fn screenshot(&self, url: &str, to: &Path) {
        self.run(url, &format!("--screenshot={}", to.display()));
        let png = std::fs::read(to).unwrap_or_else(|e| panic!("no screenshot of {url}: {e}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{url}: not a real screenshot");
    }
}

/// The UI's loopback address from the driver's "web UI at http://0.0.0.0:PORT" line.
fn ui_address(driver: &Proc) -> SocketAddr {
    loopback_address_in(&driver.wait_for("web UI at http://"))
}

fn poll_json(ui: SocketAddr, path: &str, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = http::get_json(ui, path);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn contains_all(page: &str, url: &str, needles: &[&str]) {
    for n in needles {
        assert!(page.contains(n), "{url} lacks {n:?}:\n{page}");
    }
}

#[test]
fn the_ui_of_a_running_and_a_finished_job_in_headless_chromium() {
    let Some(bin) = chromium() else { return };
    let browser = Browser { bin, profile: tempfile::tempdir().expect("profile dir") };
    let shots = tempfile::tempdir().expect("screenshots");

    // A running job: executor 2 is slow, so its tasks stay active while we look.
    let running = spawn_with_ui(&STUCK_STRAGGLER);
    let ui = ui_address(&running);
    let app = http::get_json(ui, "/api/v1/applications")[0]["id"].as_str().expect("app id").to_string();
    poll_json(ui, &format!("/api/v1/applications/{app}/jobs"), "tasks done and running", |jobs| {
        jobs[0]["numCompletedTasks"].as_u64() >= Some(4) && jobs[0]["numActiveTasks"].as_u64() >= Some(1)
    });
    let base = format!("http://{ui}");
    let jobs = browser.dom(&format!("{base}/jobs/"));
    contains_all(&jobs, "running /jobs/", &["Spark Jobs", "Active Jobs (1)", "Tasks (for all stages)", "running)"]);
    assert!(jobs.contains("http-equiv=\"refresh\""), "a running application's page reloads itself");
    let stages = browser.dom(&format!("{base}/stages/"));
    contains_all(&stages, "running /stages/", &["Active Stages (1)", "mapPartitionsWithIndex"]);
    let executors = browser.dom(&format!("{base}/executors/"));
    contains_all(&executors, "running /executors/", &["Active executors: </b>2", "127.0.0.1:"]);
    drop(running);

    // A finished job: the join's first job (two shuffles) is done while the driver waits.
    let dir = tempfile::tempdir().expect("tmp");
    let pause = dir.path().join("never");
    let mut args = vec!["--conf".to_string(), "spark.authenticate.secret=do-not-show".to_string()];
    args.extend(paused_join_args(&pause));
    let finished = spawn_with_ui(&args);
    let ui = ui_address(&finished);
    finished.wait_for("paused; waiting for");
    let app = http::get_json(ui, "/api/v1/applications")[0]["id"].as_str().expect("app id").to_string();
    let jobs_json = poll_json(ui, &format!("/api/v1/applications/{app}/jobs"), "the first job's end", |jobs| {
        jobs[0]["status"] == "SUCCEEDED"
    });
    let reduce = http::get_json(ui, &format!("/api/v1/applications/{app}/stages?status=complete"))
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["shuffleReadBytes"].as_u64() > Some(0))
        .cloned()
        .expect("a stage that read a shuffle");
    let base = format!("http://{ui}");
    let stage_url = format!("{base}/stages/stage/?id={}&attempt=0", reduce["stageId"]);
    let pages = [
        (
            "jobs",
            format!("{base}/jobs/"),
            vec!["Completed Jobs (1)".to_string(), format!("{}", jobs_json[0]["name"].as_str().unwrap())],
        ),
        (
            "stage",
            stage_url.clone(),
            vec![
                "Summary Metrics for 4 Completed Tasks".into(),
                "25th percentile".into(),
                "75th percentile".into(),
                "Shuffle Read Size".into(),
                "Event Timeline".into(),
            ],
        ),
        (
            "executors",
            format!("{base}/executors/"),
            vec![
                "Active executors: </b>2".into(),
                "Shuffle Write".into(),
                "Broadcast Uploaded".into(),
                "/logs/stderr?bytes=102400\">stderr</a>".into(),
            ],
        ),
        (
            "environment",
            format!("{base}/environment/"),
            vec!["spark.authenticate.secret".into(), "*********(redacted)".into(), "spark.master".into()],
        ),
    ];
    for (name, url, needles) in &pages {
        let dom = browser.dom(url);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        contains_all(&dom, url, &needles);
        assert!(!dom.contains("do-not-show"), "{url} shows a secret");
        browser.screenshot(url, &shots.path().join(format!("ui-{name}.png")));
    }
    if std::env::var_os("EMBER_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
        std::fs::create_dir_all(&docs).expect("docs/images");
        for (name, _, _) in &pages {
            let file = format!("ui-{name}.png");
            std::fs::copy(shots.path().join(&file), docs.join(&file)).expect("copy screenshot");
        }
    }
}
