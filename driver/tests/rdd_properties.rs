//! Every RDD operation against a plain sequential reference, on randomized
//! inputs (proptest, fixed seed): empty partitions, one partition, more partitions
//! than elements, heavy key skew, and String / tuple keys.
//!
//! One context per test function (a context starts threads); a deterministic
//! proptest runner per property so runs are reproducible.

use ember::prelude::*;
use ember::{BoxIter, HashPartitioner, Key, Ordered, Partitioner};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

const CASES: u32 = 16;

/// Runs `test` on `cases` inputs drawn from `strategy` with a fixed seed.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config =
        ProptestConfig { cases, failure_persistence: None, max_shrink_iters: 200, ..ProptestConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Spark's parallelize boundaries: slice i holds [i*n/s, (i+1)*n/s).
fn slices_of<T: Clone>(data: &[T], s: usize) -> Vec<Vec<T>> {
    let n = data.len();
    (0..s).map(|i| data[i * n / s..(i + 1) * n / s].to_vec()).collect()
}

/// Values and a slice count: 0..40 elements over 1..=8 slices covers empty
/// RDDs, one partition, and more partitions than elements.
fn ints() -> impl Strategy<Value = (Vec<i32>, usize)> {
    (vec(-1000i32..1000, 0..40), 1usize..=8)
}

fn sc() -> EmberContext {
    EmberContext::local(2).unwrap()
}

type R = Result<(), TestCaseError>;

fn ok<T>(r: ember::Result<T>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(format!("engine error: {e}")))
}

// ---------------------------------------------------------------- sources

#[test]
fn sources_parallelize_range_empty() {
    let sc = sc();
    check(CASES, ints(), |(data, s)| {
        let rdd = sc.parallelize(data.clone(), s);
        prop_assert_eq!(rdd.num_partitions(), s);
        prop_assert_eq!(ok(rdd.collect())?, data.clone());
        prop_assert_eq!(ok(rdd.glom().collect())?, slices_of(&data, s));
        prop_assert_eq!(ok(rdd.count())?, data.len() as u64);
        Ok(())
    });
    check(
        CASES * 2,
        (-50i64..50, -50i64..50, prop_oneof![-7i64..=-1, 1i64..=7], 1usize..=6),
        |(start, end, step, s)| {
            let rdd = ok(sc.range(start, end, step, s))?;
            let expected: Vec<i64> = if step > 0 {
                (start..end).step_by(step as usize).collect()
            } else {
                let mut v = Vec::new();
                let mut x = start;
                while x > end {
                    v.push(x);
                    x += step;
                }
                v
            };
            prop_assert_eq!(rdd.num_partitions(), s);
            prop_assert_eq!(ok(rdd.collect())?, expected.clone());
            prop_assert_eq!(ok(rdd.glom().collect())?, slices_of(&expected, s));
            Ok(())
        },
    );
    assert!(sc.range(0, 10, 0, 2).is_err(), "a zero step is an error");
    // The whole i64 span, where i·step overflows (a debug build used to panic).
    let whole = sc.range(i64::MIN, i64::MAX, 1 << 62, 3).unwrap().collect().unwrap();
    assert_eq!(whole, vec![i64::MIN, -(1 << 62), 0, 1 << 62]);
    let down = sc.range(i64::MAX, i64::MIN, -(1 << 62), 2).unwrap().collect().unwrap();
    assert_eq!(down, vec![i64::MAX, (1 << 62) - 1, -1, -(1 << 62) - 1]);
    let empty = sc.empty_rdd::<String>();
    assert_eq!(empty.num_partitions(), 0);
    assert_eq!(empty.count().unwrap(), 0);
    assert!(empty.collect().unwrap().is_empty());
    assert!(empty.take(3).unwrap().is_empty());
    assert_eq!(empty.map(Fn!(|s: String| s.len())).fold(0, Fn!(|a: usize, b: usize| a + b)).unwrap(), 0);
}

/// Spark refuses these at the call (`require`); Ember panics there, naming the
/// argument, instead of clamping it to something else.
#[test]
fn zero_partitions_and_impossible_fractions_are_refused_at_the_call() {
    let sc = sc();
    let rdd = sc.parallelize(vec![1u8, 2, 3], 2);
    let refusal = |f: &dyn Fn()| -> String {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("refused");
        match payload.downcast_ref::<String>() {
            Some(message) => message.clone(),
            None => payload.downcast_ref::<&str>().map(|m| m.to_string()).unwrap_or_default(),
        }
    };
    let msg = refusal(&|| drop(sc.parallelize(Vec::<u8>::new(), 0)));
    assert!(msg.contains("parallelize") && msg.contains("positive"), "{msg}");
    let msg = refusal(&|| drop(rdd.coalesce(0)));
    assert!(msg.contains("coalesce") && msg.contains("positive"), "{msg}");
    let msg = refusal(&|| drop(rdd.repartition(0)));
    assert!(msg.contains("repartition") && msg.contains("positive"), "{msg}");
    let msg = refusal(&|| drop(rdd.sample(false, 1.5, 1)));
    assert!(msg.contains("at most 1") && msg.contains("1.5"), "{msg}");
    let msg = refusal(&|| drop(rdd.sample(true, -0.1, 1)));
    assert!(msg.contains("0 or more") && msg.contains("-0.1"), "{msg}");
    let msg = refusal(&|| drop(rdd.sample(false, f64::NAN, 1)));
    assert!(msg.contains("NaN"), "{msg}");
    // With replacement a fraction above 1 is an expected count per element.
    assert!(!rdd.sample(true, 2.0, 7).collect().unwrap().is_empty());
    assert_eq!(rdd.coalesce(1).collect().unwrap(), [1, 2, 3]);
}

