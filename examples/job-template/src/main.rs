//! A first Ember job: the most frequent words of a text, without stop words.
//!
//! ```text
//! cargo build --release
//! target/release/my-ember-job --master 'local[2]' README.md
//! target/release/my-ember-job --master 'local-cluster[2,1,1024]' --conf spark.ui.enabled=false README.md
//! ```
//!
//! The launcher options (`--master`, `--conf key=value`, `--name`,
//! `--properties-file`, `--executor-memory`, …) are spark-submit's; what follows
//! them is the job's own: here the input path (a file, a directory, a glob or an
//! `s3a://` URL) and how many words to print.

use ember::prelude::*;

/// A plain function passes where a closure goes: `rdd.map(normalize)`.
fn normalize(word: String) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()
}

fn main() -> std::process::ExitCode {
    // The same binary is every executor of a `local-cluster` or Kubernetes run:
    // `entry` serves tasks there and runs `job` only in the driver.
    ember::entry(|| match job() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    })
}

fn job() -> ember::Result<()> {
    let (sc, args) = EmberContext::from_args()?;
    let Some(input) = args.first() else {
        return Err(ember::EmberError::Config("usage: my-ember-job [launcher options] <input> [top]".into()));
    };
    let top: usize = match args.get(1) {
        Some(n) => n.parse().map_err(|_| ember::EmberError::Config(format!("top: not a number: {n:?}")))?,
        None => 10,
    };

    // Captured values: shipped to the executors with the closures that use them.
    let stop_words: Vec<String> = ["a", "an", "and", "the", "of", "to"].iter().map(|w| w.to_string()).collect();
    let width = 16;

    let mut counts = sc
        .text_file(input, 2)?
        .flat_map(Fn!(|line: String| {
            let mut words = vec![];
            for word in line.split_whitespace() {
                words.push(word.to_string());
            }
            words
        }))
        .map(normalize)
        .filter(Fn!(move |w: &String| !w.is_empty() && !stop_words.iter().any(|s| s == w)))
        .map(Fn!(|w: String| (w, 1u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b))
        .map(Fn!(move |(w, n): (String, u64)| (n, format!("{w:<width$} {n}"))))
        .collect()?;

    // Most frequent first, ties in word order.
    counts.sort_by(|(n, a), (m, b)| m.cmp(n).then_with(|| a.cmp(b)));
    for (_, line) in counts.iter().take(top) {
        println!("{line}");
    }
    println!("{} distinct words", counts.len());
    sc.stop();
    Ok(())
}
