//! The map-output tracker: where every map output of every shuffle lives.

use ember_core::shuffle::MapStatus;
use parking_lot::RwLock;
use std::collections::HashMap;

#[derive(Default)]
pub struct MapOutputTracker {
    shuffles: RwLock<HashMap<u32, Vec<Option<MapStatus>>>>,
}

impl MapOutputTracker {
    pub fn register_shuffle(&self, shuffle_id: u32, num_maps: usize) {
        self.shuffles.write().entry(shuffle_id).or_insert_with(|| vec![None; num_maps]);
    }

    /// Records a map output; returns false when the partition already had one
    /// (a duplicate from a speculative or retried attempt).
    pub fn register_output(&self, shuffle_id: u32, map_index: usize, status: MapStatus) -> bool {
        let mut shuffles = self.shuffles.write();
        let Some(outputs) = shuffles.get_mut(&shuffle_id) else {
            return false;
        };
        match &outputs[map_index] {
            Some(_) => false,
            None => {
                outputs[map_index] = Some(status);
                true
            }
        }
    }

    pub fn outputs(&self, shuffle_id: u32) -> Option<Vec<Option<MapStatus>>> {
        self.shuffles.read().get(&shuffle_id).cloned()
    }

    pub fn missing(&self, shuffle_id: u32) -> Vec<usize> {
        match self.shuffles.read().get(&shuffle_id) {
            Some(outputs) => outputs.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i).collect(),
            None => Vec::new(),
        }
    }

    pub fn is_complete(&self, shuffle_id: u32) -> bool {
        self.shuffles.read().get(&shuffle_id).is_some_and(|o| o.iter().all(Option::is_some))
    }

    /// Forgets one output (its block could not be fetched).
    pub fn unregister_output(&self, shuffle_id: u32, map_index: usize, executor_id: &str) {
        if let Some(outputs) = self.shuffles.write().get_mut(&shuffle_id)
            && let Some(slot) = outputs.get_mut(map_index)
            && slot.as_ref().is_some_and(|s| executor_id.is_empty() || s.executor_id == executor_id)
        {
            *slot = None;
        }
    }

    /// Forgets every output held by a lost executor.
    pub fn remove_executor(&self, executor_id: &str) -> usize {
        let mut removed = 0;
        for outputs in self.shuffles.write().values_mut() {
            for slot in outputs.iter_mut() {
                if slot.as_ref().is_some_and(|s| s.executor_id == executor_id) {
                    *slot = None;
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Executors holding at least one map output of a shuffle still registered (one
    /// a live RDD may read; unreferenced shuffles are removed by the context's cleaner).
    pub fn executors_with_outputs(&self) -> std::collections::HashSet<String> {
        self.shuffles.read().values().flatten().flatten().map(|s| s.executor_id.clone()).collect()
    }

    pub fn remove_shuffle(&self, shuffle_id: u32) {
        self.shuffles.write().remove(&shuffle_id);
    }

    pub fn shuffle_ids(&self) -> Vec<u32> {
        self.shuffles.read().keys().copied().collect()
    }
}
