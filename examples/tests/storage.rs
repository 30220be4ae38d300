//! Paths on a `local-cluster` of real processes: relative paths resolve against
//! the driver's working directory for every process, compressed input and output
//! round trip, and a failed save leaves nothing behind.

#[path = "../../driver/tests/support/s3.rs"]
mod s3;
mod support;

use ember::Codec;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use support::{Proc, job};

const MASTER: &str = "local-cluster[2,1,256]";

/// `word<TAB>count` lines of every gzip part file in `dir`.
fn gzip_counts(dir: &Path) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("part-") {
            continue;
        }
        assert!(name.ends_with(".gz"), "{name} is not a gzip part file");
        let mut text = String::new();
        Codec::Gzip.decoder(std::fs::File::open(&path).unwrap()).unwrap().read_to_string(&mut text).unwrap();
        for line in text.lines() {
            let (word, n) = line.split_once('\t').expect("word<TAB>count");
            assert!(counts.insert(word.to_string(), n.parse().unwrap()).is_none(), "{word} written twice");
        }
    }
    counts
}

#[test]
fn relative_paths_and_compressed_files_on_local_cluster() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("in")).unwrap();
    let text: String = (0..30_000).map(|i| format!("buen día {} mundo\n", i % 50)).collect();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for w in text.split_whitespace() {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    let mut bz = Codec::Bzip2.encoder(std::fs::File::create(work.path().join("in/part-a.txt.bz2")).unwrap()).unwrap();
    let (first, second) =
        text.split_at(text.as_bytes()[..text.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1);
    bz.write_all(first.as_bytes()).unwrap();
    bz.finish().unwrap();
    std::fs::write(work.path().join("in/part-b.txt"), second).unwrap();

    let mut cmd = job(MASTER, &["wordcount", "--input", "in", "--output", "out/counts", "--codec", "gzip"]);
    cmd.current_dir(work.path());
    let result = Proc::spawn(cmd).result();
    assert_eq!(result["total"], expected.values().sum::<u64>());
    let out = work.path().join("out/counts");
    assert!(out.join("_SUCCESS").exists(), "no _SUCCESS in the driver's working directory");
    assert_eq!(gzip_counts(&out), expected);

    // The same output again is refused by name, and the first output is untouched.
    let mut cmd = job(MASTER, &["wordcount", "--input", "in", "--output", "out/counts"]);
    cmd.current_dir(work.path());
    let refused = Proc::spawn(cmd);
    let line = refused.wait_for("already exists");
    assert!(line.contains("output path"), "{line}");
    let (code, _) = refused.finish();
    assert_ne!(code, Some(0));
    assert_eq!(gzip_counts(&out), expected);
}

#[test]
fn wordcount_from_and_to_an_object_store_on_local_cluster() {
    let server = s3::S3Server::start();
    server.create_bucket("corpus");
    let text: String = (0..20_000).map(|i| format!("que hermosa es la vida {}\n", i % 30)).collect();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for w in text.split_whitespace() {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    server.put("corpus", "in/part-0.txt", text.as_bytes());
    let mut args: Vec<String> = Vec::new();
    for (k, v) in server.settings() {
        args.extend(["--conf".to_string(), format!("{k}={v}")]);
    }
    args.extend(
        ["wordcount", "--input", "s3a://corpus/in", "--output", "s3a://corpus/out", "--partitions", "4"]
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = Proc::spawn(job(MASTER, &args)).result();
    assert_eq!(result["total"], expected.values().sum::<u64>());
    let keys = server.keys("corpus", "out/");
    assert!(keys.contains(&"out/_SUCCESS".to_string()), "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("_temporary")), "{keys:?}");
    // Read back through the engine, in-process.
    let conf = ember::Conf::new().master("local[1]").set("spark.ui.enabled", "false");
    let sc = ember::EmberContext::new(server.settings().into_iter().fold(conf, |c, (k, v)| c.set(k, v))).unwrap();
    let mut got: HashMap<String, u64> = HashMap::new();
    for line in sc.text_file("s3a://corpus/out", 1).unwrap().collect().unwrap() {
        let (word, n) = line.split_once('\t').expect("word<TAB>count");
        assert!(got.insert(word.to_string(), n.parse().unwrap()).is_none(), "{word} twice");
    }
    assert_eq!(got, expected);
}
