//! The stream graph (Spark's `DStreamGraph`): every stream node, the input
//! streams that feed it, the output operations that turn each batch into jobs,
//! and the stateful operations whose state is checkpointed by name.

use crate::dstream::DStreamBase;
use crate::input::InputSource;
use crate::output::OutputOp;
use crate::state::StatefulOp;
use crate::time::Time;
use ember_core::error::{EmberError, Result};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A job of one batch: runs on the batch runner thread.
pub(crate) type BatchJob = Box<dyn FnOnce() -> Result<()> + Send>;

#[derive(Default)]
pub(crate) struct Graph {
    zero_ms: AtomicU64,
    next_id: AtomicUsize,
    nodes: Mutex<Vec<Arc<dyn DStreamBase>>>,
    outputs: Mutex<Vec<Arc<dyn OutputOp>>>,
    inputs: Mutex<Vec<Arc<dyn InputSource>>>,
    stateful: Mutex<Vec<Arc<dyn StatefulOp>>>,
    /// Names given to inputs and stateful operations, and per-kind counters for
    /// default names.
    names: Mutex<(HashSet<String>, HashMap<String, usize>)>,
    /// Misuses found while the graph was built, reported by `start`.
    errors: Mutex<Vec<String>>,
    /// Set by `release`.
    released: std::sync::atomic::AtomicBool,
}

impl Graph {
    pub fn next_id(&self) -> usize {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The time before the first batch: batch times are `zero + k × interval`.
    pub fn zero_ms(&self) -> u64 {
        self.zero_ms.load(Ordering::Acquire)
    }

    pub fn set_zero_ms(&self, ms: u64) {
        self.zero_ms.store(ms, Ordering::Release);
    }

    /// Drops the graph's hold on its streams, inputs and outputs, once the
    /// context has stopped for good. Every stream holds its context, which holds
    /// this graph: without the release, a stopped context and its `EmberContext`
    /// (executor threads, the local executor's work directory with its received
    /// blocks) would stay alive until the process ends, and the work directory
    /// would outlive it.
    pub fn release(&self) {
        self.released.store(true, std::sync::atomic::Ordering::Release);
        let nodes = std::mem::take(&mut *self.nodes.lock());
        let outputs = std::mem::take(&mut *self.outputs.lock());
        let inputs = std::mem::take(&mut *self.inputs.lock());
        let stateful = std::mem::take(&mut *self.stateful.lock());
        drop((nodes, outputs, inputs, stateful));
    }

    /// True once [`Graph::release`] ran: the graph no longer lists its streams.
    pub fn is_released(&self) -> bool {
        self.released.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn add_node(&self, node: Arc<dyn DStreamBase>) {
        self.nodes.lock().push(node);
    }

    pub fn add_output(&self, op: Arc<dyn OutputOp>) {
        self.outputs.lock().push(op);
    }

    pub fn add_input(&self, input: Arc<dyn InputSource>) {
        self.inputs.lock().push(input);
    }

    pub fn add_stateful(&self, op: Arc<dyn StatefulOp>) {
        self.stateful.lock().push(op);
    }

    pub fn record_error(&self, message: String) {
        tracing::error!(%message, "streaming graph");
        self.errors.lock().push(message);
    }

    /// A unique name: `given` when set (an error when already taken), else
    /// `kind-N` with N counting that kind in creation order.
    pub fn unique_name(&self, kind: &str, given: Option<&str>) -> String {
        let mut names = self.names.lock();
        let name = match given {
            Some(name) => {
                if names.0.contains(name) {
                    drop(names);
                    self.record_error(format!("two streaming operations are named {name:?}: names must be unique"));
                    return name.to_string();
                }
                name.to_string()
            }
            None => loop {
                let n = names.1.entry(kind.to_string()).or_insert(0);
                let candidate = format!("{kind}-{n}");
                *n += 1;
                if !names.0.contains(&candidate) {
                    break candidate;
                }
            },
        };
        names.0.insert(name.clone());
        name
    }

    pub fn outputs(&self) -> Vec<Arc<dyn OutputOp>> {
        self.outputs.lock().clone()
    }

    pub fn inputs(&self) -> Vec<Arc<dyn InputSource>> {
        self.inputs.lock().clone()
    }

    pub fn stateful(&self) -> Vec<Arc<dyn StatefulOp>> {
        self.stateful.lock().clone()
    }

    /// Checks the graph before the first batch: at least one output, every
    /// stream valid (windows on multiples of their parent's slide), no misuse.
    pub fn validate(&self, batch_ms: u64) -> Result<()> {
        if let Some(first) = self.errors.lock().first() {
            return Err(EmberError::Invalid(first.clone()));
        }
        let outputs = self.outputs();
        if outputs.is_empty() {
            return Err(EmberError::Invalid(
                "no output operations registered, so nothing to execute: add print, foreach_rdd or save_as_text_files before start".into(),
            ));
        }
        for node in self.nodes.lock().iter() {
            node.validate()?;
        }
        // Every output remembers at least one batch; windows and state ask more of their parents.
        for op in &outputs {
            op.root().remember(batch_ms);
        }
        Ok(())
    }

    /// Forgets RDDs no stream needs any more after batch `time`.
    pub fn clear_old(&self, time: Time) {
        for node in self.nodes.lock().iter() {
            node.clear_old(time);
        }
    }

    /// The longest a stream remembers, in ms: how far back a recovery may need input.
    pub fn max_remember_ms(&self) -> u64 {
        self.nodes.lock().iter().map(|n| n.remember_ms()).max().unwrap_or(0)
    }
}
