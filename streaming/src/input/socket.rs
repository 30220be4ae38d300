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
        let mut line = Vec::new();
        while !out.is_stopped() {
            // A timed-out read keeps what it read in `line`; the next call goes on.
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    if !line.is_empty() {
                        out.store(String::from_utf8_lossy(&line).into_owned())?;
                    }
                    tracing::info!(%address, "the server closed the connection");
                    return Ok(());
                }
                Ok(_) if line.last() == Some(&b'\n') => {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    out.store(String::from_utf8_lossy(&line).into_owned())?;
                    line.clear();
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => return Err(EmberError::io(format!("tcp://{address}"), e)),
            }
        }
        Ok(())
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
