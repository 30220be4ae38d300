//! RDD methods Spark users reach for: `group_by`, `zip_with_unique_id`,
//! `random_split`, `tree_aggregate`, `tree_reduce`, `to_local_iterator`, `pipe`,
//! `take_ordered_by`/`top_by`, `cogroup3`/`cogroup4`, `zip_partitions`,
//! `repartition_and_sort_within_partitions` and pairs saved as text, on
//! `local[2]`, against results computed here.

use ember::prelude::*;
use ember::{HashPartitioner, Partitioner};
use std::collections::{BTreeMap, BTreeSet};

fn sc() -> EmberContext {
    EmberContext::new(Conf::new().master("local[2]").set("spark.ui.enabled", "false")).unwrap()
}

#[test]
fn group_by_and_unique_ids() {
    let sc = sc();
    let rdd = sc.parallelize((0..20u32).collect(), 3);
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (k, g) in rdd.group_by(Fn!(|x: &u32| x % 3)).collect().unwrap() {
        let mut values: Vec<u32> = g.into_iter().collect();
        values.sort();
        groups.insert(k, values);
    }
    assert_eq!(groups[&0], [0, 3, 6, 9, 12, 15, 18]);
    assert_eq!(groups.len(), 3);

    // k-th element of partition p of 3 gets 3k + p: unique, with no job run.
    let ids = rdd.zip_with_unique_id().collect().unwrap();
    let distinct: BTreeSet<u64> = ids.iter().map(|(_, id)| *id).collect();
    assert_eq!(distinct.len(), 20);
    let parts = rdd.glom().collect().unwrap();
    for (p, part) in parts.iter().enumerate() {
        for (k, x) in part.iter().enumerate() {
            assert!(ids.contains(&(*x, (k * 3 + p) as u64)));
        }
    }
}

#[test]
fn random_split_partitions_every_element_once_by_weight() {
    let sc = sc();
    let rdd = sc.parallelize((0..10_000u32).collect(), 4);
    let splits = rdd.random_split(&[1.0, 3.0], 11);
    let a = splits[0].collect().unwrap();
    let b = splits[1].collect().unwrap();
    assert_eq!(a.len() + b.len(), 10_000);
    let mut all: Vec<u32> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert_eq!(all, (0..10_000).collect::<Vec<_>>());
    // About a quarter: 2500 ± 5 standard deviations (43).
    assert!((2285..=2715).contains(&a.len()), "{}", a.len());
    // Deterministic for a seed.
    assert_eq!(splits[0].collect().unwrap(), a);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rdd.random_split(&[1.0, -1.0], 1)));
    assert!(refused.is_err());
}

#[test]
fn tree_aggregate_and_tree_reduce_equal_their_flat_forms() {
    let sc = sc();
    let rdd = sc.parallelize((1..=1000u64).collect(), 50);
    let sum_sq = rdd.tree_aggregate(0u64, Fn!(|acc: u64, x: u64| acc + x * x), Fn!(|a: u64, b: u64| a + b), 2).unwrap();
    assert_eq!(sum_sq, (1..=1000u64).map(|x| x * x).sum::<u64>());
    for depth in [1, 2, 3, 5] {
        assert_eq!(rdd.tree_reduce(Fn!(|a: u64, b: u64| a.max(b)), depth).unwrap(), 1000);
    }
    // Empty partitions take no part; an empty RDD has nothing to reduce.
    let sparse = sc.parallelize(vec![5u64, 7], 40);
    assert_eq!(sparse.tree_reduce(Fn!(|a: u64, b: u64| a + b), 2).unwrap(), 12);
    let empty = sc.parallelize(Vec::<u64>::new(), 4);
    assert!(empty.tree_reduce(Fn!(|a: u64, b: u64| a + b), 2).is_err());
    // As `aggregate` (and Spark): `zero` starts each partition's fold and the final one.
    let flat = empty.aggregate(3u64, Fn!(|a: u64, x: u64| a + x), |a: u64, b: u64| a + b).unwrap();
    assert_eq!(flat, 15);
    assert_eq!(empty.tree_aggregate(3u64, Fn!(|a: u64, x: u64| a + x), Fn!(|a: u64, b: u64| a + b), 2).unwrap(), flat);
    assert!(rdd.tree_reduce(Fn!(|a: u64, b: u64| a + b), 0).is_err());
}

