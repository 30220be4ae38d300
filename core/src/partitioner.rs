//! Which reduce partition a key goes to.

use crate::data::{Data, Key, Ordered};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::hash::{Hash, Hasher};

pub trait Partitioner<K>: Serialize + DeserializeOwned + Send + Sync + 'static {
    fn num_partitions(&self) -> usize;
    fn partition(&self, key: &K) -> usize;
}

/// Partitions by a hash of the key that is the same in every process (no random
/// seed), so map tasks on different executors agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashPartitioner {
    pub partitions: usize,
}

impl HashPartitioner {
    pub fn new(partitions: usize) -> Self {
        Self { partitions: partitions.max(1) }
    }
}

/// A stable 64-bit hash of a key ([`Key::key_hash`]): FxHash, then a
/// finalizer so low bits mix well.
pub fn stable_hash<K: Key>(key: &K) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    key.key_hash(&mut h);
    finalize(h.finish())
}

/// [`stable_hash`] of a value with a standard `Hash` (not a key type).
pub fn stable_std_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    value.hash(&mut h);
    finalize(h.finish())
}

/// A 64-bit mixer (MurmurHash3's `fmix64`).
fn finalize(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl<K: Key> Partitioner<K> for HashPartitioner {
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn partition(&self, key: &K) -> usize {
        (stable_hash(key) % self.partitions as u64) as usize
    }
}

/// Partitions ordered keys into ranges by sampled bounds (used by sortByKey):
/// partition i holds keys in (bounds[i-1], bounds[i]].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "K: Data")]
pub struct RangePartitioner<K> {
    pub bounds: Vec<K>,
    pub ascending: bool,
}

impl<K: Ordered> RangePartitioner<K> {
    /// Bounds from an unweighted sample of keys (every key weighs 1).
    pub fn from_sample(sample: Vec<K>, partitions: usize, ascending: bool) -> Self {
        Self::from_weighted_sample(sample.into_iter().map(|k| (k, 1.0)).collect(), partitions, ascending)
    }

    /// Bounds from sampled keys, each weighing the number of keys it stands for
    /// (its partition's size over that partition's sample size), as Spark's
    /// `RangePartitioner.determineBounds` picks them: walking the sorted sample,
    /// a key becomes the next bound once the weight so far reaches the next
    /// multiple of total / `partitions`, and only if it is greater than the
    /// previous bound. A key sampled many times thus weighs many times (a skewed
    /// key gets a range of its own), and there may be fewer than
    /// `partitions - 1` bounds when the keys have fewer distinct values.
    pub fn from_weighted_sample(mut sample: Vec<(K, f64)>, partitions: usize, ascending: bool) -> Self {
        sample.sort_by(|a, b| a.0.compare(&b.0));
        let partitions = partitions.max(1);
        let step = sample.iter().map(|(_, w)| w).sum::<f64>() / partitions as f64;
        let mut bounds: Vec<K> = Vec::new();
        let (mut cumulative, mut target) = (0.0, step);
        for (key, weight) in sample {
            if bounds.len() + 1 >= partitions {
                break;
            }
            cumulative += weight;
            if cumulative >= target && bounds.last().is_none_or(|previous| key.compare(previous).is_gt()) {
                bounds.push(key);
                target += step;
            }
        }
        Self { bounds, ascending }
    }
}

impl<K: Ordered> Partitioner<K> for RangePartitioner<K> {
    fn num_partitions(&self) -> usize {
        self.bounds.len() + 1
    }
    fn partition(&self, key: &K) -> usize {
        let p = self.bounds.partition_point(|b| b.compare(key).is_lt());
        if self.ascending { p } else { self.bounds.len() - p }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_partitions_are_stable_and_in_range() {
        let p = HashPartitioner::new(7);
        for k in 0..1000u64 {
            let a = Partitioner::<u64>::partition(&p, &k);
            assert!(a < 7);
            assert_eq!(a, Partitioner::<u64>::partition(&p, &k));
        }
        assert_eq!(stable_std_hash("word"), stable_hash(&"word".to_string()));
    }

    #[test]
    fn range_partitions_preserve_order() {
        let rp = RangePartitioner::from_sample((0..100).collect::<Vec<u32>>(), 4, true);
        let parts: Vec<usize> = (0..100u32).map(|k| rp.partition(&k)).collect();
        assert!(parts.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(rp.num_partitions(), 4);
        let desc = RangePartitioner { ascending: false, ..rp };
        let parts: Vec<usize> = (0..100u32).map(|k| desc.partition(&k)).collect();
        assert!(parts.windows(2).all(|w| w[0] >= w[1]));
    }
}