#[test]
fn text_file_single_file_directory_glob_and_list() {
    let sc = sc();
    let line = "[a-z ]{0,12}";
    check(CASES, (vec(vec(line, 0..30), 1..4), any::<bool>(), 1usize..6), |(files, trailing_newline, min_parts)| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut all = Vec::new();
        for (i, lines) in files.iter().enumerate() {
            let mut text = lines.join("\n");
            if trailing_newline && !text.is_empty() {
                text.push('\n');
            }
            // What a line reader sees in that text.
            all.extend(text.lines().map(str::to_string));
            std::fs::write(data.join(format!("part-{i:05}")), &text).unwrap();
        }
        // Markers are not input.
        std::fs::write(data.join("_SUCCESS"), "ignored\n").unwrap();
        std::fs::write(data.join(".part-00000.crc"), "ignored\n").unwrap();
        let first = data.join("part-00000");
        let first_lines: Vec<String> = std::fs::read_to_string(&first).unwrap().lines().map(str::to_string).collect();
        let single = ok(sc.text_file(first.to_str().unwrap(), min_parts))?;
        prop_assert_eq!(ok(single.collect())?, first_lines.clone());
        let whole = ok(sc.text_file(data.to_str().unwrap(), min_parts))?;
        prop_assert_eq!(ok(whole.collect())?, all.clone());
        prop_assert_eq!(ok(whole.count())?, all.len() as u64);
        let glob = format!("{}/part-*", data.display());
        prop_assert_eq!(ok(ok(sc.text_file(&glob, min_parts))?.collect())?, all.clone());
        let list = format!("{},{}", first.display(), data.display());
        let mut both = first_lines.clone();
        both.extend(all.iter().cloned());
        prop_assert_eq!(ok(ok(sc.text_file(&list, min_parts))?.collect())?, both);
        Ok(())
    });
}

// ------------------------------------------------------- narrow transformations

#[test]
fn narrow_transformations_match_sequential_reference() {
    let sc = sc();
    check(CASES * 2, (ints(), ints()), |((data, s), (other, s2))| {
        let rdd = sc.parallelize(data.clone(), s);
        let k = 3i64;
        prop_assert_eq!(
            ok(rdd.map(Fn!(move |x: i32| x as i64 * k)).collect())?,
            data.iter().map(|&x| x as i64 * k).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            ok(rdd.filter(Fn!(|x: &i32| x % 3 == 0)).collect())?,
            data.iter().copied().filter(|x| x % 3 == 0).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            ok(rdd
                .flat_map(Fn!(|x: i32| std::iter::repeat_n(x, x.rem_euclid(3) as usize).collect::<Vec<_>>()))
                .collect())?,
            data.iter().flat_map(|&x| vec![x; x.rem_euclid(3) as usize]).collect::<Vec<_>>()
        );
        // mapPartitions sees each slice whole.
        prop_assert_eq!(
            ok(rdd
                .map_partitions(Fn!(|it: BoxIter<i32>| {
                    let v: Vec<i32> = it.collect();
                    vec![(v.len(), v.iter().map(|&x| x as i64).sum::<i64>())]
                }))
                .collect())?,
            slices_of(&data, s).iter().map(|v| (v.len(), v.iter().map(|&x| x as i64).sum::<i64>())).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            ok(rdd
                .map_partitions_with_index(Fn!(|i: usize, it: BoxIter<i32>| it
                    .map(move |x| (i, x))
                    .collect::<Vec<_>>()))
                .collect())?,
            slices_of(&data, s)
                .iter()
                .enumerate()
                .flat_map(|(i, v)| v.iter().map(move |&x| (i, x)))
                .collect::<Vec<_>>()
        );
        prop_assert_eq!(
            ok(rdd.key_by(Fn!(|x: &i32| x.rem_euclid(5))).collect())?,
            data.iter().map(|&x| (x.rem_euclid(5), x)).collect::<Vec<_>>()
        );
        // union: partitions one after the other.
        let o = sc.parallelize(other.clone(), s2);
        let u = rdd.union(&o);
        prop_assert_eq!(u.num_partitions(), s + s2);
        let mut cat = data.clone();
        cat.extend(other.iter().copied());
        prop_assert_eq!(ok(u.collect())?, cat.clone());
        let u3 = sc.union(&[rdd.clone(), o.clone(), rdd.clone()]);
        let mut cat3 = cat.clone();
        cat3.extend(data.iter().copied());
        prop_assert_eq!(ok(u3.collect())?, cat3);
        // cartesian: every pair once.
        let c = ok(rdd.cartesian(&o).collect())?;
        let expected: Vec<(i32, i32)> = data.iter().flat_map(|&a| other.iter().map(move |&b| (a, b))).collect();
        prop_assert_eq!(rdd.cartesian(&o).num_partitions(), s * s2);
        prop_assert_eq!(sorted(c), sorted(expected));
        // zip with a narrow derivative, and with an independently sliced equal-size RDD.
        let doubled = rdd.map(Fn!(|x: i32| x * 2));
        prop_assert_eq!(ok(ok(rdd.zip(&doubled))?.collect())?, data.iter().map(|&x| (x, x * 2)).collect::<Vec<_>>());
        let idx: Vec<usize> = (0..data.len()).collect();
        prop_assert_eq!(
            ok(ok(rdd.zip(&sc.parallelize(idx.clone(), s)))?.collect())?,
            data.iter().copied().zip(idx).collect::<Vec<_>>()
        );
        if s != s2 {
            prop_assert!(rdd.zip(&o).is_err());
        } else if data.len() != other.len() {
            prop_assert!(ok(rdd.zip(&o))?.collect().is_err());
        }
        // zipWithIndex: global positions in order.
        prop_assert_eq!(
            ok(ok(rdd.zip_with_index())?.collect())?,
            data.iter().enumerate().map(|(i, &x)| (x, i as u64)).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            ok(ok(rdd.filter(Fn!(|x: &i32| *x > 0)).zip_with_index())?.collect())?,
            data.iter().copied().filter(|x| *x > 0).enumerate().map(|(i, x)| (x, i as u64)).collect::<Vec<_>>()
        );
        // glom
        prop_assert_eq!(ok(rdd.glom().collect())?, slices_of(&data, s));
        // coalesce: fewer partitions, same elements (kept in order here).
        for k in [1, 2, s, s + 3] {
            let co = rdd.coalesce(k);
            prop_assert_eq!(co.num_partitions(), k.min(s).max(1));
            prop_assert_eq!(ok(co.collect())?, data.clone());
        }
        Ok(())
    });
}

