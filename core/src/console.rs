//! Lines a process prints on stderr for people and for tools that read them
//! (`ember: web UI at http://…`, `executor 1: metrics at http://…`).
//!
//! The processes of a `local-cluster` application share one stderr pipe. Rust's
//! `eprintln!` writes a formatted line in several `write` calls, so two processes
//! printing at once could interleave inside a line and a tool reading the address
//! would see garbage. [`announce`] formats the whole line first and hands it to the
//! kernel in one `write`, which POSIX makes atomic on a pipe up to `PIPE_BUF`
//! (at least 512 bytes; 4096 on Linux).

use std::io::Write;

/// Writes `line` and a newline to stderr in one `write` call, then flushes.
/// Errors writing stderr are ignored, as `eprintln!` would panic on them and a
/// lost announcement must not stop the process.
pub fn announce(line: std::fmt::Arguments<'_>) {
    let mut text = line.to_string();
    text.push('\n');
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}
