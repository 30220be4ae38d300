//! Shuffles whose buffers do not fit the task's memory budget: map outputs,
//! reduce-side aggregation, sortByKey and groupByKey spill to disk and merge,
//! and the results still equal a sequential reference.
//!
//! Execution memory is made tiny with `spark.memory.fraction` (1 GiB × 0.0002
//! ≈ 215 KB shared by the 2 task slots; buffers under 1/32 of it never
//! spill), so a few hundred thousand records spill many times.

use ember::Group;
use ember::prelude::*;
use std::collections::{BTreeMap, HashMap};

const N: u64 = 300_000;

fn spilling_context() -> EmberContext {
    EmberContext::new(
        Conf::new().master("local[2]").set("spark.executor.memory", "1g").set("spark.memory.fraction", "0.0002"),
    )
    .unwrap()
}

/// A skewed key: a third of the records share key 0.
fn key_of(i: u64) -> u64 {
    if i.is_multiple_of(3) { 0 } else { i.wrapping_mul(0x9E37_79B9) % 20_000 }
}

fn pairs(sc: &EmberContext) -> Rdd<(u64, u64)> {
    numbers(sc, N, 6).map(Fn!(|i: u64| (key_of(i), i)))
}

fn numbers(sc: &EmberContext, n: u64, slices: usize) -> Rdd<u64> {
    sc.range(0, n as i64, 1, slices).unwrap().map(Fn!(|i: i64| i as u64))
}

fn spills(sc: &EmberContext) -> u64 {
    sc.task_metrics().spill_count
}

#[test]
fn reduce_by_key_and_aggregate_by_key_spill_and_stay_exact() {
    let sc = spilling_context();
    let mut expected: HashMap<u64, u64> = HashMap::new();
    for i in 0..N {
        *expected.entry(key_of(i)).or_default() += i;
    }
    let got: HashMap<u64, u64> =
        pairs(&sc).reduce_by_key(Fn!(|a: u64, b: u64| a + b)).collect().unwrap().into_iter().collect();
    assert_eq!(got, expected);
    assert!(spills(&sc) > 0, "the map or reduce side should have spilled: {:?}", sc.task_metrics());

    let counts: HashMap<u64, (u64, u64)> = pairs(&sc)
        .aggregate_by_key(
            (0u64, 0u64),
            Fn!(|c: (u64, u64), v: u64| (c.0 + 1, c.1 + v)),
            Fn!(|a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1 + b.1)),
        )
        .collect()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counts.len(), expected.len());
    let hot_count = (0..N).filter(|&i| key_of(i) == 0).count() as u64;
    assert_eq!(counts[&0], (hot_count, expected[&0]));
}

#[test]
fn group_by_key_spills_a_hot_key_and_keeps_every_value() {
    let sc = spilling_context();
    let groups: Vec<(u64, Group<u64>)> = pairs(&sc).group_by_key_with(4).collect().unwrap();
    let mut expected: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for i in 0..N {
        expected.entry(key_of(i)).or_default().push(i);
    }
    let got: BTreeMap<u64, Vec<u64>> = groups
        .into_iter()
        .map(|(k, g)| {
            let mut v = g.into_vec();
            v.sort_unstable();
            (k, v)
        })
        .collect();
    assert_eq!(got, expected);
    assert!(spills(&sc) > 0, "{:?}", sc.task_metrics());

    // Iterated where it was grouped (not collected), the hot key's group is a
    // spill file: count and sum it in the task.
    let (count, sum) = pairs(&sc)
        .group_by_key_with(4)
        .filter(Fn!(|kv: &(u64, Group<u64>)| kv.0 == 0))
        .map(Fn!(|kv: (u64, Group<u64>)| {
            assert!(kv.1.is_spilled(), "a group far over the budget lives on disk");
            kv.1.iter().fold((0u64, 0u64), |(c, s), v| (c + 1, s + v))
        }))
        .collect()
        .unwrap()[0];
    assert_eq!((count, sum), (expected[&0].len() as u64, expected[&0].iter().sum::<u64>()));
}

#[test]
fn sort_by_key_merges_spilled_runs_in_order() {
    let sc = spilling_context();
    let data = numbers(&sc, N, 5).map(Fn!(|i: u64| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000, i)));
    for ascending in [true, false] {
        let got: Vec<(u64, u64)> = data.sort_by_key_with(ascending, 3).unwrap().collect().unwrap();
        let mut expected: Vec<(u64, u64)> =
            (0..N).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000, i)).collect();
        expected.sort_by_key(|kv| kv.0);
        if !ascending {
            expected.reverse();
        }
        assert_eq!(got.iter().map(|kv| kv.0).collect::<Vec<_>>(), expected.iter().map(|kv| kv.0).collect::<Vec<_>>());
        let mut got_pairs = got;
        got_pairs.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got_pairs, expected);
    }
    assert!(spills(&sc) > 0, "{:?}", sc.task_metrics());
}

#[test]
fn join_cogroup_and_distinct_spill_and_stay_exact() {
    let sc = spilling_context();
    let left = numbers(&sc, 100_000, 4).map(Fn!(|i: u64| (i % 30_000, i)));
    let right = numbers(&sc, 60_000, 3).map(Fn!(|i: u64| (i % 40_000, format!("r{i}"))));
    let mut joined: Vec<(u64, (u64, String))> = left.join(&right).collect().unwrap();
    joined.sort();
    let mut expected = Vec::new();
    let mut rights: HashMap<u64, Vec<String>> = HashMap::new();
    for i in 0..60_000u64 {
        rights.entry(i % 40_000).or_default().push(format!("r{i}"));
    }
    for i in 0..100_000u64 {
        for r in rights.get(&(i % 30_000)).into_iter().flatten() {
            expected.push((i % 30_000, (i, r.clone())));
        }
    }
    expected.sort();
    assert_eq!(joined, expected);

    let cogrouped = left.cogroup(&right).count().unwrap();
    assert_eq!(cogrouped, 40_000);

    let mut distinct: Vec<u64> = numbers(&sc, N, 6).map(Fn!(|i: u64| i % 70_000)).distinct().collect().unwrap();
    distinct.sort_unstable();
    assert_eq!(distinct, (0..70_000).collect::<Vec<_>>());
    assert!(spills(&sc) > 0, "{:?}", sc.task_metrics());
}
