//! Source RDDs: driver-side collections, numeric ranges, text files, nothing.

use super::{Dependency, RddBase, RddMeta, RddNode, into_any_node as wrap};
use crate::data::{BoxIter, Data};
use crate::error::{Result, raise};
use crate::lineage::{AnyNode, DecodeFn, Encode, LineageReader, LineageWriter};
use crate::task::TaskContext;
use crate::text::{FileSplit, WholeFile, read_split_lines, read_split_records, read_whole_file};
use std::marker::PhantomData;
use std::sync::Arc;

/// `parallelize`: the driver's data cut into slices, shipped with the stage.
pub struct ParallelCollectionRdd<T> {
    meta: RddMeta,
    slices: Arc<Vec<Vec<T>>>,
}

impl<T: Data> ParallelCollectionRdd<T> {
    pub fn new(data: Vec<T>, num_slices: usize) -> Self {
        let n = data.len();
        let num_slices = num_slices.max(1);
        // Same boundaries as Spark: slice i holds [i*n/s, (i+1)*n/s).
        let mut slices = Vec::with_capacity(num_slices);
        let mut iter = data.into_iter();
        for i in 0..num_slices {
            let start = i * n / num_slices;
            let end = (i + 1) * n / num_slices;
            slices.push(iter.by_ref().take(end - start).collect());
        }
        Self { meta: RddMeta::new(), slices: Arc::new(slices) }
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let slices: Vec<Vec<T>> = r.read()?;
        Ok(wrap(Self { meta, slices: Arc::new(slices) }))
    }
}

impl<T: Data> Encode for ParallelCollectionRdd<T> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&*self.slices)
    }
}

impl<T: Data> RddBase for ParallelCollectionRdd<T> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.slices.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "parallelize"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data> RddNode<T> for ParallelCollectionRdd<T> {
    fn compute(&self, split: usize, _ctx: &TaskContext) -> Result<BoxIter<T>> {
        let slices = self.slices.clone();
        let len = slices[split].len();
        Ok(Box::new((0..len).map(move |i| slices[split][i].clone())))
    }
}

/// `range(start, end, step)`: numbers generated in the task, nothing shipped.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RangeRdd {
    meta: RddMeta,
    start: i64,
    end: i64,
    step: i64,
    slices: usize,
}

impl RangeRdd {
    pub fn new(start: i64, end: i64, step: i64, slices: usize) -> Self {
        assert!(step != 0, "range step must not be zero");
        Self { meta: RddMeta::new(), start, end, step, slices: slices.max(1) }
    }

    fn len(&self) -> u64 {
        if (self.step > 0 && self.end <= self.start) || (self.step < 0 && self.end >= self.start) {
            return 0;
        }
        let span = (self.end as i128 - self.start as i128).unsigned_abs();
        let step = (self.step as i128).unsigned_abs();
        span.div_ceil(step) as u64
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let me: RangeRdd = r.read()?;
        Ok(wrap::<i64>(me))
    }
}

impl Encode for RangeRdd {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(self)
    }
}

impl RddBase for RangeRdd {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.slices
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "range"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl RddNode<i64> for RangeRdd {
    fn compute(&self, split: usize, _ctx: &TaskContext) -> Result<BoxIter<i64>> {
        let n = self.len() as u128;
        let s = self.slices as u128;
        let first = (split as u128 * n / s) as u64;
        let last = ((split as u128 + 1) * n / s) as u64;
        let (start, step) = (self.start, self.step);
        // start + i·step lies in [start, end), so arithmetic modulo 2^64 gives it
        // exactly even where i·step alone would overflow (a range over all of i64).
        Ok(Box::new((first..last).map(move |i| start.wrapping_add((i as i64).wrapping_mul(step)))))
    }
}

/// `textFile`: lines of files, one partition per split.
pub struct TextFileRdd {
    meta: RddMeta,
    splits: Vec<FileSplit>,
}

impl TextFileRdd {
    pub fn new(splits: Vec<FileSplit>) -> Self {
        Self { meta: RddMeta::new(), splits }
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let splits = r.read()?;
        Ok(wrap::<String>(Self { meta, splits }))
    }
}

impl Encode for TextFileRdd {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.splits)
    }
}

