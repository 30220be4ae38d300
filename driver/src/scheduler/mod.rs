//! Scheduling: the DAG scheduler (stages) over the task scheduler (slots).

pub mod cache_locations;
pub mod dag;
pub mod speculation;
pub mod task_scheduler;

pub use speculation::{SpeculationConf, SpeculationMetrics};
pub use task_scheduler::{ExecutorLink, JobEvent, TaskScheduler};
