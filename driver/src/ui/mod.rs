//! The web UI server (Spark's `SparkUI` / `HistoryServer` web front): HTML pages
//! rendered on the server (maud; no JavaScript), Spark's monitoring REST API
//! under `/api/v1`, and Prometheus metrics on `/metrics`. The driver serves its
//! one live application; the history server serves every application of an
//! event-log directory. Both read status stores through an [`AppSource`].

pub mod dag_svg;
pub mod format;
pub mod pages;
pub mod rest;
pub mod stage_page;
pub mod storage_page;
mod streaming_page;

use crate::metrics::DriverMetrics;
use crate::status::AppStatusStore;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Where the UI finds applications.
pub trait AppSource: Send + Sync + 'static {
    /// Every application, newest first.
    fn list(&self) -> Vec<AppStatusStore>;
    /// One application by id.
    fn get(&self, app_id: &str) -> Option<AppStatusStore>;
}

/// The driver's one application.
struct LiveApp(AppStatusStore);

impl AppSource for LiveApp {
    fn list(&self) -> Vec<AppStatusStore> {
        vec![self.0.clone()]
    }
    fn get(&self, app_id: &str) -> Option<AppStatusStore> {
        (self.0.read().app.id == app_id).then(|| self.0.clone())
    }
}

/// Which server this is: the pages' paths differ.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The driver: pages at `/jobs/`, `/stages/`, …
    Live,
    /// The history server: an application list at `/`, pages at `/history/<app id>/jobs/`, …
    History,
}

#[derive(Clone)]
struct Ui {
    apps: Arc<dyn AppSource>,
    metrics: Option<Arc<DriverMetrics>>,
    /// The live driver's dynamic allocation demand (None: the history server).
    allocation: Option<Arc<crate::allocation::AllocationBoard>>,
    mode: Mode,
    /// Prefix of every link and redirect (see [`proxy_base`]); empty when served at `/`.
    proxy_base: Arc<str>,
}

/// The UI's path prefix behind a reverse proxy (Spark's `spark.ui.proxyBase`, or the
/// `APPLICATION_WEB_PROXY_BASE` environment variable as in Spark): the proxy strips
/// it before the request reaches the UI, and the UI puts it in front of every link
/// and redirect so that pages served at `https://host/ns/app/` link to
/// `/ns/app/jobs/`. Returned with a leading `/` and no trailing one; empty for none.
///
/// Errors: a value that is not an absolute path (`/a/b`), or holds characters a
/// URL path cannot carry unescaped (quotes, `<`, `>`, `?`, `#`, whitespace).
pub fn proxy_base(conf: &Conf) -> Result<String> {
    let from_env = std::env::var("APPLICATION_WEB_PROXY_BASE").ok();
    match conf.get("spark.ui.proxyBase").map(str::to_string).or(from_env) {
        Some(raw) => normalize_proxy_base(&raw),
        None => Ok(String::new()),
    }
}

/// `raw` as a proxy base: leading `/`, no trailing one; empty for none.
///
/// Errors: see [`proxy_base`].
pub fn normalize_proxy_base(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/')
        || trimmed.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '?' | '#' | '\\'))
    {
        return Err(EmberError::Config(format!(
            "the UI proxy base {raw:?} (spark.ui.proxyBase) must be an absolute URL path such as /spark/my-app"
        )));
    }
    Ok(trimmed.to_string())
}

/// A response with a content type.
pub(crate) fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn not_found(what: &str) -> Response {
    respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", format!("{what} not found\n"))
}

/// The query string's parameters (`a=1&b=2`, `%XX` and `+` decoded).
pub(crate) fn query_params(uri: &Uri) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

async fn dispatch(State(ui): State<Ui>, uri: Uri) -> Response {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let query = query_params(&uri);
    match segments.as_slice() {
        ["api", "v1", rest @ ..] => rest::handle(&*ui.apps, rest, &query),
        ["ember", "v1", "allocation"] => match ui.allocation.as_ref().and_then(|a| a.demand()) {
            Some(demand) => match serde_json::to_string(&demand) {
                Ok(body) => respond(StatusCode::OK, "application/json", body),
                Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", e.to_string()),
            },
            None => not_found("dynamic allocation demand (spark.dynamicAllocation.enabled is off)"),
        },
        ["metrics"] => match &ui.metrics {
            Some(m) => respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", m.encode()),
            None => not_found("metrics"),
        },
        [] if ui.mode == Mode::History => pages::history_index(&ui.apps.list(), &ui.proxy_base),
        ["history", app_id, page @ ..] if ui.mode == Mode::History => match ui.apps.get(app_id) {
            Some(store) => pages::app_page(&store, &format!("{}/history/{app_id}", ui.proxy_base), page, &query, false),
            None => not_found(&format!("application {app_id}")),
        },
        page if ui.mode == Mode::Live => match ui.apps.list().into_iter().next() {
            Some(store) => pages::app_page(&store, &ui.proxy_base, page, &query, true),
            None => not_found("application"),
        },
        _ => not_found("page"),
    }
}

