//! The executor: runs tasks on a pool of threads, keeps cached blocks and shuffle
//! files, fetches broadcast values and files from the driver.

pub mod block_server;
pub mod block_store;
pub mod env;
pub mod executor;
pub mod links;
pub mod metrics;
pub mod piece_store;
pub mod remote;
pub mod runner;
pub mod shuffle_files;
pub mod stream_blocks;
pub mod torrent;

pub use env::{ExecutorConfig, ExecutorServices};
pub use executor::Executor;
pub use links::{BlockFetcher, DriverLink, StatusSink};
