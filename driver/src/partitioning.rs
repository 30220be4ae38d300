//! How an RDD's pairs are partitioned by key (Spark's `RDD.partitioner`).

use ember_core::partitioner::{HashPartitioner, Partitioner};
use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// A partitioner an RDD's pairs are known to be partitioned by. Two are equal
/// when they are of the same type and serialize to the same bytes, so they send
/// every key to the same partition (Spark compares partitioners with `equals`).
#[derive(Clone)]
pub struct Partitioning {
    type_id: TypeId,
    type_name: &'static str,
    bytes: Arc<Vec<u8>>,
    partitions: usize,
    /// The partitioner itself, to shuffle another RDD the same way.
    value: Arc<dyn Any + Send + Sync>,
}

impl Partitioning {
    /// The partitioning `partitioner` produces. A partitioner that cannot be
    /// serialized is not tracked (None): nothing relies on it then.
    pub fn of<K, P: Partitioner<K>>(partitioner: &P) -> Option<Self> {
        let bytes = postcard::to_allocvec(partitioner).ok()?;
        let value: P = postcard::from_bytes(&bytes).ok()?;
        Some(Self {
            type_id: TypeId::of::<P>(),
            type_name: std::any::type_name::<P>(),
            partitions: partitioner.num_partitions(),
            bytes: Arc::new(bytes),
            value: Arc::new(value),
        })
    }

    /// `HashPartitioner::new(partitions)`'s partitioning.
    pub fn hash(partitions: usize) -> Self {
        Self::of::<u8, _>(&HashPartitioner::new(partitions)).expect("a HashPartitioner serializes")
    }

    pub fn num_partitions(&self) -> usize {
        self.partitions
    }

    /// The partitioner, when it is a `P` (e.g. `HashPartitioner`, `RangePartitioner<K>`).
    pub fn partitioner<P: Clone + 'static>(&self) -> Option<P> {
        self.value.downcast_ref::<P>().cloned()
    }
}

impl PartialEq for Partitioning {
    fn eq(&self, other: &Self) -> bool {
        self.type_id == other.type_id && self.bytes == other.bytes
    }
}

impl Eq for Partitioning {}

impl fmt::Debug for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({} partitions)", self.type_name, self.partitions)
    }
}

impl<K: ember_core::data::Key + ember_core::data::Ordered, V: ember_core::data::Data> crate::rdd::Rdd<(K, V)> {
    /// Redistributes the pairs with `partitioner` and sorts each partition by key
    /// (Spark's `repartitionAndSortWithinPartitions`). The sort runs in the tasks
    /// that read the shuffle, with no stage of its own, and spills sorted runs
    /// when a partition does not fit in the task's memory.
    pub fn repartition_and_sort_within_partitions<P: Partitioner<K>>(&self, partitioner: P) -> crate::rdd::Rdd<(K, V)> {
        self.partition_by(partitioner).with_op(crate::ops::SortByKeyOp { ascending: true })
    }
}
