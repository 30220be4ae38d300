//! An executor process: registers with its driver over gRPC, runs the tasks the
//! driver sends, serves its blocks to other executors, and exits when the driver
//! tells it to or goes away.

use crate::block_server::{BlockService, StoredResults};
use crate::env::ExecutorConfig;
use crate::executor::Executor;
use crate::links::{BlockFetcher, BlockRequest, DriverLink, FetchResults, StatusSink};
use crate::metrics::{ExecutorMetrics, Gauges};
use ember_core::closure::build_id;
use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use ember_core::pieces::{BlobId, BlobMeta, PieceSource};
use ember_core::protocol::{TaskDescription, TaskOutcome, TaskValue};
use ember_core::security::{RpcSecurity, SignedChannel};
use ember_core::shuffle::MapStatus;
use ember_core::wire::v1::block_server_client::BlockServerClient;
use ember_core::wire::v1::block_server_server::BlockServerServer;
use ember_core::wire::v1::driver_client::DriverClient;
use ember_core::wire::v1::{
    self, AskRequest, BlobRequest, CachedBlockRequest, ExecutorMessage, Heartbeat, HoldersRequest, MapOutputsRequest,
    PieceRequest, Register, RegisterPieceRequest, ShuffleBlockRequest, StreamBlockRequest, StreamBlockUpload,
    TaskStatus, driver_command, executor_message,
};
use ember_core::wire::{MAX_MESSAGE_BYTES, from_status};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::service::interceptor::InterceptedService;

/// How an executor process is started (from `EMBER_*` variables, see docs/ENVIRONMENT.md).
#[derive(Debug, Clone)]
pub struct RemoteExecutorConfig {
    pub driver_url: String,
    pub executor_id: String,
    pub cores: usize,
    pub memory_mb: u64,
    pub bind_address: String,
    pub advertise_address: Option<String>,
    pub local_dirs: Vec<PathBuf>,
    /// How long to keep trying to reach the driver at start.
    pub connect_timeout: Duration,
    /// The application's secret (`EMBER_AUTH_SECRET(_FILE)`) and TLS
    /// (`EMBER_SSL_RPC_*`): of its calls to the driver and block servers, and
    /// required of every caller of its own block server.
    pub security: RpcSecurity,
}

/// Exit codes of an executor process.
pub mod exit_code {
    /// Told to shut down by its driver.
    pub const SHUTDOWN: i32 = 0;
    /// Lost its driver.
    pub const DRIVER_LOST: i32 = 1;
    /// Could not start (bad configuration, driver unreachable).
    pub const START_FAILED: i32 = 2;
    /// Refused by the driver (a different build, or a wrong or missing secret).
    pub const REFUSED: i32 = 3;
}

impl RemoteExecutorConfig {
    pub fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let required = |k: &str| var(k).ok_or_else(|| EmberError::Config(format!("{k} must be set for an executor")));
        let parse = |k: &str, default: u64| -> Result<u64> {
            match var(k) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| EmberError::Config(format!("{k}={v:?} is not a number"))),
            }
        };
        Ok(Self {
            driver_url: required("EMBER_DRIVER_URL")?,
            executor_id: required("EMBER_EXECUTOR_ID")?,
            cores: parse("EMBER_EXECUTOR_CORES", 1)?.max(1) as usize,
            memory_mb: parse("EMBER_EXECUTOR_MEMORY_MB", 1024)?.max(1),
            bind_address: var("EMBER_BIND_ADDRESS").unwrap_or_else(|| "0.0.0.0".into()),
            advertise_address: var("EMBER_ADVERTISE_ADDRESS"),
            local_dirs: var("EMBER_LOCAL_DIRS")
                .map(|v| v.split(',').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
                .unwrap_or_default(),
            connect_timeout: Duration::from_secs(parse("EMBER_CONNECT_TIMEOUT_SECS", 60)?),
            security: RpcSecurity::from_env()?,
        })
    }
}

