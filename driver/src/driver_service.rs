//! The driver's gRPC service: executor sessions (registration with the build
//! check, task launch and status, heartbeats, loss), and what executors fetch
//! from the driver (map output locations, broadcast values, files).

use crate::broadcast_manager::{BroadcastEvictor, BroadcastManager};
use crate::local_worker::LocalWorker;
use crate::map_output::MapOutputTracker;
use crate::scheduler::{ExecutorLink, TaskScheduler};
use ember_core::closure::build_id;
use ember_core::endpoint::Endpoints;
use ember_core::error::EmberError;
use ember_core::pieces::BlobId;
use ember_core::protocol::{TaskDescription, TaskOutcome, TaskValue};
use ember_core::security::{RpcSecurity, SignedChannel};
use ember_core::wire::v1::block_server_client::BlockServerClient;
use ember_core::wire::v1::driver_server::Driver;
use ember_core::wire::v1::{
    self, AskRequest, BlobRequest, Chunk, DriverCommand, ExecutorMessage, HoldersRequest, MapOutputsRequest, Payload,
    PieceRequest, RegisterPieceRequest, ResultRequest, driver_command, executor_message,
};
use ember_core::wire::{chunks, from_status, to_status};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

type CommandSender = mpsc::UnboundedSender<Result<DriverCommand, Status>>;

/// One registered executor, as the driver sees it.
pub struct ExecutorEntry {
    pub executor_id: String,
    pub pid: u32,
    pub block_address: String,
    pub cores: usize,
    commands: CommandSender,
    last_heartbeat: Instant,
    /// Distinguishes this session from a later one with the same id.
    session: u64,
}

/// Registered executors; dropping an entry closes its command stream.
#[derive(Default)]
pub struct ExecutorRegistry {
    executors: Mutex<HashMap<String, ExecutorEntry>>,
    next_session: std::sync::atomic::AtomicU64,
    /// Signalled whenever an executor leaves the registry.
    left: parking_lot::Condvar,
    /// Set once the driver told every executor to shut down: sessions ending
    /// after that are expected, not losses.
    stopping: std::sync::atomic::AtomicBool,
}

impl ExecutorRegistry {
    pub fn count(&self) -> usize {
        self.executors.lock().len()
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.executors.lock().values().map(|e| (e.executor_id.clone(), e.pid)).collect()
    }

    /// Block-server address of every registered executor.
    pub fn addresses(&self) -> Vec<(String, String)> {
        self.executors.lock().values().map(|e| (e.executor_id.clone(), e.block_address.clone())).collect()
    }

    fn send(entry: &ExecutorEntry, kind: driver_command::Kind) {
        let _ = entry.commands.send(Ok(DriverCommand { kind: Some(kind) }));
    }

    /// Sends a command to every executor.
    pub fn broadcast(&self, kind: driver_command::Kind) {
        for e in self.executors.lock().values() {
            Self::send(e, kind.clone());
        }
    }

    /// Tells every executor to exit (Spark's `StopExecutor`) and waits up to
    /// `timeout` for their sessions to end, so that each exits with code 0 having
    /// heard the order rather than 1 on finding the driver gone. Returns how many
    /// were still connected at the deadline.
    pub fn shut_down_all(&self, timeout: Duration) -> usize {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        self.broadcast(driver_command::Kind::Shutdown(Default::default()));
        let deadline = Instant::now() + timeout;
        let mut executors = self.executors.lock();
        while !executors.is_empty() {
            if self.left.wait_until(&mut executors, deadline).timed_out() {
                break;
            }
        }
        executors.len()
    }
}

struct RemoteExecutorLink {
    commands: CommandSender,
    /// The executor's block server (`host:port`), as the UI shows it.
    address: String,
}

