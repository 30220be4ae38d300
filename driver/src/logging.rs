//! Logging and traces: `tracing` to stderr, filtered by `EMBER_LOG` or `RUST_LOG`;
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the application's spans are also exported
//! over OTLP/gRPC (see `ember_core::telemetry`). Driver and executor processes both
//! come here (the executor through `ember::entry`).

use ember_core::telemetry::{self, Role};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the default subscriber once (no-op if the job installed its own; then
/// no spans are exported either).
pub fn init() {
    let filter = std::env::var("EMBER_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn,ember=info,ember_executor=info,ember_core=info".to_string());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(EnvFilter::new(filter));
    let role = if crate::is_executor_process() { Role::Executor } else { Role::Driver };
    let otel = telemetry::endpoint_from_env().and_then(|endpoint| match telemetry::otlp_layer(&endpoint, role) {
        Ok(layer) => Some(layer),
        Err(e) => {
            eprintln!("ember: not exporting traces: {e}");
            None
        }
    });
    let exporting = otel.is_some();
    let installed = tracing_subscriber::registry().with(fmt).with(otel).try_init().is_ok();
    match (exporting, installed) {
        (true, true) => telemetry::activate(),
        (true, false) => telemetry::shutdown(std::time::Duration::from_secs(1)),
        _ => {}
    }
}