#[test]
fn to_local_iterator_yields_every_element_in_order() {
    let sc = sc();
    let rdd = sc.parallelize((0..100u32).collect(), 7);
    let got: Vec<u32> = rdd.to_local_iterator().map(|x| x.unwrap()).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    let failing = rdd.map(Fn!(|x: u32| if x == 50 { panic!("bad element {x}") } else { x }));
    let results: Vec<_> = failing.to_local_iterator().collect();
    assert!(results.iter().take_while(|r| r.is_ok()).count() >= 42, "the partitions before the bad one");
    let err = results.last().unwrap().as_ref().unwrap_err().to_string();
    assert!(err.contains("bad element 50"), "{err}");
}

#[test]
fn pipe_sends_each_partition_through_a_command() {
    let sc = sc();
    let rdd = sc.parallelize((1..=9u32).collect(), 3);
    // `sort -rn` per partition: each partition's elements, reversed.
    assert_eq!(rdd.pipe("sort -rn").collect().unwrap(), ["3", "2", "1", "6", "5", "4", "9", "8", "7"]);
    assert_eq!(rdd.pipe("wc -l").map(Fn!(|n: String| n.trim().to_string())).collect().unwrap(), ["3", "3", "3"]);
    // A command that stops reading early is judged by its status.
    assert_eq!(sc.parallelize((0..100_000u32).collect(), 1).pipe("head -n 2").collect().unwrap(), ["0", "1"]);
    let err = rdd.pipe("false").collect().unwrap_err().to_string();
    assert!(err.contains("\"false\"") && err.contains("exit status: 1"), "{err}");
    let err = rdd.pipe("no-such-command-ember --x").collect().unwrap_err().to_string();
    assert!(err.contains("no-such-command-ember --x") && err.contains("cannot start it"), "{err}");
    let err = rdd.pipe("ls /no/such/dir/ember").collect().unwrap_err().to_string();
    assert!(err.contains("No such file"), "its standard error is in the message: {err}");
}