#[test]
fn distinct_intersection_subtract_match_set_reference() {
    let sc = sc();
    let words = || (vec("[a-d]{0,2}", 0..40), 1usize..=6);
    check(CASES * 2, (words(), words()), |((a, s), (b, s2))| {
        let ra = sc.parallelize(a.clone(), s);
        let rb = sc.parallelize(b.clone(), s2);
        let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
        let (sa, sb) = (set(&a), set(&b));
        prop_assert_eq!(sorted(ok(ra.distinct().collect())?), sa.iter().cloned().collect::<Vec<_>>());
        prop_assert_eq!(sorted(ok(ra.distinct_with(s + 5).collect())?), sa.iter().cloned().collect::<Vec<_>>());
        prop_assert_eq!(sorted(ok(ra.intersection(&rb).collect())?), sa.intersection(&sb).cloned().collect::<Vec<_>>());
        prop_assert_eq!(
            sorted(ok(ra.subtract(&rb).collect())?),
            sorted(a.iter().filter(|x| !sb.contains(*x)).cloned().collect::<Vec<_>>())
        );
        let mut counts: HashMap<String, u64> = HashMap::new();
        for w in &a {
            *counts.entry(w.clone()).or_default() += 1;
        }
        prop_assert_eq!(ok(ra.count_by_value())?, counts);
        Ok(())
    });
}

#[test]
fn sample_is_deterministic_bounded_and_statistically_sane() {
    let sc = sc();
    check(CASES, ints(), |(data, s)| {
        let rdd = sc.parallelize(data.clone(), s);
        prop_assert!(ok(rdd.sample(false, 0.0, 1).collect())?.is_empty());
        prop_assert!(ok(rdd.sample(true, 0.0, 1).collect())?.is_empty());
        prop_assert_eq!(ok(rdd.sample(false, 1.0, 1).collect())?, data.clone());
        for (wr, seed) in [(false, 7u64), (true, 7), (false, 8)] {
            let once = ok(rdd.sample(wr, 0.4, seed).collect())?;
            prop_assert_eq!(ok(rdd.sample(wr, 0.4, seed).collect())?, once.clone());
            // Without replacement: a sub-sequence of the data.
            if !wr {
                let mut it = data.iter();
                prop_assert!(once.iter().all(|x| it.any(|y| y == x)));
            } else {
                prop_assert!(once.iter().all(|x| data.contains(x)));
            }
        }
        Ok(())
    });
    let n = 20_000u64;
    let big = sc.range(0, n as i64, 1, 7).unwrap();
    for (wr, fraction) in [(false, 0.3), (true, 0.5), (true, 2.0)] {
        let mean = n as f64 * fraction;
        // Bernoulli variance n·p·(1-p); Poisson variance n·p.
        let var = if wr { mean } else { mean * (1.0 - fraction) };
        let got = big.sample(wr, fraction, 42).count().unwrap() as f64;
        assert!((got - mean).abs() < 5.0 * var.sqrt(), "sample({wr}, {fraction}) kept {got}, expected about {mean}");
        // Different partitions draw differently (not the same mask per partition).
        let a = big.sample(wr, fraction, 1).collect().unwrap();
        let b = big.sample(wr, fraction, 2).collect().unwrap();
        assert_ne!(a, b, "different seeds give different samples");
    }
    // Uniform over the data: the sampled mean is close to the data mean.
    let kept = big.sample(false, 0.25, 3).collect().unwrap();
    let m = kept.iter().sum::<i64>() as f64 / kept.len() as f64;
    let expected = (n - 1) as f64 / 2.0;
    let sd = n as f64 / 12f64.sqrt() / (kept.len() as f64).sqrt();
    assert!((m - expected).abs() < 5.0 * sd, "sample mean {m}");
}

