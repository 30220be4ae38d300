//! Wiring of the operator process: HTTP endpoints, leader election, controllers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tracing::info;

use crate::http::{self, HttpState};
use crate::leader::{LeaderError, LeaseConfig, LeaseLock};
use crate::metrics::Metrics;
use crate::reconciler::{self, Context};
use crate::state::Settings;

/// Everything the operator process is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorConfig {
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    /// Address of the `/metrics`, `/healthz`, `/readyz` server.
    pub http_addr: SocketAddr,
    /// Leader election; `None` runs the controllers at once (a single replica).
    pub leader_election: Option<LeaseConfig>,
    /// This replica's name, in events and the Lease.
    pub identity: String,
    /// State machine settings.
    pub settings: Settings,
}

/// Errors that stop the operator.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The HTTP server could not bind.
    #[error("binding the HTTP server to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Leadership was lost; the process must exit so a fresh replica takes over.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// Runs the operator until `shutdown` completes or leadership is lost.
pub async fn run(
    client: kube::Client,
    config: OperatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    let shutdown = shutdown.shared();
    let metrics = Arc::new(Metrics::new());
    let stores = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| OperatorError::Bind { addr: config.http_addr, source })?;
    info!(addr = %config.http_addr, "serving /metrics, /healthz, /readyz");
    let http_state = HttpState { metrics: metrics.clone(), stores: stores.clone(), ready: ready.clone() };
    let server = tokio::spawn(http::serve(listener, http_state, shutdown.clone()));

    let ctx =
        Arc::new(Context::new(client.clone(), config.settings.clone(), metrics.clone(), Some(config.identity.clone())));
    let controllers = reconciler::run(ctx, config.namespaces.clone(), stores, shutdown.clone());
    let result = match &config.leader_election {
        Some(lease) => {
            let lock = LeaseLock::new(client, lease.clone());
            // Not raced against `shutdown` here: the controllers stop on it by themselves,
            // and `run` must outlive them to release the Lease (dropping it mid-way left
            // the Lease held, and a new replica waited for it to expire).
            lock.run(controllers, shutdown.clone(), &metrics, ready.clone()).await.map_err(OperatorError::from)
        }
        None => {
            ready.store(true, Ordering::Relaxed);
            controllers.await;
            Ok(())
        }
    };
    server.abort();
    result
}