impl RddBase for TextFileRdd {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "textFile"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl RddNode<String> for TextFileRdd {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<String>> {
        read_split_lines(&self.splits[split], ctx.env().conf())
    }
}

/// `wholeTextFiles`: `(file:<path>, content)` of each file, files grouped into
/// partitions by [`crate::text::plan_whole_files`].
pub struct WholeTextFilesRdd {
    meta: RddMeta,
    groups: Vec<Vec<WholeFile>>,
}

impl WholeTextFilesRdd {
    /// The files of each partition, as [`crate::text::plan_whole_files`] groups them.
    pub fn new(groups: Vec<Vec<WholeFile>>) -> Self {
        Self { meta: RddMeta::new(), groups }
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let groups = r.read()?;
        Ok(wrap::<(String, String)>(Self { meta, groups }))
    }
}

impl Encode for WholeTextFilesRdd {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.groups)
    }
}

impl RddBase for WholeTextFilesRdd {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.groups.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "wholeTextFiles"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl RddNode<(String, String)> for WholeTextFilesRdd {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<(String, String)>> {
        let files = self.groups[split].clone();
        let conf = ctx.env().conf().clone();
        Ok(Box::new(files.into_iter().map(move |f| read_whole_file(&f, &conf).unwrap_or_else(|e| raise(e)))))
    }
}

/// `emptyRDD`: no partitions.
pub struct EmptyRdd<T> {
    meta: RddMeta,
    _t: PhantomData<fn() -> T>,
}

impl<T: Data> EmptyRdd<T> {
    pub fn new() -> Self {
        Self { meta: RddMeta::new(), _t: PhantomData }
    }
    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        Ok(wrap::<T>(Self { meta: r.read()?, _t: PhantomData }))
    }
}

impl<T: Data> Default for EmptyRdd<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Data> Encode for EmptyRdd<T> {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)
    }
}

impl<T: Data> RddBase for EmptyRdd<T> {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        0
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "emptyRDD"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl<T: Data> RddNode<T> for EmptyRdd<T> {
    fn compute(&self, _split: usize, _ctx: &TaskContext) -> Result<BoxIter<T>> {
        Ok(Box::new(std::iter::empty()))
    }
}

/// `binaryRecords`: fixed-length records of files, one partition per split.
pub struct BinaryRecordsRdd {
    meta: RddMeta,
    splits: Vec<FileSplit>,
    record_len: usize,
}

impl BinaryRecordsRdd {
    pub fn new(splits: Vec<FileSplit>, record_len: usize) -> Self {
        Self { meta: RddMeta::new(), splits, record_len }
    }

    fn decode(r: &mut LineageReader<'_>) -> Result<AnyNode> {
        let meta = r.read()?;
        let splits = r.read()?;
        let record_len = r.read()?;
        Ok(wrap::<Vec<u8>>(Self { meta, splits, record_len }))
    }
}

impl Encode for BinaryRecordsRdd {
    fn decoder(&self) -> DecodeFn {
        crate::decoders::registered_decoder!(Self::decode)
    }
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()> {
        w.write(&self.meta)?;
        w.write(&self.splits)?;
        w.write(&self.record_len)
    }
}

impl RddBase for BinaryRecordsRdd {
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn op_name(&self) -> &'static str {
        "binaryRecords"
    }
    fn as_encode(&self) -> &dyn Encode {
        self
    }
}

impl RddNode<Vec<u8>> for BinaryRecordsRdd {
    fn compute(&self, split: usize, ctx: &TaskContext) -> Result<BoxIter<Vec<u8>>> {
        read_split_records(&self.splits[split], self.record_len, ctx.env().conf())
    }
}
