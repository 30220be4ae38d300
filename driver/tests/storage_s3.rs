//! `s3a://` input and output against a real S3 server process (moto, installed by
//! tests/tools/install-moto.sh), through whole jobs on `local[2]`.

mod support {
    pub mod s3;
}

use ember::prelude::*;
use ember::ui::AppSource;
use ember::{EmberError, Location};
use std::collections::BTreeMap;
use std::io::Write;
use support::s3::S3Server;

fn sc(server: &S3Server) -> EmberContext {
    let conf = Conf::new().master("local[2]").set("spark.ui.enabled", "false").set("spark.task.maxFailures", "2");
    EmberContext::new(server.settings().into_iter().fold(conf, |c, (k, v)| c.set(k, v))).unwrap()
}

fn word_counts(sc: &EmberContext, path: &str) -> ember::Result<BTreeMap<String, u64>> {
    let counts = sc
        .text_file(path, 3)?
        .flat_map(Fn!(|line: String| line.split_whitespace().map(str::to_string).collect::<Vec<_>>()))
        .map(Fn!(|w: String| (w, 1u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b))
        .collect()?;
    Ok(counts.into_iter().collect())
}

fn local_counts(texts: &[&str]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for w in texts.iter().flat_map(|t| t.split_whitespace()) {
        *m.entry(w.to_string()).or_default() += 1;
    }
    m
}

#[test]
fn reading_saving_and_failing_on_an_object_store() {
    let server = S3Server::start();
    server.create_bucket("data");
    let a = "buen día vida\nbuen día mundo\n";
    let b = "que hermosa es la vida\n";
    let c = "que hermoso es el mundo";
    server.put("data", "in/a.txt", a.as_bytes());
    server.put("data", "in/b.txt", b.as_bytes());
    server.put("data", "in/_SUCCESS", b"");
    server.put("data", "other/c.log", c.as_bytes());
    let sc = sc(&server);

    // A directory (markers left out), a glob, a comma list, a single object.
    assert_eq!(word_counts(&sc, "s3a://data/in").unwrap(), local_counts(&[a, b]));
    assert_eq!(word_counts(&sc, "s3a://data/in/*.txt").unwrap(), local_counts(&[a, b]));
    assert_eq!(word_counts(&sc, "s3a://data/in/a.txt, s3://data/other/c.log").unwrap(), local_counts(&[a, c]));
    assert_eq!(
        word_counts(&sc, "s3a://data/in/a.txt,s3a://data/in/b.txt,s3a://data/other").unwrap(),
        local_counts(&[a, b, c])
    );

    // Lines crossing split and ranged-GET boundaries, multi-byte characters at them.
    let big: String = (0..400_000).map(|i| format!("línea {i} día{}\n", "é".repeat(i % 7))).collect();
    assert!(big.len() as u64 > ember_core::filesystem::s3::READ_CHUNK_BYTES, "spans two ranged GETs");
    server.put("data", "big/text.txt", big.as_bytes());
    let want: Vec<String> = big.lines().map(str::to_string).collect();
    for partitions in [1, 7] {
        let rdd = sc.text_file("s3a://data/big/text.txt", partitions).unwrap();
        assert_eq!(rdd.num_partitions(), partitions);
        assert_eq!(rdd.collect().unwrap(), want, "{partitions} splits");
    }
    let mut gz = Codec::Gzip.encoder(Vec::new()).unwrap();
    gz.write_all(a.as_bytes()).unwrap();
    server.put("data", "gz/a.txt.gz", &gz.finish().unwrap());
    assert_eq!(word_counts(&sc, "s3a://data/gz/a.txt.gz").unwrap(), local_counts(&[a]));
    let whole = sc.whole_text_files("s3a://data/in", 2).unwrap().collect().unwrap();
    let mut whole: Vec<(String, String)> = whole;
    whole.sort();
    assert_eq!(whole, vec![("s3a://data/in/a.txt".into(), a.into()), ("s3a://data/in/b.txt".into(), b.into())]);

    // Save and read back; the first attempt of partition 1 fails and is retried.
    let lines: Vec<String> = (0..1000).map(|i| format!("row {i}")).collect();
    let rdd =
        sc.parallelize(lines.clone(), 3).map_partitions_with_index(Fn!(|index: usize, it: ember::BoxIter<String>| {
            let first = ember::TaskContext::with_current(|c| c.is_some_and(|c| c.attempt_number() == 0));
            assert!(!(index == 1 && first), "deliberate failure of the first attempt of partition 1");
            it
        }));
    rdd.save_as_text_file("s3a://data/out/rows").unwrap();
    assert_eq!(
        server.keys("data", "out/rows/"),
        ["out/rows/_SUCCESS", "out/rows/part-00000", "out/rows/part-00001", "out/rows/part-00002"]
    );
    assert_eq!(sc.text_file("s3a://data/out/rows", 2).unwrap().collect().unwrap(), lines);
    let raw: String = (0..3).map(|p| server.get_text("data", &format!("out/rows/part-0000{p}")).unwrap()).collect();
    assert_eq!(raw.lines().collect::<Vec<_>>(), lines, "the objects as the server holds them");
    sc.parallelize(lines.clone(), 2).save_as_text_file_with_codec("s3a://data/out/gz", Codec::Zstd).unwrap();
    assert_eq!(server.keys("data", "out/gz/"), ["out/gz/_SUCCESS", "out/gz/part-00000.zst", "out/gz/part-00001.zst"]);
    assert_eq!(sc.text_file("s3a://data/out/gz", 2).unwrap().collect().unwrap(), lines);

    // An existing output is refused before any task runs.
    let err = sc.parallelize(vec![1], 1).save_as_text_file("s3a://data/out/rows").unwrap_err();
    assert!(matches!(&err, EmberError::OutputPath { reason, .. } if reason.contains("already exists")), "{err:?}");
    // A failed job leaves nothing under its prefix.
    let err = sc
        .parallelize((0..30).collect::<Vec<i32>>(), 3)
        .map(Fn!(|x: i32| if x == 25 { panic!("bad record {x}") } else { x }))
        .save_as_text_file("s3a://data/out/failed")
        .unwrap_err();
    assert!(err.to_string().contains("bad record 25"), "{err}");
    assert!(server.keys("data", "out/failed").is_empty(), "{:?}", server.keys("data", "out/failed"));

    // A missing bucket or object: one clear error, naming the URL, before any task.
    let err = sc.text_file("s3a://no-such-bucket/in", 1).unwrap_err().to_string();
    assert!(err.contains("s3a://no-such-bucket/in") && err.contains("NoSuchBucket"), "{err}");
    assert!(!err.contains("<?xml"), "the server's XML is reduced to its code and message: {err}");
    let err = sc.text_file("s3a://data/missing/", 1).unwrap_err().to_string();
    assert!(err.contains("s3a://data/missing") && err.contains("no such object"), "{err}");
    let err = sc.parallelize(vec![1], 1).save_as_text_file("s3a://no-such-bucket/out").unwrap_err();
    assert!(matches!(err, EmberError::OutputPath { .. }), "{err:?}");
    assert!(err.to_string().contains("s3a://no-such-bucket/out") && err.to_string().contains("NoSuchBucket"), "{err}");
}

#[test]
fn checkpoints_and_event_logs_in_a_bucket() {
    let server = S3Server::start();
    server.create_bucket("work");
    let conf = server.settings().into_iter().fold(
        Conf::new()
            .master("local[2]")
            .set("spark.ui.enabled", "false")
            .set("spark.eventLog.enabled", "true")
            .set("spark.eventLog.dir", "s3a://work/events")
            .set("ember.eventLog.uploadInterval", "0s"),
        |c, (k, v)| c.set(k, v),
    );
    let sc = EmberContext::new(conf.clone()).unwrap();
    let location = sc.event_log_location().expect("event log on").to_string();
    assert!(location.starts_with("s3a://work/events/") && location.ends_with(".inprogress"), "{location}");
    let app_id = sc.app_id().to_string();
    let provider = ember::history::HistoryProvider::with_conf(Location::parse("s3a://work/events").unwrap(), conf);
    // The in-progress object, empty at first, then uploaded as the log grows
    // (every time the bus is quiet, with a zero interval).
    assert_eq!(provider.scan().unwrap(), 1, "an empty in-progress log is listed");
    assert_eq!(sc.parallelize(vec![1u8], 1).count().unwrap(), 1);
    let in_progress = location.trim_start_matches("s3a://work/").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server.get_text("work", &in_progress).unwrap_or_default().contains("SparkListenerJobEnd") {
        assert!(std::time::Instant::now() < deadline, "the in-progress log was never uploaded with the job");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    provider.scan().unwrap();
    let live = provider.get(&app_id).expect("listed while running");
    assert!(live.read().app.end_ms.is_none() && live.read().jobs.len() == 1);

    // add_file of an object: fetched by the driver, shipped to the tasks.
    server.put("work", "files/lookup.txt", b"seven\n");
    assert_eq!(sc.add_file("s3a://work/files/lookup.txt").unwrap(), "lookup.txt");
    let seen = sc
        .parallelize(vec![1u32, 2], 2)
        .map(Fn!(|_x: u32| std::fs::read_to_string(ember::files::get("lookup.txt").unwrap()).unwrap()))
        .collect()
        .unwrap();
    assert_eq!(seen, ["seven\n", "seven\n"]);
    let err = sc.add_file("s3a://work/files/missing.txt").unwrap_err().to_string();
    assert!(err.contains("s3a://work/files/missing.txt") && err.contains("no such object"), "{err}");

    // An RDD checkpoint: partition files in the bucket, read back by tasks.
    sc.set_checkpoint_dir("s3a://work/ckpt").unwrap();
    let rdd = sc.parallelize((0..1000u64).collect::<Vec<_>>(), 4).map(Fn!(|x: u64| (x % 7, x)));
    let checkpointed = rdd.checkpoint().unwrap();
    let parts = server.keys("work", "ckpt/");
    assert_eq!(parts.iter().filter(|k| k.contains("/part-")).count(), 4, "{parts:?}");
    let sums: BTreeMap<u64, u64> =
        checkpointed.reduce_by_key(Fn!(|a: u64, b: u64| a + b)).collect().unwrap().into_iter().collect();
    let mut want = BTreeMap::new();
    for x in 0..1000u64 {
        *want.entry(x % 7).or_insert(0) += x;
    }
    assert_eq!(sums, want);
    // A damaged partition file fails the job naming its URL.
    let first = parts.iter().find(|k| k.contains("/part-")).unwrap().clone();
    server.put("work", &first, b"not frames");
    let err = checkpointed.count().unwrap_err().to_string();
    assert!(err.contains(&format!("s3a://work/{first}")), "{err}");

    // The event log: uploaded whole under its final name at the clean end; the
    // history server reads it from the bucket.
    sc.stop();
    let keys = server.keys("work", "events/");
    assert_eq!(keys, [format!("events/{app_id}")], "the in-progress object is gone");
    assert_eq!(provider.scan().unwrap(), 1);
    let app = provider.get(&app_id).expect("the application");
    let state = app.read();
    assert!(state.app.end_ms.is_some() && state.jobs.len() >= 3, "{:?}", state.app);
}

#[test]
fn wrong_credentials_fail_once_with_the_url_and_the_cause() {
    let server = S3Server::start();
    server.create_bucket("data");
    server.put("data", "in/a.txt", b"one two\n");
    server.require_credentials();
    let sc = sc(&server);
    let started = std::time::Instant::now();
    let err = sc.text_file("s3a://data/in/a.txt", 1).unwrap_err().to_string();
    // A HEAD answer is a bare 403: the error says what it means.
    assert!(err.contains("s3a://data/in/a.txt") && err.contains("access denied (HTTP 403)"), "{err}");
    assert!(err.contains("spark.hadoop.fs.s3a.access.key"), "{err}");
    let err = sc.text_file("s3a://data/in/", 1).unwrap_err().to_string();
    assert!(err.contains("s3a://data/in") && err.contains("access denied (HTTP 403)"), "{err}");
    let err = sc.parallelize(vec![1], 1).save_as_text_file("s3a://data/out").unwrap_err();
    assert!(matches!(err, EmberError::OutputPath { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("s3a://data/out") && text.contains("access denied (HTTP 403)"), "{text}");
    // Refused, not retried: 4xx answers are final.
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn an_unreachable_endpoint_fails_once_and_quickly() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = Conf::new()
        .master("local[1]")
        .set("spark.ui.enabled", "false")
        .set("spark.hadoop.fs.s3a.endpoint", format!("http://127.0.0.1:{port}"))
        .set("spark.hadoop.fs.s3a.path.style.access", "true")
        .set("spark.hadoop.fs.s3a.access.key", "k")
        .set("spark.hadoop.fs.s3a.secret.key", "s")
        .set("spark.hadoop.fs.s3a.attempts.maximum", "1")
        .set("spark.hadoop.fs.s3a.retry.limit.ms", "2000");
    let sc = EmberContext::new(conf).unwrap();
    let started = std::time::Instant::now();
    let err = sc.text_file("s3a://data/in", 1).unwrap_err().to_string();
    assert!(err.contains("s3a://data/in"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}
