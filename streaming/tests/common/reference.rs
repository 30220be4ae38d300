//! Windowed operations and update_state_by_key against sequential references.

use super::{Outputs, run_batches};
use ember::prelude::*;
use ember_streaming::DStream;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const INTERVAL: u64 = 100;

pub type Batches = Vec<Vec<(u8, i64)>>;

/// The batches whose times fall in the window (t − length, t], t = (i+1)·interval.
fn window_of(batches: &Batches, end: usize, length_batches: usize) -> Vec<(u8, i64)> {
    let first = (end + 1).saturating_sub(length_batches);
    batches[first..=end].iter().flatten().copied().collect()
}

/// Output times of a window sliding every `slide` batches: 1-based batch numbers.
fn slide_ends(n: usize, slide: usize) -> Vec<usize> {
    (1..=n).filter(|i| i % slide == 0).map(|i| i - 1).collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn by_time<U: Ord>(out: Outputs<U>) -> Vec<(u64, Vec<U>)> {
    out.into_iter().map(|(t, v)| (t, sorted(v))).collect()
}

fn sum_by_key(records: &[(u8, i64)]) -> Vec<(u8, i64)> {
    let mut m = BTreeMap::new();
    for (k, v) in records {
        *m.entry(*k).or_insert(0) += v;
    }
    m.into_iter().collect()
}

pub fn batches_strategy() -> impl Strategy<Value = Batches> {
    proptest::collection::vec(
        prop_oneof![1 => Just(Vec::new()), 4 => proptest::collection::vec((0u8..6, -20i64..20), 0..12)],
        1..9,
    )
}

pub fn check_all(sc: &EmberContext, batches: &Batches, length: usize, slide: usize) -> Result<(), TestCaseError> {
    let n = batches.len();
    let ends = slide_ends(n, slide);
    let times: Vec<u64> = ends.iter().map(|e| (*e as u64 + 1) * INTERVAL).collect();
    let (len_d, slide_d) =
        (Duration::from_millis(length as u64 * INTERVAL), Duration::from_millis(slide as u64 * INTERVAL));

    // window
    let got = by_time(run_batches(sc, batches, INTERVAL, |s| s.window(len_d, slide_d)).unwrap());
    let want: Vec<_> = ends.iter().zip(&times).map(|(e, t)| (*t, sorted(window_of(batches, *e, length)))).collect();
    prop_assert_eq!(got, want, "window");

    // count_by_window: one count per window, 0 when empty
    let got = by_time(run_batches(sc, batches, INTERVAL, |s| s.count_by_window(len_d, slide_d)).unwrap());
    let want: Vec<_> =
        ends.iter().zip(&times).map(|(e, t)| (*t, vec![window_of(batches, *e, length).len() as u64])).collect();
    prop_assert_eq!(got, want, "count_by_window");

    // reduce_by_window: the sum, nothing for an empty window
    let got = by_time(
        run_batches(sc, batches, INTERVAL, |s: &DStream<(u8, i64)>| {
            s.map(Fn!(|kv: (u8, i64)| kv.1)).reduce_by_window(Fn!(|a: i64, b: i64| a + b), len_d, slide_d)
        })
        .unwrap(),
    );
    let want: Vec<_> = ends
        .iter()
        .zip(&times)
        .map(|(e, t)| {
            let w = window_of(batches, *e, length);
            (*t, if w.is_empty() { vec![] } else { vec![w.iter().map(|kv| kv.1).sum::<i64>()] })
        })
        .collect();
    prop_assert_eq!(got, want, "reduce_by_window");

    // reduce_by_key_and_window, without and with an inverse: the same result
    let want: Vec<_> =
        ends.iter().zip(&times).map(|(e, t)| (*t, sum_by_key(&window_of(batches, *e, length)))).collect();
    let plain = by_time(
        run_batches(sc, batches, INTERVAL, |s| s.reduce_by_key_and_window(Fn!(|a: i64, b: i64| a + b), len_d, slide_d))
            .unwrap(),
    );
    prop_assert_eq!(&plain, &want, "reduce_by_key_and_window");
    let inverse = by_time(
        run_batches(sc, batches, INTERVAL, |s| {
            s.reduce_by_key_and_window_inv(Fn!(|a: i64, b: i64| a + b), Fn!(|a: i64, b: i64| a - b), len_d, slide_d)
        })
        .unwrap(),
    );
    prop_assert_eq!(&inverse, &want, "reduce_by_key_and_window_inv");

    // count_by_value_and_window
    let got = by_time(run_batches(sc, batches, INTERVAL, |s| s.count_by_value_and_window(len_d, slide_d)).unwrap());
    let want: Vec<_> = ends
        .iter()
        .zip(&times)
        .map(|(e, t)| {
            let mut m = BTreeMap::new();
            for kv in window_of(batches, *e, length) {
                *m.entry(kv).or_insert(0u64) += 1;
            }
            (*t, m.into_iter().collect::<Vec<_>>())
        })
        .collect();
    prop_assert_eq!(got, want, "count_by_value_and_window");

    // update_state_by_key: running sums; a key whose sum reaches 0 is removed
    let got = by_time(
        run_batches(sc, batches, INTERVAL, |s: &DStream<(u8, i64)>| {
            s.update_state_by_key(Fn!(|new: Vec<i64>, old: Option<i64>| {
                let total = old.unwrap_or(0) + new.iter().sum::<i64>();
                if total == 0 && !new.is_empty() { None } else { Some(total) }
            }))
        })
        .unwrap(),
    );
    let mut state: BTreeMap<u8, i64> = BTreeMap::new();
    let mut want = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let mut new: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
        for (k, v) in batch {
            new.entry(*k).or_default().push(*v);
        }
        let keys: std::collections::BTreeSet<u8> = state.keys().chain(new.keys()).copied().collect();
        for k in keys {
            let values = new.get(&k).cloned().unwrap_or_default();
            let total = state.get(&k).copied().unwrap_or(0) + values.iter().sum::<i64>();
            if total == 0 && !values.is_empty() {
                state.remove(&k);
            } else {
                state.insert(k, total);
            }
        }
        want.push(((i as u64 + 1) * INTERVAL, state.clone().into_iter().collect::<Vec<_>>()));
    }
    prop_assert_eq!(got, want, "update_state_by_key");
    Ok(())
}