#[test]
fn take_ordered_by_and_top_by_rank_by_a_key_function() {
    let sc = sc();
    // Elements without an order of their own.
    let pairs: Vec<(f64, String)> = [(3.5, "c"), (1.0, "a"), (9.25, "z"), (2.0, "b"), (2.0, "b2")]
        .iter()
        .map(|(x, s)| (*x, s.to_string()))
        .collect();
    let rdd = sc.parallelize(pairs, 3);
    let by_bits = Fn!(|p: &(f64, String)| p.0.to_bits());
    let smallest: Vec<String> = rdd.take_ordered_by(3, by_bits).unwrap().into_iter().map(|p| p.1).collect();
    assert_eq!(smallest[0], "a");
    let tied: BTreeSet<&str> = smallest[1..].iter().map(String::as_str).collect();
    assert_eq!(tied, BTreeSet::from(["b", "b2"]));
    let largest: Vec<String> =
        rdd.top_by(2, Fn!(|p: &(f64, String)| p.1.clone())).unwrap().into_iter().map(|p| p.1).collect();
    assert_eq!(largest, ["z", "c"]);
    // With ties, which equal-keyed elements are kept is not specified; how many is.
    let longest = rdd.top_by(2, Fn!(|p: &(f64, String)| p.1.len())).unwrap();
    assert_eq!(longest.len(), 2);
    assert_eq!(longest[0].1, "b2");
    assert!(rdd.top_by(0, Fn!(|p: &(f64, String)| p.1.clone())).unwrap().is_empty());
    assert_eq!(rdd.take_ordered_by(10, Fn!(|p: &(f64, String)| p.1.clone())).unwrap().len(), 5);
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn cogroup_of_three_and_four_keeps_every_key_of_every_side() {
    let sc = sc();
    let a = sc.parallelize(vec![(1u32, 'a'), (2, 'b'), (1, 'c')], 2);
    let b = sc.parallelize(vec![(2u32, 20u64), (3, 30)], 3);
    let c = sc.parallelize(vec![(4u32, "d".to_string())], 1);
    let d = sc.parallelize(vec![(1u32, true), (5, false)], 2);
    let three: Vec<_> = sorted(
        a.cogroup3(&b, &c)
            .map_values(Fn!(|(x, y, z): (Vec<char>, Vec<u64>, Vec<String>)| (
                {
                    let mut x = x;
                    x.sort();
                    x
                },
                y,
                z
            )))
            .collect()
            .unwrap(),
    );
    assert_eq!(
        three,
        [
            (1, (vec!['a', 'c'], vec![], vec![])),
            (2, (vec!['b'], vec![20], vec![])),
            (3, (vec![], vec![30], vec![])),
            (4, (vec![], vec![], vec!["d".to_string()])),
        ]
    );
    let four = sorted(
        a.cogroup4(&b, &c, &d)
            .map_values(Fn!(|(x, y, z, w): (Vec<char>, Vec<u64>, Vec<String>, Vec<bool>)| (
                x.len(),
                y.len(),
                z.len(),
                w
            )))
            .collect()
            .unwrap(),
    );
    assert_eq!(
        four,
        [
            (1, (2, 0, 0, vec![true])),
            (2, (1, 1, 0, vec![])),
            (3, (0, 1, 0, vec![])),
            (4, (0, 0, 1, vec![])),
            (5, (0, 0, 0, vec![false]))
        ]
    );
    // Sides already partitioned the same way keep that partitioning, unshuffled.
    let p = HashPartitioner::new(4);
    let grouped = a.partition_by(p).cogroup3(&b.partition_by(p), &c.partition_by(p));
    assert_eq!(grouped.num_partitions(), 4);
    assert_eq!(a.group_with(&b).count().unwrap(), 3);
}

#[test]
fn zip_partitions_reads_partitions_of_different_sizes_together() {
    let sc = sc();
    let a = sc.parallelize((0..10u32).collect(), 2);
    let b = sc.parallelize(vec!["x".to_string(), "y".to_string(), "z".to_string()], 2);
    let sizes = a
        .zip_partitions(&b, |xs: ember::BoxIter<u32>, ys: ember::BoxIter<String>| {
            let ys: Vec<String> = ys.collect();
            vec![(xs.sum::<u32>(), ys.join(""))]
        })
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(sizes, [(10, "x".to_string()), (35, "yz".to_string())]);
    let err =
        a.zip_partitions(&sc.parallelize(vec![1u8], 3), |xs: ember::BoxIter<u32>, _: ember::BoxIter<u8>| xs).err();
    assert!(err.unwrap().to_string().contains("same number of partitions (2 vs 3)"));
}

#[test]
fn repartition_and_sort_within_partitions_sorts_each_partition_by_key() {
    let sc = sc();
    let pairs: Vec<(u32, u32)> = (0..200u32).map(|i| ((i * 7919) % 101, i)).collect();
    let parts = sc
        .parallelize(pairs.clone(), 3)
        .repartition_and_sort_within_partitions(HashPartitioner::new(4))
        .glom()
        .collect()
        .unwrap();
    assert_eq!(parts.len(), 4);
    for (i, part) in parts.iter().enumerate() {
        assert!(part.windows(2).all(|w| w[0].0 <= w[1].0), "partition {i} is not sorted");
        assert!(part.iter().all(|(k, _)| HashPartitioner::new(4).partition(k) == i));
    }
    assert_eq!(sorted(parts.concat()), sorted(pairs));
}

#[test]
fn pairs_are_saved_as_spark_writes_them() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairs");
    sc.parallelize(vec![("a".to_string(), 1u64), ("b".to_string(), 2)], 1)
        .map_values(Fn!(|n: u64| (n as f64, Some(n))))
        .save_as_text_file(out.to_str().unwrap())
        .unwrap();
    let text = std::fs::read_to_string(out.join("part-00000")).unwrap();
    assert_eq!(text, "(a,(1.0,Some(1)))\n(b,(2.0,Some(2)))\n");
}

