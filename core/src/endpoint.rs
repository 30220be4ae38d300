//! Driver endpoints (Spark's `RpcEndpoint`s on the driver): named handlers a
//! running task can ask a question and get an answer from, wherever it runs.
//! Libraries built on Ember register them (the streaming crate's receiver
//! tracker takes received blocks this way); messages are opaque bytes the
//! identical binary on both ends encodes and decodes.

use crate::error::{EmberError, Result};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// A handler: request bytes → answer bytes (an error travels back to the asker).
pub type EndpointHandler = Arc<dyn Fn(Vec<u8>) -> Result<Vec<u8>> + Send + Sync>;

/// The driver's endpoints, by name.
#[derive(Default)]
pub struct Endpoints {
    handlers: RwLock<HashMap<String, EndpointHandler>>,
}

impl Endpoints {
    /// Registers (or replaces) the handler of `name`.
    pub fn register(&self, name: &str, handler: EndpointHandler) {
        self.handlers.write().insert(name.to_string(), handler);
    }

    /// Removes the handler of `name`.
    pub fn unregister(&self, name: &str) {
        self.handlers.write().remove(name);
    }

    /// Runs the handler of `name` on `message`. Errors: no such endpoint, or the handler's error.
    pub fn ask(&self, name: &str, message: Vec<u8>) -> Result<Vec<u8>> {
        let handler = self
            .handlers
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| EmberError::Invalid(format!("the driver has no endpoint named {name:?}")))?;
        handler(message)
    }
}

/// The driver endpoint an executor tells where its logs can be read (postcard
/// [`ExecutorLogUrls`]; answer: empty). Spark's executors send these `logUrls`
/// when they register; Ember's know their HTTP address only after registering.
pub const EXECUTOR_LOG_URLS: &str = "ExecutorLogUrls";

/// Where one executor serves its logs: (log name, URL), e.g.
/// `("stderr", "http://10.0.0.5:39417/logs/stderr")`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecutorLogUrls {
    /// The executor serving them.
    pub executor_id: String,
    /// (log name, URL) pairs.
    pub urls: Vec<(String, String)>,
}
