//! `to_local_iterator` (Spark's `RDD.toLocalIterator`): the elements on the
//! driver one partition at a time, so the driver holds at most the largest
//! partition instead of the whole RDD. Each partition is a job of its own, run
//! when the iterator reaches it.

use crate::ops::CollectFn;
use crate::rdd::Rdd;
use ember_core::data::Data;
use ember_core::error::Result;

/// The elements of an RDD, in order, fetched a partition at a time.
pub struct LocalIterator<T: Data> {
    rdd: Rdd<T>,
    next_partition: usize,
    current: std::vec::IntoIter<T>,
    failed: bool,
}

impl<T: Data> Iterator for LocalIterator<T> {
    type Item = Result<T>;

    /// The next element; an error (then the end) when a partition's job fails.
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(x) = self.current.next() {
                return Some(Ok(x));
            }
            if self.failed || self.next_partition >= self.rdd.num_partitions() {
                return None;
            }
            let partition = self.next_partition;
            self.next_partition += 1;
            match self.rdd.ctx.run_job(&self.rdd.node, CollectFn, Some(vec![partition])) {
                Ok(mut parts) => self.current = parts.pop().unwrap_or_default().into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<T: Data> Rdd<T> {
    /// The elements on the driver one partition at a time (one job per partition,
    /// run as the iterator reaches it): memory for the largest partition, not for
    /// the RDD. Persist the RDD first when its partitions are costly to compute.
    pub fn to_local_iterator(&self) -> LocalIterator<T> {
        LocalIterator { rdd: self.clone(), next_partition: 0, current: Vec::new().into_iter(), failed: false }
    }
}