impl ExecutorLink for RemoteExecutorLink {
    fn launch(&self, task: TaskDescription) {
        match postcard::to_allocvec(&task) {
            Ok(bytes) => {
                let kind = driver_command::Kind::Launch(v1::LaunchTask { task: bytes });
                let _ = self.commands.send(Ok(DriverCommand { kind: Some(kind) }));
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a task description"),
        }
    }
    fn kill(&self, task_id: u64) {
        let kind = driver_command::Kind::Kill(v1::KillTask { task_id });
        let _ = self.commands.send(Ok(DriverCommand { kind: Some(kind) }));
    }
    fn address(&self) -> String {
        self.address.clone()
    }
}

impl BroadcastEvictor for ExecutorRegistry {
    fn drop_broadcast(&self, id: u64) {
        self.broadcast(driver_command::Kind::DropBroadcast(v1::DropBroadcast { broadcast_id: id }));
    }
}

#[derive(Clone)]
pub struct DriverService {
    pub scheduler: Arc<TaskScheduler>,
    pub tracker: Arc<MapOutputTracker>,
    pub broadcasts: Arc<BroadcastManager>,
    pub registry: Arc<ExecutorRegistry>,
    /// postcard `Conf` sent to executors when they register.
    pub conf: Arc<Vec<u8>>,
    pub heartbeat_interval: Duration,
    /// Bound on fetching a task's stored result (`spark.network.timeout`).
    pub network_timeout: Duration,
    /// Named handlers tasks may ask (`ember_core::endpoint`).
    pub endpoints: Arc<Endpoints>,
    /// The executor processes this driver started (`local-cluster`): says how
    /// a lost one ended, and hears of registrations.
    pub worker: Arc<LocalWorker>,
    /// The application's secret and TLS, of the server and of the driver's
    /// calls to block servers.
    pub security: RpcSecurity,
}

/// A client of the block server at `address` (`host:port`), secured as
/// `security` says. Errors: the server cannot be reached.
pub async fn block_client(
    address: &str,
    security: &RpcSecurity,
) -> Result<BlockServerClient<SignedChannel>, EmberError> {
    let channel = security
        .endpoint(address)?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| EmberError::Internal(format!("cannot reach {address}: {e}")))?;
    Ok(security.block_client(channel))
}

type CommandStream = Pin<Box<dyn futures::Stream<Item = Result<DriverCommand, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<Chunk, Status>> + Send>>;

impl DriverService {
    /// Forgets an executor: its tasks are re-run elsewhere, its map outputs recomputed.
    pub fn executor_lost(&self, executor_id: &str, session: Option<u64>, reason: &str) {
        {
            let mut executors = self.registry.executors.lock();
            match executors.get(executor_id) {
                Some(e) if session.is_none_or(|s| s == e.session) => {
                    executors.remove(executor_id);
                    self.registry.left.notify_all();
                }
                _ => return,
            }
        }
        if self.registry.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            tracing::info!(executor_id, reason, "executor exited after the shutdown order");
        } else {
            tracing::warn!(executor_id, reason, "executor lost");
        }
        self.broadcasts.block_master.remove_executor(executor_id);
        let removed = self.tracker.remove_executor(executor_id);
        if removed > 0 {
            tracing::info!(executor_id, map_outputs = removed, "map outputs lost with the executor will be recomputed");
        }
        self.scheduler.remove_executor(executor_id, reason);
    }

    /// Removes an idle executor on dynamic allocation's order (Spark's
    /// `killExecutors` with `countFailures = false`): the scheduler stops using it
    /// (only if it runs no task), the executor is told to exit (code 0, so its pod
    /// ends `Succeeded` and is not counted as a failure), and the map outputs and
    /// blocks it held are forgotten (a later stage recomputes what it needs).
    /// Returns false when it is unknown, running a task, or idle for less than
    /// `min_idle` (it ran one since it was chosen): nothing changed then.
    pub fn decommission(&self, executor_id: &str, reason: &str, min_idle: Duration) -> bool {
        if !self.scheduler.remove_idle_executor(executor_id, reason, min_idle) {
            return false;
        }
        // Before the order: a local-cluster worker must not relaunch it.
        self.worker.decommissioned(executor_id);
        if let Some(entry) = self.registry.executors.lock().remove(executor_id) {
            ExecutorRegistry::send(&entry, driver_command::Kind::Shutdown(Default::default()));
            self.registry.left.notify_all();
        }
        self.broadcasts.block_master.remove_executor(executor_id);
        let removed = self.tracker.remove_executor(executor_id);
        tracing::info!(executor_id, reason, map_outputs = removed, "executor decommissioned");
        true
    }

    /// Declares executors lost whose heartbeats stopped for longer than `timeout`.
    pub fn reap_silent(&self, timeout: Duration) {
        let silent: Vec<(String, u64, Duration)> = self
            .registry
            .executors
            .lock()
            .values()
            .filter(|e| e.last_heartbeat.elapsed() > timeout)
            .map(|e| (e.executor_id.clone(), e.session, e.last_heartbeat.elapsed()))
            .collect();
        for (id, session, silent_for) in silent {
            self.executor_lost(&id, Some(session), &format!("no heartbeat for {:.1}s", silent_for.as_secs_f64()));
        }
    }

    async fn handle_status(&self, executor_id: &str, block_address: &str, status: v1::TaskStatus) {
        let outcome = match postcard::from_bytes::<TaskOutcome>(&status.outcome) {
            Ok(TaskOutcome::Success { value: TaskValue::Stored { size }, accumulator_updates, metrics, run_ms }) => {
                match fetch_result(block_address, status.task_id, self.network_timeout, &self.security).await {
                    Ok(bytes) if bytes.len() as u64 == size => {
                        TaskOutcome::Success { value: TaskValue::Result(bytes), accumulator_updates, metrics, run_ms }
                    }
                    Ok(bytes) => TaskOutcome::Failed {
                        error: EmberError::Internal(format!("stored result is {} bytes, expected {size}", bytes.len())),
                        run_ms,
                    },
                    Err(error) => TaskOutcome::Failed { error, run_ms },
                }
            }
            Ok(outcome) => outcome,
            Err(e) => TaskOutcome::Failed {
                error: EmberError::Codec(format!("undecodable status from executor {executor_id}: {e}")),
                run_ms: 0,
            },
        };
        self.scheduler.task_finished(status.task_id, outcome);
    }
}

