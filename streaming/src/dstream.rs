//! `DStream<T>`: a discretized stream, a sequence of RDDs one per batch time
//! (Spark Streaming's DStream). Each stream node generates the RDD of a batch
//! from its parents' RDDs of that batch (or of a window of batches), remembers
//! what it generated for as long as its children may ask again, and drops it
//! after that.

use crate::context::StreamingContext;
use crate::time::Time;
use ember::{Rdd, StorageLevel};
use ember_core::data::Data;
use ember_core::error::Result;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How one stream computes a batch's RDD from its parents.
pub(crate) trait Compute<T: Data>: Send + Sync + 'static {
    /// The operation, for logs and errors (`map`, `window`, `updateStateByKey`, …).
    fn name(&self) -> String;
    /// Milliseconds between two RDDs of this stream.
    fn slide_ms(&self) -> u64;
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>>;
    /// How long the parents must remember their RDDs when this stream
    /// remembers its own for `own` ms (a window needs its length more).
    fn parent_remember_ms(&self, own: u64) -> u64 {
        own
    }
    /// The RDD of batch `time`; `None` when this stream has none then.
    fn compute(&self, node: &Node<T>, time: Time) -> Result<Option<Rdd<T>>>;
    /// Checked once when the context starts: a clear error instead of wrong batches.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// The untyped face of a stream node, enough for the graph.
pub(crate) trait DStreamBase: Send + Sync {
    fn describe(&self) -> String;
    /// Keep generated RDDs at least `ms` milliseconds (and tell the parents).
    fn remember(&self, ms: u64);
    /// How long generated RDDs are kept, in ms.
    fn remember_ms(&self) -> u64;
    /// Forget (and unpersist) RDDs older than this stream's remember duration.
    fn clear_old(&self, now: Time);
    fn validate(&self) -> Result<()>;
}

/// One stream node: its computation and the RDDs it generated, by batch time.
pub(crate) struct Node<T: Data> {
    pub id: usize,
    pub ssc: StreamingContext,
    compute: Box<dyn Compute<T>>,
    generated: Mutex<BTreeMap<Time, Option<Rdd<T>>>>,
    remember_ms: AtomicU64,
    storage: Mutex<StorageLevel>,
}

impl<T: Data> Node<T> {
    pub fn new(ssc: StreamingContext, compute: impl Compute<T>) -> Arc<Self> {
        let id = ssc.inner.graph.next_id();
        let slide = compute.slide_ms();
        Arc::new(Self {
            id,
            ssc,
            compute: Box::new(compute),
            generated: Mutex::new(BTreeMap::new()),
            remember_ms: AtomicU64::new(slide),
            storage: Mutex::new(StorageLevel::None),
        })
    }

    /// True when this stream has an RDD at `time`: after the zero time, on its slide.
    pub fn is_time_valid(&self, time: Time) -> bool {
        let zero = self.ssc.inner.graph.zero_ms();
        let slide = self.compute.slide_ms();
        time.0 > zero && (time.0 - zero).is_multiple_of(slide)
    }

    /// The RDD of batch `time`, generated once and remembered (Spark's `getOrCompute`).
    pub fn get_or_compute(&self, time: Time) -> Result<Option<Rdd<T>>> {
        if let Some(rdd) = self.generated.lock().get(&time) {
            return Ok(rdd.clone());
        }
        if !self.is_time_valid(time) {
            return Ok(None);
        }
        let rdd = self.compute.compute(self, time)?;
        let level = *self.storage.lock();
        if let Some(rdd) = &rdd
            && level != StorageLevel::None
        {
            rdd.persist(level);
        }
        Ok(self.generated.lock().entry(time).or_insert(rdd).clone())
    }

    /// Replaces the remembered RDD of `time` (state restored from a checkpoint).
    pub fn put_generated(&self, time: Time, rdd: Rdd<T>) {
        self.generated.lock().insert(time, Some(rdd));
    }

    pub fn set_storage_level(&self, level: StorageLevel) {
        *self.storage.lock() = level;
    }

    pub fn slide(&self) -> u64 {
        self.compute.slide_ms()
    }
}

impl<T: Data> DStreamBase for Node<T> {
    fn describe(&self) -> String {
        format!("{} (stream {})", self.compute.name(), self.id)
    }
    fn remember(&self, ms: u64) {
        let own = self.remember_ms.fetch_max(ms, Ordering::AcqRel).max(ms);
        let needed = self.compute.parent_remember_ms(own);
        for p in self.compute.parents() {
            p.remember(needed);
        }
    }
    fn remember_ms(&self) -> u64 {
        self.remember_ms.load(Ordering::Acquire)
    }
    fn clear_old(&self, now: Time) {
        let keep_after = now.minus(self.remember_ms.load(Ordering::Acquire));
        let old: Vec<Option<Rdd<T>>> = {
            let mut generated = self.generated.lock();
            let newer = generated.split_off(&keep_after.plus(1));
            std::mem::replace(&mut *generated, newer).into_values().collect()
        };
        for rdd in old.into_iter().flatten() {
            if rdd.storage_level() != StorageLevel::None {
                rdd.unpersist();
            }
        }
    }
    fn validate(&self) -> Result<()> {
        self.compute.validate()
    }
}

/// A discretized stream of `T`: one RDD per batch. Build it from a
/// [`StreamingContext`] source, transform it like an RDD, and end it in an
/// output operation (`print`, `foreach_rdd`, `save_as_text_files`); nothing runs
/// until `StreamingContext::start`.
pub struct DStream<T: Data> {
    pub(crate) node: Arc<Node<T>>,
}

impl<T: Data> Clone for DStream<T> {
    fn clone(&self) -> Self {
        Self { node: self.node.clone() }
    }
}

impl<T: Data> std::fmt::Debug for DStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DStream[{}]", self.node.describe())
    }
}

impl<T: Data> DStream<T> {
    pub(crate) fn from_compute(ssc: &StreamingContext, compute: impl Compute<T>) -> Self {
        let node = Node::new(ssc.clone(), compute);
        ssc.inner.graph.add_node(node.clone());
        Self { node }
    }

    /// The streaming context this stream belongs to.
    pub fn context(&self) -> &StreamingContext {
        &self.node.ssc
    }

    /// Time between two RDDs of this stream (the batch interval, or a window's slide).
    pub fn slide_duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.node.slide())
    }

    /// Persists every RDD this stream generates at `level` (Spark's `DStream.persist`).
    pub fn persist(&self, level: StorageLevel) -> Self {
        self.node.set_storage_level(level);
        self.clone()
    }

    /// `persist(MemoryOnly)`.
    pub fn cache(&self) -> Self {
        self.persist(StorageLevel::MemoryOnly)
    }

    /// The RDDs of this stream from `from` to `to` (both included, on its slide),
    /// generating those not generated yet (Spark's `DStream.slice`).
    pub fn slice(&self, from: Time, to: Time) -> Result<Vec<Rdd<T>>> {
        let slide = self.node.slide();
        let zero = self.node.ssc.inner.graph.zero_ms();
        // First time on this stream's slide at or after `from`.
        let mut t = if from.0 <= zero { zero + slide } else { zero + (from.0 - zero).div_ceil(slide) * slide };
        let mut out = Vec::new();
        while t <= to.0 {
            if let Some(rdd) = self.node.get_or_compute(Time(t))? {
                out.push(rdd);
            }
            t += slide;
        }
        Ok(out)
    }
}
