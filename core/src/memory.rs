//! Execution memory: one accounted pool per executor for the shuffle,
//! aggregation and sort buffers of all its running tasks (Spark's
//! `UnifiedMemoryManager` execution side and `ExecutionMemoryPool`).
//!
//! The pool is `spark.executor.memory × spark.memory.fraction` bytes. A buffer
//! holds a [`MemoryReservation`] and asks it for more as it grows; when the
//! pool refuses, the buffer spills to disk and gives its memory back. With N
//! tasks asking, each may hold up to 1/N of the pool, and a task is not
//! refused below 1/2N: it waits until others release memory (spill or finish)
//! instead, as in Spark, so a task that started late is not starved by one
//! that filled the pool while it ran alone.

use crate::config::Conf;
use crate::error::{EmberError, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a task below its 1/2N share waits for others to release memory
/// before it takes what is free and spills (bounded: no task waits forever).
const MIN_SHARE_WAIT: Duration = Duration::from_secs(10);

/// A buffer smaller than this never spills, refused or not (Spark's
/// `spark.shuffle.spill.initialMemoryThreshold`): spilling a few records at a
/// time would make a file per record. A pool smaller than 32 times this
/// (tests, tiny executors) uses 1/32 of its size instead.
const SPILL_FLOOR: u64 = 5 << 20;

/// `spark.memory.fraction` (default 0.6): the share of executor memory that is
/// execution memory. Checked by the driver before it starts executors, so a
/// bad value fails the application at once rather than every executor.
///
/// Errors: `Config` when it is not a number in (0, 1].
pub fn memory_fraction(conf: &Conf) -> Result<f64> {
    let fraction = conf.get_f64("spark.memory.fraction", 0.6)?;
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(EmberError::Config(format!("spark.memory.fraction must be in (0, 1], got {fraction}")));
    }
    Ok(fraction)
}

/// An executor's execution memory, shared by its running tasks.
#[derive(Debug)]
pub struct ExecutionMemory {
    size: u64,
    /// Bytes held by each task attempt that holds or asked for memory.
    held: Mutex<HashMap<u64, u64>>,
    released: Condvar,
}

impl ExecutionMemory {
    /// A pool of `size` bytes.
    pub fn new(size: u64) -> Arc<Self> {
        Arc::new(Self { size: size.max(1), held: Mutex::new(HashMap::new()), released: Condvar::new() })
    }

    /// The pool's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes below which a buffer is not made to spill: `SPILL_FLOOR`, or
    /// 1/32 of a small pool.
    pub fn spill_floor(&self) -> u64 {
        SPILL_FLOOR.min(self.size / 32)
    }

    /// Bytes held by all tasks.
    pub fn used(&self) -> u64 {
        self.held.lock().values().sum()
    }

    /// Bytes held by task attempt `task_id`.
    pub fn held_by(&self, task_id: u64) -> u64 {
        self.held.lock().get(&task_id).copied().unwrap_or(0)
    }

    /// Grants task `task_id` up to `want` more bytes and returns how many
    /// (Spark's `ExecutionMemoryPool.acquireMemory`): never past 1/N of the
    /// pool for N tasks holding memory, nor past what is free; a task that
    /// would stay below 1/2N waits (at most `MIN_SHARE_WAIT`) for releases.
    pub fn acquire(&self, task_id: u64, want: u64) -> u64 {
        let deadline = Instant::now() + MIN_SHARE_WAIT;
        let mut held = self.held.lock();
        held.entry(task_id).or_insert(0);
        loop {
            let tasks = held.len() as u64;
            let used: u64 = held.values().sum();
            let mine = held[&task_id];
            let max_share = self.size / tasks;
            let min_share = self.size / (2 * tasks);
            let grant = want.min(max_share.saturating_sub(mine)).min(self.size.saturating_sub(used));
            if grant < want && mine + grant < min_share && Instant::now() < deadline {
                // Others hold the memory this task is owed: wait for a release.
                self.released.wait_until(&mut held, deadline);
                continue;
            }
            *held.get_mut(&task_id).expect("entered above") += grant;
            return grant;
        }
    }

    /// Task `task_id` gives back `bytes`.
    pub fn release(&self, task_id: u64, bytes: u64) {
        let mut held = self.held.lock();
        if let Some(mine) = held.get_mut(&task_id) {
            *mine = mine.saturating_sub(bytes);
        }
        drop(held);
        self.released.notify_all();
    }

    /// Task `task_id` ended: everything it held goes back and it no longer
    /// counts among the tasks sharing the pool.
    pub fn release_task(&self, task_id: u64) {
        self.held.lock().remove(&task_id);
        self.released.notify_all();
    }
}

/// One task attempt's access to its executor's execution memory. Cloned into
/// each of the task's buffers; the task's holding is released when the
/// attempt ends (`TaskMemory::release_all`, from the `TaskContext`).
#[derive(Debug, Clone)]
pub struct TaskMemory {
    pool: Arc<ExecutionMemory>,
    task_id: u64,
    /// Whether any buffer of the task asked the pool for memory (most tasks
    /// never do: ending them then costs no lock).
    asked: Arc<AtomicBool>,
}