/// Runs the executor until it is shut down or loses its driver; returns the exit code.
pub fn run(config: RemoteExecutorConfig) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("executor {}: cannot start its runtime: {e}", config.executor_id);
            return exit_code::START_FAILED;
        }
    };
    let handle = runtime.handle().clone();
    let code = runtime.block_on(session(config, handle));
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn connect(url: &str, timeout: Duration, security: &RpcSecurity) -> Result<DriverClient<SignedChannel>> {
    let endpoint = security
        .endpoint(url)
        .map_err(|e| EmberError::Config(format!("EMBER_DRIVER_URL: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(50);
    loop {
        match endpoint.connect().await {
            Ok(channel) => {
                return Ok(security.driver_client(channel));
            }
            Err(e) if Instant::now() + delay < deadline => {
                tracing::debug!(url, error = %e, "driver not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(EmberError::ExecutorLost {
                    executor_id: String::new(),
                    reason: format!("cannot reach the driver at {url} within {timeout:?}: {e}"),
                });
            }
        }
    }
}

async fn session(config: RemoteExecutorConfig, handle: Handle) -> i32 {
    let id = config.executor_id.clone();
    let fail = |code: i32, msg: String| {
        ember_core::console::announce(format_args!("executor {id}: {msg}"));
        code
    };
    let listener = match tokio::net::TcpListener::bind((config.bind_address.as_str(), 0)).await {
        Ok(l) => l,
        Err(e) => return fail(exit_code::START_FAILED, format!("cannot bind {}: {e}", config.bind_address)),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut client = match connect(&config.driver_url, config.connect_timeout, &config.security).await {
        Ok(c) => c,
        Err(e) => return fail(exit_code::START_FAILED, e.to_string()),
    };
    let advertise = config.advertise_address.clone().unwrap_or_else(|| {
        if config.bind_address == "0.0.0.0" {
            local_ip_towards(&config.driver_url)
        } else {
            config.bind_address.clone()
        }
    });
    let block_address = format!("{advertise}:{port}");
    let (out_tx, out_rx) = mpsc::unbounded_channel::<ExecutorMessage>();
    let register = Register {
        executor_id: config.executor_id.clone(),
        build_id: build_id().to_string(),
        cores: config.cores as u32,
        memory_bytes: config.memory_mb << 20,
        block_address: block_address.clone(),
        pid: std::process::id(),
    };
    let _ = out_tx.send(ExecutorMessage { kind: Some(executor_message::Kind::Register(register)) });
    let mut inbound = match client.session(UnboundedReceiverStream::new(out_rx)).await {
        Ok(r) => r.into_inner(),
        Err(status) if matches!(status.code(), tonic::Code::FailedPrecondition | tonic::Code::Unauthenticated) => {
            return fail(exit_code::REFUSED, format!("refused by the driver: {}", status.message()));
        }
        Err(status) => return fail(exit_code::START_FAILED, format!("cannot open a session: {}", status.message())),
    };
    let registered = match inbound.message().await {
        Ok(Some(v1::DriverCommand { kind: Some(driver_command::Kind::Registered(r)) })) => r,
        other => return fail(exit_code::START_FAILED, format!("unexpected first reply from the driver: {other:?}")),
    };
    let conf: Conf = postcard::from_bytes(&registered.conf).unwrap_or_default();
    let results = Arc::new(StoredResults::default());
    let driver_link =
        Arc::new(RemoteDriver { handle: handle.clone(), client: client.clone(), ask_timeout: ask_timeout(&conf) });
    let fetch_timeout = network_timeout(&conf);
    let fetcher = Arc::new(RemoteBlocks {
        handle: handle.clone(),
        clients: Mutex::new(HashMap::new()),
        fetch_timeout,
        security: config.security.clone(),
    });
    let max_direct = conf.get_bytes("spark.task.maxDirectResultSize", 1 << 20).unwrap_or(1 << 20);
    let metrics_port = conf.get_usize("ember.executor.metrics.port", 0).unwrap_or(0);
    let gauges = Arc::new(ExecutorGauges(std::sync::OnceLock::new()));
    let metrics = Arc::new(ExecutorMetrics::new(gauges.clone()));
    let sink =
        Arc::new(SessionSink { out: out_tx.clone(), results: results.clone(), max_direct, metrics: metrics.clone() });
    let executor = match Executor::start(
        ExecutorConfig {
            executor_id: config.executor_id.clone(),
            cores: config.cores,
            memory_bytes: config.memory_mb << 20,
            local_dirs: config.local_dirs.clone(),
            advertise_address: block_address.clone(),
            conf,
        },
        driver_link,
        fetcher,
        sink,
    ) {
        Ok(e) => e,
        Err(e) => return fail(exit_code::START_FAILED, e.to_string()),
    };
    let _ = gauges.0.set(executor.clone());
    match tokio::net::TcpListener::bind((config.bind_address.as_str(), u16::try_from(metrics_port).unwrap_or(0))).await
    {
        Ok(l) => {
            let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
            tracing::info!(executor_id = %id, port, "serving Prometheus metrics on /metrics");
            ember_core::console::announce(format_args!("executor {id}: metrics at http://{advertise}:{port}/metrics"));
            tokio::spawn(crate::metrics::serve(l, metrics));
            if crate::logs::tail(0).is_some() {
                tokio::spawn(tell_log_urls(
                    client.clone(),
                    id.clone(),
                    format!("http://{advertise}:{port}/logs/stderr"),
                ));
            }
        }
        Err(e) => {
            tracing::warn!(executor_id = %id, port = metrics_port, error = %e, "cannot serve metrics; running without")
        }
    }
    let server = InterceptedService::new(
        BlockServerServer::new(BlockService { services: executor.services().clone(), results })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        config.security.server_auth("block server"),
    );
    // Nagle off, as on the driver's server (`Server::tcp_nodelay` does not reach
    // a listener bound by us): block and result replies go out at once.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = match config.security.server("block server") {
        Ok(b) => b,
        Err(e) => return fail(exit_code::START_FAILED, e.to_string()),
    };
    tokio::spawn(builder.add_service(server).serve_with_incoming(incoming));
    tracing::info!(executor_id = %config.executor_id, %block_address, "executor registered");
    let interval = Duration::from_millis(registered.heartbeat_interval_ms.max(100));
    let beat = {
        let out = out_tx.clone();
        let executor = executor.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let running = executor
                    .running_tasks()
                    .into_iter()
                    .map(|(task_id, elapsed)| v1::RunningTask { task_id, elapsed_ms: elapsed.as_millis() as u64 })
                    .collect();
                let hb = Heartbeat { block_memory_used: executor.services().blocks.memory_used(), running };
                if out.send(ExecutorMessage { kind: Some(executor_message::Kind::Heartbeat(hb)) }).is_err() {
                    break;
                }
            }
        })
    };
    let code = loop {
        match inbound.message().await {
            Ok(Some(cmd)) => match cmd.kind {
                Some(driver_command::Kind::Launch(l)) => match postcard::from_bytes::<TaskDescription>(&l.task) {
                    Ok(desc) => executor.launch(desc),
                    Err(e) => tracing::error!(error = %e, "undecodable task description"),
                },
                Some(driver_command::Kind::Kill(k)) => executor.kill(k.task_id),
                Some(driver_command::Kind::DropBroadcast(b)) => executor.services().drop_broadcast(b.broadcast_id),
                Some(driver_command::Kind::RemoveRdd(r)) => executor.services().blocks.remove_rdd(r.rdd_id),
                Some(driver_command::Kind::RemoveShuffle(s)) => {
                    executor.services().shuffle.remove_shuffle(s.shuffle_id)
                }
                Some(driver_command::Kind::RemoveStreamBlocks(r)) => {
                    executor.services().stream_blocks.remove(&r.block_ids)
                }
                Some(driver_command::Kind::Shutdown(_)) => break exit_code::SHUTDOWN,
                Some(driver_command::Kind::Registered(_)) | None => {}
            },
            Ok(None) => break fail(exit_code::DRIVER_LOST, "the driver closed the session; exiting".into()),
            Err(status) => {
                break fail(exit_code::DRIVER_LOST, format!("lost the driver ({}); exiting", status.message()));
            }
        }
    };
    beat.abort();
    // Running tasks are abandoned: the work directories go now, and the process exits.
    for d in executor.services().work_dirs() {
        let _ = std::fs::remove_dir_all(d);
    }
    code
}

