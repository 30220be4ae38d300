//! Clocks the batch timer runs on: the system clock, or a manual clock that a
//! test advances batch by batch (Spark's `spark.streaming.clock` set to its
//! `ManualClock`), so no test sleeps to wait for a batch.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time for the batch timer.
pub trait Clock: Send + Sync {
    /// Milliseconds now.
    fn now_ms(&self) -> u64;
    /// Blocks until the clock reads at least `target_ms`, or until
    /// [`Clock::interrupt`] is called; returns the time then.
    fn wait_until(&self, target_ms: u64) -> u64;
    /// Wakes every `wait_until` (the timer is stopping).
    fn interrupt(&self);
}

#[derive(Default)]
struct Waiters {
    /// Bumped by every interrupt: a waiter that sees it change returns.
    interrupts: u64,
}

/// Wall-clock time (milliseconds since the Unix epoch).
#[derive(Default)]
pub struct SystemClock {
    waiters: Mutex<Waiters>,
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

    fn wait_until(&self, target_ms: u64) -> u64 {
        let mut w = self.waiters.lock();
        let seen = w.interrupts;
        loop {
            let now = self.now_ms();
            if now >= target_ms || w.interrupts != seen {
                return now;
            }
            self.wake.wait_for(&mut w, Duration::from_millis(target_ms - now));
        }
    }

    fn interrupt(&self) {
        self.waiters.lock().interrupts += 1;
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
    state: Mutex<(u64, Waiters)>,
    changed: Condvar,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        let clock = Self::default();
        clock.inner.state.lock().0 = start_ms;
        clock
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance(&self, ms: u64) {
        self.inner.state.lock().0 += ms;
        self.inner.changed.notify_all();
    }

    /// Sets the clock to `ms` (never backwards: an earlier time is ignored).
    pub fn set(&self, ms: u64) {
        let mut s = self.inner.state.lock();
        s.0 = s.0.max(ms);
        drop(s);
        self.inner.changed.notify_all();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.inner.state.lock().0
    }

    fn wait_until(&self, target_ms: u64) -> u64 {
        let mut s = self.inner.state.lock();
        let seen = s.1.interrupts;
        while s.0 < target_ms && s.1.interrupts == seen {
            self.inner.changed.wait(&mut s);
        }
        s.0
    }

    fn interrupt(&self) {
        self.inner.state.lock().1.interrupts += 1;
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
            std::thread::spawn(move || clock.wait_until(1000))
        };
        clock.advance(400);
        clock.advance(700);
        assert_eq!(waiter.join().unwrap(), 1100);
    }

    #[test]
    fn an_interrupt_releases_a_waiter_early() {
        let clock = ManualClock::new(5);
        let waiter = {
            let clock = clock.clone();
            std::thread::spawn(move || clock.wait_until(u64::MAX))
        };
        // The waiter may not have started waiting yet: interrupt until it returns.
        while !waiter.is_finished() {
            clock.interrupt();
            std::thread::yield_now();
        }
        assert_eq!(waiter.join().unwrap(), 5);
    }

    #[test]
    fn system_clock_returns_at_its_target() {
        let clock = SystemClock::new();
        let target = clock.now_ms() + 20;
        assert!(clock.wait_until(target) >= target);
    }
}
