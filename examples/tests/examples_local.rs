//! The example jobs on a local context, each checked against an independent
//! sequential computation; and the built binary run end to end once.

use ember::EmberContext;
use ember_examples::jobs::{gen_text, join, pi, sumsq, tasklist, terasort, wordcount};
use std::collections::HashMap;
use std::time::Instant;

fn sc() -> EmberContext {
    EmberContext::local(2).unwrap()
}

#[test]
fn sumsq_ten_million_is_exact() {
    let sc = sc();
    let n = 10_000_000u64;
    let started = Instant::now();
    let out = sumsq::run(&sc, n, 50).unwrap();
    eprintln!("sumsq n={n} on local[2]: {:?}", started.elapsed());
    assert_eq!(out["count"], n);
    let sum: u128 = out["sum"].as_str().unwrap().parse().unwrap();
    assert_eq!(sum, sumsq::expected_sum(n));
    // A direct loop over x, written independently of the job's f and of the
    // closed form: Σ_{i<50} (x+i)² = 50x² + 2x·Σi + Σi² = 50x² + 2450x + 40425.
    // (The full double loop costs ~16 s in a debug build; it is checked against
    // this per-x form on a prefix below.)
    let per_x = |x: u128| 50 * x * x + 2450 * x + 40425;
    let started = Instant::now();
    let direct: u128 = (0..n as u128).map(per_x).sum();
    eprintln!("direct loop: {:?}", started.elapsed());
    assert_eq!(sum, direct);
    for x in 0..100_000u128 {
        let double: u128 = (0..50u128).map(|i| (x + i) * (x + i)).sum();
        assert_eq!(per_x(x), double);
    }
}

#[test]
fn wordcount_matches_an_independent_count() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.txt");
    let output = dir.path().join("counts");
    let generated = gen_text::run(300_000, input.to_str().unwrap(), 5).unwrap();
    assert_eq!(generated["bytes"], 300_000);
    let text = std::fs::read_to_string(&input).unwrap();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for w in text.split_whitespace() {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    let out = wordcount::run(&sc, input.to_str().unwrap(), Some((output.to_str().unwrap(), None)), 3).unwrap();
    assert_eq!(out["distinct"], expected.len() as u64);
    assert_eq!(out["total"], expected.values().sum::<u64>());
    assert_eq!(out["total"], generated["words"]);
    assert!(output.join("_SUCCESS").exists());
    let mut got: HashMap<String, u64> = HashMap::new();
    for entry in std::fs::read_dir(&output).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let (word, count) = line.split_once('\t').expect("word<TAB>count");
            let previous = got.insert(word.to_string(), count.parse().unwrap());
            assert!(previous.is_none(), "{word} written twice");
        }
    }
    assert_eq!(got, expected);
}

#[test]
fn tasklist_equals_sequential_evaluation() {
    let sc = sc();
    for (samples, seed, partitions) in [(25u32, 42u64, 8usize), (3, 7, 20), (0, 1, 3)] {
        let out = tasklist::run(&sc, samples, seed, partitions).unwrap();
        let params = tasklist::generate(samples, seed);
        assert_eq!(params.len(), 4 * samples as usize);
        let results: Vec<_> = params.iter().map(tasklist::evaluate).collect();
        assert_eq!(out, tasklist::summarize(&results));
    }
}

#[test]
fn join_equals_nested_loops() {
    let sc = sc();
    let (large, small, keys, seed) = (6_000u64, 400u64, 900u64, 11u64);
    let out =
        join::run(&sc, &join::JoinParams { large, small, keys, partitions: 4, seed, pause_file: None, task_ms: 0 })
            .unwrap();
    let right: Vec<(u64, u64)> = (0..small).map(|j| join::small_row(j, seed)).collect();
    let (mut rows, mut checksum) = (0u64, 0u64);
    for i in 0..large {
        let (k, v) = join::large_row(i, keys, seed);
        for &(k2, w) in &right {
            if k == k2 {
                rows += 1;
                checksum = checksum.wrapping_add(join::row_checksum(k, v, w));
            }
        }
    }
    assert!(rows > 0);
    assert_eq!(out["rows"], rows);
    assert_eq!(out["checksum"], checksum.to_string());
}

#[test]
fn teragen_terasort_teravalidate() {
    let sc = sc();
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen");
    let sorted = dir.path().join("sorted");
    let records = 5_000u64;
    let gen_out = terasort::teragen(&sc, records, generated.to_str().unwrap(), 4).unwrap();
    assert_eq!(gen_out["records"], records);
    let unsorted = terasort::teravalidate(&sc, generated.to_str().unwrap()).unwrap();
    assert_eq!(unsorted["sorted"], false, "random keys are not in order");
    let sort_out = terasort::terasort(&sc, generated.to_str().unwrap(), sorted.to_str().unwrap(), 3).unwrap();
    assert_eq!(sort_out["records"], records);
    assert_eq!(sort_out["checksum"], gen_out["checksum"]);
    let valid = terasort::teravalidate(&sc, sorted.to_str().unwrap()).unwrap();
    assert_eq!(valid["sorted"], true);
    assert_eq!(valid["records"], records);
    assert_eq!(valid["checksum"], gen_out["checksum"]);
    assert_eq!(unsorted["checksum"], gen_out["checksum"]);
    // The sorted output, read independently, is every generated record in key order.
    let mut expected: Vec<Vec<u8>> = (0..records).map(terasort::record).collect();
    expected.sort_by(|a, b| a[..terasort::KEY_LEN].cmp(&b[..terasort::KEY_LEN]));
    let mut parts: Vec<_> = std::fs::read_dir(&sorted).unwrap().map(|e| e.unwrap().path()).collect();
    parts.sort();
    let bytes: Vec<u8> = parts.iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
    let got: Vec<Vec<u8>> = bytes.chunks(terasort::RECORD_LEN).map(<[u8]>::to_vec).collect();
    let keys = |v: &[Vec<u8>]| -> Vec<Vec<u8>> { v.iter().map(|r| r[..terasort::KEY_LEN].to_vec()).collect() };
    assert_eq!(keys(&got), keys(&expected));
    let mut got_sorted = got;
    got_sorted.sort();
    expected.sort();
    assert_eq!(got_sorted, expected);
}

#[test]
fn pi_is_close() {
    let sc = sc();
    let out = pi::run(&sc, 1_000_000, 8).unwrap();
    let estimate = out["pi"].as_f64().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 0.01, "pi estimate {estimate}");
    assert_eq!(out["samples"], 1_000_000);
}

#[test]
fn binary_end_to_end() {
    let bin = env!("CARGO_BIN_EXE_ember-examples");
    let out = std::process::Command::new(bin)
        .args(["sumsq", "--n", "100000", "--partitions", "7"])
        .args(["--master", "local[2]"])
        .env_remove("EMBER_CONF")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().expect("some output");
    let json: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    assert_eq!(json["count"], 100_000);
    assert_eq!(json["sum"], sumsq::expected_sum(100_000).to_string());

    let out = std::process::Command::new(bin)
        .args(["wordcount", "--input", "/nonexistent", "--master", "local[2]"])
        .env_remove("EMBER_CONF")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent"), "{stderr}");
}