/// A running UI server.
pub struct UiServer {
    address: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Binds `host:port`, or when taken the next ports up to `retries` more (Spark's
/// `spark.port.maxRetries`); port 0 takes any free port.
fn bind(host: &str, port: u16, retries: u16) -> Result<TcpListener> {
    let mut last = None;
    for p in (0..=retries).map(|i| if port == 0 { 0 } else { port.saturating_add(i) }) {
        match TcpListener::bind((host, p)) {
            Ok(l) => return Ok(l),
            Err(e) => {
                tracing::debug!(port = p, error = %e, "UI port taken; trying the next");
                last = Some(e);
                if port == 0 {
                    break;
                }
            }
        }
    }
    let e = last.map(|e| e.to_string()).unwrap_or_default();
    Err(EmberError::Config(format!("the web UI cannot listen on {host}:{port} nor the {retries} ports after it: {e}")))
}

impl UiServer {
    /// The driver's UI on `spark.ui.port` (default 4040, next free port when
    /// taken; 0: any free port), bound to `spark.driver.bindAddress` (0.0.0.0).
    ///
    /// Links carry `spark.ui.proxyBase` (see [`proxy_base`]).
    ///
    /// None, with a warning, when no port is free: the application runs without
    /// its UI rather than not at all.
    ///
    /// Errors: a malformed setting, or the server cannot start.
    pub fn start_live(
        conf: &Conf,
        store: AppStatusStore,
        metrics: Arc<DriverMetrics>,
        allocation: Arc<crate::allocation::AllocationBoard>,
    ) -> Result<Option<Self>> {
        let base = proxy_base(conf)?;
        let port = conf.get_usize("spark.ui.port", 4040)?;
        let port =
            u16::try_from(port).map_err(|_| EmberError::Config(format!("spark.ui.port {port} is not a port")))?;
        let retries = conf.get_usize("spark.port.maxRetries", 16)?.min(1000) as u16;
        let host = conf.get("spark.driver.bindAddress").unwrap_or("0.0.0.0");
        let listener = match bind(host, port, retries) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "running without the web UI");
                return Ok(None);
            }
        };
        let server =
            Self::serve(listener, Arc::new(LiveApp(store)), Some(metrics), Some(allocation), Mode::Live, &base)?;
        tracing::info!(address = %server.address, proxy_base = %base, "web UI started");
        ember_core::console::announce(format_args!("ember: web UI at http://{}", server.address));
        Ok(Some(server))
    }

    /// Serves `apps` on an already bound listener, on a thread of its own; links
    /// and redirects start with `proxy_base` (`""` or a [`proxy_base`] value).
    ///
    /// Errors: the server's runtime or thread cannot start.
    pub fn serve(
        listener: TcpListener,
        apps: Arc<dyn AppSource>,
        metrics: Option<Arc<DriverMetrics>>,
        allocation: Option<Arc<crate::allocation::AllocationBoard>>,
        mode: Mode,
        proxy_base: &str,
    ) -> Result<Self> {
        let internal = |e: std::io::Error| EmberError::Internal(format!("web UI: {e}"));
        let address = listener.local_addr().map_err(internal)?;
        listener.set_nonblocking(true).map_err(internal)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ember-ui")
            .enable_all()
            .build()
            .map_err(internal)?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let app = Router::new().fallback(dispatch).with_state(Ui {
            apps,
            metrics,
            allocation,
            mode,
            proxy_base: proxy_base.into(),
        });
        let thread = std::thread::Builder::new()
            .name("ember-ui".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return tracing::error!(error = %e, "web UI cannot listen"),
                    };
                    let (mut graceful, mut hard) = (rx.clone(), rx);
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = graceful.wait_for(|stop| *stop).await;
                    });
                    // Connections that do not close within 2 s of the stop are dropped.
                    let deadline = async move {
                        let _ = hard.wait_for(|stop| *stop).await;
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    };
                    tokio::select! {
                        served = serve => if let Err(e) = served {
                            tracing::error!(error = %e, "web UI server failed");
                        },
                        () = deadline => tracing::debug!("web UI stopped with connections still open"),
                    }
                });
                runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            })
            .map_err(internal)?;
        Ok(Self { address, shutdown: tx, thread: Mutex::new(Some(thread)) })
    }

    /// The bound address (an unspecified bind address stays 0.0.0.0 here; see `url`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving (open connections are closed within 2 s).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
