//! Local mode: one in-process executor with N task threads, reached through the
//! same links a remote executor would use, so local jobs exercise the real task
//! serialization, shuffle files and block store.

use crate::broadcast_manager::{BroadcastEvictor, BroadcastManager};
use crate::map_output::MapOutputTracker;
use crate::scheduler::{ExecutorLink, TaskScheduler};
use ember_core::error::{EmberError, Result};
use ember_core::pieces::{BlobId, BlobMeta, PieceSource};
use ember_core::protocol::{TaskDescription, TaskOutcome};
use ember_core::shuffle::MapStatus;
use ember_executor::{BlockFetcher, DriverLink, Executor, StatusSink};
use std::sync::Arc;

/// The driver side of the links, served in-process.
pub struct InProcessDriver {
    pub tracker: Arc<MapOutputTracker>,
    pub broadcasts: Arc<BroadcastManager>,
    pub endpoints: Arc<ember_core::endpoint::Endpoints>,
}

impl DriverLink for InProcessDriver {
    fn map_outputs(&self, shuffle_id: u32) -> Result<Vec<Option<MapStatus>>> {
        self.tracker.outputs(shuffle_id).ok_or_else(|| EmberError::Internal(format!("unknown shuffle {shuffle_id}")))
    }
    fn blob_meta(&self, blob: &BlobId) -> Result<BlobMeta> {
        self.broadcasts.block_master.meta(blob)
    }
    fn piece_holders(&self, blob: &BlobId, index: u32, executor_id: &str, wait: bool) -> Result<PieceSource> {
        self.broadcasts.block_master.holders(blob, index, executor_id, wait)
    }
    fn register_piece(&self, blob: &BlobId, index: u32, executor_id: &str) -> Result<()> {
        self.broadcasts.block_master.register_piece(blob, index, executor_id);
        Ok(())
    }
    fn report_bad_piece(&self, blob: &BlobId, index: u32, holder: &str) -> Result<()> {
        self.broadcasts.block_master.drop_holder(blob, index, holder);
        Ok(())
    }
    fn fetch_piece(&self, blob: &BlobId, index: u32) -> Result<Vec<u8>> {
        Ok((*self.broadcasts.block_master.read_piece(blob, index)?).clone())
    }
    fn ask(&self, endpoint: &str, message: Vec<u8>) -> Result<Vec<u8>> {
        self.endpoints.ask(endpoint, message)
    }
}

/// In local mode every map output is on the one executor.
pub struct NoRemoteBlocks;

impl BlockFetcher for NoRemoteBlocks {
    fn fetch_block(&self, status: &MapStatus, shuffle_id: u32, map_index: u32, _reduce: u32) -> Result<Vec<u8>> {
        Err(EmberError::Internal(format!(
            "shuffle {shuffle_id} map {map_index} is on executor {} which local mode cannot reach",
            status.executor_id
        )))
    }
    fn fetch_piece(&self, address: &str, blob: &BlobId, index: u32) -> Result<Vec<u8>> {
        Err(blob.error(format!("piece {index} is on {address}, which local mode cannot reach")))
    }
}

pub struct SchedulerSink(pub Arc<TaskScheduler>);

impl StatusSink for SchedulerSink {
    fn task_finished(&self, task_id: u64, outcome: TaskOutcome) {
        self.0.task_finished(task_id, outcome);
    }
}

pub struct InProcessExecutor(pub Arc<Executor>);

impl ExecutorLink for InProcessExecutor {
    fn launch(&self, task: TaskDescription) {
        self.0.launch(task);
    }
    fn kill(&self, task_id: u64) {
        self.0.kill(task_id);
    }
}

impl BroadcastEvictor for InProcessExecutor {
    fn drop_broadcast(&self, id: u64) {
        self.0.services().drop_broadcast(id);
    }
}