impl TaskMemory {
    pub fn new(pool: Arc<ExecutionMemory>, task_id: u64) -> Self {
        Self { pool, task_id, asked: Arc::new(AtomicBool::new(false)) }
    }

    /// The task ended: what it held goes back to the pool.
    pub fn release_all(&self) {
        if self.asked.load(Ordering::Relaxed) {
            self.pool.release_task(self.task_id);
        }
    }

    /// A pool of `bytes` of its own, for one task (tests and tools that run
    /// buffers outside an executor).
    pub fn fixed(bytes: u64) -> Self {
        Self::new(ExecutionMemory::new(bytes), 0)
    }

    /// The pool this task draws from.
    pub fn pool(&self) -> &Arc<ExecutionMemory> {
        &self.pool
    }

    /// A new, empty reservation for one buffer of this task.
    pub fn reservation(&self) -> MemoryReservation {
        MemoryReservation { memory: self.clone(), reserved: 0 }
    }
}

/// Bytes one buffer holds from its task's execution memory (Spark's
/// `MemoryConsumer` with `Spillable`'s doubling requests). Released on drop.
#[derive(Debug)]
pub struct MemoryReservation {
    memory: TaskMemory,
    reserved: u64,
}

impl MemoryReservation {
    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Whether the buffer may hold `bytes`: true at once when they are
    /// reserved already; otherwise it asks the pool for enough to reach twice
    /// `bytes` (so a growing buffer asks rarely) and keeps what it gets. False:
    /// refused, the buffer should spill and then `release`. A buffer below the
    /// pool's `spill_floor` is never refused (it keeps what it was granted).
    pub fn try_grow_to(&mut self, bytes: u64) -> bool {
        if bytes <= self.reserved {
            return true;
        }
        let want = bytes.saturating_mul(2) - self.reserved;
        self.memory.asked.store(true, Ordering::Relaxed);
        self.reserved += self.memory.pool.acquire(self.memory.task_id, want);
        bytes <= self.reserved || bytes <= self.memory.pool.spill_floor()
    }

    /// Gives everything back (after a spill).
    pub fn release(&mut self) {
        if self.reserved > 0 {
            self.memory.pool.release(self.memory.task_id, self.reserved);
            self.reserved = 0;
        }
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_fraction_is_checked() {
        assert_eq!(memory_fraction(&Conf::new()).unwrap(), 0.6);
        for bad in ["0", "2", "-0.5", "abc"] {
            let err = memory_fraction(&Conf::new().set("spark.memory.fraction", bad)).unwrap_err();
            assert!(matches!(err, EmberError::Config(_)), "{bad}: {err}");
            assert!(err.to_string().contains("spark.memory.fraction"), "{err}");
        }
    }

    #[test]
    fn a_lone_task_may_use_the_whole_pool_and_a_buffer_is_refused_past_it() {
        let pool = ExecutionMemory::new(1000);
        let task = TaskMemory::new(pool.clone(), 1);
        let mut a = task.reservation();
        assert!(a.try_grow_to(300));
        assert_eq!(a.reserved(), 600, "asks for twice what it needs");
        let mut b = task.reservation();
        assert!(b.try_grow_to(400));
        assert_eq!(pool.used(), 1000);
        // Nothing left: refused, though it keeps what it was given...
        assert!(!a.try_grow_to(700));
        // ...unless the buffer is still below the spill floor (1/32 of this pool).
        assert_eq!(pool.spill_floor(), 31);
        assert!(task.reservation().try_grow_to(31));
        a.release();
        assert_eq!(pool.used(), 400);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn tasks_share_the_pool_one_nth_each() {
        let pool = ExecutionMemory::new(1000);
        let (t1, t2) = (TaskMemory::new(pool.clone(), 1), TaskMemory::new(pool.clone(), 2));
        let mut r1 = t1.reservation();
        // Alone, task 1 takes all of it.
        assert!(r1.try_grow_to(1000));
        // Task 2 is owed at least 1/4 (1/2N, N = 2): it waits until task 1
        // spills, from another thread here.
        let waiter = std::thread::spawn(move || {
            let mut r2 = t2.reservation();
            let ok = r2.try_grow_to(250);
            (ok, r2.reserved())
        });
        // Released once task 2 is waiting (its entry counts it among the tasks).
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.held.lock().len() < 2 {
            assert!(Instant::now() < deadline, "task 2 never asked");
            std::thread::yield_now();
        }
        r1.release();
        let (ok, got) = waiter.join().unwrap();
        assert!(ok);
        assert_eq!(got, 500, "capped at 1/N of the pool");
        // Task 1 may now grow to its own half only.
        assert!(r1.try_grow_to(250));
        assert!(!r1.try_grow_to(600));
        assert_eq!(pool.held_by(1), 500);
        pool.release_task(2);
        pool.release_task(1);
        assert_eq!(pool.used(), 0);
    }
}