#[test]
fn repartition_keeps_elements_and_evens_sizes() {
    let sc = sc();
    check(CASES * 2, (ints(), 1usize..=9), |((data, s), n)| {
        let rdd = sc.parallelize(data.clone(), s).repartition(n);
        prop_assert_eq!(rdd.num_partitions(), n);
        let parts = ok(rdd.glom().collect())?;
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        prop_assert_eq!(sorted(parts.into_iter().flatten().collect::<Vec<_>>()), sorted(data.clone()));
        // Each input partition deals round-robin from its own start (as Spark
        // does): sizes differ by at most one per non-empty input partition.
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        let non_empty = slices_of(&data, s).iter().filter(|p| !p.is_empty()).count();
        prop_assert!(hi - lo <= non_empty.max(1), "uneven sizes {:?}", sizes);
        // From one input partition: even to within one.
        let one = ok(sc.parallelize(data.clone(), 1).repartition(n).glom().collect())?;
        let sizes: Vec<usize> = one.iter().map(Vec::len).collect();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        prop_assert!(hi - lo <= 1, "uneven sizes {:?}", sizes);
        prop_assert_eq!(sorted(one.into_iter().flatten().collect::<Vec<_>>()), sorted(data.clone()));
        Ok(())
    });
}

#[test]
fn sorting_and_ordered_actions() {
    let sc = sc();
    check(CASES * 2, (ints(), 1usize..=6), |((data, s), parts)| {
        let rdd = sc.parallelize(data.clone(), s);
        let asc = sorted(data.clone());
        let mut desc = asc.clone();
        desc.reverse();
        prop_assert_eq!(ok(ok(rdd.sort_by(Fn!(|x: &i32| *x), true, parts))?.collect())?, asc.clone());
        prop_assert_eq!(ok(ok(rdd.sort_by(Fn!(|x: &i32| *x), false, parts))?.collect())?, desc.clone());
        // By a key with ties: keys in order, elements preserved.
        let by_mod = ok(ok(rdd.sort_by(Fn!(|x: &i32| x.rem_euclid(4)), true, parts))?.collect())?;
        prop_assert!(by_mod.windows(2).all(|w| w[0].rem_euclid(4) <= w[1].rem_euclid(4)));
        prop_assert_eq!(sorted(by_mod), asc.clone());
        for n in [0usize, 1, 3, 100] {
            prop_assert_eq!(ok(rdd.take_ordered(n))?, asc[..n.min(asc.len())].to_vec());
            prop_assert_eq!(ok(rdd.top(n))?, desc[..n.min(desc.len())].to_vec());
            prop_assert_eq!(ok(rdd.take(n))?, data[..n.min(data.len())].to_vec());
        }
        Ok(())
    });
}

// ------------------------------------------------------------------- pair ops

/// Pairs whose keys come from `keys`, either spread out or mostly on `hot`.
fn pairs<K: Debug + Clone + 'static>(
    keys: impl Strategy<Value = K> + Clone + 'static,
    hot: K,
) -> impl Strategy<Value = (Vec<(K, u32)>, usize)> {
    let spread = vec((keys.clone(), 0u32..100), 0..50);
    let skewed = vec((prop_oneof![9 => Just(hot), 1 => keys], 0u32..100), 0..60);
    (prop_oneof![spread, skewed], 1usize..=7)
}

fn group_ref<K: Ord + Clone, V: Clone + Ord>(data: &[(K, V)]) -> BTreeMap<K, Vec<V>> {
    let mut m: BTreeMap<K, Vec<V>> = BTreeMap::new();
    for (k, v) in data {
        m.entry(k.clone()).or_default().push(v.clone());
    }
    for vs in m.values_mut() {
        vs.sort();
    }
    m
}

