//! Shuffle housekeeping in local mode: files per map task on disk, removed once
//! no RDD references the shuffle.

use ember::prelude::*;
use std::path::Path;

fn shuffle_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("shuffle_")) {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn shuffle_files_go_when_no_rdd_references_the_shuffle() {
    let dir = tempfile::tempdir().unwrap();
    let sc =
        EmberContext::new(Conf::new().master("local[2]").set("spark.local.dir", dir.path().to_str().unwrap())).unwrap();
    let pairs = sc.parallelize((0..1000u64).map(|i| (i % 10, i)).collect(), 4);
    let summed = pairs.reduce_by_key(Fn!(|a: u64, b: u64| a + b));
    assert_eq!(summed.count().unwrap(), 10);
    let files = shuffle_files(dir.path());
    // One data and one index file per map task.
    assert_eq!(files.iter().filter(|f| f.ends_with(".data")).count(), 4, "{files:?}");
    assert_eq!(files.iter().filter(|f| f.ends_with(".index")).count(), 4, "{files:?}");
    // Still referenced: a second job reuses the map outputs.
    assert_eq!(summed.values().fold(0, Fn!(|a: u64, b: u64| a + b)).unwrap(), (0..1000).sum::<u64>());
    drop(summed);
    assert_eq!(pairs.count().unwrap(), 1000);
    assert!(shuffle_files(dir.path()).is_empty(), "{:?}", shuffle_files(dir.path()));
}
