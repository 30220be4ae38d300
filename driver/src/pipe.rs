//! `pipe` (Spark's `RDD.pipe`): each partition's elements, one per line, go to
//! the standard input of an external command started for that partition; its
//! output lines are the new partition.
//!
//! The command is started directly (no shell), on the executor, in the task's
//! working directory. The partition's input is written first, then its output is
//! read: the output is held in memory meanwhile (it is read by a thread of its
//! own, so a command that writes while it reads never blocks). A command that
//! cannot be started, or that exits with a failure status, fails the task with
//! the command, the status and the end of its standard error.

use crate::rdd::Rdd;
use ember_core::data::{BoxIter, Data};
use ember_core::error::{EmberError, raise};
use ember_core::rdd::PartitionOp;
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Bytes of the command's standard error kept for the error message.
const STDERR_TAIL: usize = 4096;

/// Runs `command` over each partition.
#[derive(Serialize, Deserialize)]
pub struct PipeOp {
    /// The program and its arguments.
    pub command: Vec<String>,
}

impl PipeOp {
    fn failed(&self, what: impl Display) -> EmberError {
        EmberError::Invalid(format!("pipe to {:?}: {what}", self.command.join(" ")))
    }
}

impl<T: Data + Display> PartitionOp<T, String> for PipeOp {
    const NAME: &'static str = "pipe";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<T>) -> BoxIter<String> {
        let mut child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| raise(self.failed(format!("cannot start it: {e}"))));
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (lines_tx, lines) = std::sync::mpsc::channel::<std::io::Result<String>>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let errors = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            let tail = all.len().saturating_sub(STDERR_TAIL);
            String::from_utf8_lossy(&all[tail..]).trim().to_string()
        });
        {
            let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("piped"));
            for x in input {
                // A command that stops reading (`head -1`) is judged by its exit status.
                if writeln!(stdin, "{x}").is_err() {
                    break;
                }
            }
            let _ = stdin.flush();
        }
        let mut finish = Some((reader, errors));
        Box::new(std::iter::from_fn(move || {
            match lines.recv() {
                Ok(Ok(line)) => return Some(line),
                Ok(Err(e)) => raise(self.failed(format!("cannot read its output: {e}"))),
                // The output ended: the command's status decides (once).
                Err(_) => {}
            }
            let (reader, errors) = finish.take()?;
            let _ = reader.join();
            let status = child.wait().unwrap_or_else(|e| raise(self.failed(e)));
            let stderr = errors.join().unwrap_or_default();
            if !status.success() {
                raise(self.failed(format!("exited with {status}; its standard error ends with: {stderr}")));
            }
            None
        }))
    }
}

impl<T: Data + Display> Rdd<T> {
    /// Each partition through an external command (Spark's `pipe`): its elements,
    /// one per line (`Display`), on the command's standard input; its output
    /// lines are the result. `command` is split at whitespace into the program
    /// and its arguments, as Spark splits a command string; no shell is involved.
    ///
    /// Tasks fail when the command cannot be started or exits with a failure
    /// status, naming the command, the status and the end of its standard error.
    ///
    /// # Panics
    /// When `command` is empty or only whitespace.
    #[track_caller]
    pub fn pipe(&self, command: &str) -> Rdd<String> {
        let command: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        assert!(!command.is_empty(), "pipe: the command is empty");
        self.with_op(PipeOp { command })
    }
}