fn check_pair_ops<K: Key + Ordered + Ord + std::hash::Hash + Debug>(
    sc: &EmberContext,
    (a, s): (Vec<(K, u32)>, usize),
    (b, s2): (Vec<(K, u32)>, usize),
) -> R {
    let ra = sc.parallelize(a.clone(), s);
    let rb = sc.parallelize(b.clone(), s2);
    let ga = group_ref(&a);
    let gb = group_ref(&b);

    // Narrow pair ops keep the order of a parallelize.
    prop_assert_eq!(
        ok(ra.map_values(Fn!(|v: u32| v as u64 + 1)).collect())?,
        a.iter().map(|(k, v)| (k.clone(), *v as u64 + 1)).collect::<Vec<_>>()
    );
    prop_assert_eq!(
        ok(ra.flat_map_values(Fn!(|v: u32| (0..v % 3).collect::<Vec<u32>>())).collect())?,
        a.iter().flat_map(|(k, v)| (0..v % 3).map(move |i| (k.clone(), i))).collect::<Vec<_>>()
    );
    prop_assert_eq!(ok(ra.keys().collect())?, a.iter().map(|p| p.0.clone()).collect::<Vec<_>>());
    prop_assert_eq!(ok(ra.values().collect())?, a.iter().map(|p| p.1).collect::<Vec<_>>());

    // Aggregations, with the default and with explicit partition counts.
    let sums: BTreeMap<K, u64> = ga.iter().map(|(k, vs)| (k.clone(), vs.iter().map(|&v| v as u64).sum())).collect();
    let as_map = |v: Vec<(K, u64)>| -> Result<BTreeMap<K, u64>, TestCaseError> {
        let n = v.len();
        let m: BTreeMap<K, u64> = v.into_iter().collect();
        prop_assert_eq!(m.len(), n, "a key appears twice");
        Ok(m)
    };
    let wide = ra.map_values(Fn!(|v: u32| v as u64));
    prop_assert_eq!(as_map(ok(wide.reduce_by_key(Fn!(|x: u64, y: u64| x + y)).collect())?)?, sums.clone());
    for p in [1, 3, 11] {
        let r = wide.reduce_by_key_with(Fn!(|x: u64, y: u64| x + y), p);
        prop_assert_eq!(r.num_partitions(), p);
        prop_assert_eq!(as_map(ok(r.collect())?)?, sums.clone());
    }
    prop_assert_eq!(as_map(ok(wide.fold_by_key(0, Fn!(|x: u64, y: u64| x + y)).collect())?)?, sums.clone());
    let grouped: BTreeMap<K, Vec<u32>> =
        ok(ra.group_by_key().collect())?.into_iter().map(|(k, vs)| (k, sorted(vs.into_vec()))).collect();
    prop_assert_eq!(&grouped, &ga);
    let grouped: BTreeMap<K, Vec<u32>> =
        ok(ra.group_by_key_with(5).collect())?.into_iter().map(|(k, vs)| (k, sorted(vs.into_vec()))).collect();
    prop_assert_eq!(&grouped, &ga);
    // combineByKey to (sum, count); aggregateByKey to (max, count).
    let combined: BTreeMap<K, (u64, u32)> = ok(ra
        .combine_by_key(
            Fn!(|v: u32| (v as u64, 1u32)),
            Fn!(|c: (u64, u32), v: u32| (c.0 + v as u64, c.1 + 1)),
            Fn!(|x: (u64, u32), y: (u64, u32)| (x.0 + y.0, x.1 + y.1)),
        )
        .collect())?
    .into_iter()
    .collect();
    prop_assert_eq!(
        combined,
        ga.iter()
            .map(|(k, vs)| (k.clone(), (vs.iter().map(|&v| v as u64).sum(), vs.len() as u32)))
            .collect::<BTreeMap<_, _>>()
    );
    let aggregated: BTreeMap<K, (u32, u32)> = ok(ra
        .aggregate_by_key(
            (0u32, 0u32),
            Fn!(|c: (u32, u32), v: u32| (c.0.max(v), c.1 + 1)),
            Fn!(|x: (u32, u32), y: (u32, u32)| (x.0.max(y.0), x.1 + y.1)),
        )
        .collect())?
    .into_iter()
    .collect();
    prop_assert_eq!(
        aggregated,
        ga.iter().map(|(k, vs)| (k.clone(), (*vs.iter().max().unwrap(), vs.len() as u32))).collect::<BTreeMap<_, _>>()
    );

    // sortByKey: keys in order, pairs preserved.
    let mut keys_asc: Vec<K> = a.iter().map(|p| p.0.clone()).collect();
    keys_asc.sort();
    for ascending in [true, false] {
        let out = ok(ok(ra.sort_by_key(ascending))?.collect())?;
        let keys: Vec<K> = out.iter().map(|p| p.0.clone()).collect();
        let mut expected = keys_asc.clone();
        if !ascending {
            expected.reverse();
        }
        prop_assert_eq!(keys, expected);
        prop_assert_eq!(sorted(out), sorted(a.clone()));
        let out = ok(ok(ra.sort_by_key_with(ascending, 4))?.collect())?;
        let in_order = out.windows(2).all(|w| if ascending { w[0].0 <= w[1].0 } else { w[0].0 >= w[1].0 });
        prop_assert!(in_order);
    }

    // partitionBy: every pair lands where the partitioner says.
    let hash = HashPartitioner::new(4);
    let by_hash = ok(ra.partition_by(hash).glom().collect())?;
    prop_assert_eq!(by_hash.len(), 4);
    for (i, part) in by_hash.iter().enumerate() {
        prop_assert!(part.iter().all(|(k, _)| hash.partition(k) == i));
    }
    prop_assert_eq!(sorted(by_hash.into_iter().flatten().collect::<Vec<_>>()), sorted(a.clone()));
    for ascending in [true, false] {
        let range = ok(ra.range_partitioner(3, ascending))?;
        let parts = ok(ra.partition_by(range.clone()).glom().collect())?;
        prop_assert_eq!(parts.len(), range.num_partitions());
        for (i, part) in parts.iter().enumerate() {
            prop_assert!(part.iter().all(|(k, _)| range.partition(k) == i));
        }
        // Partition ranges do not overlap and follow the requested order.
        let bounds: Vec<(K, K)> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| {
                let ks = sorted(p.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
                (ks[0].clone(), ks[ks.len() - 1].clone())
            })
            .collect();
        let disjoint = bounds.windows(2).all(|w| if ascending { w[0].1 < w[1].0 } else { w[0].0 > w[1].1 });
        prop_assert!(disjoint, "overlapping ranges {:?}", bounds);
        prop_assert_eq!(sorted(parts.into_iter().flatten().collect::<Vec<_>>()), sorted(a.clone()));
    }

    // Joins and cogroup against nested loops.
    let mut inner = Vec::new();
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut full = Vec::new();
    for (k, v) in &a {
        let ws: Vec<u32> = b.iter().filter(|p| &p.0 == k).map(|p| p.1).collect();
        for w in &ws {
            inner.push((k.clone(), (*v, *w)));
            left.push((k.clone(), (*v, Some(*w))));
            full.push((k.clone(), (Some(*v), Some(*w))));
        }
        if ws.is_empty() {
            left.push((k.clone(), (*v, None)));
            full.push((k.clone(), (Some(*v), None)));
        }
    }
    for (k, w) in &b {
        let vs: Vec<u32> = a.iter().filter(|p| &p.0 == k).map(|p| p.1).collect();
        for v in &vs {
            right.push((k.clone(), (Some(*v), *w)));
        }
        if vs.is_empty() {
            right.push((k.clone(), (None, *w)));
            full.push((k.clone(), (None, Some(*w))));
        }
    }
    prop_assert_eq!(sorted(ok(ra.join(&rb).collect())?), sorted(inner.clone()));
    prop_assert_eq!(sorted(ok(ra.join_with(&rb, 9).collect())?), sorted(inner));
    prop_assert_eq!(sorted(ok(ra.left_outer_join(&rb).collect())?), sorted(left));
    prop_assert_eq!(sorted(ok(ra.right_outer_join(&rb).collect())?), sorted(right));
    prop_assert_eq!(sorted(ok(ra.full_outer_join(&rb).collect())?), sorted(full));
    let cogrouped: BTreeMap<K, (Vec<u32>, Vec<u32>)> =
        ok(ra.cogroup(&rb).collect())?.into_iter().map(|(k, (vs, ws))| (k, (sorted(vs), sorted(ws)))).collect();
    let mut expected: BTreeMap<K, (Vec<u32>, Vec<u32>)> = BTreeMap::new();
    for (k, vs) in &ga {
        expected.entry(k.clone()).or_default().0 = vs.clone();
    }
    for (k, ws) in &gb {
        expected.entry(k.clone()).or_default().1 = ws.clone();
    }
    prop_assert_eq!(cogrouped, expected);
    prop_assert_eq!(
        sorted(ok(ra.subtract_by_key(&rb).collect())?),
        sorted(a.iter().filter(|p| !gb.contains_key(&p.0)).cloned().collect::<Vec<_>>())
    );

    // Pair actions.
    let counts: HashMap<K, u64> = ga.iter().map(|(k, vs)| (k.clone(), vs.len() as u64)).collect();
    prop_assert_eq!(ok(ra.count_by_key())?, counts);
    prop_assert_eq!(ok(ra.collect_as_map())?, a.iter().cloned().collect::<HashMap<_, _>>());
    for key in ga.keys().take(2).chain(gb.keys().take(1)) {
        let expected: Vec<u32> = a.iter().filter(|p| &p.0 == key).map(|p| p.1).collect();
        prop_assert_eq!(ok(ra.lookup(key.clone()))?, expected);
    }
    // Keys as elements: distinct / countByValue over non-trivial key types.
    prop_assert_eq!(sorted(ok(ra.keys().distinct().collect())?), ga.keys().cloned().collect::<Vec<_>>());
    Ok(())
}