#[test]
fn object_files_round_trip_and_refuse_what_is_not_one() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("objects");
    let path = path.to_str().unwrap();
    let data: Vec<(String, Vec<u64>)> = (0..3000u64).map(|i| (format!("k{i}"), vec![i; (i % 4) as usize])).collect();
    sc.parallelize(data.clone(), 3).save_as_object_file(path).unwrap();
    let back = sc.object_file::<(String, Vec<u64>)>(path).unwrap();
    assert_eq!(back.num_partitions(), 3);
    assert_eq!(back.collect().unwrap(), data);

    // An output that exists is refused before any task runs.
    let again = sc.parallelize(vec![1u8], 1).save_as_object_file(path).unwrap_err().to_string();
    assert!(again.contains("already exists"), "{again}");
    // Not an object file, a gap in the parts, a corrupted frame.
    let none = sc.object_file::<u8>(dir.path().to_str().unwrap()).unwrap_err().to_string();
    assert!(none.contains("no part-NNNNN files"), "{none}");
    std::fs::rename(format!("{path}/part-00001"), format!("{path}/part-00007")).unwrap();
    let gap = sc.object_file::<(String, Vec<u64>)>(path).unwrap_err().to_string();
    assert!(gap.contains("are not part-00000 to part-00002: found part-00002"), "{gap}");
    std::fs::rename(format!("{path}/part-00007"), format!("{path}/part-00001")).unwrap();
    let part = format!("{path}/part-00002");
    let mut bytes = std::fs::read(&part).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&part, bytes).unwrap();
    let corrupt = sc.object_file::<(String, Vec<u64>)>(path).unwrap().collect().unwrap_err().to_string();
    assert!(corrupt.contains("part-00002"), "{corrupt}");
}

/// `spark.files` are shipped at the context's start (as `addFile`), and a
/// `spark-defaults.conf` (the operator's `sparkConfigMap`, in `SPARK_CONF_DIR`) fills in
/// only what is not set.
#[test]
fn spark_files_ship_at_start_and_spark_defaults_conf_fills_in() {
    let dir = tempfile::tempdir().unwrap();
    let lookup = dir.path().join("lookup.txt");
    std::fs::write(&lookup, "alpha\nbeta\n").unwrap();
    std::fs::write(
        dir.path().join("spark-defaults.conf"),
        "# from a ConfigMap\nspark.app.name  from-file\nspark.default.parallelism=7\nnot.spark.key 1\n",
    )
    .unwrap();
    let mut conf = Conf::new().app_name("explicit").set("spark.files", lookup.display().to_string());
    ember::conf_dir_defaults(&mut conf, dir.path()).unwrap();
    assert_eq!(conf.get("spark.app.name"), Some("explicit"), "explicit settings win");
    assert_eq!(conf.get("spark.default.parallelism"), Some("7"));
    assert_eq!(conf.get("not.spark.key"), None);
    ember::conf_dir_defaults(&mut conf, &dir.path().join("absent")).unwrap();

    let sc = EmberContext::new(conf.master("local[2]").set("spark.ui.enabled", "false")).unwrap();
    let lines = sc
        .parallelize(vec![0usize, 1], 2)
        .map(|i: usize| {
            let text = std::fs::read_to_string(ember::files::get("lookup.txt").expect("shipped at start")).unwrap();
            text.lines().nth(i).unwrap().to_string()
        })
        .collect()
        .unwrap();
    assert_eq!(lines, ["alpha", "beta"]);
    sc.stop();

    let missing = Conf::new()
        .master("local[1]")
        .set("spark.ui.enabled", "false")
        .set("spark.files", dir.path().join("nope.txt").display().to_string());
    let err = EmberContext::new(missing).err().expect("a missing spark.files entry is an error");
    assert!(err.to_string().contains("nope.txt"), "{err}");
}

/// A job's own key types: `#[derive(Key)]` and `#[derive(Ordered)]` compare
/// field by field (here a generic type, an enum, and a struct with a double).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, Key, Ordered)]
struct Cell<T> {
    row: T,
    column: Side,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, Key, Ordered,
)]
enum Side {
    Left,
    Right,
}

