//! Serialization of an RDD lineage (a stage's "task binary").
//!
//! Each node is written as the code offset of its decoder followed by its own
//! fields and its parents; a node reached twice (a diamond in the graph) is written
//! once and referred to by index afterwards. Decoders are monomorphized per node
//! type, so the reader gets back fully typed nodes.
//!
//! Depth: [`encode_root`] first writes the stage's whole narrow ancestry in
//! post-order, walked with an explicit stack, so that when a node writes its
//! parents they are already back-references. Writing and reading therefore nest
//! at most [`MAX_NESTING`] levels whatever the lineage's depth (an iterative job
//! of 20,000 chained `map`s encodes like a short one), and a hostile buffer that
//! nests deeper is refused instead of overflowing the reader's stack.

use crate::closure::{code_address, code_offset};
use crate::data::Data;
use crate::decoders;
use crate::error::{EmberError, Result};
use crate::rdd::{Dependency, RddBase, RddNode};
use serde::{Serialize, de::DeserializeOwned};
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

/// A decoded node, type-erased: holds an `Arc<dyn RddNode<T>>` for RDDs, or the
/// root object of a stage.
pub type AnyNode = Arc<dyn Any + Send + Sync>;
pub type DecodeFn = fn(&mut LineageReader<'_>) -> Result<AnyNode>;

/// Something that can be written into a lineage and decoded on another process.
pub trait Encode {
    /// This node type's decoder, named through
    /// [`registered_decoder!`](crate::decoders) so that readers accept it.
    fn decoder(&self) -> DecodeFn;
    fn encode_fields(&self, w: &mut LineageWriter) -> Result<()>;
}

const TAG_NEW: u8 = 1;
const TAG_SEEN: u8 = 2;

/// How deeply node records may nest in a lineage buffer: a stage root, the RDD
/// it writes, and that RDD's parents, which [`encode_root`] has always written
/// before. A reader refuses anything deeper as corrupt.
pub const MAX_NESTING: usize = 8;

#[derive(Default)]
pub struct LineageWriter {
    buf: Vec<u8>,
    seen: HashMap<u64, u32>,
    next_index: u32,
}

impl LineageWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        self.buf = postcard::to_extend(value, buf)?;
        Ok(())
    }

    fn write_new(&mut self, node: &dyn Encode) -> Result<u32> {
        self.buf.push(TAG_NEW);
        let offset = code_offset(node.decoder() as usize);
        self.write(&offset)?;
        node.encode_fields(self)?;
        let index = self.next_index;
        self.next_index += 1;
        Ok(index)
    }

    /// Writes an RDD node once; later references to the same RDD are back-references.
    pub fn write_rdd<T: Data>(&mut self, rdd: &Arc<dyn RddNode<T>>) -> Result<()> {
        let id = rdd.meta().id;
        if let Some(index) = self.seen.get(&id) {
            self.buf.push(TAG_SEEN);
            let index = *index;
            return self.write(&index);
        }
        let index = self.write_new(rdd.as_encode())?;
        self.seen.insert(id, index);
        Ok(())
    }

    /// Writes a root object (a stage's result function or shuffle dependency).
    pub fn write_root(&mut self, node: &dyn Encode) -> Result<()> {
        self.write_new(node).map(|_| ())
    }

    /// Writes `rdd` and its narrow ancestors, each after its parents, without
    /// recursion: an explicit stack walks the graph, so any depth fits. A shuffle
    /// dependency ends the walk (the map side is another stage's binary).
    pub fn write_ancestry(&mut self, rdd: &Arc<dyn RddBase>) -> Result<()> {
        // (node, parents already pushed)
        let mut stack: Vec<(Arc<dyn RddBase>, bool)> = vec![(rdd.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            let id = node.meta().id;
            if self.seen.contains_key(&id) {
                continue;
            }
            if expanded {
                let index = self.write_new(node.as_encode())?;
                self.seen.insert(id, index);
                continue;
            }
            stack.push((node.clone(), true));
            // Reversed so that parents are written in their declared order.
            for dep in node.dependencies().into_iter().rev() {
                if let Dependency::Narrow(parent) = dep
                    && !self.seen.contains_key(&parent.meta().id)
                {
                    stack.push((parent, false));
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

pub struct LineageReader<'a> {
    buf: &'a [u8],
    decoded: Vec<AnyNode>,
    nesting: usize,
}

impl<'a> LineageReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, decoded: Vec::new(), nesting: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn read<V: DeserializeOwned>(&mut self) -> Result<V> {
        let (v, rest) = postcard::take_from_bytes(self.buf)?;
        self.buf = rest;
        Ok(v)
    }

    fn read_any(&mut self) -> Result<AnyNode> {
        let (&tag, rest) = self.buf.split_first().ok_or_else(|| EmberError::Codec("truncated lineage".into()))?;
        self.buf = rest;
        match tag {
            TAG_SEEN => {
                let index: u32 = self.read()?;
                self.decoded
                    .get(index as usize)
                    .cloned()
                    .ok_or_else(|| EmberError::Codec(format!("dangling lineage reference {index}")))
            }
            TAG_NEW => {
                if self.nesting >= MAX_NESTING {
                    return Err(EmberError::Codec(format!("lineage nests deeper than {MAX_NESTING} records")));
                }
                let offset: i64 = self.read()?;
                let address = code_address(offset).unwrap_or(0);
                if !decoders::is_registered(address) {
                    return Err(EmberError::Codec(format!(
                        "lineage names code at offset {offset} that is not a decoder of this binary; refused"
                    )));
                }
                // SAFETY: `address` is in the registry of decoders, which holds only
                // the addresses of `DecodeFn`s of this binary.
                let decode: DecodeFn = unsafe { std::mem::transmute::<usize, DecodeFn>(address) };
                self.nesting += 1;
                let node = decode(self);
                self.nesting -= 1;
                let node = node?;
                self.decoded.push(node.clone());
                Ok(node)
            }
            other => Err(EmberError::Codec(format!("bad lineage tag {other}"))),
        }
    }

    pub fn read_rdd<T: Data>(&mut self) -> Result<Arc<dyn RddNode<T>>> {
        let node = self.read_any()?;
        node.downcast_ref::<Arc<dyn RddNode<T>>>()
            .cloned()
            .ok_or_else(|| EmberError::Codec(format!("lineage node is not an RDD of {}", std::any::type_name::<T>())))
    }

    /// Reads a root object of type `R` (e.g. `Arc<dyn ResultTaskFn>`).
    pub fn read_root<R: Clone + 'static>(&mut self) -> Result<R> {
        let node = self.read_any()?;
        node.downcast_ref::<R>()
            .cloned()
            .ok_or_else(|| EmberError::Codec(format!("stage root is not a {}", std::any::type_name::<R>())))
    }
}

/// Writes a stage root into a fresh buffer: the bytes executors receive.
///
/// `rdd` is the RDD the root computes (a result stage's RDD, a shuffle map
/// stage's parent); its ancestry is written first, see the module docs.
pub fn encode_root(root: &dyn Encode, rdd: &Arc<dyn RddBase>) -> Result<Vec<u8>> {
    let mut w = LineageWriter::new();
    w.write_ancestry(rdd)?;
    w.write_root(root)?;
    Ok(w.finish())
}

/// Decodes a stage root written by [`encode_root`]: the ancestry records, then
/// the root, which is the last record of the buffer.
///
/// Errors: [`EmberError::Codec`] for a truncated, trailing or too deeply nested
/// buffer, or a last record that is not an `R`.
pub fn decode_root<R: Clone + 'static>(bytes: &[u8]) -> Result<R> {
    let mut reader = LineageReader::new(bytes);
    loop {
        let node = reader.read_any()?;
        if reader.is_empty() {
            return node
                .downcast_ref::<R>()
                .cloned()
                .ok_or_else(|| EmberError::Codec(format!("stage root is not a {}", std::any::type_name::<R>())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::code_anchor;
    use crate::data::BoxIter;
    use crate::rdd::RangeRdd;
    use crate::task::{PartitionFn, ResultStage, ResultTaskFn, TaskContext};
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct Count;
    impl PartitionFn<i64, u64> for Count {
        fn apply(&self, _ctx: &TaskContext, input: BoxIter<i64>) -> Result<u64> {
            Ok(input.count() as u64)
        }
    }

    /// A result stage counting a range: two records, the range then the root.
    fn stage_binary() -> Vec<u8> {
        let range: Arc<dyn RddNode<i64>> = Arc::new(RangeRdd::new(0, 100, 1, 4));
        let base: Arc<dyn RddBase> = range.clone();
        encode_root(&ResultStage::new(range, Count), &base).unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<Arc<dyn ResultTaskFn>> {
        decode_root::<Arc<dyn ResultTaskFn>>(bytes)
    }

    #[test]
    fn every_decoder_a_stage_names_is_in_the_registry() {
        let range = RangeRdd::new(0, 100, 1, 4);
        assert!(decoders::is_registered(range.decoder() as usize));
        assert!(decoders::registered_count() >= 2, "{} decoders", decoders::registered_count());
        decode(&stage_binary()).expect("a stage binary of this build decodes");
    }

    #[test]
    fn a_code_offset_that_is_no_decoder_is_refused_not_called() {
        let mut bytes = stage_binary();
        // The first record names the range's decoder right after its tag;
        // point it at a function of this binary that is no decoder.
        let (_, rest) = postcard::take_from_bytes::<i64>(&bytes[1..]).unwrap();
        let offset_len = bytes.len() - 1 - rest.len();
        let hostile = postcard::to_allocvec(&code_offset(code_anchor as fn() -> usize as usize)).unwrap();
        bytes.splice(1..1 + offset_len, hostile);
        let err = decode(&bytes).err().expect("refused");
        assert!(err.to_string().contains("not a decoder of this binary"), "{err}");
        // An address in no function at all, and offsets off the address space.
        for far in [1i64 << 40, i64::MAX, i64::MIN] {
            let mut bytes = stage_binary();
            bytes.splice(1..1 + offset_len, postcard::to_allocvec(&far).unwrap());
            assert!(decode(&bytes).is_err(), "{far}");
        }
    }

    proptest! {
        // A task description comes from the network: whatever its bytes,
        // decoding is a root or an error, never a panic, a hang or a jump to
        // code that is not a decoder.
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn random_task_descriptions_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncated_and_flipped_task_descriptions_are_errors_not_panics(
            cut in 0usize..64, flip in 0usize..64, bit in 0u8..8,
        ) {
            let bytes = stage_binary();
            let cut = cut.min(bytes.len());
            prop_assert!(cut == bytes.len() || decode(&bytes[..cut]).is_err());
            let mut flipped = bytes.clone();
            let at = flip % flipped.len();
            flipped[at] ^= 1 << bit;
            let _ = decode(&flipped);
        }
    }
}
