//! A deterministic text corpus for benchmarks: words drawn from a fixed
//! vocabulary with Zipf-like frequencies (as in natural language), lines of
//! 8 to 15 words.

use serde_json::{Value, json};
use std::io::Write;

const VOCABULARY: usize = 100_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn vocabulary(rng: &mut Rng) -> Vec<String> {
    let mut words = Vec::with_capacity(VOCABULARY);
    let mut seen = std::collections::HashSet::new();
    while words.len() < VOCABULARY {
        let len = 2 + (rng.next() % 9) as usize;
        let w: String = (0..len).map(|_| (b'a' + (rng.next() % 26) as u8) as char).collect();
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

pub fn run(bytes: u64, output: &str, seed: u64) -> std::io::Result<Value> {
    let mut rng = Rng(seed | 1);
    let words = vocabulary(&mut rng);
    // Zipf(s = 1.07) cumulative weights; rank r has weight 1/r^s.
    let mut cdf = Vec::with_capacity(VOCABULARY);
    let mut acc = 0.0;
    for r in 1..=VOCABULARY {
        acc += 1.0 / (r as f64).powf(1.07);
        cdf.push(acc);
    }
    let file = std::fs::File::create(output)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (mut written, mut total_words, mut lines) = (0u64, 0u64, 0u64);
    let mut line = String::with_capacity(256);
    while written < bytes {
        line.clear();
        let n = 8 + rng.next() % 8;
        for i in 0..n {
            let u = rng.unit() * acc;
            let idx = cdf.partition_point(|c| *c < u).min(VOCABULARY - 1);
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&words[idx]);
        }
        line.push('\n');
        let take = line.len().min((bytes - written) as usize);
        if take < line.len() {
            // Pad the last line out to exactly `bytes` with a word that fits.
            let pad: String = "x".repeat(take.saturating_sub(1));
            out.write_all(pad.as_bytes())?;
            if take > 0 {
                out.write_all(b"\n")?;
                total_words += u64::from(!pad.is_empty());
                lines += 1;
            }
            written += take as u64;
            break;
        }
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        total_words += n;
        lines += 1;
    }
    out.flush()?;
    Ok(json!({ "bytes": written, "words": total_words, "lines": lines, "path": output }))
}