/// Tells the driver where this executor's stderr tail is served (its Executors
/// page links to it); a driver that does not hear it only lacks the link.
async fn tell_log_urls(mut client: DriverClient<SignedChannel>, executor_id: String, stderr: String) {
    use ember_core::endpoint::{EXECUTOR_LOG_URLS, ExecutorLogUrls};
    let urls = ExecutorLogUrls { executor_id, urls: vec![("stderr".into(), stderr)] };
    let Ok(message) = postcard::to_allocvec(&urls) else { return };
    let ask = client.ask(AskRequest { endpoint: EXECUTOR_LOG_URLS.into(), message });
    match tokio::time::timeout(Duration::from_secs(30), ask).await {
        Ok(Ok(_)) => {}
        Ok(Err(status)) => tracing::debug!(error = %status.message(), "the driver did not take the log URLs"),
        Err(_) => tracing::debug!("telling the driver the log URLs timed out"),
    }
}

/// The address of this host's interface that routes to the driver.
fn local_ip_towards(driver_url: &str) -> String {
    let host = driver_url.split("://").nth(1).unwrap_or(driver_url).split('/').next().unwrap_or("");
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(host)?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}

/// Reports task outcomes on the session; large results stay here until fetched.
struct SessionSink {
    out: mpsc::UnboundedSender<ExecutorMessage>,
    results: Arc<StoredResults>,
    max_direct: u64,
    metrics: Arc<ExecutorMetrics>,
}

