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
//!
//! A process that dies suddenly (abort, a fault, a stack overflow, `exit` from
//! a task) takes the copying thread with it, and what its last moments wrote
//! (the panic or overflow message, the task's last lines) would die in the
//! pipe. So handlers for the fatal signals and an `atexit` hook move what is
//! still in the pipe to the original stderr first, with nothing but read(2) and
//! write(2) (async-signal-safe), then let the signal take its course.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::OnceLock;
#[cfg(unix)]
use std::sync::atomic::{AtomicI32, Ordering};
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
    // The crash path reads the pipe through a descriptor of its own, non-blocking
    // (a fresh open file description: the copier's reads stay blocking).
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", read_end.as_raw_fd())).expect("no NUL");
    // SAFETY: open(2) of a path made above; the descriptor is kept for the process's life.
    let drain = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if drain >= 0 {
        DRAIN_FD.store(drain, Ordering::SeqCst);
        ORIGINAL_FD.store(CAPTURE.get().map_or(-1, |c| c.saved.as_raw_fd()), Ordering::SeqCst);
        install_crash_drain();
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

/// The crash path's non-blocking reader of the pipe, and the original stderr (-1: none).
#[cfg(unix)]
static DRAIN_FD: AtomicI32 = AtomicI32::new(-1);
#[cfg(unix)]
static ORIGINAL_FD: AtomicI32 = AtomicI32::new(-1);

/// The signals after which the process is gone, and the handlers they had.
#[cfg(unix)]
const FATAL_SIGNALS: [libc::c_int; 5] = [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];
#[cfg(unix)]
static PREVIOUS_HANDLERS: OnceLock<Vec<(libc::c_int, libc::sigaction)>> = OnceLock::new();

/// Moves what waits in the pipe to the original stderr. Async-signal-safe: only
/// read(2) and write(2) on descriptors set up before, and a small stack buffer
/// (a stack overflow's handler runs on the small alternate signal stack).
#[cfg(unix)]
fn drain_pipe() {
    let (from, to) = (DRAIN_FD.load(Ordering::SeqCst), ORIGINAL_FD.load(Ordering::SeqCst));
    if from < 0 || to < 0 {
        return;
    }
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: read(2) into a buffer of this size.
        let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        let mut written = 0;
        while written < n as usize {
            // SAFETY: write(2) of initialized bytes of `buf`.
            let w = unsafe { libc::write(to, buf[written..].as_ptr().cast(), n as usize - written) };
            if w <= 0 {
                return;
            }
            written += w as usize;
        }
    }
}

#[cfg(unix)]
extern "C" fn drain_at_exit() {
    drain_pipe();
}

#[cfg(unix)]
extern "C" fn on_fatal_signal(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    drain_pipe();
    let previous = PREVIOUS_HANDLERS.get().and_then(|p| p.iter().find(|(s, _)| *s == signal)).map(|(_, a)| *a);
    match previous {
        // Chain to the handler that was there (Rust's stack-overflow report on
        // SIGSEGV, which writes its message and aborts: drained again above).
        Some(action) if action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN => {
            // SAFETY: the previous handler, called with the arguments its flags ask for.
            unsafe {
                if action.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(action.sa_sigaction);
                    handler(signal, info, context);
                } else {
                    let handler: extern "C" fn(libc::c_int) = std::mem::transmute(action.sa_sigaction);
                    handler(signal);
                }
            }
        }
        // The default action, as if this handler had never been: the process
        // ends by this signal, with its status.
        _ => {
            // SAFETY: sigaction(2) and raise(3) are async-signal-safe.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
                libc::raise(signal);
            }
        }
    }
}

/// Installs [`on_fatal_signal`] for [`FATAL_SIGNALS`] (on the alternate stack,
/// keeping the handlers it replaces) and [`drain_at_exit`].
#[cfg(unix)]
fn install_crash_drain() {
    let mut previous = Vec::new();
    for signal in FATAL_SIGNALS {
        // SAFETY: sigaction(2) with a zeroed, then filled, struct; the handler is
        // async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &action, &mut old) == 0 {
                previous.push((signal, old));
            }
        }
    }
    let _ = PREVIOUS_HANDLERS.set(previous);
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::atexit(drain_at_exit) };
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
