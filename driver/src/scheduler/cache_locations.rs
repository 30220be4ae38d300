//! Where cached RDD partitions live: the driver's side of Spark's
//! `BlockManagerMaster` for RDD blocks, fed by the executors' block updates
//! (`ember_core::storage::BLOCK_MANAGER_MASTER`) and by executor loss and
//! `unpersist`. The task scheduler reads it to launch a task where its cached
//! input is (delay scheduling, `spark.locality.wait`), and executors ask it
//! (`ember_core::storage::BLOCK_LOCATIONS`) where to read a cached partition
//! they do not hold instead of computing it again.

use ember_core::rdd::{Dependency, RddBase, StorageLevel};
use ember_core::storage::BlockUpdate;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Executors holding each cached partition, by (RDD id, partition).
#[derive(Default)]
pub struct CacheLocations {
    held: Mutex<HashMap<(u64, usize), BTreeSet<String>>>,
    /// `held.len()`, read without the lock on every task launch.
    entries: AtomicUsize,
}

impl CacheLocations {
    /// Applies an executor's report: both sizes 0 means it no longer holds the block.
    pub fn update(&self, u: &BlockUpdate) {
        let mut held = self.held.lock();
        let key = (u.rdd_id, u.partition);
        if u.memory_size > 0 || u.disk_size > 0 {
            held.entry(key).or_default().insert(u.executor_id.clone());
        } else if let Some(holders) = held.get_mut(&key) {
            holders.remove(&u.executor_id);
            if holders.is_empty() {
                held.remove(&key);
            }
        }
        self.entries.store(held.len(), Ordering::Relaxed);
    }

    /// An executor is gone, and every block it held with it.
    pub fn remove_executor(&self, executor_id: &str) {
        let mut held = self.held.lock();
        held.retain(|_, holders| {
            holders.remove(executor_id);
            !holders.is_empty()
        });
        self.entries.store(held.len(), Ordering::Relaxed);
    }

    /// An RDD was unpersisted.
    pub fn remove_rdd(&self, rdd_id: u64) {
        let mut held = self.held.lock();
        held.retain(|(rdd, _), _| *rdd != rdd_id);
        self.entries.store(held.len(), Ordering::Relaxed);
    }

    /// Every executor holding at least one cached partition.
    pub fn executors(&self) -> HashSet<String> {
        self.held.lock().values().flatten().cloned().collect()
    }

    /// The executors holding partition `split` of RDD `rdd_id`, in id order.
    pub fn holders(&self, rdd_id: u64, split: usize) -> Vec<String> {
        self.held.lock().get(&(rdd_id, split)).map(|h| h.iter().cloned().collect()).unwrap_or_default()
    }

    /// Whether no executor holds any cached partition.
    pub fn is_empty(&self) -> bool {
        self.entries.load(Ordering::Relaxed) == 0
    }

    /// The executors a task computing partition `split` of `rdd` should run on:
    /// the holders of the first cached partition found walking back through
    /// narrow dependencies (Spark's `DAGScheduler.getPreferredLocs`); empty when
    /// none is cached. The walk is iterative: lineage may be thousands deep.
    pub fn preferred_executors(&self, rdd: &Arc<dyn RddBase>, split: usize) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut stack = vec![(rdd.clone(), split)];
        while let Some((r, split)) = stack.pop() {
            if !seen.insert((r.meta().id, split)) {
                continue;
            }
            if r.meta().storage_level() != StorageLevel::None {
                let holders = self.holders(r.meta().id, split);
                if !holders.is_empty() {
                    return holders;
                }
            }
            let deps = r.dependencies();
            // Reversed, so the first parent is looked at first.
            for (i, parent_split) in r.narrow_parent_partitions(split).into_iter().rev() {
                if let Some(Dependency::Narrow(p)) = deps.get(i) {
                    stack.push((p.clone(), parent_split));
                }
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(executor: &str, rdd_id: u64, partition: usize, memory_size: u64) -> BlockUpdate {
        BlockUpdate { executor_id: executor.into(), rdd_id, partition, memory_size, disk_size: 0, deserialized: true }
    }

    #[test]
    fn follows_block_updates_executor_loss_and_unpersist() {
        let c = CacheLocations::default();
        assert!(c.is_empty());
        c.update(&update("2", 7, 0, 100));
        c.update(&update("1", 7, 0, 100));
        c.update(&update("1", 7, 1, 100));
        c.update(&update("1", 8, 0, 100));
        assert_eq!(c.holders(7, 0), ["1", "2"]);
        // Dropped by executor 2 (evicted).
        c.update(&update("2", 7, 0, 0));
        assert_eq!(c.holders(7, 0), ["1"]);
        c.remove_rdd(8);
        assert!(c.holders(8, 0).is_empty());
        c.remove_executor("1");
        assert!(c.holders(7, 0).is_empty() && c.holders(7, 1).is_empty());
        assert!(c.is_empty());
    }
}
