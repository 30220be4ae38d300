//! Narrow transformations: each output partition depends on a few parent
//! partitions, computed in the same task.

use super::{Dependency, Parent, RddBase, RddMeta, RddNode, into_any_node, iterate, locate_split};
use crate::data::{BoxIter, Data};
use crate::error::{EmberError, Result, raise};
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::task::TaskContext;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;

/// A per-partition function: the shippable body of map, filter, flatMap,
/// mapPartitions and their relatives.
pub trait PartitionOp<T, U>: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;
    /// Whether every output record keeps its input record's key (so the
    /// input's partitioner still holds: `filter`, `mapValues`; not `map`), as
    /// Spark's `mapPartitions(…, preservesPartitioning = true)`.
    const PRESERVES_PARTITIONING: bool = false;
    fn apply(self: Arc<Self>, split: usize, input: BoxIter<T>) -> BoxIter<U>;
}

pub struct MapPartitionsRdd<T: Data, U, Op> {
    meta: RddMeta,
    parent: Parent<T>,
    /// The parent's partition count, kept so that asking it costs no walk of the lineage.
    partitions: usize,
    op: Arc<Op>,
    _u: PhantomData<fn() -> U>,
}

impl<T: Data, U: Data, Op: PartitionOp<T, U>> MapPartitionsRdd<T, U, Op> {
    pub fn new(parent: Arc<dyn RddNode<T>>, op: Op) -> Self {
        let partitions = parent.num_partitions();
        Self { meta: RddMeta::new(), parent: Parent::new(parent), partitions, op: Arc::new(op), _u: PhantomData }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let op: Op = r.read()?;
        let parent = r.read_rdd::<T>()?;
        let partitions = parent.num_partitions();
        Ok(into_any_node::<U>(Self {
            meta,
            parent: Parent::new(parent),
            partitions,
            op: Arc::new(op),
            _u: PhantomData,
        }))
    }
}

impl<T: Data, U: Data, Op: PartitionOp<T, U>> Encode for MapPartitionsRdd<T, U, Op> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&*self.op)?;
        w.write_rdd(&self.parent)
    }
}

impl<T: Data, U: Data, Op: PartitionOp<T, U>> RddBase for MapPartitionsRdd<T, U, Op> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.parent.arc())]
    }
    fn op_name(&self) -> &'static str {
        Op::NAME
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data, U: Data, Op: PartitionOp<T, U>> RddNode<U> for MapPartitionsRdd<T, U, Op> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<U>> {
        let input = iterate(&self.parent, split, ctx)?;
        Ok(self.op.clone().apply(split, input))
    }
}

/// `union`: the parents' partitions one after the other.
pub struct UnionRdd<T: Data> {
    meta: RddMeta,
    parents: Vec<Parent<T>>,
    /// Each parent's partition count (Spark's `UnionRDD` computes its partitions
    /// once too): a chain of unions then answers `num_partitions` and locates a
    /// split without walking its ancestry.
    counts: Vec<usize>,
}

impl<T: Data> UnionRdd<T> {
    pub fn new(parents: Vec<Arc<dyn RddNode<T>>>) -> Self {
        Self::with_meta(RddMeta::new(), parents)
    }
    fn with_meta(meta: RddMeta, parents: Vec<Arc<dyn RddNode<T>>>) -> Self {
        let counts = parents.iter().map(|p| p.num_partitions()).collect();
        Self { meta, parents: parents.into_iter().map(Parent::new).collect(), counts }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let n: usize = r.read()?;
        let parents = (0..n).map(|_| r.read_rdd::<T>()).collect::<Result<_>>()?;
        Ok(into_any_node::<T>(Self::with_meta(meta, parents)))
    }
}

impl<T: Data> Encode for UnionRdd<T> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.parents.len())?;
        self.parents.iter().try_for_each(|p| w.write_rdd(p))
    }
}

impl<T: Data> RddBase for UnionRdd<T> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.counts.iter().sum()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.parents.iter().map(|p| Dependency::Narrow(p.arc())).collect()
    }
    fn narrow_parent_partitions(&self, split: usize) -> Vec<(usize, usize)> {
        locate_split(self.counts.iter().copied(), split).into_iter().collect()
    }
    fn op_name(&self) -> &'static str {
        "union"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data> RddNode<T> for UnionRdd<T> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<T>> {
        let (parent, inner) = locate_split(self.counts.iter().copied(), split)?;
        iterate(&self.parents[parent], inner, ctx)
    }
}

/// `coalesce` without shuffle: each output partition reads a group of parent partitions.
pub struct CoalescedRdd<T: Data> {
    meta: RddMeta,
    parent: Parent<T>,
    groups: Vec<Vec<usize>>,
}

