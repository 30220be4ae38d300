//! Word count: textFile → flatMap(split on whitespace) → reduceByKey.

use ember::prelude::*;
use serde_json::{Value, json};

pub fn counts(sc: &EmberContext, input: &str, partitions: usize) -> ember::Result<Rdd<(String, u64)>> {
    Ok(sc
        .text_file(input, partitions)?
        .flat_map(Fn!(|line: String| line.split_whitespace().map(str::to_owned).collect::<Vec<String>>()))
        .map(Fn!(|w: String| (w, 1u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b)))
}

pub fn run(
    sc: &EmberContext,
    input: &str,
    output: Option<(&str, Option<ember::Codec>)>,
    partitions: usize,
) -> ember::Result<Value> {
    let counts = counts(sc, input, partitions)?;
    let (distinct, total) = counts.aggregate(
        (0u64, 0u64),
        Fn!(|acc: (u64, u64), wc: (String, u64)| (acc.0 + 1, acc.1 + wc.1)),
        Fn!(|a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1 + b.1)),
    )?;
    if let Some((dir, codec)) = output {
        // Reuses the shuffle output of the job above: only the reduce side runs again.
        let lines = counts.map(Fn!(|wc: (String, u64)| format!("{}\t{}", wc.0, wc.1)));
        match codec {
            Some(codec) => lines.save_as_text_file_with_codec(dir, codec)?,
            None => lines.save_as_text_file(dir)?,
        }
    }
    Ok(json!({ "distinct": distinct, "total": total }))
}
