//! `socket_text_stream`: lines read from a TCP server (Spark's
//! `socketTextStream`, fed in the seed's exercises by `nc -lk 7777`). The
//! receiver connects from an executor; when the connection ends or fails it is
//! restarted after the restart delay and connects again.

use super::receiver::{Receiver, ReceiverOutput};
use crate::context::StreamingContext;
use crate::dstream::DStream;
use ember_core::error::{EmberError, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Lines of the TCP server at `host:port` (UTF-8; `\n` or `\r\n` ends a line;
/// invalid UTF-8 is replaced, as Java's decoder does).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketReceiver {
    pub host: String,
    pub port: u16,
}

/// How often a blocked read wakes to see whether the receiver was stopped.
const POLL: Duration = Duration::from_millis(100);
/// How long a connection attempt may take before the receiver fails (and is restarted).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Receiver for SocketReceiver {
    type Item = String;

    fn receive(&self, out: &ReceiverOutput<String>) -> Result<()> {
        let address = format!("{}:{}", self.host, self.port);
        let unreachable = |message: String| EmberError::Io { path: format!("tcp://{address}"), message };
        let resolved: Vec<_> =
            address.to_socket_addrs().map_err(|e| unreachable(format!("cannot resolve: {e}")))?.collect();
        let mut last_error = String::from("no address");
        let mut connected = None;
        for addr in resolved {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    connected = Some(s);
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        let stream = connected.ok_or_else(|| unreachable(format!("cannot connect: {last_error}")))?;
        stream.set_read_timeout(Some(POLL)).map_err(|e| EmberError::io(&address, e))?;
        tracing::info!(%address, "socket receiver connected");
        let mut reader = BufReader::with_capacity(1 << 16, stream);
        // A line split between two reads waits here for its end.
        let mut partial = Vec::new();
        while !out.is_stopped() {
            let buf = match reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue;
                }
                Err(e) => return Err(EmberError::io(format!("tcp://{address}"), e)),
            };
            if buf.is_empty() {
                if !partial.is_empty() {
                    out.store(line_text(&partial))?;
                }
                tracing::info!(%address, "the server closed the connection");
                return Ok(());
            }
            // Every complete line of what arrived is stored with one call.
            let mut lines = Vec::new();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', buf) {
                if partial.is_empty() {
                    lines.push(line_text(&buf[start..end]));
                } else {
                    partial.extend_from_slice(&buf[start..end]);
                    lines.push(line_text(&partial));
                    partial.clear();
                }
                start = end + 1;
            }
            partial.extend_from_slice(&buf[start..]);
            let consumed = buf.len();
            reader.consume(consumed);
            if !lines.is_empty() {
                out.store_many(lines)?;
            }
        }
        Ok(())
    }
}

/// A line without its `\n` and a `\r` before it, as UTF-8 (invalid bytes replaced).
/// Valid text, the usual case, takes `from_utf8`'s check, which runs a word at a
/// time over ASCII; the replacing decoder goes byte by byte (4 % of the CPU at a
/// million lines/s).
fn line_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match std::str::from_utf8(line) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    }
}

impl StreamingContext {
    /// Lines from the TCP server at `host:port`, received on an executor
    /// (Spark's `socketTextStream`; see `receiver_stream` for restarts, the
    /// write-ahead log and memory bounds).
    pub fn socket_text_stream(&self, host: &str, port: u16) -> DStream<String> {
        self.receiver_stream(SocketReceiver { host: host.to_string(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_lines_however_they_are_split_across_reads() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let writer = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // Each write may arrive as its own read: lines and `\r\n` cut at every place.
            for piece in [&b"uno\r"[..], b"\ndo", b"s\ntres\n\xff\n", b"", b"\nd\xc3\xada x\xffy\nlast"] {
                conn.write_all(piece).unwrap();
                conn.flush().unwrap();
            }
        });
        let out = super::super::receiver::detached_output::<String>(1000);
        SocketReceiver { host: "127.0.0.1".into(), port }.receive(&out).unwrap();
        writer.join().unwrap();
        assert_eq!(out.take_stored(), ["uno", "dos", "tres", "\u{fffd}", "", "día x\u{fffd}y", "last"]);
    }
}
