//! The streaming seed jobs (seed 003): word count of lines from a socket,
//! running totals kept across batches with `update_state_by_key`, and running
//! totals of files that appear in a directory, recovered from a checkpoint.

use ember::prelude::*;
use ember_streaming::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;

/// When a streaming job stops: after `batches` batches when set, else when
/// the process is told to (Ctrl-C or SIGTERM).
#[derive(Debug, Clone, Copy)]
pub struct StopAfter {
    pub batches: Option<usize>,
}

/// Words of a line as the seed's tables count them: split on whitespace, with
/// punctuation at either end removed ("vida," is "vida").
///
/// An ASCII line takes a byte-wise path (the same words: within ASCII, Unicode's
/// whitespace is bytes 9 to 13 and the space, and its alphanumerics are ASCII's),
/// which is most of a streaming word count's splitting time saved; other lines
/// go through `char`s. The vector is sized for words of about five letters.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(line.len() / 6 + 1);
    if line.is_ascii() {
        let bytes = line.as_bytes();
        let is_space = |b: &u8| matches!(*b, b'\t'..=b'\r' | b' ');
        for w in bytes.split(is_space) {
            let Some(start) = w.iter().position(u8::is_ascii_alphanumeric) else { continue };
            let end = w.iter().rposition(u8::is_ascii_alphanumeric).map_or(start, |e| e + 1);
            let at = w.as_ptr() as usize - bytes.as_ptr() as usize;
            out.push(line[at + start..at + end].to_owned());
        }
        return out;
    }
    out.extend(words_by_char(line));
    out
}

/// The words of [`words`] by `char`s: any line, the path of non-ASCII ones.
fn words_by_char(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
}

/// `(word, count)` of each batch.
pub fn batch_counts(lines: &DStream<String>) -> DStream<(String, u64)> {
    lines
        .flat_map(Fn!(|line: String| crate::jobs::streaming::words(&line)))
        .map(Fn!(|w: String| (w, 1u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b))
}

/// The seed's running total: new values summed onto the previous total.
pub fn running_totals(counts: &DStream<(String, u64)>) -> DStream<(String, u64)> {
    counts.update_state_by_key_named(
        "wordTotals",
        Fn!(|new: Vec<u64>, total: Option<u64>| Some(new.iter().sum::<u64>() + total.unwrap_or(0))),
    )
}

/// Starts `ssc` and waits for the stop condition; returns how many batches ran.
pub fn run_until(ssc: &StreamingContext, stop: StopAfter) -> ember::Result<usize> {
    run_until_polling(ssc, stop, |_| {})
}

/// [`run_until`], calling `poll` with the context about every 100 ms while it runs
/// and once more after it stopped.
pub fn run_until_polling(
    ssc: &StreamingContext,
    stop: StopAfter,
    mut poll: impl FnMut(&StreamingContext),
) -> ember::Result<usize> {
    ssc.start()?;
    let done_before = ssc.batch_infos().len();
    loop {
        if ssc.await_termination_or_timeout(Duration::from_millis(100))? {
            break;
        }
        poll(ssc);
        if let Some(n) = stop.batches
            && ssc.batch_infos().len() - done_before >= n
        {
            ssc.stop(false, true);
            break;
        }
    }
    ssc.await_termination()?;
    poll(ssc);
    Ok(ssc.batch_infos().len() - done_before)
}

/// The seed's network word count: each batch's counts printed with `print`.
pub fn network_wordcount(
    sc: &EmberContext,
    host: &str,
    port: u16,
    batch_ms: u64,
    stop: StopAfter,
) -> ember::Result<Value> {
    let ssc = StreamingContext::new(sc, Duration::from_millis(batch_ms))?;
    let lines = ssc.socket_text_stream(host, port);
    batch_counts(&lines).pprint();
    let batches = run_until(&ssc, stop)?;
    Ok(json!({ "batches": batches }))
}

/// Parameters of [`stateful_wordcount`].
#[derive(Debug, Clone)]
pub struct StatefulWordcount {
    pub host: String,
    pub port: u16,
    pub checkpoint: String,
    pub batch_ms: u64,
    /// Also save the totals each batch as `word<TAB>count` lines in `OUTPUT-<time ms>/`.
    pub output: Option<String>,
    /// Benchmark report (docs/bench/stream_latency.py reads it): a `BATCH` line per
    /// batch once its totals are computed and a `STAT` line per completed batch.
    pub report: bool,
}

/// Word index of the benchmark generator's words (`w<i>`, docs/bench/stream_load.py).
fn load_word_index(word: &str) -> Option<u64> {
    word.strip_prefix('w')?.parse().ok()
}

/// The benchmark's output of the totals of each batch: one pass over the state
/// computes the total word count and the generator's checksum (sum over words
/// `w<i>` of count × (i + 1)), then prints, once that is done,
/// `BATCH time_ms=<batch time> lines=<lines in the batch> cum_lines=<lines so far>
/// done_ms=<wall clock ms> words=<total words> checksum=<checksum>`.
/// Every generated line has ten words, so lines so far = words / 10.
fn report_totals(totals: &DStream<(String, u64)>) {
    let previous = std::sync::atomic::AtomicU64::new(0);
    totals.foreach_rdd(move |rdd, time| {
        let (words, checksum) = rdd.aggregate(
            (0u64, 0u64),
            Fn!(|acc: (u64, u64), wc: (String, u64)| {
                let weight = crate::jobs::streaming::load_word_index(&wc.0).map_or(0, |i| i + 1);
                (acc.0 + wc.1, acc.1 + wc.1 * weight)
            }),
            Fn!(|a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1 + b.1)),
        )?;
        let done_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let cum_lines = words / 10;
        let before = previous.swap(cum_lines, std::sync::atomic::Ordering::Relaxed);
        let lines = cum_lines.saturating_sub(before);
        println!(
            "BATCH time_ms={} lines={lines} cum_lines={cum_lines} done_ms={done_ms} words={words} checksum={checksum}",
            time.0
        );
        Ok(())
    });
}

