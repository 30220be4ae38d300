//! The distributed backend: the driver's gRPC server, executors it launches
//! itself (`local-cluster`) or that join it (`ember://`), and a clean stop.

use crate::broadcast_manager::BroadcastManager;
use crate::driver_service::block_client;
use crate::driver_service::{DriverService, ExecutorRegistry};
use crate::listener::{self, Event, ListenerBus};
use crate::local_worker::{DEFAULT_MAX_EXECUTOR_RETRIES, LaunchSpec, LocalWorker};
use crate::map_output::MapOutputTracker;
use crate::scheduler::TaskScheduler;
use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use ember_core::security::RpcSecurity;
use ember_core::wire::MAX_MESSAGE_BYTES;
use ember_core::wire::v1::StatsRequest;
use ember_core::wire::v1::driver_server::DriverServer;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ClusterBackend {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    service: DriverService,
    /// The address executors connect to.
    pub address: SocketAddr,
    /// Starts, watches and relaunches the executors of `local-cluster`.
    worker: Arc<LocalWorker>,
    shutdown: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// Broadcast bytes each executor had uploaded when last asked.
    uploads: Arc<Mutex<HashMap<String, u64>>>,
}

/// Asks every executor at `addresses` (id, block-server address) for the
/// broadcast bytes it uploaded; those that do not answer within 5 s are left out.
async fn ask_upload_stats(addresses: Vec<(String, String)>, security: &RpcSecurity) -> Vec<(String, u64)> {
    let asks = addresses.into_iter().map(|(id, address)| async move {
        let ask = async {
            let mut client = block_client(&address, security).await.ok()?;
            let reply = client.upload_stats(StatsRequest {}).await.ok()?;
            Some(reply.into_inner().broadcast_bytes_uploaded)
        };
        tokio::time::timeout(Duration::from_secs(5), ask).await.ok().flatten().map(|b| (id, b))
    });
    let mut out: Vec<(String, u64)> = futures::future::join_all(asks).await.into_iter().flatten().collect();
    out.sort();
    out
}

/// Asks the executors' upload figures and posts those that changed since `last`
/// as `SparkListenerExecutorMetricsUpdate`.
async fn post_upload_stats(
    registry: &ExecutorRegistry,
    security: &RpcSecurity,
    bus: &ListenerBus,
    last: &Mutex<HashMap<String, u64>>,
) -> Vec<(String, u64)> {
    let stats = ask_upload_stats(registry.addresses(), security).await;
    let time_ms = listener::now_ms();
    for (executor_id, bytes) in &stats {
        if last.lock().insert(executor_id.clone(), *bytes) != Some(*bytes) {
            bus.post(Event::ExecutorMetricsUpdate(listener::ExecutorMetricsUpdate {
                executor_id: executor_id.clone(),
                broadcast_bytes_uploaded: *bytes,
                time_ms,
            }));
        }
    }
    stats
}

/// mimalloc settings of `local-cluster` executor processes (unless the driver's
/// environment sets them): freed memory goes back to the system at once
/// (`purge_delay` 0, default 10 ms) and arenas are committed as used, not whole
/// (`arena_eager_commit` 0). With the defaults an executor grouping a key ten times its
/// memory peaked at 85 MB of RSS against 59 MB with glibc; with these, 46 MB, at no
/// measurable cost in speed (docs/BENCHMARKS.md). mimalloc reads them from the
/// environment when it starts, which is before `main`.
pub const EXECUTOR_ALLOCATOR_ENV: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0")];

/// Where and how the driver's server listens.
pub struct Listen<'a> {
    /// The interface, e.g. `0.0.0.0`.
    pub host: &'a str,
    /// The port; 0: any free port.
    pub port: u16,
    /// The application's secret and TLS: required of every call to the
    /// server, used by the driver's own calls to block servers, and given to
    /// the executors it starts.
    pub security: RpcSecurity,
}

