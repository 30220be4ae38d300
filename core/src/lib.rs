//! Ember's shared engine: what the driver and executors both need. The RDD graph
//! and how partitions are computed, shipping of closures and lineages, the shuffle
//! block format, broadcast and accumulator handles, configuration and errors.

pub mod accumulator;
pub mod aggregator;
pub mod broadcast;
pub mod closure;
pub mod config;
pub mod console;
pub mod data;
pub mod decoders;
pub mod endpoint;
pub mod error;
pub mod files;
pub mod filesystem;
pub mod format;
pub mod framed;
pub mod group;
pub mod key;
pub mod lineage;
pub mod lz4;
pub mod memory;
pub mod partitioner;
pub mod pieces;
pub mod protocol;
pub mod rdd;
pub mod security;
pub mod shuffle;
pub mod storage;
pub mod task;
pub mod telemetry;
pub mod text;
pub mod tls;
pub mod wire;