/// What the metrics read from the executor once it has started.
struct ExecutorGauges(std::sync::OnceLock<Arc<Executor>>);

impl Gauges for ExecutorGauges {
    fn running_tasks(&self) -> usize {
        self.0.get().map(|e| e.running_tasks().len()).unwrap_or(0)
    }
    fn broadcast_bytes_uploaded(&self) -> u64 {
        self.0.get().map(|e| e.services().pieces.bytes_uploaded()).unwrap_or(0)
    }
}

impl StatusSink for SessionSink {
    fn task_finished(&self, task_id: u64, outcome: TaskOutcome) {
        self.metrics.task_ended(&outcome);
        let outcome = match outcome {
            TaskOutcome::Success { value: TaskValue::Result(bytes), accumulator_updates, metrics, run_ms }
                if bytes.len() as u64 > self.max_direct =>
            {
                let size = bytes.len() as u64;
                self.results.put(task_id, bytes);
                TaskOutcome::Success { value: TaskValue::Stored { size }, accumulator_updates, metrics, run_ms }
            }
            other => other,
        };
        let outcome = postcard::to_allocvec(&outcome).unwrap_or_else(|e| {
            let failed = TaskOutcome::Failed { error: EmberError::Codec(e.to_string()), run_ms: 0 };
            postcard::to_allocvec(&failed).expect("a failure encodes")
        });
        let _ = self
            .out
            .send(ExecutorMessage { kind: Some(executor_message::Kind::Status(TaskStatus { task_id, outcome })) });
    }
}

async fn collect_chunks(
    stream: std::result::Result<tonic::Response<tonic::Streaming<v1::Chunk>>, tonic::Status>,
) -> Result<Vec<u8>> {
    let mut stream = stream.map_err(from_status)?.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(from_status)? {
        out.extend_from_slice(&chunk.data);
    }
    Ok(out)
}

struct RemoteDriver {
    handle: Handle,
    client: DriverClient<SignedChannel>,
    /// Bound on each call (`spark.rpc.askTimeout`).
    ask_timeout: Duration,
}