/// Prints `STAT time_ms=<batch time> records=<received> sched_ms=<scheduling delay>
/// proc_ms=<processing time> total_ms=<total delay>` for each batch completed since
/// the last call (`last` is the newest batch time printed).
fn report_batch_infos(ssc: &StreamingContext, last: &mut u64) {
    for info in ssc.batch_infos() {
        if info.batch_time.0 > *last {
            *last = info.batch_time.0;
            println!(
                "STAT time_ms={} records={} sched_ms={} proc_ms={} total_ms={}",
                info.batch_time.0,
                info.input_records,
                info.scheduling_delay_ms(),
                info.processing_delay_ms(),
                info.total_delay_ms()
            );
        }
    }
}

/// Running word totals across batches (the seed's `updateStateByKey`), printed each batch.
pub fn stateful_wordcount(sc: &EmberContext, p: &StatefulWordcount, stop: StopAfter) -> ember::Result<Value> {
    let ssc = StreamingContext::get_or_create(&p.checkpoint, || {
        let ssc = StreamingContext::new(sc, Duration::from_millis(p.batch_ms))?;
        ssc.checkpoint(&p.checkpoint)?;
        let lines = ssc.socket_text_stream(&p.host, p.port);
        let totals = running_totals(&batch_counts(&lines));
        totals.pprint();
        if p.report {
            report_totals(&totals);
        }
        if let Some(output) = &p.output {
            totals.map(Fn!(|wc: (String, u64)| format!("{}\t{}", wc.0, wc.1))).save_as_text_files(output, "");
        }
        Ok(ssc)
    })?;
    let mut last = 0;
    let batches = run_until_polling(&ssc, stop, |ssc| {
        if p.report {
            report_batch_infos(ssc, &mut last);
        }
    })?;
    Ok(json!({ "batches": batches }))
}

/// Parameters of [`file_wordcount`].
#[derive(Debug, Clone)]
pub struct FileWordcount {
    pub dir: String,
    pub checkpoint: String,
    /// Prefix of the per-batch output directories.
    pub output: String,
    pub batch_ms: u64,
    pub checkpoint_interval_ms: Option<u64>,
}

/// Running word totals of every file that appeared in `dir`, saved each batch
/// as `word<TAB>count` lines in `PREFIX-<time ms>` directories; resumes from
/// its checkpoint after a restart.
pub fn file_wordcount(sc: &EmberContext, params: &FileWordcount, stop: StopAfter) -> ember::Result<Value> {
    let p = params;
    let ssc = StreamingContext::get_or_create(&p.checkpoint, || {
        let ssc = StreamingContext::new(sc, Duration::from_millis(p.batch_ms))?;
        ssc.checkpoint(&p.checkpoint)?;
        if let Some(ms) = p.checkpoint_interval_ms {
            ssc.set_checkpoint_interval(Duration::from_millis(ms));
        }
        let lines = ssc.text_file_stream_named(&p.dir, Some("inputFiles"))?;
        running_totals(&batch_counts(&lines))
            .map(Fn!(|wc: (String, u64)| format!("{}\t{}", wc.0, wc.1)))
            .save_as_text_files(&p.output, "");
        Ok(ssc)
    })?;
    let recovered = ssc.is_recovering();
    let batches = run_until(&ssc, stop)?;
    Ok(json!({ "batches": batches, "recovered": recovered }))
}

#[cfg(test)]
mod tests {
    use super::{words, words_by_char};

    #[test]
    fn ascii_lines_split_as_unicode_lines_do() {
        assert_eq!(words("buen día vida, buen día mundo"), ["buen", "día", "vida", "buen", "día", "mundo"]);
        assert_eq!(words("  (que) hermosa\x0bes\tla vida!\r\n"), ["que", "hermosa", "es", "la", "vida"]);
        assert_eq!(words(" ,, - w1 "), ["w1"]);
        // Every short line over an alphabet of letters, digits, punctuation and each ASCII whitespace byte.
        let alphabet = ['a', 'Z', '7', ',', '-', '(', ' ', '\t', '\n', '\x0b', '\x0c', '\r', '\x1f', '\x7f'];
        let mut line = String::new();
        for n in 0..alphabet.len().pow(4) {
            line.clear();
            let mut k = n;
            for _ in 0..4 {
                line.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            assert_eq!(words(&line), words_by_char(&line).collect::<Vec<_>>(), "{line:?}");
        }
    }
}
