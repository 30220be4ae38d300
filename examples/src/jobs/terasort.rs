//! TeraSort: teragen writes 100-byte records (10-byte key, 90-byte value),
//! terasort sorts them globally by key, teravalidate checks the order and that
//! no record was lost or changed (an order-independent checksum).

use crate::mix;
use ember::prelude::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

pub const RECORD_LEN: usize = 100;
pub const KEY_LEN: usize = 10;

/// Record `row`: a random key, then the row id in hex and filler.
pub fn record(row: u64) -> Vec<u8> {
    let mut rec = Vec::with_capacity(RECORD_LEN);
    let (a, b) = (mix(row), mix(row ^ 0xdead_beef));
    rec.extend_from_slice(&a.to_be_bytes());
    rec.extend_from_slice(&b.to_be_bytes()[..2]);
    rec.extend_from_slice(format!("{row:032X}").as_bytes());
    rec.extend((0..(RECORD_LEN - KEY_LEN - 32) as u64).map(|j| b'A' + ((row + j) % 26) as u8));
    rec
}

pub fn record_checksum(rec: &[u8]) -> u64 {
    mix(u64::from(crc32_of(rec)) ^ rec.len() as u64)
}

fn crc32_of(data: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE); records are short and this keeps the example self-contained.
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn write_part(dir: &str, index: usize, records: impl Iterator<Item = Vec<u8>>) -> (u64, u64) {
    let path = Path::new(dir).join(format!("part-{index:05}"));
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (mut n, mut sum) = (0u64, 0u64);
    for rec in records {
        sum = sum.wrapping_add(record_checksum(&rec));
        out.write_all(&rec).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        n += 1;
    }
    out.flush().unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    (n, sum)
}

fn create_output(dir: &str) -> ember::Result<()> {
    if Path::new(dir).exists() {
        return Err(ember::EmberError::InputPath {
            path: dir.into(),
            reason: "output directory already exists".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| ember::EmberError::io(dir, e))
}

fn totals(parts: Vec<(u64, u64)>) -> (u64, u64) {
    parts.into_iter().fold((0, 0), |a, b| (a.0 + b.0, a.1.wrapping_add(b.1)))
}

pub fn teragen(sc: &EmberContext, records: u64, output: &str, partitions: usize) -> ember::Result<Value> {
    create_output(output)?;
    let dir = output.to_string();
    let parts = sc
        .range(0, records as i64, 1, partitions)?
        .map_partitions_with_index(Fn!(move |index: usize, rows: ember::BoxIter<i64>| {
            vec![write_part(&dir, index, rows.map(|r| record(r as u64)))]
        }))
        .collect()?;
    let (n, checksum) = totals(parts);
    Ok(json!({ "records": n, "checksum": checksum.to_string() }))
}

pub fn terasort(sc: &EmberContext, input: &str, output: &str, partitions: usize) -> ember::Result<Value> {
    let records = sc.binary_records(input, RECORD_LEN, partitions)?;
    let partitions = if partitions == 0 { records.num_partitions() } else { partitions };
    create_output(output)?;
    let dir = output.to_string();
    let sorted = records
        .map(Fn!(|rec: Vec<u8>| {
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(&rec[..KEY_LEN]);
            (key, rec[KEY_LEN..].to_vec())
        }))
        .sort_by_key_with(true, partitions)?;
    let parts = sorted
        .map_partitions_with_index(Fn!(move |index: usize, kvs: ember::BoxIter<([u8; 10], Vec<u8>)>| {
            vec![write_part(
                &dir,
                index,
                kvs.map(|(k, v)| {
                    let mut rec = k.to_vec();
                    rec.extend_from_slice(&v);
                    rec
                }),
            )]
        }))
        .collect()?;
    let (n, checksum) = totals(parts);
    Ok(json!({ "records": n, "checksum": checksum.to_string() }))
}

pub fn teravalidate(sc: &EmberContext, input: &str) -> ember::Result<Value> {
    let parts = sc
        .binary_records(input, RECORD_LEN, 1)?
        .map_partitions(Fn!(|recs: ember::BoxIter<Vec<u8>>| {
            let (mut n, mut sum, mut sorted) = (0u64, 0u64, true);
            let (mut first, mut last): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
            for rec in recs {
                let key = rec[..KEY_LEN].to_vec();
                if last.as_ref().is_some_and(|l| *l > key) {
                    sorted = false;
                }
                if first.is_none() {
                    first = Some(key.clone());
                }
                last = Some(key);
                sum = sum.wrapping_add(record_checksum(&rec));
                n += 1;
            }
            vec![(n, sum, sorted, first, last)]
        }))
        .collect()?;
    let mut sorted = true;
    let mut prev_last: Option<Vec<u8>> = None;
    let (mut n, mut checksum) = (0u64, 0u64);
    for (count, sum, part_sorted, first, last) in parts {
        sorted &= part_sorted;
        if let (Some(p), Some(f)) = (&prev_last, &first)
            && p > f
        {
            sorted = false;
        }
        if last.is_some() {
            prev_last = last;
        }
        n += count;
        checksum = checksum.wrapping_add(sum);
    }
    Ok(json!({ "records": n, "checksum": checksum.to_string(), "sorted": sorted }))
}
