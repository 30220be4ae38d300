//! Broadcasts SIZE MB of pseudo-random bytes (or ships them with addFile) and
//! runs tasks that each read the value and return a checksum of it: how long
//! until every executor has it, and how many bytes each process uploaded.

use ember::TaskContext;
use ember::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Deterministic pseudo-random bytes (xorshift64*), incompressible on purpose.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A 64-bit checksum of bytes (word-wise multiply-xorshift), as hex.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What to do after every task has read the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum After {
    Nothing,
    /// Drop executors' copies, then read again (executors fetch it again).
    Unpersist,
    /// Destroy the value, then read again (the job must fail clearly).
    Destroy,
}

#[derive(Debug, Clone)]
pub struct BroadcastParams {
    pub mb: f64,
    pub tasks: usize,
    pub seed: u64,
    /// Ship the bytes as a file with addFile instead of a broadcast variable.
    pub via_file: bool,
    /// First let one task read the value (one executor then holds every piece),
    /// then wait for this file before the main job (for fault tests).
    pub pause_file: Option<String>,
    pub after: After,
}

type TaskReport = (String, String, u64);

pub fn run(sc: &EmberContext, p: &BroadcastParams) -> anyhow::Result<Value> {
    let len = (p.mb * (1 << 20) as f64) as usize;
    let data = random_bytes(len, p.seed);
    let expected = checksum(&data);
    let prepared = Instant::now();
    let tasks = p.tasks.max(1);
    let mut shipped_dir = None;
    let (job, handle): (Box<dyn Fn(usize) -> ember::Result<Vec<TaskReport>>>, Option<Broadcast<Vec<u8>>>) =
        if p.via_file {
            let dir = TempDir::new()?;
            let path = dir.0.join("broadcast.bin");
            std::fs::write(&path, &data)?;
            drop(data);
            let name = sc.add_file(&path)?;
            let sc = sc.clone();
            let job = move |n: usize| {
                let name = name.clone();
                sc.range(0, n as i64, 1, n)?
                    .map(Fn!(move |_i: i64| {
                        let path = ember::files::get(&name).unwrap_or_else(|e| panic!("{e}"));
                        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                        let ready = now_ms();
                        (executor_id(), checksum(&bytes), ready)
                    }))
                    .collect()
            };
            shipped_dir = Some(dir);
            (Box::new(job), None)
        } else {
            let b = sc.broadcast(data)?;
            let job = {
                let sc = sc.clone();
                let b = b.clone();
                move |n: usize| {
                    let b = b.clone();
                    sc.range(0, n as i64, 1, n)?
                        .map(Fn!(move |_i: i64| {
                            let v = b.value();
                            let ready = now_ms();
                            (executor_id(), checksum(v), ready)
                        }))
                        .collect()
                }
            };
            (Box::new(job), Some(b))
        };
    let prepare_ms = prepared.elapsed().as_millis() as u64;
    if let Some(pause) = &p.pause_file {
        let first = job(1)?;
        eprintln!("ember: first reader was executor {}", first[0].0);
        ember_examples_wait(pause)?;
    }
    let before = sc.broadcast_bytes_uploaded();
    let started_ms = now_ms();
    let started = Instant::now();
    let reports = job(tasks)?;
    let job_ms = started.elapsed().as_millis() as u64;
    let distribute_ms = reports.iter().map(|r| r.2).max().unwrap_or(started_ms).saturating_sub(started_ms);
    let uploads = sc.broadcast_bytes_uploaded();
    let all_exact = reports.iter().all(|r| r.1 == expected);
    let executors: BTreeSet<&str> = reports.iter().map(|r| r.0.as_str()).collect();
    let stored_bytes = match &handle {
        Some(b) => sc.broadcast_stored_bytes(b.id()),
        None => None,
    };
    let mut result = json!({
        "mb": p.mb,
        "bytes": len,
        "tasks": tasks,
        "via_file": p.via_file,
        "checksum": expected,
        "all_tasks_exact": all_exact,
        "executors_read": executors.len(),
        "stored_bytes": stored_bytes,
        "prepare_ms": prepare_ms,
        "distribute_ms": distribute_ms,
        "job_ms": job_ms,
        "driver_uploaded": uploads.driver - before.driver,
        "executors_uploaded": uploads.executors_total().saturating_sub(before.executors_total()),
        "uploaded_by_executor": uploads.executors,
    });
    match (p.after, &handle) {
        (After::Nothing, _) | (_, None) => {}
        (After::Unpersist, Some(b)) => {
            b.unpersist();
            let again = job(tasks)?;
            result["after_unpersist_exact"] = json!(again.iter().all(|r| r.1 == expected));
        }
        (After::Destroy, Some(b)) => {
            b.destroy();
            let error = match job(tasks) {
                Ok(_) => "no error".to_string(),
                Err(e) => e.to_string(),
            };
            result["after_destroy_error"] = json!(error);
        }
    }
    drop(shipped_dir);
    Ok(result)
}

fn executor_id() -> String {
    TaskContext::with_current(|c| c.map(|c| c.executor_id().to_string()).unwrap_or_default())
}

fn ember_examples_wait(path: &str) -> ember::Result<()> {
    crate::wait_for_file(path, std::time::Duration::from_secs(600))
}

/// A directory for the shipped file, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ember-broadcast-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
