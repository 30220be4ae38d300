//! The executor's log tail. Everything the process writes to stderr (its log
//! lines, panic messages, its notices) still goes to stderr — the driver's
//! stderr in `local-cluster`, the container's log on Kubernetes, neither of which
//! the executor can read back — and the last [`LOG_TAIL_BYTES`] of it are kept in
//! memory too, served by the metrics server as `/logs/stderr?bytes=N` (Spark's
//! executor log page, `logPage/?logType=stderr&byteLength=N`), which the
//! driver's Executors page links to.
//!
//! How: fd 2 becomes the write end of a pipe; a thread copies what arrives to the
//! original stderr and into the ring. [`finish`] puts fd 2 back and waits for the
//! copy to drain, so nothing written before exit is lost.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

/// Bytes of stderr kept (the most a `bytes=` request gets).
pub const LOG_TAIL_BYTES: usize = 1 << 20;

/// What `/logs/stderr` answers without `bytes=` (Spark's log page default, 100 KiB).
pub const DEFAULT_TAIL_BYTES: usize = 100 << 10;

struct Capture {
    tail: Mutex<Tail>,
    /// The original stderr, to restore.
    #[cfg(unix)]
    saved: std::os::fd::OwnedFd,
    /// Told when the copier drained the pipe.
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
    /// Bytes written to stderr since the capture started.
    total: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(LOG_TAIL_BYTES);
        self.bytes.drain(..excess);
    }
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// Starts keeping the tail of this process's stderr (once; later calls do nothing).
/// Errors: the pipe, descriptor or thread could not be made (stderr is left as it was).
#[cfg(unix)]
pub fn capture_stderr() -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    if CAPTURE.get().is_some() {
        return Ok(());
    }
    let check = |r: libc::c_int| if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r) };
    // SAFETY: plain descriptor calls; every descriptor made here is owned right away.
    let saved = unsafe { OwnedFd::from_raw_fd(check(libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3))?) };
    let mut original = std::fs::File::from(saved.try_clone()?);
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just returned these, owned by nobody else.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let capture = Capture { tail: Mutex::new(Tail::default()), saved, done: Mutex::new(Some(done_rx)) };
    if CAPTURE.set(capture).is_err() {
        return Ok(());
    }
    let mut reader = std::fs::File::from(read_end);
    std::thread::Builder::new().name("ember-stderr".into()).spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // A broken stderr must not stop the copy: writers would block on the pipe.
                    let _ = original.write_all(&buf[..n]);
                    if let Some(c) = CAPTURE.get() {
                        c.tail.lock().push(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done_tx.send(());
    })?;
    // From here on, fd 2 is the pipe (the only descriptor of its write end).
    // SAFETY: dup2 onto fd 2; `write_end` is closed after, leaving fd 2 the pipe's.
    check(unsafe { libc::dup2(write_end.as_raw_fd(), 2) })?;
    drop(write_end);
    Ok(())
}

/// Not available off Unix: stderr is left alone.
#[cfg(not(unix))]
pub fn capture_stderr() -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "log capture needs Unix descriptors"))
}

/// The last `n` bytes written to stderr (at most [`LOG_TAIL_BYTES`]) and how many
/// bytes were written in all; None when stderr is not captured.
pub fn tail(n: usize) -> Option<(Vec<u8>, u64)> {
    let capture = CAPTURE.get()?;
    let tail = capture.tail.lock();
    let skip = tail.bytes.len().saturating_sub(n);
    Some((tail.bytes.iter().skip(skip).copied().collect(), tail.total))
}

/// Gives fd 2 back to the original stderr and waits (up to 2 s) until everything
/// written before reached it. Call before the process exits.
pub fn finish() {
    let Some(capture) = CAPTURE.get() else { return };
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 of a descriptor this module owns onto fd 2: the pipe's write
        // end loses its last descriptor and the copier sees its end.
        unsafe { libc::dup2(capture.saved.as_raw_fd(), 2) };
    }
    if let Some(done) = capture.done.lock().take() {
        let _ = done.recv_timeout(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_counts_all() {
        let mut t = Tail::default();
        t.push(b"abc");
        t.push(&vec![b'x'; LOG_TAIL_BYTES]);
        t.push(b"end");
        assert_eq!(t.total, 3 + LOG_TAIL_BYTES as u64 + 3);
        assert_eq!(t.bytes.len(), LOG_TAIL_BYTES);
        assert!(t.bytes.iter().rev().take(3).eq(b"dne".iter()));
        assert_eq!(t.bytes.front(), Some(&b'x'));
    }
}