impl RemoteDriver {
    /// Runs one call to the driver, bounded by `spark.rpc.askTimeout`.
    fn call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        let timeout = self.ask_timeout;
        self.handle
            .block_on(async move { tokio::time::timeout(timeout, call).await })
            .map_err(|_| EmberError::Timeout {
                what: format!("the driver ({what})"),
                after_ms: timeout.as_millis() as u64,
                setting: "spark.rpc.askTimeout".into(),
            })?
            .map(tonic::Response::into_inner)
            .map_err(from_status)
    }
}

/// `spark.network.timeout` (default 120 s, as in Spark): the bound on one block fetch.
pub fn network_timeout(conf: &Conf) -> Duration {
    const DEFAULT: Duration = Duration::from_secs(120);
    conf.get_duration("spark.network.timeout", DEFAULT).unwrap_or(DEFAULT)
}

/// `spark.rpc.askTimeout`, by default `spark.network.timeout` (120 s), as in Spark.
pub fn ask_timeout(conf: &Conf) -> Duration {
    let network = network_timeout(conf);
    conf.get_duration("spark.rpc.askTimeout", network).unwrap_or(network)
}

impl DriverLink for RemoteDriver {
    fn map_outputs(&self, shuffle_id: u32) -> Result<Vec<Option<MapStatus>>> {
        let mut client = self.client.clone();
        let payload = self
            .call("map output locations", async move { client.map_outputs(MapOutputsRequest { shuffle_id }).await })?;
        Ok(postcard::from_bytes(&payload.data)?)
    }

    fn blob_meta(&self, blob: &BlobId) -> Result<BlobMeta> {
        let mut client = self.client.clone();
        let blob = postcard::to_allocvec(blob)?;
        let payload = self.call("broadcast metadata", async move { client.blob_meta(BlobRequest { blob }).await })?;
        Ok(postcard::from_bytes(&payload.data)?)
    }

    fn piece_holders(&self, blob: &BlobId, index: u32, executor_id: &str, wait: bool) -> Result<PieceSource> {
        let mut client = self.client.clone();
        let req = HoldersRequest { blob: postcard::to_allocvec(blob)?, index, executor_id: executor_id.into(), wait };
        let payload = self.call("broadcast piece holders", async move { client.piece_holders(req).await })?;
        Ok(postcard::from_bytes(&payload.data)?)
    }

    fn register_piece(&self, blob: &BlobId, index: u32, executor_id: &str) -> Result<()> {
        let mut client = self.client.clone();
        let req = RegisterPieceRequest { blob: postcard::to_allocvec(blob)?, index, executor_id: executor_id.into() };
        self.call("registering a broadcast piece", async move { client.register_piece(req).await })?;
        Ok(())
    }

    fn report_bad_piece(&self, blob: &BlobId, index: u32, holder: &str) -> Result<()> {
        let mut client = self.client.clone();
        let req = RegisterPieceRequest { blob: postcard::to_allocvec(blob)?, index, executor_id: holder.into() };
        self.call("reporting a bad broadcast piece", async move { client.report_bad_piece(req).await })?;
        Ok(())
    }

    fn fetch_piece(&self, blob: &BlobId, index: u32) -> Result<Vec<u8>> {
        let mut client = self.client.clone();
        let req = PieceRequest { blob: postcard::to_allocvec(blob)?, index };
        self.handle.block_on(async move {
            tokio::time::timeout(PIECE_TIMEOUT, async { collect_chunks(client.fetch_piece(req).await).await })
                .await
                .unwrap_or_else(|_| Err(EmberError::Internal("fetching a piece from the driver timed out".into())))
        })
    }

    fn ask(&self, endpoint: &str, message: Vec<u8>) -> Result<Vec<u8>> {
        let mut client = self.client.clone();
        let req = AskRequest { endpoint: endpoint.into(), message };
        Ok(self.call(endpoint, async move { client.ask(req).await })?.data)
    }
}

