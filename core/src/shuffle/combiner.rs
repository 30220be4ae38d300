//! Per-key combining within a memory budget.
//!
//! `CombineBuffer` is the in-memory hash map of combiners with an estimate of
//! its size. The map side drains it into the map output when it is full (the
//! reducer merges the partial combiners). The reduce side uses
//! `ExternalCombiner`: a full map is sorted by key hash and written as a run;
//! at the end the runs are merged by hash and combiners of equal keys merged,
//! so a reducer's memory stays bounded however many keys its partition has.

use super::sorter::{SpillConfig, SpillStats, merge};
use super::spill::{SpillFile, SpillWriter};
use crate::aggregator::{Aggregator, fold_combiner, fold_value};
use crate::data::{BoxIter, Data, Key};
use crate::error::Result;
use crate::key::HashedKey;
use crate::memory::MemoryReservation;
use crate::shuffle::block::record_size;
use crate::task::TaskContext;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

/// Hash used to order spilled runs (independent of the map's own hasher state).
fn key_hash<K: Key>(k: &K) -> u64 {
    let mut h = FxBuildHasher.build_hasher();
    k.key_hash(&mut h);
    h.finish()
}

pub struct CombineBuffer<K, C> {
    map: FxHashMap<HashedKey<K>, Option<C>>,
    updates: u64,
    next_sample: u64,
    /// Average serialized size of an entry, from the entries touched at sample points.
    entry_bytes: f64,
    /// Bytes serialized to take the samples (what the estimate costs).
    sampled_bytes: u64,
    scratch: Vec<u8>,
}

impl<K: Key, C: Data> Default for CombineBuffer<K, C> {
    fn default() -> Self {
        Self {
            map: FxHashMap::default(),
            updates: 0,
            next_sample: 0,
            entry_bytes: 0.0,
            sampled_bytes: 0,
            scratch: Vec::new(),
        }
    }
}

/// Samples are taken at updates growing by this factor (Spark's
/// `SizeTracker.SAMPLE_GROWTH_RATE`): a sample serializes the touched entry,
/// and one hot key's list grows with the updates, so evenly spaced samples
/// would cost time quadratic in its length; geometric spacing costs a constant
/// factor of its final size.
const SAMPLE_GROWTH: f64 = 1.1;

impl<K: Key, C: Data> CombineBuffer<K, C> {
    /// Folds a value into its key's combiner.
    #[inline]
    pub fn insert_value<V, A: Aggregator<V, C>>(&mut self, agg: &A, k: K, v: V) {
        self.update(k, |slot| fold_value(agg, slot, v));
    }

    /// Merges a partial combiner (from a map task) into its key's combiner.
    #[inline]
    pub fn insert_combiner<V, A: Aggregator<V, C>>(&mut self, agg: &A, k: K, c: C) {
        self.update(k, |slot| fold_combiner::<V, C, A>(agg, slot, c));
    }

    #[inline]
    fn update(&mut self, k: K, fold: impl FnOnce(&mut Option<C>)) {
        self.updates += 1;
        if self.updates < self.next_sample {
            fold(self.map.entry(HashedKey(k)).or_insert(None));
            return;
        }
        // Sample the touched entry: growing combiners (lists) are seen growing.
        let key_bytes = record_size(&k, &mut self.scratch);
        let slot = self.map.entry(HashedKey(k)).or_insert(None);
        fold(slot);
        let bytes = key_bytes + record_size(slot, &mut self.scratch);
        self.sampled_bytes += bytes as u64;
        // Samples are sparse (geometric): the newest weighs half, so a hot
        // key's list, growing 10% between samples, is estimated at ~0.9 of
        // its size rather than lagging at half.
        let bytes = bytes as f64;
        self.entry_bytes = if self.entry_bytes == 0.0 { bytes } else { 0.5 * self.entry_bytes + 0.5 * bytes };
        self.next_sample = ((self.updates as f64 * SAMPLE_GROWTH) as u64).max(self.updates + 16);
    }

    /// Bytes serialized so far to estimate the size (for tests of its cost).
    pub fn sampled_bytes(&self) -> u64 {
        self.sampled_bytes
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Estimated bytes held: the table's slots (with its spare capacity and
    /// control bytes) plus the entries' heap parts.
    pub fn estimated_bytes(&self) -> u64 {
        let slot = size_of::<(K, Option<C>)>() as u64 + 1;
        self.map.capacity() as u64 * slot + (self.map.len() as f64 * self.entry_bytes) as u64
    }

    /// Empties the buffer, handing out its combiners.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, C)> + use<K, C> {
        let map = std::mem::take(&mut self.map);
        map.into_iter().map(|(k, c)| (k.0, c.expect("combiner present")))
    }
}

