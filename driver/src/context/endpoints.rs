//! The driver's endpoints that executors call (through the driver service's generic
//! endpoint RPC): cached-block updates, cached-block locations and log URLs.

use crate::listener::{self, Event, ListenerBus};
use crate::scheduler::TaskScheduler;
use ember_core::endpoint::{EndpointHandler, ExecutorLogUrls};
use ember_core::storage::{BlockLocationsRequest, BlockUpdate};
use std::sync::{Arc, Weak};

/// The driver's `BlockManagerMaster` endpoint: executors' cached-block changes
/// (postcard `Vec<BlockUpdate>`) update where the scheduler finds cached
/// partitions and become `SparkListenerBlockUpdated` events.
pub(super) fn block_updates_to(bus: Arc<ListenerBus>, scheduler: Weak<TaskScheduler>) -> EndpointHandler {
    Arc::new(move |message| {
        let updates: Vec<BlockUpdate> = postcard::from_bytes(&message)?;
        if let Some(scheduler) = scheduler.upgrade() {
            for u in &updates {
                scheduler.cache_locations().update(u);
            }
        }
        if bus.is_active() {
            let time_ms = listener::now_ms();
            for u in updates {
                bus.post(Event::BlockUpdated(listener::BlockUpdated {
                    block_id: u.block_name(),
                    storage_level: u.level_description(),
                    executor_id: u.executor_id,
                    rdd_id: u.rdd_id,
                    partition: u.partition,
                    memory_size: u.memory_size,
                    disk_size: u.disk_size,
                    time_ms,
                }));
            }
        }
        Ok(Vec::new())
    })
}

/// The driver's `BlockLocations` endpoint: which other live executors hold a
/// cached partition (postcard `BlockLocationsRequest`, answer postcard
/// `Vec<BlockHolder>`).
pub(super) fn block_locations_from(scheduler: Weak<TaskScheduler>) -> EndpointHandler {
    Arc::new(move |message| {
        let r: BlockLocationsRequest = postcard::from_bytes(&message)?;
        let holders = scheduler.upgrade().map(|s| s.block_holders(r.rdd_id, r.partition, &r.requester));
        Ok(postcard::to_allocvec(&holders.unwrap_or_default())?)
    })
}

/// The driver's `ExecutorLogUrls` endpoint: where an executor serves its logs
/// (postcard `ExecutorLogUrls`) becomes an `EmberListenerExecutorLogUrls` event.
pub(super) fn log_urls_to(bus: Arc<ListenerBus>) -> EndpointHandler {
    Arc::new(move |message| {
        let urls: ExecutorLogUrls = postcard::from_bytes(&message)?;
        bus.post(Event::ExecutorLogUrls(listener::ExecutorLogUrls {
            executor_id: urls.executor_id,
            log_urls: urls.urls.into_iter().collect(),
            time_ms: listener::now_ms(),
        }));
        Ok(Vec::new())
    })
}
