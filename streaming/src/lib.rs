//! Ember Streaming: Spark Streaming's DStream model on Ember's batch engine.
//!
//! A [`StreamingContext`] cuts the time into batches of a fixed interval. Input
//! streams (a socket, files appearing in a directory, a queue of RDDs, any
//! custom receiver) give each batch its data as an RDD; transformations
//! (`map`, `reduce_by_key`, `window`, `update_state_by_key`, …) build new
//! streams; output operations (`print`, `foreach_rdd`, `save_as_text_files`)
//! turn every batch into ordinary Ember jobs, run in batch order.
//!
//! ```no_run
//! use ember::prelude::*;
//! use ember_streaming::prelude::*;
//! use std::time::Duration;
//!
//! fn main() -> ember::Result<()> {
//!     let sc = EmberContext::new(Conf::new().master("local[2]"))?;
//!     let ssc = StreamingContext::new(&sc, Duration::from_secs(1))?;
//!     ssc.checkpoint("/tmp/wordcount-checkpoint")?;
//!     let lines = ssc.socket_text_stream("localhost", 7777);
//!     let counts = lines
//!         .flat_map(Fn!(|line: String| line.split(' ').map(str::to_string).collect::<Vec<_>>()))
//!         .map(Fn!(|w: String| (w, 1u64)))
//!         .reduce_by_key(Fn!(|a: u64, b: u64| a + b));
//!     let totals = counts.update_state_by_key(Fn!(|new: Vec<u64>, old: Option<u64>| {
//!         Some(new.iter().sum::<u64>() + old.unwrap_or(0))
//!     }));
//!     totals.pprint();
//!     ssc.start()?;
//!     ssc.await_termination()
//! }
//! ```
//!
//! See docs/STREAMING.md for the model, every operation, the guarantees and
//! the configuration keys.

mod checkpoint;
mod clock;
mod context;
mod dstream;
mod graph;
mod input;
mod ops;
mod output;
mod pair;
mod rate;
mod scheduler;
mod shutdown;
mod state;
mod state_checkpointer;
mod time;
mod transform;
mod window;

pub use checkpoint::{CheckpointMeta, StateCheckpoint};
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{StreamingContext, StreamingState};
pub use dstream::DStream;
pub use ember_core::format::SparkString;
pub use input::{RddQueue, Receiver, ReceiverOutput, SocketReceiver};
pub use output::{batch_output_path, print_block};
pub use rate::PidRateEstimator;
pub use scheduler::BatchInfo;
pub use state::{MapWithStateDStream, MapWithStateRecord, State, StateSpec};
pub use time::Time;

/// What a streaming job usually needs: `use ember_streaming::prelude::*;`.
pub mod prelude {
    pub use crate::{DStream, ManualClock, RddQueue, State, StateSpec, StreamingContext, Time};
}
