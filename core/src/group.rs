//! The values of one key after `group_by_key`, and how a reducer builds them
//! within its memory budget: records arrive ordered by key hash (from the
//! external sorter), each key's values are gathered in memory and, once they
//! pass the budget, written to a spill file that the group then reads from.
//! So a key with more values than fit in memory can still be grouped and
//! iterated.

use crate::data::{BoxIter, Data, Key};
use crate::error::{Result, raise};
use crate::memory::MemoryReservation;
use crate::shuffle::sorter::SpillConfig;
use crate::shuffle::spill::{SizeEstimate, SpillFile, SpillWriter};
use serde::de::DeserializeOwned;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// All values of one key, in memory or (when they did not fit the task's
/// memory budget) in a local spill file. Iterate it with `iter()` or `for v in group`;
/// it serializes as a list, so collecting or caching it materializes it.
pub struct Group<V> {
    repr: Repr<V>,
}

enum Repr<V> {
    Memory(Vec<V>),
    Spilled { file: Arc<SpillFile>, len: u64 },
}

impl<V: Clone> Clone for Group<V> {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Memory(v) => Repr::Memory(v.clone()),
            Repr::Spilled { file, len } => Repr::Spilled { file: file.clone(), len: *len },
        };
        Self { repr }
    }
}

impl<V> From<Vec<V>> for Group<V> {
    fn from(values: Vec<V>) -> Self {
        Self { repr: Repr::Memory(values) }
    }
}

impl<V: Data> Group<V> {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Memory(v) => v.len(),
            Repr::Spilled { len, .. } => *len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the values live in a spill file rather than in memory.
    pub fn is_spilled(&self) -> bool {
        matches!(self.repr, Repr::Spilled { .. })
    }

    /// The values, in the order they were grouped (read from disk if spilled).
    pub fn iter(&self) -> BoxIter<V> {
        match &self.repr {
            Repr::Memory(v) => Box::new(v.clone().into_iter()),
            Repr::Spilled { file, .. } => match file.read::<V>() {
                Ok(r) => Box::new(r),
                Err(e) => raise(e),
            },
        }
    }

    /// The values as a vector (all in memory).
    pub fn into_vec(self) -> Vec<V> {
        match self.repr {
            Repr::Memory(v) => v,
            Repr::Spilled { .. } => self.iter().collect(),
        }
    }
}

impl<V: Data> IntoIterator for Group<V> {
    type Item = V;
    type IntoIter = BoxIter<V>;
    fn into_iter(self) -> BoxIter<V> {
        match self.repr {
            Repr::Memory(v) => Box::new(v.into_iter()),
            Repr::Spilled { .. } => self.iter(),
        }
    }
}

impl<V: Data + PartialEq> PartialEq for Group<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Data + fmt::Debug> fmt::Debug for Group<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<V: Data> Serialize for Group<V> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for v in self.iter() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

impl<'de, V: DeserializeOwned> Deserialize<'de> for Group<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self { repr: Repr::Memory(Vec::<V>::deserialize(d)?) })
    }
}

/// Gathers one key's values, moving them to a spill file past the budget.
struct GroupBuilder<V> {
    values: Vec<V>,
    size: SizeEstimate,
    spilled: Option<SpillWriter>,
    /// The values' memory, reserved from the task's execution memory.
    reservation: MemoryReservation,
}

impl<V: Data> GroupBuilder<V> {
    fn new(config: &SpillConfig) -> Self {
        Self {
            values: Vec::new(),
            size: SizeEstimate::new::<V>(),
            spilled: None,
            reservation: config.memory.reservation(),
        }
    }

    fn push(&mut self, v: V, config: &SpillConfig) -> Result<()> {
        if let Some(w) = &mut self.spilled {
            return w.write(&v);
        }
        self.size.observe(&v);
        self.values.push(v);
        if self.values.len().is_multiple_of(256)
            && !self.reservation.try_grow_to(self.size.bytes(self.values.capacity()))
        {
            let mut w = SpillWriter::create(&config.dir, config.compress)?;
            for v in self.values.drain(..) {
                w.write(&v)?;
            }
            self.values = Vec::new();
            self.reservation.release();
            self.spilled = Some(w);
        }
        Ok(())
    }

    fn finish(self) -> Result<Group<V>> {
        Ok(match self.spilled {
            None => Group::from(self.values),
            Some(w) => {
                let len = w.records();
                Group { repr: Repr::Spilled { file: w.finish()?, len } }
            }
        })
    }
}

/// Groups a stream of `(hash of key, key, value)` ordered by hash: each key
/// with all its values. Keys that share a hash are told apart by `Key::key_eq`.
pub struct GroupByHash<K, V> {
    input: std::iter::Peekable<BoxIter<(u64, K, V)>>,
    config: SpillConfig,
    ready: Vec<(K, Group<V>)>,
}

impl<K: Key, V: Data> GroupByHash<K, V> {
    pub fn new(input: BoxIter<(u64, K, V)>, config: SpillConfig) -> Self {
        Self { input: input.peekable(), config, ready: Vec::new() }
    }

    fn next_hash(&mut self) -> Result<bool> {
        let Some((hash, k, v)) = self.input.next() else { return Ok(false) };
        let mut keys: Vec<(K, GroupBuilder<V>)> = vec![(k, GroupBuilder::new(&self.config))];
        keys[0].1.push(v, &self.config)?;
        while let Some((h, _, _)) = self.input.peek() {
            if *h != hash {
                break;
            }
            let (_, k, v) = self.input.next().expect("peeked");
            let at = match keys.iter().position(|(g, _)| g.key_eq(&k)) {
                Some(i) => i,
                None => {
                    keys.push((k, GroupBuilder::new(&self.config)));
                    keys.len() - 1
                }
            };
            keys[at].1.push(v, &self.config)?;
        }
        for (k, b) in keys.into_iter().rev() {
            self.ready.push((k, b.finish()?));
        }
        Ok(true)
    }
}

impl<K: Key, V: Data> Iterator for GroupByHash<K, V> {
    type Item = (K, Group<V>);
    fn next(&mut self) -> Option<(K, Group<V>)> {
        if self.ready.is_empty() {
            match self.next_hash() {
                Ok(_) => {}
                Err(e) => raise(e),
            }
        }
        self.ready.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_larger_than_the_budget_is_spilled_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpillConfig {
            memory: crate::memory::TaskMemory::fixed(64 << 10),
            dir: dir.path().to_path_buf(),
            compress: true,
        };
        let mut input: Vec<(u64, u32, String)> = (0..50_000u32).map(|i| (7, 1, format!("value {i}"))).collect();
        input.extend((0..10u32).map(|i| (7, 2, format!("other {i}"))));
        input.push((9, 3, "x".into()));
        let groups: Vec<(u32, Group<String>)> = GroupByHash::new(Box::new(input.into_iter()), config).collect();
        assert_eq!(groups.len(), 3);
        let (k, big) = &groups[0];
        assert_eq!(*k, 1);
        assert!(big.is_spilled());
        assert_eq!(big.len(), 50_000);
        assert!(big.iter().enumerate().all(|(i, v)| v == format!("value {i}")));
        assert_eq!(groups[1].0, 2);
        assert!(!groups[1].1.is_spilled());
        assert_eq!(groups[1].1.len(), 10);
        assert_eq!(groups[2].1.clone().into_vec(), vec!["x".to_string()]);

        // It serializes as a plain list.
        let bytes = postcard::to_allocvec(big).unwrap();
        let back: Group<String> = postcard::from_bytes(&bytes).unwrap();
        assert!(!back.is_spilled());
        assert_eq!(&back, big);
        drop(groups);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