/// Bound on fetching one piece from one holder.
const PIECE_TIMEOUT: Duration = Duration::from_secs(60);

struct RemoteBlocks {
    handle: Handle,
    clients: Mutex<HashMap<String, BlockServerClient<SignedChannel>>>,
    /// Bound on one shuffle block fetch (`spark.network.timeout`).
    fetch_timeout: Duration,
    /// The secret and TLS of calls to other executors' block servers.
    security: RpcSecurity,
}

impl RemoteBlocks {
    fn fetch_timed_out(&self, address: &str) -> EmberError {
        EmberError::Timeout {
            what: format!("the block server at {address} (shuffle block fetch)"),
            after_ms: self.fetch_timeout.as_millis() as u64,
            setting: "spark.network.timeout".into(),
        }
    }
}

impl RemoteBlocks {
    fn client(&self, address: &str) -> Result<BlockServerClient<SignedChannel>> {
        if let Some(c) = self.clients.lock().get(address) {
            return Ok(c.clone());
        }
        let endpoint = self.security.endpoint(address)?.connect_timeout(Duration::from_secs(5)).tcp_nodelay(true);
        // Channels are created inside the runtime that drives them (task threads are plain threads).
        let _runtime = self.handle.enter();
        let client = self.security.block_client(endpoint.connect_lazy());
        self.clients.lock().insert(address.to_string(), client.clone());
        Ok(client)
    }
}

impl BlockFetcher for RemoteBlocks {
    fn fetch_block(&self, status: &MapStatus, shuffle_id: u32, map_index: u32, reduce_index: u32) -> Result<Vec<u8>> {
        let mut client = self.client(&status.address)?;
        let req = ShuffleBlockRequest { shuffle_id, map_index, reduce_index };
        let timeout = self.fetch_timeout;
        let fetched = self.handle.block_on(async move {
            tokio::time::timeout(timeout, async { collect_chunks(client.fetch_shuffle_block(req).await).await }).await
        });
        match fetched {
            Ok(r) => r,
            Err(_) => Err(self.fetch_timed_out(&status.address)),
        }
    }

