//! `spark.streaming.stopGracefullyOnShutdown`: on SIGTERM or SIGINT the
//! context stops gracefully — it takes no new data, runs a batch for what its
//! receivers already took in, finishes every queued batch — and then
//! `await_termination` returns, so the job ends normally. A second signal
//! exits at once (status 128 + signal).

use crate::context::StreamingContext;
use ember_core::error::{EmberError, Result};
use std::sync::Weak;

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;

/// Installs the handler for `ssc` (called by `start` when the setting is on).
pub(crate) fn stop_gracefully_on_signal(ssc: &StreamingContext) -> Result<()> {
    let weak: Weak<crate::context::Inner> = std::sync::Arc::downgrade(&ssc.inner);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| EmberError::Internal(format!("cannot watch for shutdown signals: {e}")))?;
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
        })
        .map_err(|e| EmberError::Internal(format!("cannot watch for shutdown signals: {e}")))?;
    std::thread::Builder::new()
        .name("streaming-shutdown".into())
        .spawn(move || {
            let mut received = 0;
            loop {
                let signo = runtime.block_on(async {
                    tokio::select! {
                        _ = term.recv() => SIGTERM,
                        _ = int.recv() => SIGINT,
                    }
                });
                received += 1;
                if received > 1 {
                    std::process::exit(128 + signo);
                }
                let Some(inner) = weak.upgrade() else { return };
                let ssc = StreamingContext { inner };
                tracing::info!(
                    signal = signo,
                    "stopping the streaming context gracefully (spark.streaming.stopGracefullyOnShutdown)"
                );
                std::thread::spawn(move || ssc.stop(false, true));
            }
        })
        .map_err(|e| EmberError::Internal(format!("cannot watch for shutdown signals: {e}")))?;
    Ok(())
}