/// Reduce-side combining that spills sorted runs when the map passes the budget.
pub struct ExternalCombiner<K, V, C, A> {
    buffer: CombineBuffer<K, C>,
    agg: Arc<A>,
    config: SpillConfig,
    reservation: MemoryReservation,
    runs: Vec<Arc<SpillFile>>,
    stats: SpillStats,
    _v: PhantomData<fn(V)>,
}

/// The budget is checked this often.
const CHECK_EVERY: u64 = 1024;

impl<K: Key, V: Data, C: Data, A: Aggregator<V, C>> ExternalCombiner<K, V, C, A> {
    pub fn new(agg: Arc<A>, config: SpillConfig) -> Self {
        Self {
            buffer: CombineBuffer::default(),
            agg,
            reservation: config.memory.reservation(),
            config,
            runs: Vec::new(),
            stats: SpillStats::default(),
            _v: PhantomData,
        }
    }

    pub fn insert_value(&mut self, k: K, v: V) -> Result<()> {
        self.buffer.insert_value(&*self.agg, k, v);
        self.maybe_spill()
    }

    pub fn insert_combiner(&mut self, k: K, c: C) -> Result<()> {
        self.buffer.insert_combiner::<V, A>(&*self.agg, k, c);
        self.maybe_spill()
    }

    #[inline]
    fn maybe_spill(&mut self) -> Result<()> {
        if self.buffer.updates.is_multiple_of(CHECK_EVERY)
            && !self.reservation.try_grow_to(self.buffer.estimated_bytes())
        {
            self.spill()?;
        }
        Ok(())
    }

    fn sorted_entries(&mut self) -> Vec<(u64, K, C)> {
        let mut entries: Vec<(u64, K, C)> = self.buffer.drain().map(|(k, c)| (key_hash(&k), k, c)).collect();
        entries.sort_unstable_by_key(|e| e.0);
        entries
    }

    fn spill(&mut self) -> Result<()> {
        let entries = self.sorted_entries();
        let mut w = SpillWriter::create(&self.config.dir, self.config.compress)?;
        for e in &entries {
            w.write(e)?;
        }
        drop(entries);
        let run = w.finish()?;
        self.stats.spills += 1;
        self.stats.bytes += run.bytes();
        self.runs.push(run);
        self.reservation.release();
        Ok(())
    }

