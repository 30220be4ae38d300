//! The listener bus (Spark's `LiveListenerBus`): the schedulers post typed events,
//! and listeners (status store, event log, metrics, console progress) get them on
//! named queues, each bounded and with its own thread; listeners of one queue are
//! called in the order they were added (Spark's queues: `appStatus` for the
//! store, metrics and progress bar, `eventLog` for the log, so slow disk never
//! holds the UI up). Posting never blocks: when a queue is full the event is
//! dropped for that queue's listeners, counted, and logged (Spark's
//! `spark.scheduler.listenerbus.eventqueue.capacity`, 10000).
//!
//! Cost: a post moves the event into each queue's bounded lock-free channel, and
//! the per-task events own no heap data (executor ids and addresses are inline
//! strings), so posting allocates nothing (docs/BENCHMARKS.md, "The cost of
//! watching a job").

pub mod events;

pub use events::*;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Default capacity of each listener's queue (Spark's default).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// A queue's thread naps between drains, from the shortest nap after work to the
/// longest when idle; posting does not wake it (a wake-up per event would cost
/// the posting task a system call), except when the queue is half full. Flush and
/// stop wake it at once. So listeners see an event within `MAX_NAP`.
const MIN_NAP: Duration = Duration::from_millis(1);
const MAX_NAP: Duration = Duration::from_millis(100);

/// Something that watches the application. Runs on its own thread: it may take
/// its time, but a listener that falls more than its queue behind loses events.
pub trait Listener: Send + 'static {
    /// Names the listener in logs.
    fn name(&self) -> &'static str;
    fn on_event(&mut self, event: &Event);
    /// The queue is empty for now (a good moment to flush buffers).
    fn on_idle(&mut self) {}
    /// The queue is still empty: called at least every `MAX_NAP` (100 ms) while
    /// nothing happens, for work that waits on time rather than on events.
    fn on_quiet(&mut self) {}
    /// The bus is stopping; no event follows.
    fn on_stop(&mut self) {}
}

enum Message {
    Event(Event),
    /// Answered once every earlier message was handled.
    Flush(Sender<()>),
    Stop,
}

struct Queue {
    name: &'static str,
    sender: Sender<Message>,
    capacity: usize,
    dropped: AtomicU64,
    /// The queue's thread, to wake it from its nap.
    waker: std::thread::Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Queue {
    /// Hands `event` to the queue's thread; a full or ended queue drops it (counted,
    /// and logged at the 1st, 2nd, 4th, 8th… drop). Wakes the thread once the queue
    /// is half full.
    fn offer(&self, event: Event) {
        let refused = match self.sender.try_send(Message::Event(event)) {
            Ok(()) => {
                if self.sender.len() >= self.capacity / 2 {
                    self.waker.unpark();
                }
                return;
            }
            Err(TrySendError::Full(message)) => {
                self.waker.unpark();
                message
            }
            // The queue's thread ended.
            Err(TrySendError::Disconnected(message)) => message,
        };
        let Message::Event(event) = refused else { return };
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped.is_power_of_two() {
            tracing::warn!(
                queue = self.name,
                dropped,
                event = event.name(),
                "listener queue full or ended: dropping events (raise spark.scheduler.listenerbus.eventqueue.capacity)"
            );
        }
    }
}

/// Delivers events to listeners; see the module doc. `Default` is a bus with no
/// listener, where posting costs nothing.
#[derive(Default)]
pub struct ListenerBus {
    queues: Vec<Queue>,
    stopped: AtomicBool,
}

/// Builds a bus: add listeners, then `start`.
pub struct ListenerBusBuilder {
    capacity: usize,
    /// Queues in the order first named, with their listeners.
    queues: Vec<(&'static str, Vec<Box<dyn Listener>>)>,
}

impl ListenerBusBuilder {
    /// `capacity`: events each listener's queue holds before it drops.
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), queues: Vec::new() }
    }

    /// Adds `listener` to the queue named `queue` (created on first use).
    pub fn add(&mut self, queue: &'static str, listener: Box<dyn Listener>) -> &mut Self {
        match self.queues.iter_mut().find(|(name, _)| *name == queue) {
            Some((_, listeners)) => listeners.push(listener),
            None => self.queues.push((queue, vec![listener])),
        }
        self
    }

    /// Starts one thread per queue.
    ///
    /// Errors: a thread that cannot be spawned.
    pub fn start(self) -> std::io::Result<ListenerBus> {
        let mut queues = Vec::new();
        for (name, listeners) in self.queues {
            let (sender, receiver) = bounded(self.capacity);
            let thread = std::thread::Builder::new()
                .name(format!("ember-listener-{name}"))
                .spawn(move || run_listeners(listeners, receiver))?;
            queues.push(Queue {
                name,
                sender,
                capacity: self.capacity,
                dropped: AtomicU64::new(0),
                waker: thread.thread().clone(),
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(ListenerBus { queues, stopped: AtomicBool::new(false) })
    }
}

/// The listeners of one queue; one that panics is logged and removed, and the
/// others go on (Spark's bus logs a listener's exception and carries on), so a bug
/// in one listener neither stops the queue nor leaves a flush waiting on it.
struct Listeners(Vec<Box<dyn Listener>>);

impl Listeners {
    fn each(&mut self, what: &'static str, mut call: impl FnMut(&mut dyn Listener)) {
        self.0.retain_mut(|l| {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(l.as_mut())));
            if ran.is_err() {
                tracing::error!(listener = l.name(), call = what, "listener panicked; it is removed from the bus");
            }
            ran.is_ok()
        });
    }
}