impl<T: Data> CoalescedRdd<T> {
    pub fn new(parent: Arc<dyn RddNode<T>>, partitions: usize) -> Self {
        let n = parent.num_partitions();
        let k = partitions.clamp(1, n.max(1));
        // Contiguous groups keep ordering (Spark's coalesce does the same without locality).
        let groups = (0..k).map(|g| (g * n / k..(g + 1) * n / k).collect()).collect();
        Self { meta: RddMeta::new(), parent: Parent::new(parent), groups }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let groups = r.read()?;
        let parent = r.read_rdd::<T>()?;
        Ok(into_any_node::<T>(Self { meta, parent: Parent::new(parent), groups }))
    }
}

impl<T: Data> Encode for CoalescedRdd<T> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.groups)?;
        w.write_rdd(&self.parent)
    }
}

impl<T: Data> RddBase for CoalescedRdd<T> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.groups.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.parent.arc())]
    }
    fn narrow_parent_partitions(&self, split: usize) -> Vec<(usize, usize)> {
        self.groups.get(split).map(|g| g.iter().map(|&p| (0, p)).collect()).unwrap_or_default()
    }
    fn op_name(&self) -> &'static str {
        "coalesce"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data> RddNode<T> for CoalescedRdd<T> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<T>> {
        let iters = self.groups[split].iter().map(|&p| iterate(&self.parent, p, ctx)).collect::<Result<Vec<_>>>()?;
        Ok(Box::new(iters.into_iter().flatten()))
    }
}

/// `cartesian`: partition (i, j) pairs every element of a's i with every element of b's j.
pub struct CartesianRdd<T: Data, U: Data> {
    meta: RddMeta,
    a: Parent<T>,
    b: Parent<U>,
}

impl<T: Data, U: Data> CartesianRdd<T, U> {
    pub fn new(a: Arc<dyn RddNode<T>>, b: Arc<dyn RddNode<U>>) -> Self {
        Self { meta: RddMeta::new(), a: Parent::new(a), b: Parent::new(b) }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let a = r.read_rdd::<T>()?;
        let b = r.read_rdd::<U>()?;
        Ok(into_any_node::<(T, U)>(Self { meta, a: Parent::new(a), b: Parent::new(b) }))
    }
}

impl<T: Data, U: Data> Encode for CartesianRdd<T, U> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write_rdd(&self.a)?;
        w.write_rdd(&self.b)
    }
}

impl<T: Data, U: Data> RddBase for CartesianRdd<T, U> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.a.num_partitions() * self.b.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.a.arc()), Dependency::Narrow(self.b.arc())]
    }
    fn narrow_parent_partitions(&self, split: usize) -> Vec<(usize, usize)> {
        let nb = self.b.num_partitions().max(1);
        vec![(0, split / nb), (1, split % nb)]
    }
    fn op_name(&self) -> &'static str {
        "cartesian"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data, U: Data> RddNode<(T, U)> for CartesianRdd<T, U> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(T, U)>> {
        let nb = self.b.num_partitions();
        let right: Arc<Vec<U>> = Arc::new(iterate(&self.b, split % nb, ctx)?.collect());
        let left = iterate(&self.a, split / nb, ctx)?;
        Ok(Box::new(left.flat_map(move |x| {
            let right = right.clone();
            (0..right.len()).map(move |j| (x.clone(), right[j].clone()))
        })))
    }
}

/// `zip`: element i of partition p of a with element i of partition p of b.
pub struct ZipRdd<T: Data, U: Data> {
    meta: RddMeta,
    a: Parent<T>,
    b: Parent<U>,
}

impl<T: Data, U: Data> ZipRdd<T, U> {
    pub fn new(a: Arc<dyn RddNode<T>>, b: Arc<dyn RddNode<U>>) -> Result<Self> {
        if a.num_partitions() != b.num_partitions() {
            return Err(EmberError::Invalid(format!(
                "can only zip RDDs with the same number of partitions ({} vs {})",
                a.num_partitions(),
                b.num_partitions()
            )));
        }
        Ok(Self { meta: RddMeta::new(), a: Parent::new(a), b: Parent::new(b) })
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let a = r.read_rdd::<T>()?;
        let b = r.read_rdd::<U>()?;
        Ok(into_any_node::<(T, U)>(Self { meta, a: Parent::new(a), b: Parent::new(b) }))
    }
}

impl<T: Data, U: Data> Encode for ZipRdd<T, U> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write_rdd(&self.a)?;
        w.write_rdd(&self.b)
    }
}

impl<T: Data, U: Data> RddBase for ZipRdd<T, U> {
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
        "zip"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data, U: Data> RddNode<(T, U)> for ZipRdd<T, U> {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(T, U)>> {
        let mut a = iterate(&self.a, split, ctx)?;
        let mut b = iterate(&self.b, split, ctx)?;
        Ok(Box::new(std::iter::from_fn(move || match (a.next(), b.next()) {
            (Some(x), Some(y)) => Some((x, y)),
            (None, None) => None,
            _ => raise(EmberError::Invalid(format!(
                "can only zip RDDs with the same number of elements in each partition (partition {split} differs)"
            ))),
        })))
    }
}