#[test]
fn a_jobs_own_types_are_keys_and_sort_through_their_derives() {
    let sc = sc();
    let cells: Vec<(Cell<i64>, u64)> = (0..60i64)
        .map(|i| (Cell { row: i % 5, column: if i % 2 == 0 { Side::Left } else { Side::Right } }, i as u64))
        .collect();
    let rdd = sc.parallelize(cells.clone(), 4);

    let mut expected: BTreeMap<Cell<i64>, u64> = BTreeMap::new();
    for (k, v) in &cells {
        *expected.entry(k.clone()).or_default() += v;
    }
    let sums: BTreeMap<Cell<i64>, u64> =
        rdd.reduce_by_key(|a: u64, b: u64| a + b).collect().unwrap().into_iter().collect();
    assert_eq!(sums, expected);

    let sorted =
        rdd.reduce_by_key(|a: u64, b: u64| a + b).sort_by_key_with(false, 3).unwrap().keys().collect().unwrap();
    let mut descending: Vec<Cell<i64>> = expected.keys().cloned().collect();
    descending.reverse();
    assert_eq!(sorted, descending);

    let top = rdd.keys().distinct().top(2).unwrap();
    assert_eq!(top, descending[..2]);
    assert_eq!(rdd.keys().max().unwrap(), descending[0]);

    let sides = sc.parallelize(vec![(Side::Left, "l".to_string()), (Side::Right, "r".to_string())], 2);
    let joined = rdd
        .map(|(c, v): (Cell<i64>, u64)| (c.column, v))
        .join(&sides)
        .filter(|(_, (v, _)): &(Side, (u64, String))| *v < 2);
    let mut joined = joined.collect().unwrap();
    joined.sort();
    assert_eq!(joined, [(Side::Left, (0, "l".to_string())), (Side::Right, (1, "r".to_string()))]);
}

/// No `Hash`, `Eq` or `Ord` of its own: the derives go by fields, the double
/// as `java.lang.Double` (one NaN, `-0.0` apart from `0.0`, NaN sorted last).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Key, Ordered)]
struct Price {
    amount: f64,
    currency: String,
}

#[test]
fn a_struct_with_a_double_is_a_key_as_a_case_class_is_in_spark() {
    let sc = sc();
    let price = |amount: f64, currency: &str| Price { amount, currency: currency.to_string() };
    let prices = vec![
        (price(1.5, "EUR"), 1u64),
        (price(f64::NAN, "EUR"), 2),
        (price(-f64::NAN, "EUR"), 4),
        (price(0.0, "EUR"), 8),
        (price(-0.0, "EUR"), 16),
        (price(1.5, "USD"), 32),
        (price(1.5, "EUR"), 64),
    ];
    let rdd = sc.parallelize(prices, 3);
    let sums = rdd.reduce_by_key(|a: u64, b: u64| a + b).sort_by_key(true).unwrap().collect().unwrap();
    let shown: Vec<String> = sums.iter().map(|(p, n)| format!("{:?} {} {n}", p.amount, p.currency)).collect();
    assert_eq!(shown, ["-0.0 EUR 16", "0.0 EUR 8", "1.5 EUR 65", "1.5 USD 32", "NaN EUR 6"]);
    assert_eq!(rdd.keys().distinct().count().unwrap(), 5);
    assert!(rdd.keys().max().unwrap().amount.is_nan());
}

/// An enum with data: variants in declaration order, then their fields.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, Key, Ordered)]
enum Shape {
    Dot,
    Line(f64),
    Rect { width: f64, height: f64 },
}

#[test]
fn an_enum_with_data_sorts_by_variant_then_fields() {
    let sc = sc();
    let shapes = vec![
        Shape::Rect { width: 1.0, height: f64::NAN },
        Shape::Line(2.0),
        Shape::Dot,
        Shape::Rect { width: 1.0, height: 0.5 },
        Shape::Line(-0.0),
        Shape::Dot,
        Shape::Line(2.0),
    ];
    let rdd = sc.parallelize(shapes, 3);
    let sorted = rdd.distinct().map(|s: Shape| (s, ())).sort_by_key(true).unwrap().keys().collect().unwrap();
    let shown: Vec<String> = sorted.iter().map(|s| format!("{s:?}")).collect();
    assert_eq!(
        shown,
        ["Dot", "Line(-0.0)", "Line(2.0)", "Rect { width: 1.0, height: 0.5 }", "Rect { width: 1.0, height: NaN }"]
    );
}
