//! Bad input gets a clear error and loses nothing: panicking closures, missing
//! paths, empty RDDs, tasks that keep failing, tasks that fail then recover.

use ember::EmberError;
use ember::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn a_panicking_closure_fails_its_job_with_stage_partition_and_message() {
    let sc = EmberContext::new(Conf::new().master("local[2]")).unwrap();
    let err = sc
        .parallelize((0..12u32).collect(), 4)
        .map(Fn!(|x: u32| if x == 7 { panic!("bad record {x}") } else { x }))
        .collect()
        .unwrap_err();
    let msg = err.to_string();
    // 12 elements over 4 slices: 7 is in partition 2.
    assert!(msg.contains("partition 2"), "{msg}");
    assert!(msg.contains("stage "), "{msg}");
    assert!(msg.contains("bad record 7"), "{msg}");
    assert!(matches!(err, EmberError::JobAborted { .. }), "{err:?}");

    // The context stays usable.
    assert_eq!(sc.parallelize((0..12u32).collect(), 4).count().unwrap(), 12);

    // A panic in the map stage of a shuffle names that stage.
    let err = sc
        .parallelize((0..10u32).collect(), 5)
        .map(Fn!(|x: u32| {
            assert!(x != 3, "no threes please");
            (x % 2, x)
        }))
        .reduce_by_key(Fn!(|a: u32, b: u32| a + b))
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("partition 1"), "{err}");
    assert!(err.contains("stage "), "{err}");
    assert!(err.contains("no threes please"), "{err}");

    // A panic in the reduce function, on the reduce side.
    let err = sc
        .parallelize((0..10u32).collect(), 3)
        .map(Fn!(|x: u32| (0u8, x)))
        .reduce_by_key_with(Fn!(|a: u32, b: u32| if a + b > 40 { panic!("overflowed 40") } else { a + b }), 1)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("overflowed 40"), "{err}");
    assert!(err.contains("partition 0"), "{err}");

    // Still usable, shuffles included.
    let mut sums = sc
        .parallelize((0..10u32).collect(), 3)
        .map(Fn!(|x: u32| (x % 2, x)))
        .reduce_by_key(Fn!(|a: u32, b: u32| a + b))
        .collect()
        .unwrap();
    sums.sort();
    assert_eq!(sums, vec![(0, 20), (1, 25)]);
}

#[test]
fn missing_input_paths_are_errors_before_any_task_runs() {
    let sc = EmberContext::local(2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-such-file.txt");
    let subdir = dir.path().join("no-such-dir");
    let glob = format!("{}/*.nothing", dir.path().display());
    let nested_glob = format!("{}/*.txt", subdir.display());
    for path in [file.display().to_string(), subdir.display().to_string(), glob.clone(), nested_glob] {
        let err = sc.text_file(&path, 2).unwrap_err();
        assert!(matches!(err, EmberError::InputPath { .. }), "{err:?}");
        assert!(err.to_string().contains(&path), "{path}: {err}");
    }
    let err = sc.text_file(&glob, 2).unwrap_err().to_string();
    assert!(err.contains("matches no files"), "{err}");
    // One missing entry of a list fails the whole list, naming that entry.
    let present = dir.path().join("present.txt");
    std::fs::write(&present, "x\n").unwrap();
    let list = format!("{},{}", present.display(), file.display());
    let err = sc.text_file(&list, 2).unwrap_err().to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(sc.text_file(present.to_str().unwrap(), 2).unwrap().collect().unwrap(), vec!["x".to_string()]);
}

#[test]
fn first_and_reduce_of_an_empty_rdd_are_clear_errors() {
    let sc = EmberContext::local(2).unwrap();
    for rdd in [
        sc.empty_rdd::<u32>(),
        sc.parallelize(Vec::<u32>::new(), 3),
        sc.parallelize(vec![1u32, 2, 3], 2).filter(Fn!(|x: &u32| *x > 10)),
    ] {
        let err = rdd.first().unwrap_err().to_string();
        assert!(err.contains("first()") && err.contains("empty"), "{err}");
        let err = rdd.reduce(Fn!(|a: u32, b: u32| a + b)).unwrap_err().to_string();
        assert!(err.contains("reduce()") && err.contains("empty"), "{err}");
        assert_eq!(rdd.fold(0, Fn!(|a: u32, b: u32| a + b)).unwrap(), 0);
    }
}

static ALWAYS_FAILING_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
static FLAKY_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_failing_task_is_tried_max_failures_times_and_reports_the_last_error() {
    for max in [1usize, 3, 4] {
        let sc =
            EmberContext::new(Conf::new().master("local[2]").set("spark.task.maxFailures", max.to_string())).unwrap();
        ALWAYS_FAILING_ATTEMPTS.store(0, Ordering::SeqCst);
        let err = sc
            .parallelize((0..8u32).collect(), 4)
            .map(Fn!(|x: u32| {
                if x == 5 {
                    let n = ALWAYS_FAILING_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
                    panic!("attempt #{n} failed");
                }
                x
            }))
            .count()
            .unwrap_err()
            .to_string();
        assert_eq!(ALWAYS_FAILING_ATTEMPTS.load(Ordering::SeqCst), max);
        assert!(err.contains(&format!("failed {max} times")), "{err}");
        assert!(err.contains(&format!("attempt #{} failed", max - 1)), "the most recent error: {err}");
        assert!(err.contains("partition 2"), "{err}");
    }

    // Default: 4 attempts; a task that fails twice then succeeds gives the right
    // answer, and the failed attempts' accumulator updates are not merged.
    let sc = EmberContext::local(2).unwrap();
    FLAKY_ATTEMPTS.store(0, Ordering::SeqCst);
    let seen = sc.accumulator(0u64);
    let s2 = seen.clone();
    let sum = sc
        .parallelize((0..100u64).collect(), 4)
        .map(Fn!(move |x: u64| {
            s2.add(1);
            if x == 60 && FLAKY_ATTEMPTS.fetch_add(1, Ordering::SeqCst) < 2 {
                panic!("transient");
            }
            x
        }))
        .fold(0, Fn!(|a: u64, b: u64| a + b))
        .unwrap();
    assert_eq!(sum, 4950);
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 3);
    assert_eq!(seen.value(), 100, "failed attempts must not count");
}

