//! Clocks the batch timer runs on: the system clock, or a manual clock that a
//! test advances batch by batch (Spark's `spark.streaming.clock` set to its
//! `ManualClock`), so no test sleeps to wait for a batch.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time for the batch timer.
pub trait Clock: Send + Sync {
    /// Milliseconds now.
    fn now_ms(&self) -> u64;
    /// Blocks until the clock reads at least `target_ms` or `cancelled` is
    /// set; returns the time then. Whoever sets `cancelled` must call
    /// [`Clock::interrupt`] afterwards: `cancelled` is checked under the
    /// clock's lock, so that wake-up is never lost.
    fn wait_until(&self, target_ms: u64, cancelled: &AtomicBool) -> u64;
    /// Wakes every `wait_until` to look at its `cancelled` flag again.
    fn interrupt(&self);
}

/// Wall-clock time (milliseconds since the Unix epoch).
#[derive(Default)]
pub struct SystemClock {
    lock: Mutex<()>,
    wake: Condvar,
}

impl SystemClock {
    /// The wall clock.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn wait_until(&self, target_ms: u64, cancelled: &AtomicBool) -> u64 {
        let mut guard = self.lock.lock();
        loop {
            let now = self.now_ms();
            if now >= target_ms || cancelled.load(Ordering::SeqCst) {
                return now;
            }
            self.wake.wait_for(&mut guard, Duration::from_millis(target_ms - now));
        }
    }

    fn interrupt(&self) {
        let _guard = self.lock.lock();
        self.wake.notify_all();
    }
}

/// A clock that moves only when told to. Shared by cloning.
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Default)]
struct ManualInner {
    time: Mutex<u64>,
    changed: Condvar,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        let clock = Self::default();
        *clock.inner.time.lock() = start_ms;
        clock
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance(&self, ms: u64) {
        *self.inner.time.lock() += ms;
        self.inner.changed.notify_all();
    }

    /// Sets the clock to `ms` (never backwards: an earlier time is ignored).
    pub fn set(&self, ms: u64) {
        let mut t = self.inner.time.lock();
        *t = (*t).max(ms);
        drop(t);
        self.inner.changed.notify_all();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.inner.time.lock()
    }

    fn wait_until(&self, target_ms: u64, cancelled: &AtomicBool) -> u64 {
        let mut t = self.inner.time.lock();
        while *t < target_ms && !cancelled.load(Ordering::SeqCst) {
            self.inner.changed.wait(&mut t);
        }
        *t
    }

    fn interrupt(&self) {
        let _t = self.inner.time.lock();
        self.inner.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_wakes_a_waiter_when_advanced_past_its_target() {
        let clock = ManualClock::new(0);
        let waiter = {
            let clock = clock.clone();
            std::thread::spawn(move || clock.wait_until(1000, &AtomicBool::new(false)))
        };
        clock.advance(400);
        clock.advance(700);
        assert_eq!(waiter.join().unwrap(), 1100);
    }

    #[test]
    fn a_cancel_releases_a_waiter_whenever_it_comes() {
        // Cancelled before the wait starts, and while it waits: both return.
        let clock = ManualClock::new(5);
        let cancelled = Arc::new(AtomicBool::new(true));
        assert_eq!(clock.wait_until(u64::MAX, &cancelled), 5);
        cancelled.store(false, Ordering::SeqCst);
        let waiter = {
            let (clock, cancelled) = (clock.clone(), cancelled.clone());
            std::thread::spawn(move || clock.wait_until(u64::MAX, &cancelled))
        };
        cancelled.store(true, Ordering::SeqCst);
        clock.interrupt();
        assert_eq!(waiter.join().unwrap(), 5);
    }

    #[test]
    fn system_clock_returns_at_its_target() {
        let clock = SystemClock::new();
        let target = clock.now_ms() + 20;
        assert!(clock.wait_until(target, &AtomicBool::new(false)) >= target);
    }
}
