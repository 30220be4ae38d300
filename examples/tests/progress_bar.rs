//! The console progress bar: drawn on stderr when it is a terminal (here a
//! pseudo-terminal), erased when the stage ends, and never in non-terminal output.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");

fn job() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("EMBER_CONF")
        .env("COLUMNS", "80")
        .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false"])
        .args(["--conf", "ember.ui.consoleProgress.firstDelay=0ms"])
        .args(["straggler", "--tasks", "6", "--records", "10", "--base-ms", "250"]);
    cmd
}

/// A pseudo-terminal: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new descriptors, which we own from here on.
    let rc =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just returned by openpty and are not owned elsewhere.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Runs `cmd` to its end (bounded) and returns its exit success.
fn wait(mut child: std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the job did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_bar_is_drawn_on_a_terminal_and_erased_at_the_stages_end() {
    let (master, slave) = openpty();
    let child = job().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(slave)).spawn().expect("spawn");
    let mut reader = std::fs::File::from(master);
    let collector = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child (the slave's last holder) is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(wait(child), "the job failed");
    let screen = collector.join().expect("reader");
    // Each bar runs from "[Stage " to its closing bracket (log lines may follow on the line).
    let bars: Vec<&str> = screen
        .match_indices("[Stage ")
        .filter_map(|(i, _)| screen[i..].find(']').map(|end| &screen[i..=i + end]))
        .collect();
    assert!(!bars.is_empty(), "no progress bar on the terminal:\n{screen:?}");
    for bar in &bars {
        assert!(bar.ends_with(" / 6]"), "{bar:?}");
        assert!(bar.len() <= 80, "wider than the terminal: {bar:?}");
    }
    // Spark's format: completed + running of total, with a growing bar.
    assert!(bars.iter().any(|b| b.contains('=') && b.contains('>')), "{bars:?}");
    // Erased at the stage's end: blanks over the whole bar between carriage returns.
    let last = bars.last().expect("a bar");
    let after_last = &screen[screen.rfind("[Stage ").expect("a bar")..];
    assert!(after_last.contains(&format!("\r{}\r", " ".repeat(last.len()))), "the bar was not erased: {after_last:?}");
}

#[test]
fn no_bar_when_stderr_is_not_a_terminal() {
    let output = job().stdin(Stdio::null()).output().expect("run");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("[Stage "), "a bar in non-terminal output:\n{stderr}");
    // Asking for it explicitly does not change that.
    let output =
        job().args(["--conf", "spark.ui.showConsoleProgress=true"]).stdin(Stdio::null()).output().expect("run");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("[Stage "));
}
