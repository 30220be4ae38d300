//! Closures as people write them, through a job on `local[2]` (where every task's
//! closure is serialized and rebuilt, as on an executor): plain `fn` items and
//! closures without captures passed as they are, and `Fn!` closures with macros,
//! nested closures, patterns, `?` and explicit capture lists. The same closures
//! cross process boundaries in examples/tests/job_template.rs.

use ember::closure::traits::Fn as _;
use ember::prelude::*;

fn sc() -> EmberContext {
    EmberContext::new(Conf::new().master("local[2]").set("spark.ui.enabled", "false")).unwrap()
}

fn double(x: u64) -> u64 {
    x * 2
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn is_odd(x: &u64) -> bool {
    x % 2 == 1
}

#[test]
fn plain_functions_and_closures_without_captures_pass_as_they_are() {
    let sc = sc();
    let rdd = sc.parallelize((1..=10u64).collect(), 3);
    assert_eq!(rdd.map(double).reduce(add).unwrap(), 110);
    assert_eq!(rdd.filter(is_odd).collect().unwrap(), [1, 3, 5, 7, 9]);
    assert_eq!(rdd.map(|x: u64| x + 1).fold(0, |a: u64, b: u64| a + b).unwrap(), 65);
    let pairs = rdd.map(|x: u64| (x % 2, x)).reduce_by_key(add).collect().unwrap();
    let mut pairs = pairs;
    pairs.sort();
    assert_eq!(pairs, [(0, 30), (1, 25)]);
}

macro_rules! scaled {
    ($x:expr, $by:expr) => {
        $x * $by
    };
}

macro_rules! add_to {
    (add $x:ident to $total:ident) => {
        $x + $total
    };
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Tagged {
    tag: String,
    value: u64,
}

#[test]
fn fn_closures_with_macros_nested_closures_and_patterns() {
    let sc = sc();
    let rdd = sc.parallelize((1..=6u64).collect(), 2);
    let (n, sep, width, tag) = (3usize, "-".to_string(), 4usize, "t".to_string());

    // vec! with a captured length, format! with implicit and width arguments.
    let repeated = rdd.flat_map(Fn!(move |x: u64| vec![x; n])).count().unwrap();
    assert_eq!(repeated, 18);
    let text = rdd.map(Fn!(move |x: u64| format!("{x:>width$}{sep}{}", x * 2))).collect().unwrap();
    assert_eq!(text[0], "   1-2");

    // Nested closures sharing a capture; a user macro; `matches!` with a guard.
    let limit = 4u64;
    let nested = rdd
        .map(Fn!(move |x: u64| (0..x).map(|y| y + limit).filter(|z| matches!(z, v if *v > limit)).count() as u64))
        .collect()
        .unwrap();
    assert_eq!(nested, [0, 1, 2, 3, 4, 5]);
    let by = 10u64;
    assert_eq!(rdd.map(Fn!(move |x: u64| scaled!(x, by))).collect().unwrap(), [10, 20, 30, 40, 50, 60]);

    // Patterns in parameters and lets, struct shorthand with a capture, `?`.
    let tagged = rdd
        .map(Fn!(|x: u64| (x, x.to_string())))
        .map(Fn!(move |(value, text): (u64, String)| {
            let Tagged { tag, .. } = Tagged { tag: format!("{tag}{text}"), value };
            Tagged { tag, value }
        }))
        .collect()
        .unwrap();
    assert_eq!(tagged[1], Tagged { tag: "t2".into(), value: 2 });
    let parsed = sc
        .parallelize(vec!["1".to_string(), "x".to_string(), "3".to_string()], 2)
        .map(Fn!(|s: String| -> Option<u64> {
            let n = s.parse::<u64>().ok()?;
            Some(n * 2)
        }))
        .collect()
        .unwrap();
    assert_eq!(parsed, [Some(2), None, Some(6)]);
}

#[test]
fn explicit_capture_lists_and_nested_fn() {
    let sc = sc();
    let rdd = sc.parallelize((1..=4u64).collect(), 2);
    let total = 100u64;
    // Tokens that are not expressions: the list says what is captured.
    assert_eq!(rdd.map(Fn!([total] move |x: u64| add_to!(add x to total))).collect().unwrap(), [101, 102, 103, 104]);
    // An empty list: nothing is captured, lower-case names are items.
    #[allow(non_upper_case_globals)]
    const offset: u64 = 7;
    assert_eq!(rdd.map(Fn!([] move |x: u64| x + offset)).collect().unwrap(), [8, 9, 10, 11]);
    // A nested `Fn!` takes its own copy of an outer capture.
    let k = 5u64;
    let out = rdd
        .map(Fn!(move |x: u64| {
            let inner = Fn!(move |y: u64| y * k);
            inner.call((x,)) + k
        }))
        .collect()
        .unwrap();
    assert_eq!(out, [10, 15, 20, 25]);
}

#[test]
fn captured_broadcasts_and_accumulators_ship() {
    let sc = sc();
    let table = sc.broadcast((0..100u64).map(|i| i * i).collect::<Vec<_>>()).unwrap();
    let seen = sc.accumulator(0u64);
    let acc = seen.clone();
    let squares = sc
        .parallelize((0..10u64).collect(), 3)
        .map(Fn!(move |i: u64| {
            acc.add(1);
            table.value()[i as usize]
        }))
        .collect()
        .unwrap();
    assert_eq!(squares[9], 81);
    assert_eq!(seen.value(), 10);
}
