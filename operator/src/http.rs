//! The operator's HTTP endpoints: `/metrics` (Prometheus), `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::crd::SparkApplication;
use crate::metrics::Metrics;

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Caches of the running controllers (empty on a standby replica).
    pub stores: Arc<Mutex<Vec<Store<SparkApplication>>>>,
    /// Set once the replica has reached the API server (leader or standby).
    pub ready: Arc<AtomicBool>,
}

/// The router with every endpoint.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let states: Vec<_> = state
        .stores
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .flat_map(|store| store.state())
        .map(|app| {
            let state = app.status.as_ref().map(|s| s.application_state.state).unwrap_or_default();
            (app.namespace().unwrap_or_default(), state)
        })
        .collect();
    state.metrics.set_application_states(states);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