fn run_listeners(listeners: Vec<Box<dyn Listener>>, receiver: Receiver<Message>) {
    let mut listeners = Listeners(listeners);
    let mut nap = MIN_NAP;
    // Events were handled since the listeners were last told the queue is empty.
    let mut busy = false;
    loop {
        match receiver.try_recv() {
            Ok(Message::Event(event)) => {
                listeners.each("on_event", |l| l.on_event(&event));
                busy = true;
                nap = MIN_NAP;
            }
            Ok(Message::Flush(done)) => {
                listeners.each("on_idle", |l| l.on_idle());
                busy = false;
                let _ = done.send(());
            }
            Ok(Message::Stop) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                if std::mem::take(&mut busy) {
                    listeners.each("on_idle", |l| l.on_idle());
                }
                listeners.each("on_quiet", |l| l.on_quiet());
                std::thread::park_timeout(nap);
                nap = (nap * 2).min(MAX_NAP);
            }
        }
    }
    listeners.each("on_stop", |l| l.on_stop());
}

impl ListenerBus {
    /// True when at least one listener listens (callers may skip building events otherwise).
    pub fn is_active(&self) -> bool {
        !self.queues.is_empty() && !self.stopped.load(Ordering::Relaxed)
    }

    /// Hands `event` to every listener without waiting; a full queue drops it
    /// for that listener (counted, and logged at the 1st, 2nd, 4th, 8th… drop).
    pub fn post(&self, event: Event) {
        if !self.is_active() {
            return;
        }
        let Some((last, others)) = self.queues.split_last() else { return };
        for q in others {
            q.offer(event.clone());
        }
        last.offer(event);
    }

    /// Events dropped so far, per queue.
    pub fn dropped_events(&self) -> Vec<(&'static str, u64)> {
        self.queues.iter().map(|q| (q.name, q.dropped.load(Ordering::Relaxed))).collect()
    }

    /// Waits (at most `timeout` in all) until every listener has handled what was
    /// posted before this call. False when the time ran out.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut acks = Vec::new();
        for q in &self.queues {
            let (tx, rx) = bounded(1);
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            q.waker.unpark();
            if q.sender.send_timeout(Message::Flush(tx), left).is_err() {
                return false;
            }
            q.waker.unpark();
            acks.push(rx);
        }
        acks.iter().all(|rx| rx.recv_deadline(deadline).is_ok())
    }

    /// Delivers what is queued, then stops every listener thread (waiting at most
    /// `timeout` for each queue to take the stop). Later posts are ignored.
    pub fn stop(&self, timeout: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for q in &self.queues {
            q.waker.unpark();
            let sent = q.sender.send_timeout(Message::Stop, timeout);
            q.waker.unpark();
            if sent.is_err() {
                tracing::warn!(queue = q.name, "listener queue did not take the stop in time; leaving its thread");
                continue;
            }
            if let Some(thread) = q.thread.lock().take() {
                let _ = thread.join();
            }
        }
        for (queue, dropped) in self.dropped_events() {
            if dropped > 0 {
                tracing::warn!(queue, dropped, "listener bus stopped; events were dropped on this queue");
            }
        }
    }
}

