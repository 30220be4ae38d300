//! Sorting more records than fit in memory: records are buffered until their
//! estimated size grows past what the task's execution memory grants, then sorted and written as a run
//! to a spill file; at the end the runs are merged k ways (a binary heap of
//! run heads), so memory holds one frame per run.

use super::spill::{SizeEstimate, SpillFile, SpillWriter};
use crate::data::BoxIter;
use crate::error::Result;
use crate::memory::{MemoryReservation, TaskMemory};
use serde::{Serialize, de::DeserializeOwned};
use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a task's buffers spill, and the memory they reserve from.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// The task's execution memory: each buffer holds a reservation and spills
    /// when the pool refuses it more.
    pub memory: TaskMemory,
    pub dir: PathBuf,
    pub compress: bool,
}

/// Counts of what one buffer spilled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpillStats {
    pub spills: u64,
    pub bytes: u64,
}

pub struct ExternalSorter<T, F> {
    cmp: F,
    buffer: Vec<T>,
    size: SizeEstimate,
    config: SpillConfig,
    reservation: MemoryReservation,
    runs: Vec<Arc<SpillFile>>,
    stats: SpillStats,
}

/// Records are checked against the budget this often (the estimate is cheap, not free).
const CHECK_EVERY: usize = 256;

impl<T, F> ExternalSorter<T, F>
where
    T: Serialize + DeserializeOwned + 'static,
    F: Fn(&T, &T) -> Ordering + Clone + 'static,
{
    pub fn new(cmp: F, config: SpillConfig) -> Self {
        Self {
            cmp,
            buffer: Vec::new(),
            size: SizeEstimate::new::<T>(),
            reservation: config.memory.reservation(),
            config,
            runs: Vec::new(),
            stats: SpillStats::default(),
        }
    }

    pub fn push(&mut self, record: T) -> Result<()> {
        self.size.observe(&record);
        self.buffer.push(record);
        if self.buffer.len().is_multiple_of(CHECK_EVERY)
            && !self.reservation.try_grow_to(self.size.bytes(self.buffer.capacity()))
        {
            self.spill()?;
        }
        Ok(())
    }

    pub fn extend(&mut self, records: impl IntoIterator<Item = T>) -> Result<()> {
        for r in records {
            self.push(r)?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        let cmp = &self.cmp;
        self.buffer.sort_unstable_by(cmp);
        let mut w = SpillWriter::create(&self.config.dir, self.config.compress)?;
        for r in self.buffer.drain(..) {
            w.write(&r)?;
        }
        let run = w.finish()?;
        self.stats.spills += 1;
        self.stats.bytes += run.bytes();
        self.runs.push(run);
        // Give the memory back: the next run grows its own buffer.
        self.buffer = Vec::new();
        self.reservation.release();
        Ok(())
    }

    /// All records in order. Once anything was spilled, the rest is spilled too,
    /// so the merge holds only the runs' current frames.
    pub fn finish(mut self) -> Result<(BoxIter<T>, SpillStats)> {
        if self.runs.is_empty() {
            let cmp = self.cmp;
            self.buffer.sort_unstable_by(cmp);
            // The records stay reserved until the caller is done with them.
            let held = self.reservation;
            return Ok((Box::new(self.buffer.into_iter().inspect(move |_| _ = &held)), self.stats));
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut sources: Vec<BoxIter<T>> = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            sources.push(Box::new(run.read::<T>()?));
        }
        Ok((Box::new(merge(sources, self.cmp)), self.stats))
    }
}

/// Merges sorted sources into one sorted stream.
pub fn merge<T, F: Fn(&T, &T) -> Ordering>(sources: Vec<BoxIter<T>>, cmp: F) -> Merge<T, F> {
    let mut m = Merge { heads: Vec::with_capacity(sources.len()), sources, heap: Vec::new(), cmp };
    for (i, s) in m.sources.iter_mut().enumerate() {
        m.heads.push(s.next());
        if m.heads[i].is_some() {
            m.heap.push(i);
        }
    }
    for i in (0..m.heap.len() / 2).rev() {
        m.sift_down(i);
    }
    m
}

/// A k-way merge: `heap` orders the indices of sources by their current head.
pub struct Merge<T, F> {
    sources: Vec<BoxIter<T>>,
    heads: Vec<Option<T>>,
    heap: Vec<usize>,
    cmp: F,
}

impl<T, F: Fn(&T, &T) -> Ordering> Merge<T, F> {
    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (self.heads[self.heap[a]].as_ref(), self.heads[self.heap[b]].as_ref());
        (self.cmp)(x.expect("head present"), y.expect("head present")) == Ordering::Less
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < self.heap.len() && self.less(l, smallest) {
                smallest = l;
            }
            if r < self.heap.len() && self.less(r, smallest) {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }
}

impl<T, F: Fn(&T, &T) -> Ordering> Iterator for Merge<T, F> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        let top = *self.heap.first()?;
        let item = self.heads[top].take();
        self.heads[top] = self.sources[top].next();
        if self.heads[top].is_none() {
            let last = self.heap.pop().expect("non-empty");
            if !self.heap.is_empty() {
                self.heap[0] = last;
            }
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, budget: u64) -> SpillConfig {
        SpillConfig { memory: TaskMemory::fixed(budget), dir: dir.to_path_buf(), compress: true }
    }

    #[test]
    fn merge_of_sorted_sources_is_sorted() {
        let sources: Vec<BoxIter<u32>> = vec![
            Box::new(vec![1, 4, 9].into_iter()),
            Box::new(Vec::new().into_iter()),
            Box::new(vec![2, 3, 10, 11].into_iter()),
            Box::new(vec![0, 4].into_iter()),
        ];
        let got: Vec<u32> = merge(sources, |a: &u32, b: &u32| a.cmp(b)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 4, 9, 10, 11]);
    }

    #[test]
    fn sorts_beyond_its_budget_through_spilled_runs() {
        let dir = tempfile::tempdir().unwrap();
        let n = 200_000u64;
        let mut sorter =
            ExternalSorter::new(|a: &(u64, String), b: &(u64, String)| b.0.cmp(&a.0), config(dir.path(), 256 << 10));
        for i in 0..n {
            let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_003;
            sorter.push((k, format!("{k}"))).unwrap();
        }
        let (sorted, stats) = sorter.finish().unwrap();
        assert!(stats.spills > 5, "{stats:?}");
        let got: Vec<(u64, String)> = sorted.collect();
        assert_eq!(got.len() as u64, n);
        assert!(got.windows(2).all(|w| w[0].0 >= w[1].0));
        assert!(got.iter().all(|(k, s)| s == &k.to_string()));
        drop(got);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "runs are deleted once merged");
    }

    #[test]
    fn tasks_sorting_at_once_share_one_accounted_pool() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::memory::ExecutionMemory::new(4 << 20);
        let sort = |task_id: u64| {
            let config = SpillConfig {
                memory: TaskMemory::new(pool.clone(), task_id),
                dir: dir.path().to_path_buf(),
                compress: false,
            };
            let mut sorter = ExternalSorter::new(|a: &u64, b: &u64| a.cmp(b), config);
            sorter.extend((0..200_000u64).rev()).unwrap();
            let (sorted, stats) = sorter.finish().unwrap();
            assert!(sorted.eq(0..200_000));
            (stats, pool.used())
        };
        // Alone, a task's ~3.2 MB of records fit in the 4 MB pool.
        let (alone, _) = sort(1);
        assert_eq!(alone.spills, 0);
        assert_eq!(pool.used(), 0, "released when the records are read");
        // With another task holding half the pool, the same sort spills.
        let other = TaskMemory::new(pool.clone(), 2);
        let mut held = other.reservation();
        assert!(held.try_grow_to(1 << 20));
        let (shared, used) = sort(3);
        assert!(shared.spills > 0, "{shared:?}");
        assert!(used <= pool.size(), "{used} of {}", pool.size());
        drop(held);
        pool.release_task(3);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn within_budget_nothing_is_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = ExternalSorter::new(|a: &u64, b: &u64| a.cmp(b), config(dir.path(), 1 << 30));
        sorter.extend((0..10_000u64).rev()).unwrap();
        let (sorted, stats) = sorter.finish().unwrap();
        assert_eq!(stats, SpillStats::default());
        assert!(sorted.eq(0..10_000));
    }
}
