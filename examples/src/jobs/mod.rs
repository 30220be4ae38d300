//! One module per job.

pub mod broadcast;
pub mod caching;
pub mod diagnostics;
pub mod gen_text;
pub mod join;
pub mod pi;
pub mod robustness;
pub mod security;
pub mod shuffle_bench;
pub mod stream_model;
pub mod streaming;
pub mod sumsq;
pub mod tasklist;
pub mod terasort;
pub mod wordcount;
