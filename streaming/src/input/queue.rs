//! `queue_stream`: a stream fed with ready-made RDDs, one (or all queued) per
//! batch (Spark's `queueStream`), for tests and for feeding a stream by hand.

use super::InputSource;
use crate::context::StreamingContext;
use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::time::Time;
use ember::Rdd;
use ember_core::data::Data;
use ember_core::error::Result;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// RDDs waiting to become batches of a queue stream. Cloning shares the queue.
pub struct RddQueue<T: Data> {
    rdds: Arc<Mutex<VecDeque<Rdd<T>>>>,
}

impl<T: Data> Clone for RddQueue<T> {
    fn clone(&self) -> Self {
        Self { rdds: self.rdds.clone() }
    }
}

impl<T: Data> Default for RddQueue<T> {
    fn default() -> Self {
        Self { rdds: Arc::new(Mutex::new(VecDeque::new())) }
    }
}

impl<T: Data> RddQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an RDD: a later batch takes it.
    pub fn push(&self, rdd: Rdd<T>) {
        self.rdds.lock().push_back(rdd);
    }

    /// RDDs not taken yet.
    pub fn len(&self) -> usize {
        self.rdds.lock().len()
    }

    /// True when no RDD waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(crate) struct QueueInput<T: Data> {
    name: String,
    ssc: StreamingContext,
    queue: RddQueue<T>,
    one_at_a_time: bool,
    default: Option<Rdd<T>>,
    /// What `allocate` took for each batch not generated yet.
    taken: Mutex<std::collections::BTreeMap<Time, Rdd<T>>>,
}

impl<T: Data> InputSource for QueueInput<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(&self, time: Time) -> Result<u64> {
        let rdd = {
            let mut queue = self.queue.rdds.lock();
            if self.one_at_a_time {
                queue.pop_front()
            } else if queue.is_empty() {
                None
            } else {
                let all: Vec<Rdd<T>> = queue.drain(..).collect();
                Some(self.ssc.spark_context().union(&all))
            }
        };
        let rdd = rdd.or_else(|| self.default.clone()).unwrap_or_else(|| self.ssc.spark_context().empty_rdd());
        self.taken.lock().insert(time, rdd);
        Ok(0)
    }

    fn has_unallocated(&self) -> bool {
        !self.queue.is_empty()
    }
}

/// The graph's compute for a queue stream: the RDD allocated to the batch.
struct QueueCompute<T: Data>(Arc<QueueInput<T>>);

impl<T: Data> Compute<T> for QueueCompute<T> {
    fn name(&self) -> String {
        format!("queueStream {}", self.0.name)
    }
    fn slide_ms(&self) -> u64 {
        self.0.ssc.inner.batch_ms
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        Vec::new()
    }
    fn compute(&self, _node: &Node<T>, time: Time) -> Result<Option<Rdd<T>>> {
        Ok(Some(self.0.taken.lock().remove(&time).unwrap_or_else(|| self.0.ssc.spark_context().empty_rdd())))
    }
}

impl StreamingContext {
    /// A stream whose batches are RDDs pushed onto `queue`: one per batch when
    /// `one_at_a_time`, else everything queued; a batch with nothing queued is
    /// `default` or empty (Spark's `queueStream`). Its data cannot be recovered
    /// from a checkpoint.
    pub fn queue_stream<T: Data>(
        &self,
        queue: RddQueue<T>,
        one_at_a_time: bool,
        default: Option<Rdd<T>>,
    ) -> DStream<T> {
        let name = self.inner.graph.unique_name("queueStream", None);
        let input = Arc::new(QueueInput {
            name,
            ssc: self.clone(),
            queue,
            one_at_a_time,
            default,
            taken: Mutex::new(Default::default()),
        });
        self.inner.graph.add_input(input.clone());
        DStream::from_compute(self, QueueCompute(input))
    }
}
