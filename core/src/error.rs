//! Errors of the engine. One enum for everything a job can fail with, so that the
//! driver can tell a user error from a lost executor from a failed shuffle fetch.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a shuffle block could not be read from: the driver unregisters that map
/// output and recomputes it, instead of counting a task failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchFailure {
    pub shuffle_id: u32,
    pub map_index: u32,
    pub reduce_index: u32,
    /// Executor that held (or should have held) the block.
    pub executor_id: String,
    pub message: String,
}

impl fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shuffle {} map {} reduce {} on executor {}: {}",
            self.shuffle_id, self.map_index, self.reduce_index, self.executor_id, self.message
        )
    }
}

#[derive(Debug, thiserror::Error, Clone, Serialize, Deserialize)]
pub enum EmberError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("invalid master URL {url:?}: {reason}")]
    Master { url: String, reason: String },
    #[error("input path {path:?}: {reason}")]
    InputPath { path: String, reason: String },
    #[error("I/O error on {path}: {message}")]
    Io { path: String, message: String },
    #[error("serialization error: {0}")]
    Codec(String),
    #[error("task failed: {0}")]
    UserCode(String),
    #[error("shuffle fetch failed: {0}")]
    FetchFailed(FetchFailure),
    #[error("job {job_id} aborted: {reason}")]
    JobAborted { job_id: u64, reason: String },
    #[error("broadcast {id}: {reason}")]
    Broadcast { id: u64, reason: String },
    #[error("file {name:?}: {reason}")]
    File { name: String, reason: String },
    /// A block a streaming receiver stored (Spark's `StreamBlockId`, `input-…`).
    #[error("stream block {id}: {reason}")]
    StreamBlock { id: String, reason: String },
    #[error("executor {executor_id} lost: {reason}")]
    ExecutorLost { executor_id: String, reason: String },
    #[error("task killed: {0}")]
    TaskKilled(String),
    /// A remote call that did not answer in time (`setting` bounds it).
    #[error("{what} did not answer within {:.1} s ({setting})", *after_ms as f64 / 1e3)]
    Timeout { what: String, after_ms: u64, setting: String },
    #[error("the context is stopped")]
    Stopped,
    /// A call refused by `spark.authenticate` (no, malformed or wrong credentials).
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Invalid(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// An output path that cannot be written: it exists, or cannot be created.
    #[error("output path {path:?}: {reason}")]
    OutputPath {
        /// The path or URL as the job gave it.
        path: String,
        /// Why it cannot be written.
        reason: String,
    },
}

pub type Result<T, E = EmberError> = std::result::Result<T, E>;

impl EmberError {
    pub fn io(path: impl fmt::Display, err: std::io::Error) -> Self {
        EmberError::Io { path: path.to_string(), message: err.to_string() }
    }
}

impl From<postcard::Error> for EmberError {
    fn from(e: postcard::Error) -> Self {
        EmberError::Codec(e.to_string())
    }
}

/// Raised from inside a running iterator, where there is no `Result` to return
/// (a shuffle fetch that fails mid-stream, a corrupt block). Task runners catch it
/// with `catch_unwind` and turn it back into the error; it never escapes a task.
pub struct EngineAbort(pub EmberError);

/// Stops the current task with `err`. Use only inside task-side iterators.
pub fn raise(err: EmberError) -> ! {
    std::panic::resume_unwind(Box::new(EngineAbort(err)))
}

/// Turns a caught panic payload into the error it carried, or a user-code error
/// with the panic message.
pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> EmberError {
    match payload.downcast::<EngineAbort>() {
        Ok(abort) => abort.0,
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_string()
            };
            EmberError::UserCode(format!("panicked: {message}"))
        }
    }
}
