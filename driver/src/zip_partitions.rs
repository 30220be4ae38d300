//! `zip_partitions`: partition i of this RDD and of another with as many
//! partitions, read together by one function (Spark's `zipPartitions`). The
//! partitions may differ in size, unlike [`Rdd::zip`]'s.

use crate::rdd::Rdd;
use ember_core::closure::{SerFn, Ship, traits};
use ember_core::data::{BoxIter, Data};
use ember_core::error::Result;
use ember_core::rdd::{ZipPartitionsOp, ZipPartitionsRdd};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The shipped function of `zip_partitions`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: Ship")]
pub struct ZipPartitionsFn<F>(#[serde(with = "ember_core::closure::shipped")] pub F);

impl<T: Data, U: Data, V: Data, F> ZipPartitionsOp<T, U, V> for ZipPartitionsFn<F>
where
    F: SerFn<(BoxIter<T>, BoxIter<U>)>,
    <F as traits::Fn<(BoxIter<T>, BoxIter<U>)>>::Output: IntoIterator<Item = V>,
    <<F as traits::Fn<(BoxIter<T>, BoxIter<U>)>>::Output as IntoIterator>::IntoIter: 'static,
{
    fn apply(self: Arc<Self>, _split: usize, a: BoxIter<T>, b: BoxIter<U>) -> BoxIter<V> {
        Box::new(self.0.call((a, b)).into_iter())
    }
}

impl<T: Data> Rdd<T> {
    /// `f(this partition, other's partition)` for each partition index, lazily:
    /// `f` gets both iterators and returns anything iterable.
    ///
    /// # Errors
    /// [`ember_core::error::EmberError::Invalid`] when the partition counts differ.
    pub fn zip_partitions<U: Data, V: Data, F>(&self, other: &Rdd<U>, f: F) -> Result<Rdd<V>>
    where
        F: SerFn<(BoxIter<T>, BoxIter<U>)>,
        <F as traits::Fn<(BoxIter<T>, BoxIter<U>)>>::Output: IntoIterator<Item = V>,
        <<F as traits::Fn<(BoxIter<T>, BoxIter<U>)>>::Output as IntoIterator>::IntoIter: 'static,
    {
        Ok(self.derive(ZipPartitionsRdd::new(self.node.clone(), other.node.clone(), ZipPartitionsFn(f))?))
    }
}
