//! Ember: a Spark-style distributed data engine. This is the crate a job depends on.
//!
//! ```no_run
//! use ember::prelude::*;
//! fn main() -> ember::Result<()> {
//!     let sc = EmberContext::new(Conf::new().master("local[2]"))?;
//!     let k = 3;
//!     let n = sc.range(0, 1000, 1, 4)?.map(Fn!(move |x: i64| x * k)).filter(Fn!(|x: &i64| x % 2 == 0)).count()?;
//!     assert_eq!(n, 500);
//!     Ok(())
//! }
//! ```
//!
//! A closure can only capture what can be shipped to an executor: a value that is
//! not serializable (an `Rc`, an open `File`, a raw handle) is a compile error, not
//! a failure at run time. (A `Mutex<T>` *is* serializable by serde: each task gets
//! its own copy, so it cannot be used to collect results — use an accumulator.)
//!
//! ```compile_fail,E0277
//! use ember::prelude::*;
//! let sc = EmberContext::local(1).unwrap();
//! let shared = std::rc::Rc::new(3u64);
//! let _ = sc.parallelize(vec![1u64], 1).map(Fn!(move |x: u64| x + *shared));
//! ```
//!
//! ```compile_fail,E0277
//! use ember::prelude::*;
//! let sc = EmberContext::local(1).unwrap();
//! let log = std::fs::File::create("/tmp/ember-log").unwrap();
//! let _ = sc.parallelize(vec![1u64], 1).map(Fn!(move |x: u64| {
//!     let _ = &log;
//!     x
//! }));
//! ```
//!
//! The same closures capturing plain serializable values compile:
//!
//! ```no_run
//! use ember::prelude::*;
//! let sc = EmberContext::local(1).unwrap();
//! let shared = 3u64;
//! let _ = sc.parallelize(vec![1u64], 1).map(Fn!(move |x: u64| x + shared));
//! ```
//!
//! **Memory allocator.** With the default feature `mimalloc`, this crate makes
//! [mimalloc](https://github.com/microsoft/mimalloc) the process' global allocator,
//! for the driver and for executors (the same binary). The engine hands many small
//! values between threads (task results, listener events, records): with glibc's
//! allocator, frees on another thread's arena take that arena's lock: wordcount ran
//! 18 % and 100,000 empty tasks 12 % slower (docs/BENCHMARKS.md). A job binary that declares its own
//! `#[global_allocator]` depends on `ember` with `default-features = false`.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod allocation;
pub mod block_master;
pub mod broadcast_manager;
pub mod cluster;
pub mod cogroup;
pub mod context;
pub mod driver_service;
pub mod event_log;
pub mod history;
pub mod launcher;
pub mod listener;
pub mod local_backend;
pub mod local_iterator;
pub mod local_worker;
pub mod logging;
pub mod map_output;
pub mod master;
pub mod metrics;
pub mod monitoring;
pub mod numeric;
pub mod object_file;
pub mod ops;
pub mod ordered_by;
pub mod partitioning;
pub mod pipe;
pub mod progress;
pub mod rdd;
pub mod sampling;
pub mod scheduler;
pub mod status;
pub mod tree_aggregate;
pub mod ui;
pub mod zip_partitions;

pub use context::{BroadcastUploads, EmberContext, conf_dir_defaults, spark_files};
pub use ember_core::accumulator::{Accumulator, AccumulatorValue};
pub use ember_core::broadcast::Broadcast;
pub use ember_core::config::Conf;
pub use ember_core::data::{BoxIter, Data, Key, Ordered};
pub use ember_core::error::{EmberError, Result, raise};
pub use ember_core::files;
pub use ember_core::filesystem::Location;
pub use ember_core::filesystem::codec::Codec;
pub use ember_core::format::SparkString;
pub use ember_core::group::Group;
pub use ember_core::key::{HashedKey, OrderedBy, StdKey};
pub use ember_core::partitioner::{HashPartitioner, Partitioner, RangePartitioner};
pub use ember_core::rdd::StorageLevel;
pub use ember_core::task::{TaskContext, TaskMetricsSnapshot};
pub use ember_macros::{Fn, Key, Ordered};
pub use master::Master;
pub use numeric::{Numeric, StatCounter};
pub use rdd::Rdd;
pub use scheduler::SpeculationMetrics;

/// Shipped functions: what the `Fn!` expansion names ([`closure::Closure`],
/// [`closure::Capture`]) and the bound every RDD method puts on its functions
/// ([`closure::SerFn`]: an `Fn!` closure, a plain `fn` item, or a closure that
/// captures nothing).
pub mod closure {
    pub use ember_core::closure::{Capture, Closure, SerFn, Ship, same_type, traits, type_marker};
}

// `Fn!` expands to `::ember::…`, which this crate's own code and tests use too.
extern crate self as ember;

/// What a job usually needs: `use ember::prelude::*;`.
pub mod prelude {
    pub use crate::{Accumulator, Broadcast, Codec, Conf, EmberContext, Fn, Key, Ordered, Rdd, StorageLevel};
}

/// Runs a job binary's main. The same binary is also every executor of the job:
/// when the environment says this process is an executor (`EMBER_ROLE=executor`,
/// see docs/ENVIRONMENT.md), it serves tasks instead and never runs `job`.
pub fn entry<R>(job: impl FnOnce() -> R) -> R {
    if is_executor_process() {
        // Before anything is logged: the Executors page shows this tail.
        if let Err(e) = ember_executor::logs::capture_stderr() {
            eprintln!("executor: not keeping a log tail: {e}");
        }
        logging::init();
        ember_executor::remote::exit_with_parent();
        let code = match ember_executor::remote::RemoteExecutorConfig::from_env() {
            Ok(config) => ember_executor::remote::run(config),
            Err(e) => {
                eprintln!("executor: {e}");
                ember_executor::remote::exit_code::START_FAILED
            }
        };
        // The task spans still batched go out before the process does (bounded:
        // the driver waits 5 s for its executors to exit).
        ember_core::telemetry::shutdown(std::time::Duration::from_secs(2));
        ember_executor::logs::finish();
        std::process::exit(code);
    }
    job()
}

/// True when the environment makes this process an executor (`EMBER_ROLE=executor`).
pub fn is_executor_process() -> bool {
    std::env::var("EMBER_ROLE").is_ok_and(|r| r.trim().eq_ignore_ascii_case("executor"))
}