/// Fetches a task result the executor kept (larger than
/// `spark.task.maxDirectResultSize`), within `timeout`.
async fn fetch_result(
    block_address: &str,
    task_id: u64,
    timeout: Duration,
    security: &RpcSecurity,
) -> Result<Vec<u8>, EmberError> {
    let fetch = async {
        let mut client = block_client(block_address, security).await?;
        let mut stream = client.fetch_result(ResultRequest { task_id }).await.map_err(from_status)?.into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(from_status)? {
            out.extend_from_slice(&chunk.data);
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, fetch).await.unwrap_or_else(|_| {
        Err(EmberError::Timeout {
            what: format!("the block server at {block_address} (result of task {task_id})"),
            after_ms: timeout.as_millis() as u64,
            setting: "spark.network.timeout".into(),
        })
    })
}

fn chunk_stream(data: Arc<Vec<u8>>) -> ChunkStream {
    Box::pin(futures::stream::iter(chunks(data).map(Ok)))
}

#[tonic::async_trait]
impl Driver for DriverService {
    type SessionStream = CommandStream;
    type FetchPieceStream = ChunkStream;

    async fn session(&self, request: Request<Streaming<ExecutorMessage>>) -> Result<Response<CommandStream>, Status> {
        let mut inbound = request.into_inner();
        let register = match inbound.message().await? {
            Some(ExecutorMessage { kind: Some(executor_message::Kind::Register(r)) }) => r,
            _ => return Err(Status::invalid_argument("the first message of a session must register the executor")),
        };
        let id = register.executor_id.clone();
        if register.build_id != build_id() {
            tracing::error!(executor_id = %id, executor_build = %register.build_id, driver_build = %build_id(), "refusing an executor with another build");
            return Err(Status::failed_precondition(format!(
                "executor {id} runs build {} but the driver runs build {}: every executor must run the driver's exact binary",
                register.build_id,
                build_id()
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let session = self.registry.next_session.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut executors = self.registry.executors.lock();
            if executors.contains_key(&id) {
                return Err(Status::already_exists(format!("an executor with id {id} is already registered")));
            }
            let registered = driver_command::Kind::Registered(v1::Registered {
                conf: (*self.conf).clone(),
                heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u64,
            });
            let _ = tx.send(Ok(DriverCommand { kind: Some(registered) }));
            // Registered after the shutdown order went out (a relaunched executor
            // starting while the context stops): it gets the order at once.
            if self.registry.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                let shutdown = driver_command::Kind::Shutdown(Default::default());
                let _ = tx.send(Ok(DriverCommand { kind: Some(shutdown) }));
            }
            executors.insert(
                id.clone(),
                ExecutorEntry {
                    executor_id: id.clone(),
                    pid: register.pid,
                    block_address: register.block_address.clone(),
                    cores: register.cores as usize,
                    commands: tx.clone(),
                    last_heartbeat: Instant::now(),
                    session,
                },
            );
        }
        self.broadcasts.block_master.add_executor(&id, &register.block_address);
        tracing::info!(executor_id = %id, pid = register.pid, cores = register.cores, block_address = %register.block_address, "executor registered");
        self.worker.registered();
        self.scheduler.add_executor(
            &id,
            register.cores as usize,
            Arc::new(RemoteExecutorLink { commands: tx, address: register.block_address.clone() }),
        );
        let service = self.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(ExecutorMessage { kind: Some(executor_message::Kind::Status(status)) })) => {
                        let service = service.clone();
                        let (id, addr) = (id.clone(), register.block_address.clone());
                        tokio::spawn(async move { service.handle_status(&id, &addr, status).await });
                    }
                    Ok(Some(ExecutorMessage { kind: Some(executor_message::Kind::Heartbeat(_)) })) => {
                        if let Some(e) = service.registry.executors.lock().get_mut(&id)
                            && e.session == session
                        {
                            e.last_heartbeat = Instant::now();
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break "the executor closed its session".to_string(),
                    Err(status) => break format!("connection lost: {}", status.message()),
                }
            };
            // How the process ended, when this driver started it (the wait for
            // its exit status blocks, so not on the runtime's threads).
            let _ = tokio::task::spawn_blocking(move || {
                let reason = service.worker.explain_loss(&id, &reason);
                service.executor_lost(&id, Some(session), &reason);
            })
            .await;
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    async fn map_outputs(&self, request: Request<MapOutputsRequest>) -> Result<Response<Payload>, Status> {
        let shuffle_id = request.into_inner().shuffle_id;
        let outputs = self
            .tracker
            .outputs(shuffle_id)
            .ok_or_else(|| to_status(EmberError::Internal(format!("unknown shuffle {shuffle_id}"))))?;
        let data = postcard::to_allocvec(&outputs).map_err(|e| to_status(e.into()))?;
        Ok(Response::new(Payload { data }))
    }

    async fn blob_meta(&self, request: Request<BlobRequest>) -> Result<Response<Payload>, Status> {
        let blob = decode_blob(&request.into_inner().blob)?;
        let meta = self.broadcasts.block_master.meta(&blob).map_err(to_status)?;
        let data = postcard::to_allocvec(&meta).map_err(|e| to_status(e.into()))?;
        Ok(Response::new(Payload { data }))
    }

    async fn piece_holders(&self, request: Request<HoldersRequest>) -> Result<Response<Payload>, Status> {
        let r = request.into_inner();
        let blob = decode_blob(&r.blob)?;
        let master = self.broadcasts.block_master.clone();
        // With `wait` this blocks until the piece has a holder: off the async workers.
        let source = tokio::task::spawn_blocking(move || master.holders(&blob, r.index, &r.executor_id, r.wait))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        let data = postcard::to_allocvec(&source).map_err(|e| to_status(e.into()))?;
        Ok(Response::new(Payload { data }))
    }

    async fn register_piece(&self, request: Request<RegisterPieceRequest>) -> Result<Response<Payload>, Status> {
        let r = request.into_inner();
        let blob = decode_blob(&r.blob)?;
        self.broadcasts.block_master.register_piece(&blob, r.index, &r.executor_id);
        Ok(Response::new(Payload { data: Vec::new() }))
    }

    async fn report_bad_piece(&self, request: Request<RegisterPieceRequest>) -> Result<Response<Payload>, Status> {
        let r = request.into_inner();
        let blob = decode_blob(&r.blob)?;
        self.broadcasts.block_master.drop_holder(&blob, r.index, &r.executor_id);
        Ok(Response::new(Payload { data: Vec::new() }))
    }

    async fn fetch_piece(&self, request: Request<PieceRequest>) -> Result<Response<ChunkStream>, Status> {
        let r = request.into_inner();
        let blob = decode_blob(&r.blob)?;
        let master = self.broadcasts.block_master.clone();
        let bytes = tokio::task::spawn_blocking(move || master.read_piece(&blob, r.index))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        Ok(Response::new(chunk_stream(bytes)))
    }

    async fn ask(&self, request: Request<AskRequest>) -> Result<Response<Payload>, Status> {
        let r = request.into_inner();
        let endpoints = self.endpoints.clone();
        // Handlers may block (a receiver tracker writing its log): off the async workers.
        let data = tokio::task::spawn_blocking(move || endpoints.ask(&r.endpoint, r.message))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(to_status)?;
        Ok(Response::new(Payload { data }))
    }
}

fn decode_blob(bytes: &[u8]) -> Result<BlobId, Status> {
    postcard::from_bytes(bytes).map_err(|e| to_status(e.into()))
}
