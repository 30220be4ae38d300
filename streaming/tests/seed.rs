//! The seed's stateful word count (seed 003): two chunks of text, the state
//! after each batch checked against the seed's tables (key, new values,
//! history, returned value), with and without reduceByKey before the update.

mod common;

use common::run_batches;
use ember::prelude::*;
use std::collections::BTreeMap;

const T1: &str = "buen día vida, buen día mundo";
const T2: &str = "que hermosa es la vida, que hermoso es el mundo";

/// A row of the seed's table: new values, history, returned total.
type Row = (Vec<u64>, Option<u64>, u64);

fn words(line: String) -> Vec<String> {
    line.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

fn table(rows: &[(&str, &[u64], Option<u64>, u64)]) -> BTreeMap<String, Row> {
    rows.iter().map(|(k, new, hist, ret)| (k.to_string(), (new.to_vec(), *hist, *ret))).collect()
}

fn run(reduce_first: bool) -> Vec<BTreeMap<String, Row>> {
    let sc = EmberContext::new(Conf::new().master("local[2]")).unwrap();
    let batches = vec![vec![T1.to_string()], vec![T2.to_string()]];
    let out = run_batches(&sc, &batches, 1000, |lines| {
        let pairs = lines.flat_map(Fn!(|l: String| words(l))).map(Fn!(|w: String| (w, 1u64)));
        let counts = if reduce_first { pairs.reduce_by_key(Fn!(|a: u64, b: u64| a + b)) } else { pairs };
        // The state records what the seed's update function saw: (total, newValues, history).
        counts.update_state_by_key(Fn!(|new: Vec<u64>, old: Option<(u64, Vec<u64>, Option<u64>)>| {
            let history = old.map(|o| o.0);
            let mut new = new;
            new.sort();
            Some((new.iter().sum::<u64>() + history.unwrap_or(0), new, history))
        }))
    })
    .unwrap();
    sc.stop();
    out.into_iter()
        .map(|(_, records)| records.into_iter().map(|(k, (ret, new, hist))| (k, (new, hist, ret))).collect())
        .collect()
}

#[test]
fn state_after_each_chunk_matches_the_seeds_tables() {
    let states = run(true);
    assert_eq!(states.len(), 2);
    assert_eq!(
        states[0],
        table(&[("buen", &[2], None, 2), ("día", &[2], None, 2), ("vida", &[1], None, 1), ("mundo", &[1], None, 1)])
    );
    assert_eq!(
        states[1],
        table(&[
            ("buen", &[], Some(2), 2),
            ("día", &[], Some(2), 2),
            ("vida", &[1], Some(1), 2),
            ("mundo", &[1], Some(1), 2),
            ("que", &[2], None, 2),
            ("hermosa", &[1], None, 1),
            ("es", &[2], None, 2),
            ("la", &[1], None, 1),
            ("hermoso", &[1], None, 1),
            ("el", &[1], None, 1),
        ])
    );
}

#[test]
fn without_reduce_by_key_the_update_sees_every_value() {
    let states = run(false);
    assert_eq!(
        states[0],
        table(&[
            ("buen", &[1, 1], None, 2),
            ("día", &[1, 1], None, 2),
            ("vida", &[1], None, 1),
            ("mundo", &[1], None, 1)
        ])
    );
    assert_eq!(
        states[1],
        table(&[
            ("buen", &[], Some(2), 2),
            ("día", &[], Some(2), 2),
            ("vida", &[1], Some(1), 2),
            ("mundo", &[1], Some(1), 2),
            ("que", &[1, 1], None, 2),
            ("hermosa", &[1], None, 1),
            ("es", &[1, 1], None, 2),
            ("la", &[1], None, 1),
            ("hermoso", &[1], None, 1),
            ("el", &[1], None, 1),
        ])
    );
}