/// What partition 1 of the job below has done: (began, ended).
static STEPS: std::sync::Mutex<(bool, bool)> = std::sync::Mutex::new((false, false));
static STEPPED: std::sync::Condvar = std::sync::Condvar::new();

fn step(f: impl FnOnce(&mut (bool, bool))) {
    f(&mut STEPS.lock().unwrap());
    STEPPED.notify_all();
}

/// Waits (at most 60 s) until `done` holds of the steps; false when it never did.
fn await_step(done: impl Fn(&(bool, bool)) -> bool) -> bool {
    let steps = STEPS.lock().unwrap();
    let (_steps, waited) = STEPPED.wait_timeout_while(steps, std::time::Duration::from_secs(60), |s| !done(s)).unwrap();
    !waited.timed_out()
}

/// Marks partition 1's task ended when its records are dropped (at its end, killed or not).
struct EndsOnDrop;

impl Drop for EndsOnDrop {
    fn drop(&mut self) {
        step(|s| s.1 = true);
    }
}

#[test]
fn a_failed_job_kills_its_running_task_in_the_middle_of_a_chain_of_narrow_operations() {
    let sc = EmberContext::new(Conf::new().master("local[2]").set("spark.task.maxFailures", "1")).unwrap();
    // Partition 1 holds 2^40 numbers: days of work unless the kill stops it. Its
    // records pass a map, a filter and a map_partitions, none of which looks at
    // the kill flag: the check at the source must stop it.
    let err = sc
        .range(0, 1 << 41, 1, 2)
        .unwrap()
        .map(Fn!(|x: i64| x.wrapping_mul(3)))
        .filter(Fn!(|x: &i64| x % 7 != 0))
        .map_partitions_with_index(Fn!(|index: usize, records: ember::BoxIter<i64>| -> ember::BoxIter<i64> {
            if index == 0 {
                assert!(crate::await_step(|s| s.0), "partition 1 never began");
                panic!("partition 0 fails");
            }
            crate::step(|s| s.0 = true);
            let ends = crate::EndsOnDrop;
            Box::new(records.inspect(move |_| {
                let _ = &ends;
            }))
        }))
        .count()
        .unwrap_err();
    assert!(err.to_string().contains("partition 0 fails"), "{err}");
    let stopped = await_step(|s| s.1);
    if !stopped {
        // Stopping the context would wait for that task: fail now instead.
        std::mem::forget(sc);
    }
    assert!(stopped, "partition 1's task ran on after its job failed");
}
