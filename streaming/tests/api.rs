//! The streaming API's contracts on a manual clock: map_with_state with a
//! timeout, recovery by operation name (and refusal of a changed state type),
//! validation before start, failing batches, outputs written once, file streams.

mod common;

use common::{WAIT, run_batches};
use ember::Rdd;
use ember::prelude::*;
use ember_streaming::prelude::*;
use ember_streaming::{StreamingState, batch_output_path};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn sc() -> EmberContext {
    EmberContext::new(Conf::new().master("local[2]")).unwrap()
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn map_with_state_maps_each_record_and_times_out_idle_keys() {
    let sc = sc();
    let batches = vec![vec![("a".to_string(), 1u64), ("b".into(), 5)], vec![("a".into(), 2)], vec![], vec![]];
    let out = run_batches(&sc, &batches, 1000, |s| {
        let mapped = s.map_with_state(
            StateSpec::function(Fn!(|k: String, v: Option<u64>, state: &mut State<u64>| {
                if state.is_timing_out() {
                    return format!("{k} timed out at {}", state.get().copied().unwrap_or(0));
                }
                let total = state.get().copied().unwrap_or(0) + v.unwrap_or(0);
                state.update(total);
                format!("{k}={total}")
            }))
            .timeout(Duration::from_millis(2000)),
        );
        mapped.union(&mapped.state_snapshots().map(Fn!(|kv: (String, u64)| format!("state {}={}", kv.0, kv.1))))
    })
    .unwrap();
    let got: Vec<Vec<String>> = out
        .into_iter()
        .map(|(_, mut v)| {
            v.sort();
            v
        })
        .collect();
    assert_eq!(got[0], ["a=1", "b=5", "state a=1", "state b=5"]);
    assert_eq!(got[1], ["a=3", "state a=3", "state b=5"]);
    // b was last updated at 1000 ms: idle for 2000 ms at 3000 ms.
    assert_eq!(got[2], ["b timed out at 5", "state a=3"]);
    assert_eq!(got[3], ["a timed out at 3"]);
}

/// A job whose state is named `totals`; `create` builds it on a context at `dir`.
fn totals_job(
    sc: &EmberContext,
    clock: &ManualClock,
    dir: &std::path::Path,
    queue: &RddQueue<(String, u64)>,
) -> ember::Result<StreamingContext> {
    let ssc = StreamingContext::with_manual_clock(sc, SECOND, clock.clone())?;
    ssc.checkpoint(dir)?;
    ssc.set_checkpoint_interval(SECOND);
    ssc.queue_stream(queue.clone(), true, None)
        .update_state_by_key_named(
            "totals",
            Fn!(|new: Vec<u64>, old: Option<u64>| Some(old.unwrap_or(0) + new.iter().sum::<u64>())),
        )
        .foreach_rdd(|_, _| Ok(()));
    Ok(ssc)
}

#[test]
fn get_or_create_restores_state_by_name_and_refuses_a_changed_state_type() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let queue = RddQueue::new();
    queue.push(sc.parallelize(vec![("x".to_string(), 2u64), ("y".into(), 1)], 2));
    queue.push(sc.parallelize(vec![("x".to_string(), 3u64)], 1));
    let ssc = StreamingContext::get_or_create(dir.path(), || totals_job(&sc, &clock, dir.path(), &queue)).unwrap();
    assert!(!ssc.is_recovering());
    ssc.start().unwrap();
    for t in [1000, 2000] {
        clock.advance(1000);
        ssc.await_batch(Time(t), WAIT).unwrap();
    }
    ssc.stop(false, true);

    // The same job again: the state comes back under its name and goes on.
    queue.push(sc.parallelize(vec![("y".to_string(), 10u64)], 1));
    let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let sink = seen.clone();
    let resumed = StreamingContext::get_or_create(dir.path(), || {
        let ssc = StreamingContext::with_manual_clock(&sc, SECOND, clock.clone())?;
        ssc.queue_stream(queue.clone(), true, None)
            .update_state_by_key_named(
                "totals",
                Fn!(|new: Vec<u64>, old: Option<u64>| Some(old.unwrap_or(0) + new.iter().sum::<u64>())),
            )
            .foreach_rdd(move |rdd: Rdd<(String, u64)>, _| {
                *sink.lock() = rdd.collect()?.into_iter().collect();
                Ok(())
            });
        Ok(ssc)
    })
    .unwrap();
    assert!(resumed.is_recovering());
    resumed.start().unwrap();
    clock.advance(1000);
    resumed.await_batch(Time(3000), WAIT).unwrap();
    resumed.stop(false, true);
    assert_eq!(*seen.lock(), BTreeMap::from([("x".to_string(), 5), ("y".to_string(), 11)]));

    // A rebuilt job whose "totals" keep another type is refused, naming the operation.
    let changed = StreamingContext::get_or_create(dir.path(), || {
        let ssc = StreamingContext::with_manual_clock(&sc, SECOND, clock.clone())?;
        ssc.queue_stream(RddQueue::<(String, u64)>::new(), true, None)
            .update_state_by_key_named(
                "totals",
                Fn!(|new: Vec<u64>, old: Option<i32>| Some(old.unwrap_or(0) + new.len() as i32)),
            )
            .foreach_rdd(|_, _| Ok(()));
        Ok(ssc)
    })
    .unwrap();
    let err = changed.start().unwrap_err().to_string();
    assert!(err.contains("\"totals\"") && err.contains("i32"), "{err}");
}