impl ClusterBackend {
    /// Starts the driver's server as `listen` says.
    pub fn start(
        conf: &Conf,
        listen: Listen<'_>,
        scheduler: Arc<TaskScheduler>,
        tracker: Arc<MapOutputTracker>,
        broadcasts: Arc<BroadcastManager>,
        endpoints: Arc<ember_core::endpoint::Endpoints>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ember-driver-rpc")
            .enable_all()
            .build()
            .map_err(|e| EmberError::Internal(format!("cannot start the driver runtime: {e}")))?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind((listen.host, listen.port))).map_err(|e| {
            EmberError::Config(format!("the driver cannot listen on {}:{}: {e}", listen.host, listen.port))
        })?;
        let address = listener.local_addr().map_err(|e| EmberError::Internal(e.to_string()))?;
        let heartbeat_interval = conf.get_duration("spark.executor.heartbeatInterval", Duration::from_secs(10))?;
        let timeout = conf.get_duration("spark.network.timeout", Duration::from_secs(120))?;
        let registry = Arc::new(ExecutorRegistry::default());
        let max_retries = conf.get_usize("spark.deploy.maxExecutorRetries", DEFAULT_MAX_EXECUTOR_RETRIES)?;
        let worker = LocalWorker::new(max_retries);
        broadcasts.add_evictor(registry.clone());
        let service = DriverService {
            scheduler,
            tracker,
            broadcasts,
            registry,
            // Executors get the secret from their environment; over the
            // network it would hand it to whoever reads the traffic.
            conf: Arc::new(postcard::to_allocvec(&conf.clone().without(ember_core::security::SECRET_CONF))?),
            heartbeat_interval,
            network_timeout: timeout,
            endpoints,
            worker: worker.clone(),
            security: listen.security,
        };
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let mut builder = service.security.server("driver's server")?;
        let server = tonic::service::interceptor::InterceptedService::new(
            DriverServer::new(service.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            service.security.server_auth("driver"),
        );
        runtime.spawn(async move {
            // `Server::tcp_nodelay` only applies to listeners tonic binds itself;
            // this one is ours, so Nagle is turned off on its incoming stream.
            // Left on, every task description larger than a TCP segment waited
            // for the executor's delayed ACK: about 20 ms a task.
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let serve = builder.add_service(server).serve_with_incoming_shutdown(incoming, async {
                let _ = shutdown_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "driver server failed");
            }
        });
        let reaper = service.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(heartbeat_interval.min(timeout / 2).max(Duration::from_millis(50)));
            loop {
                tick.tick().await;
                reaper.reap_silent(timeout);
            }
        });
        let uploads: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let bus = service.scheduler.bus().clone();
        if bus.is_active() {
            // Spark's executor metrics come with heartbeats; these are asked as often.
            let (registry, last) = (service.registry.clone(), uploads.clone());
            let security = service.security.clone();
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(heartbeat_interval.max(Duration::from_millis(50)));
                loop {
                    tick.tick().await;
                    post_upload_stats(&registry, &security, &bus, &last).await;
                }
            });
        }
        tracing::info!(%address, "driver listening");
        ember_core::console::announce(format_args!("ember: driver listening on {address}"));
        Ok(Self {
            runtime: Mutex::new(Some(runtime)),
            service,
            address,
            worker,
            shutdown: Mutex::new(Some(shutdown_tx)),
            uploads,
        })
    }

    /// Starts dynamic allocation over this backend's executors (see
    /// [`crate::allocation`]); with `launch_locally` (`local-cluster`) it starts
    /// executor processes itself, else it only publishes its demand on `board`.
    ///
    /// Errors: the allocation thread cannot start.
    pub fn start_allocation(
        &self,
        conf: crate::allocation::AllocationConf,
        board: Arc<crate::allocation::AllocationBoard>,
        launch_locally: bool,
    ) -> Result<crate::allocation::AllocationManager> {
        crate::allocation::AllocationManager::start(conf, self.service.clone(), board, launch_locally)
    }

    pub fn registry(&self) -> &Arc<ExecutorRegistry> {
        &self.service.registry
    }

    /// Broadcast bytes each registered executor has uploaded (asked over its block server).
    pub fn executor_upload_stats(&self) -> Vec<(String, u64)> {
        let addresses = self.service.registry.addresses();
        let runtime = self.runtime.lock();
        let Some(rt) = runtime.as_ref() else { return Vec::new() };
        rt.block_on(ask_upload_stats(addresses, &self.service.security))
    }

    /// The URL executors use to reach this driver.
    pub fn driver_url(&self) -> String {
        let ip =
            if self.address.ip().is_unspecified() { "127.0.0.1".to_string() } else { self.address.ip().to_string() };
        format!("http://{ip}:{}", self.address.port())
    }

    /// Starts `count` executor processes of this very binary (`local-cluster`),
    /// watched and relaunched by the [`LocalWorker`]. Executor i binds the i-th
    /// address of `bind_addresses` (round robin).
    pub fn launch_local_executors(
        &self,
        count: usize,
        cores: usize,
        memory_mb: u64,
        bind_addresses: &[String],
        local_dirs: &[std::path::PathBuf],
    ) -> Result<()> {
        let exe = std::env::current_exe().map_err(|e| EmberError::Internal(format!("cannot find this binary: {e}")))?;
        let mut env: Vec<(String, String)> = EXECUTOR_ALLOCATOR_ENV
            .iter()
            .filter(|(key, _)| std::env::var_os(key).is_none())
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        // In the environment, not the command line: /proc/PID/environ is
        // readable by this user only.
        env.extend(self.service.security.child_env());
        let spec = LaunchSpec {
            exe,
            driver_url: self.driver_url(),
            cores,
            memory_mb,
            bind_addresses: bind_addresses.to_vec(),
            local_dirs: local_dirs.to_vec(),
            env,
        };
        self.worker.launch(spec, count)
    }

    /// Waits until `count` executors registered, or `timeout`. With `required`,
    /// too few is an error; an executor process that dies while starting is always one.
    pub fn wait_for_executors(&self, count: usize, timeout: Duration, required: bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let registered = self.service.registry.count();
            if registered >= count {
                return Ok(());
            }
            if let Some((id, exit)) = self.worker.exited_ids().into_iter().next() {
                return Err(EmberError::ExecutorLost {
                    executor_id: id,
                    reason: format!("{exit} while starting; does this binary's main call ember::entry?"),
                });
            }
            if Instant::now() >= deadline {
                if required {
                    return Err(EmberError::ExecutorLost {
                        executor_id: String::new(),
                        reason: format!("only {registered} of {count} executors registered within {timeout:?}"),
                    });
                }
                tracing::warn!(registered, expected = count, "starting with fewer executors than requested");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Tells every executor to exit, waits for the ones this driver started, and stops the server.
    pub fn stop(&self) {
        // The executors' last figures, for the UI and the event log.
        let bus = self.service.scheduler.bus();
        if bus.is_active()
            && let Some(rt) = self.runtime.lock().as_ref()
        {
            rt.block_on(post_upload_stats(&self.service.registry, &self.service.security, bus, &self.uploads));
        }
        // Executors this driver did not start (pods, standalone processes) must hear
        // the order before the server goes, or they take the driver for lost.
        self.worker.stop_relaunching();
        let lingering = self.service.registry.shut_down_all(Duration::from_secs(5));
        if lingering > 0 {
            tracing::warn!(executors = lingering, "executors still connected 5 s after the shutdown order");
        }
        self.worker.stop(Duration::from_secs(5));
        if let Some(tx) = self.shutdown.lock().take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
