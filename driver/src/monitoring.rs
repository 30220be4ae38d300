//! Wires the listener bus of an application from its settings: the status store
//! and web UI (`spark.ui.enabled`, on by default), the event log
//! (`spark.eventLog.enabled`), Prometheus metrics (served by the UI) and the
//! console progress bar (`spark.ui.showConsoleProgress`). Posts the application's
//! start and environment, and its end on `stop`.

use crate::listener::{self, Event, ListenerBus, ListenerBusBuilder};
use crate::metrics::DriverMetrics;
use crate::status::AppStatusStore;
use crate::ui::UiServer;
use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Spark's default `spark.redaction.regex`.
pub const DEFAULT_REDACTION_REGEX: &str = "(?i)secret|password|token|access[.]?key";
/// What a redacted value shows (Spark's).
pub const REDACTED: &str = "*********(redacted)";

/// The application's watchers: bus, store, UI, event log.
pub struct Monitoring {
    pub app_id: String,
    pub bus: Arc<ListenerBus>,
    /// Present when the UI is on.
    pub store: Option<AppStatusStore>,
    pub metrics: Option<Arc<DriverMetrics>>,
    /// Dynamic allocation's demand, served by the UI (empty while it is off).
    pub allocation: Arc<crate::allocation::AllocationBoard>,
    ui: Option<UiServer>,
    event_log: Option<String>,
}

fn config(e: impl std::fmt::Display) -> EmberError {
    EmberError::Config(e.to_string())
}

/// Settings with secrets hidden: a pair whose key or value matches `regex` gets
/// the value `*********(redacted)` (Spark's `Utils.redact`).
///
/// Errors: `regex` is not a valid regular expression.
pub fn redact(conf: &Conf) -> Result<Vec<(String, String)>> {
    let pattern = conf.get("spark.redaction.regex").unwrap_or(DEFAULT_REDACTION_REGEX);
    let re = regex::Regex::new(pattern).map_err(|e| config(format!("spark.redaction.regex: {e}")))?;
    let mut out: Vec<(String, String)> = conf
        .entries()
        .map(|(k, v)| {
            let hidden = re.is_match(k) || re.is_match(v);
            (k.clone(), if hidden { REDACTED.to_string() } else { v.clone() })
        })
        .collect();
    out.sort();
    Ok(out)
}

fn system_properties() -> Vec<(String, String)> {
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    vec![
        ("os.name".into(), std::env::consts::OS.into()),
        ("os.arch".into(), std::env::consts::ARCH.into()),
        ("process.id".into(), std::process::id().to_string()),
        ("user.dir".into(), cwd),
    ]
}

fn new_app_id() -> String {
    let now = jiff::Timestamp::now();
    format!("app-{}-{:04x}", now.strftime("%Y%m%d%H%M%S"), rand::random::<u16>())
}

fn user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

impl Monitoring {
    /// Starts the listeners `conf` asks for and announces the application.
    ///
    /// Errors: a bad setting, an event log that cannot be created.
    pub fn start(conf: &Conf, master: &str) -> Result<Self> {
        let app_id = conf.get("spark.app.id").map(str::to_string).unwrap_or_else(new_app_id);
        let ui_enabled = conf.get_bool("spark.ui.enabled", true)?;
        let capacity =
            conf.get_usize("spark.scheduler.listenerbus.eventqueue.capacity", listener::DEFAULT_QUEUE_CAPACITY)?;
        let mut builder = ListenerBusBuilder::new(capacity);
        let retention = crate::status::Retention::from_conf(conf)?;
        let store = ui_enabled.then(|| AppStatusStore::live(retention));
        if let Some(store) = &store {
            builder.add("appStatus", store.listener());
        }
        let metrics = ui_enabled.then(|| Arc::new(DriverMetrics::new()));
        if let Some(m) = &metrics {
            builder.add("appStatus", m.listener());
        }
        let mut event_log = None;
        if conf.get_bool("spark.eventLog.enabled", false)? {
            let dir = conf.get("spark.eventLog.dir").unwrap_or("/tmp/spark-events");
            let dir = ember_core::filesystem::Location::parse(dir)
                .map_err(|e| EmberError::Config(format!("spark.eventLog.dir {dir:?}: {e}")))?;
            let compress = conf.get_bool("spark.eventLog.compress", false)?;
            let writer = crate::event_log::EventLogWriter::create(&dir, &app_id, compress, conf).map_err(config)?;
            event_log = Some(writer.location());
            builder.add("eventLog", Box::new(writer));
        }
        if let Some(progress) = crate::progress::ConsoleProgress::from_conf(conf)? {
            builder.add("appStatus", Box::new(progress));
        }
        let bus = Arc::new(builder.start().map_err(|e| EmberError::Internal(format!("listener bus: {e}")))?);
        let app_name = conf.get("spark.app.name").unwrap_or("ember").to_string();
        bus.post(Event::ApplicationStart(listener::ApplicationStart {
            app_id: app_id.clone(),
            app_name,
            time_ms: listener::now_ms(),
            user: user(),
            master: master.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }));
        bus.post(Event::EnvironmentUpdate(listener::EnvironmentUpdate {
            spark_properties: redact(conf)?,
            system_properties: system_properties(),
        }));
        // The UI never shows an application without its id, name and settings.
        if !bus.flush(Duration::from_secs(5)) {
            tracing::warn!("the listeners did not take the application's start within 5 s");
        }
        let allocation = Arc::new(crate::allocation::AllocationBoard::default());
        let ui = match (&store, &metrics) {
            (Some(store), Some(metrics)) => {
                UiServer::start_live(conf, store.clone(), metrics.clone(), allocation.clone())?
            }
            _ => None,
        };
        Ok(Self { app_id, bus, store, metrics, allocation, ui, event_log })
    }

    /// The web UI's address, when it runs.
    pub fn ui_address(&self) -> Option<SocketAddr> {
        self.ui.as_ref().map(|u| u.address())
    }

    /// Where the event log is written, when on: the in-progress file's path or object URL.
    pub fn event_log_location(&self) -> Option<&str> {
        self.event_log.as_deref()
    }

    /// Announces the clean end, lets every listener catch up (bounded), stops the UI.
    pub fn stop(&self) {
        self.bus.post(Event::ApplicationEnd(listener::ApplicationEnd { time_ms: listener::now_ms() }));
        self.bus.stop(Duration::from_secs(10));
        if let Some(ui) = &self.ui {
            ui.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_like_spark() {
        let conf = Conf::new()
            .set("spark.authenticate.secret", "s3cr3t")
            .set("fs.s3a.access.key", "AKIA")
            .set("spark.app.name", "x")
            .set("my.setting", "password=1");
        let r = redact(&conf).expect("redact");
        let get = |k: &str| r.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("spark.authenticate.secret"), Some(REDACTED));
        assert_eq!(get("fs.s3a.access.key"), Some(REDACTED));
        assert_eq!(get("my.setting"), Some(REDACTED), "a matching value is hidden too");
        assert_eq!(get("spark.app.name"), Some("x"));
        let custom = Conf::new().set("spark.redaction.regex", "name").set("spark.app.name", "x");
        assert_eq!(redact(&custom).expect("redact")[1], ("spark.redaction.regex".into(), REDACTED.into()));
    }
}