#[test]
fn a_state_checkpoint_that_cannot_be_written_stops_the_context_with_its_error() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    // A file where the state checkpoints' directory goes: the write of batch 1000's
    // state (on the state checkpoint writer's thread) fails.
    std::fs::write(dir.path().join("state"), b"not a directory").unwrap();
    let clock = ManualClock::new(0);
    let queue = RddQueue::new();
    queue.push(sc.parallelize(vec![("x".to_string(), 2u64)], 1));
    let ssc = totals_job(&sc, &clock, dir.path(), &queue).unwrap();
    ssc.start().unwrap();
    clock.advance(1000);
    let err = ssc.await_termination_or_timeout(WAIT).expect_err("stopped by the failed write").to_string();
    assert!(err.contains(&dir.path().join("state").display().to_string()), "{err}");
    assert_eq!(ssc.state(), StreamingState::Stopped);
    ssc.stop(false, false);
}

#[test]
fn invalid_graphs_are_refused_by_start_with_the_reason() {
    let sc = sc();
    let ssc = StreamingContext::with_manual_clock(&sc, SECOND, ManualClock::new(0)).unwrap();
    let s = ssc.queue_stream(RddQueue::<u64>::new(), true, None);
    let err = ssc.start().unwrap_err().to_string();
    assert!(err.contains("no output operations"), "{err}");
    s.window(Duration::from_millis(1500), SECOND).foreach_rdd(|_, _| Ok(()));
    let err = ssc.start().unwrap_err().to_string();
    assert!(err.contains("1500 ms") && err.contains("multiple"), "{err}");

    let ssc = StreamingContext::with_manual_clock(&sc, SECOND, ManualClock::new(0)).unwrap();
    ssc.queue_stream(RddQueue::<(u8, u64)>::new(), true, None)
        .update_state_by_key(Fn!(|n: Vec<u64>, o: Option<u64>| Some(o.unwrap_or(0) + n.len() as u64)))
        .foreach_rdd(|_, _| Ok(()));
    let err = ssc.start().unwrap_err().to_string();
    assert!(err.contains("checkpoint"), "{err}");

    assert!(StreamingContext::new(&sc, Duration::from_micros(1500)).is_err());
    assert!(StreamingContext::new(&sc, Duration::ZERO).is_err());
}

#[test]
fn a_failing_batch_stops_the_context_and_await_termination_returns_its_error() {
    let sc = sc();
    let clock = ManualClock::new(0);
    let ssc = StreamingContext::with_manual_clock(&sc, SECOND, clock.clone()).unwrap();
    let queue = RddQueue::new();
    queue.push(sc.parallelize(vec![1u64, 2, 3], 1));
    ssc.queue_stream(queue, true, None)
        .map(Fn!(|x: u64| if x == 2 { panic!("bad record {x}") } else { x }))
        .foreach_rdd(|rdd, _| rdd.count().map(|_| ()));
    ssc.start().unwrap();
    assert!(ssc.start().is_err(), "started twice");
    clock.advance(1000);
    let err = ssc.await_termination().unwrap_err();
    assert!(err.to_string().contains("bad record 2"), "{err}");
    assert_eq!(ssc.state(), StreamingState::Stopped);
    assert!(ssc.await_batch(Time(1000), WAIT).is_err(), "the failed batch never completed");
}

