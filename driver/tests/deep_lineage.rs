//! Lineage of great depth, embedded: planned, encoded, decoded, computed and
//! dropped without overflowing a stack — the test thread's own is 2 MiB.

use ember::prelude::*;

const DEPTH: usize = 20_000;

#[test]
fn twenty_thousand_chained_maps_are_computed_and_dropped_on_a_small_stack() {
    let sc = EmberContext::local(2).unwrap();
    let mut rdd = sc.range(0, 100, 1, 2).unwrap();
    for _ in 0..DEPTH {
        rdd = rdd.map(Fn!(|x: i64| x + 1));
    }
    assert_eq!(rdd.count().unwrap(), 100);
    let sum = rdd.fold(0, Fn!(|a: i64, b: i64| a + b)).unwrap();
    assert_eq!(sum, (0..100).sum::<i64>() + 100 * DEPTH as i64);
    // A shuffle on top: the map stage's binary carries the whole chain.
    let grouped = rdd.map(Fn!(|x: i64| (x % 3, 1u32))).reduce_by_key(Fn!(|a: u32, b: u32| a + b));
    let mut counts = grouped.collect().unwrap();
    counts.sort();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u32>(), 100);
    drop(grouped);
    drop(rdd);
}

#[test]
fn a_union_chain_of_two_thousand_rdds_is_counted() {
    let sc = EmberContext::local(2).unwrap();
    let mut rdd = sc.parallelize(vec![1u64], 1);
    for _ in 0..DEPTH / 10 {
        rdd = rdd.union(&sc.parallelize(vec![1u64], 1));
    }
    assert_eq!(rdd.num_partitions(), DEPTH / 10 + 1);
    assert_eq!(rdd.fold(0, Fn!(|a: u64, b: u64| a + b)).unwrap() as usize, DEPTH / 10 + 1);
}