#[test]
fn pair_ops_with_small_integer_keys() {
    let sc = sc();
    let p = || pairs(0u8..12, 3u8);
    check(CASES, (p(), p()), |(a, b)| check_pair_ops(&sc, a, b));
}

#[test]
fn pair_ops_with_string_keys() {
    let sc = sc();
    let p = || pairs("[a-c]{0,2}", "b".to_string());
    check(CASES, (p(), p()), |(a, b)| check_pair_ops(&sc, a, b));
}

#[test]
fn pair_ops_with_tuple_keys() {
    let sc = sc();
    let p = || pairs((0u8..3, "[xy]{0,2}"), (1u8, "xy".to_string()));
    check(CASES, (p(), p()), |(a, b)| check_pair_ops(&sc, a, b));
}

// -------------------------------------------------------------------- actions

#[test]
fn actions_match_sequential_reference() {
    let sc = sc();
    check(CASES * 2, ints(), |(data, s)| {
        let rdd = sc.parallelize(data.clone(), s);
        let sum: i64 = data.iter().map(|&x| x as i64).sum();
        let wide = rdd.map(Fn!(|x: i32| x as i64));
        prop_assert_eq!(ok(rdd.count())?, data.len() as u64);
        prop_assert_eq!(ok(wide.fold(0, Fn!(|a: i64, b: i64| a + b)))?, sum);
        prop_assert_eq!(
            ok(rdd.aggregate(
                (0u64, 0i64),
                Fn!(|acc: (u64, i64), x: i32| (acc.0 + 1, acc.1 + x as i64)),
                Fn!(|a: (u64, i64), b: (u64, i64)| (a.0 + b.0, a.1 + b.1)),
            ))?,
            (data.len() as u64, sum)
        );
        match data.first() {
            Some(&f) => {
                prop_assert_eq!(ok(rdd.first())?, f);
                prop_assert_eq!(ok(wide.reduce(Fn!(|a: i64, b: i64| a + b)))?, sum);
                prop_assert_eq!(ok(rdd.reduce(Fn!(|a: i32, b: i32| a.max(b))))?, *data.iter().max().unwrap());
            }
            None => {
                prop_assert!(rdd.first().is_err());
                prop_assert!(wide.reduce(Fn!(|a: i64, b: i64| a + b)).is_err());
            }
        }
        // foreach / foreachPartition, observed through accumulators.
        let acc = sc.accumulator(0i64);
        let a2 = acc.clone();
        ok(rdd.foreach(Fn!(move |x: i32| a2.add(x as i64))))?;
        prop_assert_eq!(acc.value(), sum);
        let sizes = sc.accumulator(Vec::<usize>::new());
        let s2 = sizes.clone();
        ok(rdd.foreach_partition(Fn!(move |it: BoxIter<i32>| s2.add(vec![it.count()]))))?;
        prop_assert_eq!(sorted(sizes.value()), sorted(slices_of(&data, s).iter().map(Vec::len).collect()));
        // takeSample: right size, from the data, deterministic per seed.
        let tagged = sc.parallelize(data.iter().copied().enumerate().collect::<Vec<_>>(), s);
        for num in [0usize, 1, 5, 100] {
            let got = ok(tagged.take_sample(false, num, 9))?;
            prop_assert_eq!(got.len(), num.min(data.len()));
            let mut idx: Vec<usize> = got.iter().map(|p| p.0).collect();
            idx.sort();
            idx.dedup();
            prop_assert_eq!(idx.len(), got.len(), "without replacement, no repeats");
            prop_assert!(got.iter().all(|(i, x)| data[*i] == *x));
            prop_assert_eq!(ok(tagged.take_sample(false, num, 9))?, got);
            let with = ok(tagged.take_sample(true, num, 9))?;
            prop_assert_eq!(with.len(), if data.is_empty() { 0 } else { num });
            prop_assert!(with.iter().all(|(i, x)| data[*i] == *x));
            prop_assert_eq!(ok(tagged.take_sample(true, num, 9))?, with);
        }
        // saveAsTextFile: one part file per partition, read back in order.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        ok(rdd.save_as_text_file(out.to_str().unwrap()))?;
        prop_assert!(out.join("_SUCCESS").exists());
        let mut parts: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("part-"))
            .collect();
        parts.sort();
        prop_assert_eq!(parts.len(), s);
        let mut lines = Vec::new();
        for p in &parts {
            let text = std::fs::read_to_string(out.join(p)).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
        prop_assert_eq!(lines, data.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        prop_assert!(rdd.save_as_text_file(out.to_str().unwrap()).is_err(), "an existing output directory is refused");
        // And text_file reads the saved directory back.
        let back = ok(ok(sc.text_file(out.to_str().unwrap(), 2))?.collect())?;
        prop_assert_eq!(back, data.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        Ok(())
    });
}

#[test]
fn take_sample_with_replacement_from_a_tiny_rdd() {
    // Asks for far more elements than there are: the oversampling fraction is huge.
    let sc = sc();
    let rdd = sc.parallelize(vec![7u32], 1);
    let got = rdd.take_sample(true, 5000, 1).unwrap();
    assert_eq!(got.len(), 5000);
    assert!(got.iter().all(|&x| x == 7));
    let few = sc.parallelize(vec![1u32, 2, 3], 2);
    let got = few.take_sample(true, 3000, 2).unwrap();
    assert_eq!(got.len(), 3000);
    for x in 1..=3 {
        let n = got.iter().filter(|&&y| y == x).count();
        assert!((800..1200).contains(&n), "{x} drawn {n} times of 3000");
    }
}

// ------------------------------------------- persistence, shared variables, files

#[test]
fn persisted_rdds_are_not_recomputed_at_any_storage_level() {
    let sc = sc();
    let levels =
        [StorageLevel::MemoryOnly, StorageLevel::MemoryOnlySer, StorageLevel::MemoryAndDisk, StorageLevel::DiskOnly];
    check(CASES / 2, ints(), |(data, s)| {
        let expected: Vec<i64> = data.iter().map(|&x| x as i64 * 7).collect();
        for level in levels {
            let computed = sc.accumulator(0u64);
            let c2 = computed.clone();
            let rdd = sc
                .parallelize(data.clone(), s)
                .map(Fn!(move |x: i32| {
                    c2.add(1);
                    x as i64 * 7
                }))
                .persist(level);
            prop_assert_eq!(rdd.storage_level(), level);
            prop_assert_eq!(ok(rdd.collect())?, expected.clone());
            prop_assert_eq!(computed.value(), data.len() as u64);
            // Second and third actions read the kept partitions.
            prop_assert_eq!(ok(rdd.collect())?, expected.clone());
            prop_assert_eq!(ok(rdd.count())?, data.len() as u64);
            let sum = ok(rdd.fold(0, Fn!(|a: i64, b: i64| a + b)))?;
            prop_assert_eq!(sum, expected.iter().sum::<i64>());
            prop_assert_eq!(computed.value(), data.len() as u64, "{:?} recomputed", level);
            // A child of a cached RDD reads it too.
            let shifted = ok(rdd.map(Fn!(|x: i64| x + 1)).collect())?;
            prop_assert_eq!(shifted, expected.iter().map(|x| x + 1).collect::<Vec<_>>());
            prop_assert_eq!(computed.value(), data.len() as u64);
            rdd.unpersist();
            prop_assert_eq!(rdd.storage_level(), StorageLevel::None);
            prop_assert_eq!(ok(rdd.collect())?, expected.clone());
            prop_assert_eq!(computed.value(), 2 * data.len() as u64, "unpersist recomputes");
        }
        // cache() is MemoryOnly.
        let computed = sc.accumulator(0u64);
        let c2 = computed.clone();
        let rdd = sc
            .parallelize(data.clone(), s)
            .map(Fn!(move |x: i32| {
                c2.add(1);
                x
            }))
            .cache();
        prop_assert_eq!(rdd.storage_level(), StorageLevel::MemoryOnly);
        prop_assert_eq!(ok(rdd.collect())?, data.clone());
        prop_assert_eq!(ok(rdd.collect())?, data.clone());
        prop_assert_eq!(computed.value(), data.len() as u64);
        Ok(())
    });
    // A cached shuffle output (the reduce side) is not recomputed either.
    let computed = sc.accumulator(0u64);
    let c2 = computed.clone();
    let counts = sc
        .parallelize((0..200u32).collect(), 5)
        .map(Fn!(|x: u32| (x % 7, 1u32)))
        .reduce_by_key(Fn!(|a: u32, b: u32| a + b))
        .map(Fn!(move |kv: (u32, u32)| {
            c2.add(1);
            kv
        }))
        .persist(StorageLevel::MemoryAndDisk);
    let first = sorted(counts.collect().unwrap());
    assert_eq!(sorted(counts.collect().unwrap()), first);
    assert_eq!(computed.value(), 7);
}

#[test]
fn broadcasts_accumulators_and_added_files_in_tasks() {
    let sc = sc();
    check(CASES, (ints(), vec(any::<u64>(), 1..50)), |((data, s), table)| {
        let b = ok(sc.broadcast(table.clone()))?;
        let b2 = b.clone();
        let n = table.len();
        let got = ok(sc
            .parallelize(data.clone(), s)
            .map(Fn!(move |x: i32| b2.value()[x.rem_euclid(n as i32) as usize]))
            .collect())?;
        prop_assert_eq!(got, data.iter().map(|&x| table[x.rem_euclid(n as i32) as usize]).collect::<Vec<_>>());
        prop_assert_eq!(b.value(), &table);
        // Accumulators: each partition's updates merged exactly once per action,
        // whatever the action.
        let rdd = sc.parallelize(data.clone(), s);
        let per_elem = sc.accumulator(0u64);
        let parts = sc.accumulator(0u64);
        let (pe, pa) = (per_elem.clone(), parts.clone());
        let counted = rdd.map_partitions(Fn!(move |it: BoxIter<i32>| {
            pa.add(1);
            let v: Vec<i32> = it.collect();
            pe.add(v.len() as u64);
            v
        }));
        ok(counted.count())?;
        prop_assert_eq!(parts.value(), s as u64);
        prop_assert_eq!(per_elem.value(), data.len() as u64);
        ok(counted.collect())?;
        prop_assert_eq!(parts.value(), 2 * s as u64);
        prop_assert_eq!(per_elem.value(), 2 * data.len() as u64);
        // Through a shuffle: the map stage counts once per map partition.
        ok(counted.map(Fn!(|x: i32| (x.rem_euclid(3), 1u32))).reduce_by_key(Fn!(|a: u32, b: u32| a + b)).collect())?;
        prop_assert_eq!(parts.value(), 3 * s as u64);
        Ok(())
    });
    // addFile: every task finds its copy by name.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookup.txt");
    std::fs::write(&path, "alpha\nbeta\ngamma\n").unwrap();
    let name = sc.add_file(&path).unwrap();
    assert_eq!(name, "lookup.txt");
    let lines = sc
        .parallelize((0..12usize).collect(), 5)
        .map(Fn!(move |i: usize| {
            let local = ember::files::get(&name).expect("added file");
            let text = std::fs::read_to_string(local).expect("readable copy");
            text.lines().nth(i % 3).unwrap().to_string()
        }))
        .collect()
        .unwrap();
    let words = ["alpha", "beta", "gamma"];
    assert_eq!(lines, (0..12).map(|i| words[i % 3].to_string()).collect::<Vec<_>>());
    assert!(ember::files::get("never-added.txt").is_err());
    assert!(sc.add_file(dir.path().join("missing.txt")).is_err());
}

#[test]
fn caching_under_a_small_memory_budget() {
    // 64 KiB of executor memory: a partition of 1000 u64 is ~11 KiB.
    let sc = EmberContext::new(Conf::new().master("local[2]").set("spark.executor.memory", "64k")).unwrap();
    let expected: Vec<u64> = (0..8000u64).map(|x| x * 3).collect();
    for (level, exact) in [
        (StorageLevel::MemoryOnly, false),
        (StorageLevel::MemoryOnlySer, false),
        (StorageLevel::MemoryAndDisk, true),
        (StorageLevel::DiskOnly, true),
    ] {
        let computed = sc.accumulator(0u64);
        let c2 = computed.clone();
        let rdd = sc
            .parallelize((0..8000u64).collect(), 8)
            .map(Fn!(move |x: u64| {
                c2.add(1);
                x * 3
            }))
            .persist(level);
        for _ in 0..3 {
            assert_eq!(rdd.collect().unwrap(), expected, "{level:?}");
        }
        if exact {
            // Whatever did not fit in memory went to disk: nothing recomputed.
            assert_eq!(computed.value(), 8000, "{level:?}");
        }
        rdd.unpersist();
    }
    // A partition larger than the whole budget goes to disk (MEMORY_AND_DISK)
    // without pushing out the small partitions already cached.
    let small_computed = sc.accumulator(0u64);
    let c2 = small_computed.clone();
    let small = sc
        .parallelize((0..100u64).collect(), 2)
        .map(Fn!(move |x: u64| {
            c2.add(1);
            x
        }))
        .cache();
    assert_eq!(small.count().unwrap(), 100);
    let big_computed = sc.accumulator(0u64);
    let c3 = big_computed.clone();
    let big = sc
        .parallelize((0..20_000u64).collect(), 1)
        .map(Fn!(move |x: u64| {
            c3.add(1);
            x + 1
        }))
        .persist(StorageLevel::MemoryAndDisk);
    assert_eq!(big.count().unwrap(), 20_000);
    assert_eq!(big.count().unwrap(), 20_000);
    assert_eq!(big_computed.value(), 20_000, "the big partition was kept on disk");
    assert_eq!(small.count().unwrap(), 100);
    assert_eq!(small_computed.value(), 100, "a block that can never fit must not evict the cached ones");
}