/// A stream holds its context and the context's graph holds the streams: a
/// stopped context lets its graph go, so that the context (and the
/// `EmberContext`, with its executor's work directory) is freed once the job
/// drops its handles, also when the stop came from inside a batch.
#[test]
fn a_stopped_context_is_freed_with_its_graph() {
    for stop_from_a_batch in [false, true] {
        let sc = sc();
        let clock = ManualClock::new(0);
        let ssc = StreamingContext::with_manual_clock(&sc, SECOND, clock.clone()).unwrap();
        let queue = RddQueue::new();
        queue.push(sc.parallelize(vec![1u64, 2, 3], 1));
        let probe = Arc::new(());
        let held = probe.clone();
        let inner = ssc.clone();
        ssc.queue_stream(queue, true, None).foreach_rdd(move |rdd, _| {
            let _ = &held;
            rdd.count()?;
            if stop_from_a_batch {
                inner.stop(false, false);
            }
            Ok(())
        });
        ssc.start().unwrap();
        clock.advance(1000);
        ssc.await_batch(Time(1000), WAIT).unwrap();
        ssc.stop(false, true);
        assert_eq!(ssc.state(), StreamingState::Stopped);
        assert_eq!(
            Arc::strong_count(&probe),
            1,
            "the output op (and the graph) still held, stop from a batch: {stop_from_a_batch}"
        );
        // The EmberContext goes on working after the streaming context stopped.
        assert_eq!(sc.parallelize(vec![1u8, 2], 2).count().unwrap(), 2);
    }
}

#[test]
fn save_as_text_files_writes_each_batch_once_under_sparks_names() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("out").display().to_string();
    let clock = ManualClock::new(0);
    let ssc = StreamingContext::with_manual_clock(&sc, SECOND, clock.clone()).unwrap();
    let queue = RddQueue::new();
    queue.push(sc.parallelize(vec![("a".to_string(), 1u64), ("b".into(), 2)], 2));
    ssc.queue_stream(queue, true, None).save_as_text_files(&prefix, "txt");
    ssc.start().unwrap();
    for t in [1000, 2000] {
        clock.advance(1000);
        ssc.await_batch(Time(t), WAIT).unwrap();
    }
    ssc.stop(false, true);
    let first = std::path::PathBuf::from(batch_output_path(&prefix, "txt", Time(1000)));
    assert!(first.join("_SUCCESS").exists());
    let mut lines: Vec<String> = std::fs::read_dir(&first)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .flat_map(|e| std::fs::read_to_string(e.path()).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    lines.sort();
    assert_eq!(lines, ["(a,1)", "(b,2)"]);
    // The empty second batch has its (empty) directory too, complete.
    assert!(std::path::PathBuf::from(batch_output_path(&prefix, "txt", Time(2000))).join("_SUCCESS").exists());
}

#[test]
fn a_file_stream_takes_each_new_file_once_and_skips_hidden_ones() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let ssc = StreamingContext::with_manual_clock(&sc, SECOND, clock.clone()).unwrap();
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sink = seen.clone();
    ssc.text_file_stream(dir.path()).unwrap().foreach_rdd(move |rdd, _| {
        let mut lines = rdd.collect()?;
        lines.sort();
        sink.lock().push(lines);
        Ok(())
    });
    ssc.start().unwrap();
    std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
    std::fs::write(dir.path().join(".hidden"), "no\n").unwrap();
    std::fs::write(dir.path().join("_tmp"), "no\n").unwrap();
    clock.advance(1000);
    ssc.await_batch(Time(1000), WAIT).unwrap();
    clock.advance(1000);
    ssc.await_batch(Time(2000), WAIT).unwrap();
    std::fs::write(dir.path().join("b.txt"), "three").unwrap();
    clock.advance(1000);
    ssc.await_batch(Time(3000), WAIT).unwrap();
    ssc.stop(false, true);
    assert_eq!(*seen.lock(), vec![vec!["one".to_string(), "two".into()], vec![], vec!["three".to_string()]]);
    assert!(
        StreamingContext::with_manual_clock(&sc, SECOND, ManualClock::new(0))
            .unwrap()
            .text_file_stream("/no/such/dir")
            .is_err()
    );
}

#[test]
fn count_reduce_join_and_transform_per_batch() {
    let sc = sc();
    let batches = vec![vec![3u64, 1, 2], vec![], vec![5]];
    let counts = run_batches(&sc, &batches, 500, |s| s.count()).unwrap();
    assert_eq!(counts.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(), vec![vec![3u64], vec![0], vec![1]]);
    let sums = run_batches(&sc, &batches, 500, |s| s.reduce(Fn!(|a: u64, b: u64| a + b))).unwrap();
    assert_eq!(sums.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(), vec![vec![6u64], vec![], vec![5]]);
    let joined = run_batches(&sc, &batches, 500, |s| {
        let pairs = s.map(Fn!(|x: u64| (x % 2, x)));
        let squares = s.transform(|rdd, _| Ok(rdd.map(Fn!(|x: u64| (x % 2, x * x)))));
        pairs.join(&squares)
    })
    .unwrap();
    let mut first = joined[0].1.clone();
    first.sort();
    assert_eq!(first, vec![(0, (2, 4)), (1, (1, 1)), (1, (1, 9)), (1, (3, 1)), (1, (3, 9))]);
}
