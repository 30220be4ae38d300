//! `ember`: Ember's command-line tools. For now, the history server:
//! `ember history-server --dir DIR` serves the web UI and REST API of every
//! application whose event log is in DIR.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "ember", version, about = "Ember's command-line tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serves the UI and REST API of the applications whose event logs are in a directory.
    HistoryServer {
        /// The event log directory: a path, a file:// URL or an s3a:// prefix
        /// (Spark's spark.history.fs.logDirectory).
        #[arg(long, env = "EMBER_HISTORY_LOG_DIR")]
        dir: PathBuf,
        /// A setting, KEY=VALUE, repeatable: the spark.hadoop.fs.s3a.* settings that
        /// reach an object store (credentials also come from the AWS_* variables).
        /// Without any, EMBER_HISTORY_CONF gives pairs separated by spaces.
        #[arg(long = "conf", value_name = "KEY=VALUE")]
        conf: Vec<String>,
        /// Address to listen on.
        #[arg(long, env = "EMBER_HISTORY_HOST", default_value = "0.0.0.0")]
        host: String,
        /// Port to listen on (Spark's spark.history.ui.port; 0: any free port).
        #[arg(long, env = "EMBER_HISTORY_PORT", default_value_t = 18080)]
        port: u16,
        /// How often to look for new and changed logs (spark.history.fs.update.interval).
        #[arg(long, env = "EMBER_HISTORY_UPDATE_INTERVAL", default_value = "10s")]
        update_interval: String,
        /// Path prefix of every link, when a reverse proxy serves the UI under a path
        /// (Spark's spark.ui.proxyBase), e.g. /spark-history.
        #[arg(long, env = "EMBER_HISTORY_PROXY_BASE", default_value = "")]
        proxy_base: String,
    },
}

fn main() -> anyhow::Result<()> {
    ember::logging::init();
    match Cli::parse().command {
        Command::HistoryServer { dir, conf, host, port, update_interval, proxy_base } => {
            let interval = ember_core_duration(&update_interval)?;
            let dir = ember::Location::from_path(&dir).with_context(|| format!("--dir {}", dir.display()))?;
            let mut settings = ember::Conf::new();
            let from_env = std::env::var("EMBER_HISTORY_CONF").unwrap_or_default();
            let pairs: Vec<&str> = if conf.is_empty() {
                from_env.split_whitespace().collect()
            } else {
                conf.iter().map(String::as_str).collect()
            };
            for pair in pairs {
                let (key, value) =
                    pair.split_once('=').with_context(|| format!("--conf {pair:?}: expected KEY=VALUE"))?;
                settings = settings.set(key.trim(), value.trim());
            }
            let provider = ember::history::HistoryProvider::with_conf(dir.clone(), settings);
            let server = ember::history::HistoryServer::serve(provider, &host, port, interval, &proxy_base)
                .with_context(|| format!("starting the history server on {dir}"))?;
            eprintln!("ember: history server at http://{} reading {dir}", server.address());
            loop {
                std::thread::park();
            }
        }
    }
}

fn ember_core_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    ember::Conf::new()
        .set("interval", text)
        .get_duration("interval", std::time::Duration::from_secs(10))
        .with_context(|| format!("bad --update-interval {text:?}"))
}