impl Drop for ListenerBus {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Recorder(Arc<Mutex<Vec<String>>>, Option<Receiver<()>>);

    impl Listener for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn on_event(&mut self, event: &Event) {
            if let Some(gate) = &self.1 {
                let _ = gate.recv_timeout(Duration::from_secs(10));
            }
            self.0.lock().push(event.name().to_string());
        }
    }

    fn end(t: u64) -> Event {
        Event::ApplicationEnd(ApplicationEnd { time_ms: t })
    }

    #[test]
    fn delivers_in_order_and_flushes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut b = ListenerBusBuilder::new(16);
        b.add("test", Box::new(Recorder(seen.clone(), None)));
        let bus = b.start().expect("bus");
        bus.post(Event::JobEnd(JobEnd { job_id: 1, time_ms: 1, succeeded: true, error: None }));
        bus.post(end(2));
        assert!(bus.flush(Duration::from_secs(10)));
        assert_eq!(*seen.lock(), vec!["SparkListenerJobEnd", "SparkListenerApplicationEnd"]);
        bus.stop(Duration::from_secs(10));
        bus.post(end(3));
        assert_eq!(seen.lock().len(), 2, "posts after stop are ignored");
    }

    #[test]
    fn a_slow_listener_drops_and_counts_but_never_blocks_the_poster() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (gate_tx, gate_rx) = bounded(100);
        let mut b = ListenerBusBuilder::new(2);
        b.add("test", Box::new(Recorder(seen.clone(), Some(gate_rx))));
        let bus = b.start().expect("bus");
        // The listener holds the first event at the gate; the queue takes 2 more.
        let started = std::time::Instant::now();
        for t in 0..10 {
            bus.post(end(t));
        }
        assert!(started.elapsed() < Duration::from_secs(5), "posting must not wait");
        let dropped = bus.dropped_events()[0].1;
        assert!((7..=8).contains(&dropped), "dropped {dropped}");
        for _ in 0..10 {
            gate_tx.send(()).expect("gate");
        }
        assert!(bus.flush(Duration::from_secs(10)));
        assert_eq!(seen.lock().len() as u64 + dropped, 10);
    }

    struct Panics;

    impl Listener for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        fn on_event(&mut self, _: &Event) {
            panic!("a listener's bug");
        }
    }

    #[test]
    fn a_listener_that_panics_is_removed_and_the_others_go_on() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut b = ListenerBusBuilder::new(16);
        b.add("test", Box::new(Panics));
        b.add("test", Box::new(Recorder(seen.clone(), None)));
        let bus = b.start().expect("bus");
        bus.post(end(1));
        bus.post(end(2));
        assert!(bus.flush(Duration::from_secs(10)), "the queue lives on");
        assert_eq!(seen.lock().len(), 2, "the other listener of the queue saw every event");
        assert_eq!(bus.dropped_events()[0].1, 0);
        bus.stop(Duration::from_secs(10));
    }

    #[test]
    fn events_round_trip_through_json_with_spark_names() {
        let e = Event::TaskEnd(TaskEnd {
            task: TaskInfo {
                locality: TaskLocality::ProcessLocal,
                task_id: 7,
                stage_id: 2,
                stage_attempt: 0,
                partition: 3,
                attempt: 1,
                executor_id: "1".into(),
                host: "127.0.0.1:4000".into(),
                launch_time_ms: 10,
                speculative: true,
            },
            finish_time_ms: 20,
            status: TaskStatus::Success,
            error: None,
            metrics: TaskMetrics { duration_ms: 10, run_ms: 8, scheduler_delay_ms: 2, ..Default::default() },
        });
        let line = serde_json::to_string(&e).expect("json");
        assert!(line.starts_with(r#"{"Event":"SparkListenerTaskEnd""#), "{line}");
        assert!(line.contains(r#""status":"SUCCESS""#), "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).expect("parse"), e);
    }
}
