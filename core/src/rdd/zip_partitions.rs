//! `zipPartitions`: partition i of two RDDs with the same number of partitions,
//! read together by one function in one task (Spark's `RDD.zipPartitions`,
//! `ZippedPartitionsRDD2`). Unlike `zip`, the partitions may differ in size.

use super::{Dependency, Parent, RddBase, RddMeta, RddNode, into_any_node, iterate};
use crate::data::{BoxIter, Data};
use crate::error::{EmberError, Result};
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::task::TaskContext;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;

/// The shippable body of `zip_partitions`: both partitions' iterators in, one
/// iterator out.
pub trait ZipPartitionsOp<T, U, V>: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Partition `split` of the result from partition `split` of each parent.
    fn apply(self: Arc<Self>, split: usize, a: BoxIter<T>, b: BoxIter<U>) -> BoxIter<V>;
}

/// Partition i of `a` and of `b` through one [`ZipPartitionsOp`].
pub struct ZipPartitionsRdd<T: Data, U: Data, V, Op> {
    meta: RddMeta,
    a: Parent<T>,
    b: Parent<U>,
    op: Arc<Op>,
    _v: PhantomData<fn() -> V>,
}

impl<T: Data, U: Data, V: Data, Op: ZipPartitionsOp<T, U, V>> ZipPartitionsRdd<T, U, V, Op> {
    /// # Errors
    /// [`EmberError::Invalid`] when the partition counts differ (Spark: "Can't
    /// zip RDDs with unequal numbers of partitions").
    pub fn new(a: Arc<dyn RddNode<T>>, b: Arc<dyn RddNode<U>>, op: Op) -> Result<Self> {
        if a.num_partitions() != b.num_partitions() {
            return Err(EmberError::Invalid(format!(
                "zip_partitions needs RDDs with the same number of partitions ({} vs {})",
                a.num_partitions(),
                b.num_partitions()
            )));
        }
        Ok(Self { meta: RddMeta::new(), a: Parent::new(a), b: Parent::new(b), op: Arc::new(op), _v: PhantomData })
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let op: Op = r.read()?;
        let a = r.read_rdd::<T>()?;
        let b = r.read_rdd::<U>()?;
        Ok(into_any_node::<V>(Self { meta, a: Parent::new(a), b: Parent::new(b), op: Arc::new(op), _v: PhantomData }))
    }
}

impl<T: Data, U: Data, V: Data, Op: ZipPartitionsOp<T, U, V>> Encode for ZipPartitionsRdd<T, U, V, Op> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&*self.op)?;
        w.write_rdd(&self.a)?;
        w.write_rdd(&self.b)
    }
}

impl<T: Data, U: Data, V: Data, Op: ZipPartitionsOp<T, U, V>> RddBase for ZipPartitionsRdd<T, U, V, Op> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.a.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.a.arc()), Dependency::Narrow(self.b.arc())]
    }
    fn op_name(&self) -> &'static str {
        "zipPartitions"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data, U: Data, V: Data, Op: ZipPartitionsOp<T, U, V>> RddNode<V> for ZipPartitionsRdd<T, U, V, Op> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<V>> {
        let a = iterate(&self.a, split, ctx)?;
        let b = iterate(&self.b, split, ctx)?;
        Ok(self.op.clone().apply(split, a, b))
    }
}
