//! Files by path and `file://` URL, compressed input and output, and the output
//! commit protocol, through whole jobs on `local[2]`.

use ember::EmberError;
use ember::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

fn sc() -> EmberContext {
    EmberContext::new(Conf::new().master("local[2]").set("spark.ui.enabled", "false")).unwrap()
}

/// Word counts of `path` (a path, URL, glob or list), as a sorted map.
fn word_counts(sc: &EmberContext, path: &str) -> ember::Result<BTreeMap<String, u64>> {
    let counts = sc
        .text_file(path, 3)?
        .flat_map(Fn!(|line: String| line.split_whitespace().map(str::to_string).collect::<Vec<_>>()))
        .map(Fn!(|w: String| (w, 1u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b))
        .collect()?;
    Ok(counts.into_iter().collect())
}

fn corpus() -> String {
    (0..20_000).map(|i| format!("día {} vida {}\n", i % 97, i % 13)).collect()
}

/// The lines of every `part-*` file of an output directory, sorted.
fn output_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("part-") {
            let sc = sc();
            lines.extend(sc.text_file(path.to_str().unwrap(), 1).unwrap().collect().unwrap());
        }
    }
    lines.sort();
    lines
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn compressed_input_counts_as_its_plain_twin() {
    let dir = tempfile::tempdir().unwrap();
    let text = corpus();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, &text).unwrap();
    let sc = sc();
    let want = word_counts(&sc, plain.to_str().unwrap()).unwrap();
    assert_eq!(want.values().sum::<u64>(), 80_000);
    for codec in Codec::ALL {
        let path = dir.path().join(format!("in.txt.{}", codec.extension()));
        let mut e = codec.encoder(std::fs::File::create(&path).unwrap()).unwrap();
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
        assert_eq!(word_counts(&sc, path.to_str().unwrap()).unwrap(), want, "{codec}");
        assert_eq!(sc.text_file(path.to_str().unwrap(), 8).unwrap().num_partitions(), 1, "{codec}: one split");
    }
}

#[test]
fn a_corrupt_gz_fails_the_job_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.txt.gz");
    let mut e = Codec::Gzip.encoder(Vec::new()).unwrap();
    e.write_all(corpus().as_bytes()).unwrap();
    let packed = e.finish().unwrap();
    std::fs::write(&path, &packed[..packed.len() - 100]).unwrap();
    let sc = sc();
    let err = sc.text_file(path.to_str().unwrap(), 1).unwrap().count().unwrap_err().to_string();
    assert!(err.contains("broken.txt.gz") && err.contains("cannot decompress (gzip)"), "{err}");
}

#[test]
fn each_codec_round_trips_through_save_and_text_file() {
    let dir = tempfile::tempdir().unwrap();
    let sc = sc();
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..5_000).map(|i| format!("línea {i}")).collect();
        v.sort();
        v
    };
    for codec in Codec::ALL {
        let out = dir.path().join(codec.name());
        sc.parallelize(want.clone(), 3).save_as_text_file_with_codec(out.to_str().unwrap(), codec).unwrap();
        let ext = codec.extension();
        assert_eq!(
            names(&out),
            [
                "_SUCCESS".to_string(),
                format!("part-00000.{ext}"),
                format!("part-00001.{ext}"),
                format!("part-00002.{ext}")
            ]
        );
        let mut got = sc.text_file(out.to_str().unwrap(), 1).unwrap().collect().unwrap();
        got.sort();
        assert_eq!(got, want, "{codec}");
    }
}

#[test]
fn file_urls_read_and_write_their_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("a.txt", "x y\n"), ("b.txt", "y z\n"), ("c.log", "z\n")] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let base = format!("file://{}", dir.path().display());
    let sc = sc();
    let counts = word_counts(&sc, &format!("{base}/*.txt,file:{}/c.log", dir.path().display())).unwrap();
    assert_eq!(counts, BTreeMap::from([("x".into(), 1), ("y".into(), 2), ("z".into(), 2)]));
    sc.parallelize(vec![1, 2, 3], 2).save_as_text_file(&format!("{base}/out")).unwrap();
    assert_eq!(output_lines(&dir.path().join("out")), ["1", "2", "3"]);
    let err = sc.text_file("hdfs://namenode:8020/in", 1).unwrap_err().to_string();
    assert!(err.contains("hdfs://namenode:8020/in") && err.contains("not supported"), "{err}");
    let err = sc.parallelize(vec![1], 1).save_as_text_file("s3a://bucket/out").unwrap_err();
    assert!(matches!(err, EmberError::OutputPath { .. }), "{err:?}");
}

#[test]
fn an_existing_output_is_refused_before_any_task_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let sc = sc();
    let ran = sc.accumulator(0u64);
    let acc = ran.clone();
    let err = sc
        .parallelize(vec![1, 2], 2)
        .map(Fn!(move |x: i32| {
            acc.add(1);
            x
        }))
        .save_as_text_file(out.to_str().unwrap())
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, EmberError::OutputPath { .. }) && message.contains("already exists"), "{message}");
    assert_eq!(ran.value(), 0, "no task ran");
    assert_eq!(names(&out), ["keep.txt"], "nothing of the existing directory was touched");
}

#[test]
fn a_failed_job_leaves_no_output_and_a_rerun_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sc = sc();
    let err = sc
        .parallelize((0..40).collect::<Vec<i32>>(), 4)
        .map(Fn!(|x: i32| if x == 35 { panic!("bad record {x}") } else { x }))
        .save_as_text_file(out.to_str().unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("bad record 35"), "{err}");
    assert!(!out.exists(), "a failed job left {:?}", names(&out));
    sc.parallelize((0..40).collect::<Vec<i32>>(), 4).save_as_text_file(out.to_str().unwrap()).unwrap();
    assert_eq!(names(&out), ["_SUCCESS", "part-00000", "part-00001", "part-00002", "part-00003"]);
    let mut want: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    want.sort();
    assert_eq!(output_lines(&out), want);
}

#[test]
fn whole_text_files_gives_each_file_whole_with_its_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "uno\ndos\n").unwrap();
    std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    let mut e = Codec::Zstd.encoder(std::fs::File::create(dir.path().join("b.txt.zst")).unwrap()).unwrap();
    e.write_all("tres".as_bytes()).unwrap();
    e.finish().unwrap();
    let sc = sc();
    let rdd = sc.whole_text_files(&format!("file://{}", dir.path().display()), 4).unwrap();
    assert_eq!(rdd.num_partitions(), 2);
    let mut got = rdd.collect().unwrap();
    got.sort();
    let url = |name: &str| format!("file:{}", dir.path().join(name).display());
    assert_eq!(got, vec![(url("a.txt"), "uno\ndos\n".to_string()), (url("b.txt.zst"), "tres".to_string())]);
    let err = sc.whole_text_files("/no/such/dir", 1).unwrap_err();
    assert!(matches!(err, EmberError::InputPath { .. }), "{err:?}");
}