    fn fetch_blocks(&self, requests: Vec<BlockRequest>, max_bytes_in_flight: u64) -> FetchResults {
        // Permits are KiB of block data: at most `max_bytes_in_flight` requested
        // or received and not yet consumed. A block's permits go back when the
        // reader asks for the next block, so a slow reducer stops the fetches
        // instead of piling blocks up in memory.
        let total = (max_bytes_in_flight / 1024).clamp(1, u32::MAX as u64 >> 4) as u32;
        let budget = Arc::new(tokio::sync::Semaphore::new(total as usize));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut jobs = Vec::with_capacity(requests.len());
        for request in requests {
            let client = self.client(&request.status.address);
            let timed_out = self.fetch_timed_out(&request.status.address);
            jobs.push((request, client, timed_out));
        }
        let timeout = self.fetch_timeout;
        self.handle.spawn(async move {
            for (request, client, timed_out) in jobs {
                let permits = ((request.size() / 1024) as u32).clamp(1, total);
                let Ok(permit) = budget.clone().acquire_many_owned(permits).await else { break };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let bytes = match client {
                        Ok(mut client) => {
                            let req = ShuffleBlockRequest {
                                shuffle_id: request.shuffle_id,
                                map_index: request.map_index,
                                reduce_index: request.reduce_index,
                            };
                            let fetch = async { collect_chunks(client.fetch_shuffle_block(req).await).await };
                            match tokio::time::timeout(timeout, fetch).await {
                                Ok(r) => r,
                                Err(_) => Err(timed_out),
                            }
                        }
                        Err(e) => Err(e),
                    };
                    let _ = tx.send((request, bytes, permit));
                });
            }
        });
        Box::new(FetchedInOrder { rx, consuming: None })
    }

    fn fetch_piece(&self, address: &str, blob: &BlobId, index: u32) -> Result<Vec<u8>> {
        let mut client = self.client(address)?;
        let req = PieceRequest { blob: postcard::to_allocvec(blob)?, index };
        self.handle.block_on(async move {
            tokio::time::timeout(PIECE_TIMEOUT, async { collect_chunks(client.fetch_piece(req).await).await })
                .await
                .unwrap_or_else(|_| Err(EmberError::Internal(format!("fetching a piece from {address} timed out"))))
        })
    }

    fn fetch_stream_block(&self, address: &str, block_id: &str) -> Result<Vec<u8>> {
        let mut client = self.client(address)?;
        let req = StreamBlockRequest { block_id: block_id.to_string() };
        self.handle.block_on(async move {
            tokio::time::timeout(STREAM_BLOCK_TIMEOUT, async {
                collect_chunks(client.fetch_stream_block(req).await).await
            })
            .await
            .unwrap_or_else(|_| Err(EmberError::Internal(format!("fetching a stream block from {address} timed out"))))
        })
    }

    fn fetch_cached_block(&self, address: &str, rdd_id: u64, partition: usize) -> Result<Vec<u8>> {
        let mut client = self.client(address)?;
        let req = CachedBlockRequest { rdd_id, partition: partition as u64 };
        let timeout = self.fetch_timeout;
        self.handle
            .block_on(async move {
                tokio::time::timeout(timeout, async { collect_chunks(client.fetch_cached_block(req).await).await })
                    .await
            })
            .unwrap_or_else(|_| {
                Err(EmberError::Timeout {
                    what: format!("the block server at {address} (cached block rdd_{rdd_id}_{partition})"),
                    after_ms: timeout.as_millis() as u64,
                    setting: "spark.network.timeout".into(),
                })
            })
    }

    fn replicate_stream_block(&self, address: &str, block_id: &str, bytes: Arc<Vec<u8>>) -> Result<()> {
        let mut client = self.client(address)?;
        // `chunks` gives at least one chunk, so even an empty block names itself.
        let mut first = Some(block_id.to_string());
        let uploads: Vec<StreamBlockUpload> = ember_core::wire::chunks(bytes)
            .map(|c| StreamBlockUpload { block_id: first.take().unwrap_or_default(), data: c.data })
            .collect();
        self.handle.block_on(async move {
            match tokio::time::timeout(
                STREAM_BLOCK_TIMEOUT,
                client.replicate_stream_block(futures::stream::iter(uploads)),
            )
            .await
            {
                Ok(reply) => reply.map(|_| ()).map_err(from_status),
                Err(_) => Err(EmberError::Internal(format!("replicating a stream block to {address} timed out"))),
            }
        })
    }
}

/// Bound on moving one received stream block between executors.
const STREAM_BLOCK_TIMEOUT: Duration = Duration::from_secs(60);

type Fetched = (BlockRequest, Result<Vec<u8>>, tokio::sync::OwnedSemaphorePermit);

/// Blocks as they arrive; each holds its in-flight permits until the reader
/// asks for the next one.
struct FetchedInOrder {
    rx: std::sync::mpsc::Receiver<Fetched>,
    consuming: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Iterator for FetchedInOrder {
    type Item = (BlockRequest, Result<Vec<u8>>);
    fn next(&mut self) -> Option<Self::Item> {
        // Done with the previous block: its permits let the next fetch start.
        self.consuming = None;
        let (request, bytes, permit) = self.rx.recv().ok()?;
        self.consuming = Some(permit);
        Some((request, bytes))
    }
}

/// A `local-cluster` executor dies with the driver that started it (Linux), even
/// if the driver is killed before it can close the session.
pub fn exit_with_parent() {
    #[cfg(target_os = "linux")]
    if let Some(parent) = std::env::var("EMBER_PARENT_PID").ok().and_then(|p| p.parse::<i32>().ok()) {
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        // The parent may have died before the flag was set.
        if unsafe { libc::getppid() } != parent {
            std::process::exit(exit_code::DRIVER_LOST);
        }
    }
}
