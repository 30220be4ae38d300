//! Partitioners are remembered (Spark's `RDD.partitioner`): operations on RDDs
//! already partitioned the way they need do not shuffle them again. Shuffles are
//! counted by the records the application's tasks wrote to shuffle files.

use ember::partitioning::Partitioning;
use ember::prelude::*;
use ember_core::partitioner::{HashPartitioner, RangePartitioner};

fn shuffled_records(sc: &EmberContext) -> u64 {
    sc.task_metrics().shuffle_records_written
}

/// The hash partitioner an RDD is known to be partitioned by.
fn hash_of<T: ember::Data>(rdd: &Rdd<T>) -> Option<HashPartitioner> {
    rdd.partitioner().and_then(|p| p.partitioner::<HashPartitioner>())
}

fn pairs(sc: &EmberContext, n: u64, keys: u64, slices: usize) -> Rdd<(u64, u64)> {
    sc.parallelize((0..n).map(|i| (i % keys, i)).collect(), slices)
}

#[test]
fn a_join_of_two_rdds_partitioned_alike_adds_no_shuffle_and_equals_the_plain_join() {
    let sc = EmberContext::local(2).unwrap();
    let p = HashPartitioner::new(4);
    let (left, right) = (pairs(&sc, 1000, 50, 3), pairs(&sc, 300, 70, 2));
    let mut expected = left.join(&right).collect().unwrap();
    expected.sort();

    let before = shuffled_records(&sc);
    let a = left.partition_by(p).cache();
    let b = right.partition_by(p).cache();
    assert_eq!(hash_of(&a), Some(p));
    let joined = a.join(&b);
    assert_eq!(hash_of(&joined), Some(p), "a join keeps its partitioner");
    let mut got = joined.collect().unwrap();
    got.sort();
    assert_eq!(got, expected);
    // One shuffle per side (1000 + 300 records), none for the join itself.
    assert_eq!(shuffled_records(&sc) - before, 1300);

    // Both sides cached: a second join reads them and shuffles nothing.
    let before = shuffled_records(&sc);
    assert_eq!(a.join(&b).count().unwrap() as usize, expected.len());
    assert_eq!(shuffled_records(&sc) - before, 0);

    // Only one side partitioned: only the other side is shuffled.
    let before = shuffled_records(&sc);
    let mut one_sided = a.join(&right).collect().unwrap();
    one_sided.sort();
    assert_eq!(one_sided, expected);
    assert_eq!(shuffled_records(&sc) - before, 300);
}

#[test]
fn by_key_operations_keep_or_drop_the_partitioner_as_in_spark() {
    let sc = EmberContext::local(2).unwrap();
    let p = HashPartitioner::new(3);
    let rdd = pairs(&sc, 200, 10, 2);
    assert_eq!(rdd.partitioner(), None);
    let reduced = rdd.reduce_by_key_with(Fn!(|a: u64, b: u64| a + b), 3);
    assert_eq!(reduced.partitioner(), Some(Partitioning::hash(3)));
    assert_eq!(hash_of(&reduced), Some(p));
    assert_eq!(hash_of(&reduced.map_values(Fn!(|v: u64| v + 1))), Some(p));
    assert_eq!(hash_of(&reduced.filter(Fn!(|kv: &(u64, u64)| kv.0 > 2))), Some(p));
    assert_eq!(reduced.map(Fn!(|kv: (u64, u64)| kv)).partitioner(), None, "map may change keys");
    assert_eq!(hash_of(&rdd.group_by_key_with(3)), Some(p));

    // reduce_by_key on data partitioned the same way combines in place.
    let partitioned = rdd.partition_by(p).cache();
    partitioned.count().unwrap();
    assert!(partitioned.partition_by(p).id() == partitioned.id(), "partition_by with an equal partitioner is a no-op");
    let before = shuffled_records(&sc);
    let mut sums = partitioned.reduce_by_key_with(Fn!(|a: u64, b: u64| a + b), 3).collect().unwrap();
    assert_eq!(shuffled_records(&sc) - before, 0);
    sums.sort();
    let mut expected = reduced.collect().unwrap();
    expected.sort();
    assert_eq!(sums, expected);
    // A different partition count still shuffles.
    let before = shuffled_records(&sc);
    partitioned.reduce_by_key_with(Fn!(|a: u64, b: u64| a + b), 5).count().unwrap();
    assert!(shuffled_records(&sc) > before);
}

#[test]
fn sort_by_key_carries_its_range_partitioner_and_a_join_of_two_rdds_ranged_alike_adds_no_shuffle() {
    let sc = EmberContext::local(2).unwrap();
    let (left, right) = (pairs(&sc, 1000, 50, 3), pairs(&sc, 300, 70, 2));
    let sorted = left.sort_by_key_with(true, 3).unwrap();
    let range =
        sorted.partitioner().and_then(|p| p.partitioner::<RangePartitioner<u64>>()).expect("a range partitioner");
    assert_eq!(range.bounds.len() + 1, 3);
    assert_eq!(sorted.partition_by(range.clone()).id(), sorted.id(), "already partitioned by it");

    let mut expected = left.join(&right).collect().unwrap();
    expected.sort();
    let a = left.partition_by(range.clone());
    let b = right.partition_by(range);
    let before = shuffled_records(&sc);
    let mut got = a.join(&b).collect().unwrap();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(shuffled_records(&sc) - before, 1300, "the two partition_by shuffles, nothing for the join");
}