    /// Combines what `fill` inserts within the task `ctx`: spilling under
    /// the task's execution memory to its spill dirs, with the spill counted in the
    /// task's metrics. Returns every key with its final combiner.
    pub fn in_task(
        agg: Arc<A>,
        ctx: &TaskContext,
        fill: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<BoxIter<(K, C)>> {
        let mut combiner = Self::new(agg, ctx.spill_config());
        fill(&mut combiner)?;
        let (out, spilled) = combiner.finish()?;
        ctx.metrics().add_spill(spilled);
        Ok(out)
    }

    /// Every key with its final combiner (in no particular order).
    pub fn finish(mut self) -> Result<(BoxIter<(K, C)>, SpillStats)> {
        if self.runs.is_empty() {
            // The combiners stay reserved until the caller is done with them.
            let held = self.reservation;
            return Ok((Box::new(self.buffer.drain().inspect(move |_| _ = &held)), self.stats));
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut sources: Vec<BoxIter<(u64, K, C)>> = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            sources.push(Box::new(run.read::<(u64, K, C)>()?));
        }
        let merged = merge(sources, |a: &(u64, K, C), b: &(u64, K, C)| a.0.cmp(&b.0)).peekable();
        Ok((Box::new(CombineEqualHashes { merged, agg: self.agg, pending: Vec::new(), _v: PhantomData }), self.stats))
    }
}

/// Walks a hash-ordered stream, merging the combiners of equal keys. Entries of
/// one hash are adjacent; distinct keys sharing a hash are kept apart by `Key::key_eq`.
struct CombineEqualHashes<K, V, C, A, I: Iterator> {
    merged: std::iter::Peekable<I>,
    agg: Arc<A>,
    pending: Vec<(K, C)>,
    _v: PhantomData<fn(V)>,
}

impl<K: Key, V, C, A: Aggregator<V, C>, I: Iterator<Item = (u64, K, C)>> Iterator
    for CombineEqualHashes<K, V, C, A, I>
{
    type Item = (K, C);
    fn next(&mut self) -> Option<(K, C)> {
        if let Some(done) = self.pending.pop() {
            return Some(done);
        }
        let (hash, k, c) = self.merged.next()?;
        let mut group: Vec<(K, Option<C>)> = vec![(k, Some(c))];
        while let Some((h, _, _)) = self.merged.peek() {
            if *h != hash {
                break;
            }
            let (_, k, c) = self.merged.next().expect("peeked");
            match group.iter_mut().find(|(g, _)| g.key_eq(&k)) {
                Some((_, slot)) => fold_combiner::<V, C, A>(&*self.agg, slot, c),
                None => group.push((k, Some(c))),
            }
        }
        self.pending = group.into_iter().map(|(k, c)| (k, c.expect("combiner present"))).collect();
        self.pending.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    #[derive(Serialize, Deserialize)]
    struct Sum;
    impl Aggregator<u64, u64> for Sum {
        fn create_combiner(&self, v: u64) -> u64 {
            v
        }
        fn merge_value(&self, c: u64, v: u64) -> u64 {
            c + v
        }
        fn merge_combiners(&self, a: u64, b: u64) -> u64 {
            a + b
        }
    }

    /// A key whose hash is the same for many values: collisions must stay apart.
    #[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
    struct Colliding(u64);
    impl Key for Colliding {
        fn key_hash<H: std::hash::Hasher>(&self, h: &mut H) {
            (self.0 % 7).key_hash(h)
        }
        fn key_eq(&self, other: &Self) -> bool {
            self == other
        }
    }

    #[test]
    fn combines_beyond_its_budget_through_sorted_runs() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpillConfig {
            memory: crate::memory::TaskMemory::fixed(64 << 10),
            dir: dir.path().to_path_buf(),
            compress: true,
        };
        let mut comb = ExternalCombiner::<u64, u64, u64, Sum>::new(Arc::new(Sum), config.clone());
        let mut expected: HashMap<u64, u64> = HashMap::new();
        for i in 0..300_000u64 {
            let k = i.wrapping_mul(2_654_435_761) % 50_000;
            comb.insert_value(k, i).unwrap();
            *expected.entry(k).or_default() += i;
        }
        let (out, stats) = comb.finish().unwrap();
        assert!(stats.spills >= 3, "{stats:?}");
        let got: HashMap<u64, u64> = out.collect();
        assert_eq!(got, expected);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut comb = ExternalCombiner::<Colliding, u64, u64, Sum>::new(Arc::new(Sum), config);
        let mut expected: HashMap<u64, u64> = HashMap::new();
        for i in 0..100_000u64 {
            comb.insert_combiner(Colliding(i % 5_000), 1).unwrap();
            *expected.entry(i % 5_000).or_default() += 1;
        }
        let (out, stats) = comb.finish().unwrap();
        assert!(stats.spills >= 1, "{stats:?}");
        let got: HashMap<u64, u64> = out.map(|(k, c)| (k.0, c)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_estimate_grows_with_the_combiners() {
        let mut buf = CombineBuffer::<u64, Vec<u64>>::default();
        #[derive(Serialize, Deserialize)]
        struct Push;
        impl Aggregator<u64, Vec<u64>> for Push {
            fn create_combiner(&self, v: u64) -> Vec<u64> {
                vec![v]
            }
            fn merge_value(&self, mut c: Vec<u64>, v: u64) -> Vec<u64> {
                c.push(v);
                c
            }
            fn merge_combiners(&self, mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
                a.extend(b);
                a
            }
        }
        for i in 0..100_000u64 {
            buf.insert_value(&Push, i % 10, u64::MAX - i);
        }
        // 100,000 values of 10 bytes each (postcard varint of large numbers).
        let est = buf.estimated_bytes();
        assert!(est > 500_000, "{est}");
        // Ten growing lists are sampled at geometric intervals: the samples
        // cost a small multiple of the final size, not its square.
        assert!(buf.sampled_bytes() < 20 * 1_000_000, "{}", buf.sampled_bytes());
        assert_eq!(buf.drain().map(|(_, c)| c.len()).sum::<usize>(), 100_000);

        // One hot key (a join or cogroup on a skewed key): its list is the
        // whole buffer, and sampling it stays linear in its size.
        let mut hot = CombineBuffer::<u64, Vec<u64>>::default();
        for i in 0..1_000_000u64 {
            hot.insert_value(&Push, 7, u64::MAX - i);
        }
        let final_bytes = 10 * 1_000_000;
        assert!(hot.sampled_bytes() < 20 * final_bytes, "{} sampled for {final_bytes}", hot.sampled_bytes());
        assert!(hot.estimated_bytes() > final_bytes * 8 / 10, "{}", hot.estimated_bytes());
    }
}
