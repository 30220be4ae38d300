//! Logging: `tracing` to stderr, filtered by `EMBER_LOG` or `RUST_LOG`.

/// Installs the default subscriber once (no-op if the job installed its own).
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("EMBER_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn,ember=info,ember_executor=info,ember_core=info".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
