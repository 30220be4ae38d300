//! Jobs running at once over the same shuffle (a streaming batch and the state
//! checkpoint of the batch before it do this): each finishes whichever job's map
//! attempts register the shuffle's outputs.

use ember::BoxIter;
use ember::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Map attempts of the shared shuffle started so far.
static MAP_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
/// Set once the first job has its answer.
static FIRST_JOB_DONE: AtomicBool = AtomicBool::new(false);

/// Bound on every wait here: a hang fails the test instead of blocking CI.
const WAIT: Duration = Duration::from_secs(30);

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}

#[test]
fn a_job_whose_shuffle_another_job_finished_first_still_completes() {
    let sc = EmberContext::new(Conf::new().master("local[2]")).unwrap();
    // One map partition. The first job's attempt waits until the second job has
    // launched its own attempt of it, so both run; the second job's attempt ends
    // only after the first job finished, so its output is a duplicate that
    // registers nothing, and the stage became available without it.
    let summed = sc
        .parallelize((0..100u64).map(|i| (i % 10, i)).collect(), 1)
        .map_partitions(Fn!(|it: BoxIter<(u64, u64)>| {
            let n = MAP_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let ready = || match n {
                0 => MAP_ATTEMPTS.load(Ordering::SeqCst) >= 2,
                _ => FIRST_JOB_DONE.load(Ordering::SeqCst),
            };
            while !ready() && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
            it
        }))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b));

    let (tx, rx) = mpsc::channel();
    let first = {
        let (summed, tx) = (summed.clone(), tx.clone());
        std::thread::spawn(move || {
            let n = summed.count();
            FIRST_JOB_DONE.store(true, Ordering::SeqCst);
            tx.send(("first", n.map_err(|e| e.to_string()))).unwrap();
        })
    };
    // The second job starts once the first job's map attempt is running.
    wait_until("the first job's map attempt runs", || MAP_ATTEMPTS.load(Ordering::SeqCst) >= 1);
    let second = std::thread::spawn(move || {
        let n = summed.count();
        tx.send(("second", n.map_err(|e| e.to_string()))).unwrap();
    });
    let mut finished = Vec::new();
    for _ in 0..2 {
        let (job, n) = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("a job hung; finished: {finished:?}"));
        assert_eq!(n, Ok(10), "{job} job");
        finished.push(job);
    }
    assert_eq!(finished, ["first", "second"]);
    assert_eq!(MAP_ATTEMPTS.load(Ordering::SeqCst), 2, "each job ran its own attempt of the map partition");
    first.join().unwrap();
    second.join().unwrap();
}

/// Set by the test once an ordinary job finished beside the long-running task.
static ORDINARY_JOB_DONE: AtomicBool = AtomicBool::new(false);
/// Set by the long-running task when it starts.
static LONG_TASK_RUNNING: AtomicBool = AtomicBool::new(false);

/// A task of a job submitted under `ember.job.longRunning=true` (how streaming
/// receivers run) holds no task slot: on `local[1]`, an ordinary job runs and
/// finishes while it is still running; without the property, the single slot
/// would be held until it ended.
#[test]
fn a_long_running_task_holds_no_task_slot() {
    let sc = EmberContext::new(Conf::new().master("local[1]")).unwrap();
    let long = {
        let sc = sc.clone();
        std::thread::spawn(move || {
            sc.set_local_property("ember.job.longRunning", Some("true")).unwrap();
            sc.parallelize(vec![1u64], 1)
                .map(Fn!(|x: u64| {
                    LONG_TASK_RUNNING.store(true, Ordering::SeqCst);
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                    while !ORDINARY_JOB_DONE.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                        std::thread::yield_now();
                    }
                    // Whether the ordinary job got through first is the result.
                    x + ORDINARY_JOB_DONE.load(Ordering::SeqCst) as u64
                }))
                .collect()
        })
    };
    wait_until("the long-running task runs", || LONG_TASK_RUNNING.load(Ordering::SeqCst));
    assert_eq!(sc.local_property("ember.job.longRunning"), None, "the property is the other thread's");
    assert_eq!(sc.parallelize((0..100u64).collect(), 4).count().unwrap(), 100);
    ORDINARY_JOB_DONE.store(true, Ordering::SeqCst);
    assert_eq!(long.join().unwrap().unwrap(), vec![2], "the ordinary job finished while the long task ran");
}
