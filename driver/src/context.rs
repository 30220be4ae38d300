//! The context: a connection to executors (Spark's SparkContext). It creates
//! RDDs from data and files, broadcast variables and accumulators, and runs jobs.

use crate::allocation::AllocationConf;
use crate::broadcast_manager::BroadcastManager;
use crate::cluster::{ClusterBackend, Listen};
use crate::listener::{self, Event};
use crate::local_backend::{InProcessDriver, InProcessExecutor, NoRemoteBlocks, SchedulerSink};
use crate::map_output::MapOutputTracker;
use crate::master::Master;
use crate::monitoring::Monitoring;
use crate::rdd::Rdd;
use crate::scheduler::TaskScheduler;
use crate::scheduler::dag::{self, DagContext};
use crate::scheduler::speculation::{SpeculationConf, SpeculationCounters, SpeculationMetrics};
use ember_core::accumulator::{Accumulator, AccumulatorValue, MergeUpdate};
use ember_core::broadcast::{Broadcast, BroadcastOwner, encode_value, next_broadcast_id};
use ember_core::config::Conf;
use ember_core::data::Data;
use ember_core::endpoint::{EXECUTOR_LOG_URLS, EndpointHandler, Endpoints};
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use ember_core::lineage::encode_root;
use ember_core::rdd::{
    BinaryRecordsRdd, EmptyRdd, ParallelCollectionRdd, RangeRdd, RddBase, RddNode, TextFileRdd, UnionRdd,
    WholeTextFilesRdd,
};
use ember_core::security::{self, RpcSecurity};
use ember_core::shuffle::ShuffleDepBase;
use ember_core::storage::{BLOCK_LOCATIONS, BLOCK_MANAGER_MASTER};
use ember_core::task::{PartitionFn, ResultStage, TaskMetricsSnapshot};
use ember_core::text::{plan_record_splits, plan_splits, resolve_input_files};
use ember_executor::{Executor, ExecutorConfig};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) struct ContextInner {
    pub conf: Conf,
    pub master: Master,
    pub scheduler: Arc<TaskScheduler>,
    pub tracker: Arc<MapOutputTracker>,
    pub broadcasts: Arc<BroadcastManager>,
    accumulators: Mutex<HashMap<u64, MergeUpdate>>,
    local_executors: Mutex<Vec<Arc<Executor>>>,
    /// Shuffles jobs used, weakly: once no RDD references one, its files are deleted.
    shuffles: Mutex<HashMap<u32, std::sync::Weak<dyn ShuffleDepBase>>>,
    cluster: Option<ClusterBackend>,
    /// Dynamic allocation's loop, when on; stopped before the executors are.
    allocation: Option<crate::allocation::AllocationManager>,
    stopped: AtomicBool,
    next_job_id: AtomicU64,
    default_parallelism: usize,
    max_task_failures: u32,
    max_stage_attempts: u32,
    /// `spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout`.
    unschedulable_timeout: std::time::Duration,
    /// `spark.excludeOnFailure.enabled`.
    exclude_on_failure: bool,
    speculation: SpeculationConf,
    speculation_counters: SpeculationCounters,
    /// Counters of every task that succeeded first for its partition.
    task_metrics: Mutex<TaskMetricsSnapshot>,
    /// Where `Rdd::checkpoint` writes (`set_checkpoint_dir`).
    checkpoint_dir: Mutex<Option<Location>>,
    /// Local copies of files `add_file` fetched from an object store (made at the first).
    fetched_files: Mutex<Option<tempfile::TempDir>>,
    /// Named handlers tasks may ask (`register_endpoint`).
    endpoints: Arc<Endpoints>,
    /// Listener bus, status store, web UI, event log.
    monitoring: Monitoring,
    /// The application's span, parent of every job's (traces exported only;
    /// see `ember_core::telemetry`). Taken, so ended, when the context stops.
    trace: Mutex<Option<tracing::Span>>,
}

mod endpoints;
mod files;
pub mod local_properties;
use endpoints::{block_locations_from, block_updates_to, log_urls_to};

/// Entry point to Ember: create one per application.
#[derive(Clone)]
pub struct EmberContext {
    pub(crate) inner: Arc<ContextInner>,
}

/// The driver's TLS (`spark.ssl.rpc.*`), loaded; `None` when off.
fn rpc_tls(conf: &Conf) -> Result<Option<ember_core::tls::RpcTls>> {
    ember_core::tls::TlsFiles::from_conf(conf)?.map(ember_core::tls::RpcTls::load).transpose()
}

/// Adds the `spark.*` settings of `dir/spark-defaults.conf` that `conf` does not set: the
/// lowest precedence, as spark-submit reads `$SPARK_CONF_DIR/spark-defaults.conf`. The
/// operator mounts an application's `sparkConfigMap` there. A missing file adds nothing.
///
/// Errors: [`EmberError::Config`] when the file exists but cannot be read.
pub fn conf_dir_defaults(conf: &mut Conf, dir: &Path) -> Result<()> {
    let file = dir.join("spark-defaults.conf");
    if !file.is_file() {
        return Ok(());
    }
    for (key, value) in crate::launcher::read_properties(&file)? {
        if !conf.contains(&key) {
            conf.insert(key, value);
        }
    }
    Ok(())
}

/// The files of `spark.files` (comma-separated local paths, `file:` URLs or `s3a://`
/// objects), which a context ships to every executor at its start, as Spark does.
pub fn spark_files(conf: &Conf) -> Vec<String> {
    conf.get("spark.files")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn local_dirs(conf: &Conf) -> Vec<PathBuf> {
    let from_env = std::env::var("EMBER_LOCAL_DIRS").ok();
    let spec = conf.get("spark.local.dir").map(str::to_string).or(from_env).unwrap_or_default();
    spec.split(',').map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect()
}

impl EmberContext {
    /// A context for `conf` (`spark.master` defaults to `local[*]`; `EMBER_CONF`
    /// settings fill in whatever `conf` does not set).
    pub fn new(mut conf: Conf) -> Result<Self> {
        if let Ok(json) = std::env::var("EMBER_CONF")
            && !json.trim().is_empty()
        {
            conf.merge_json_defaults(&json)?;
        }
        if let Ok(dir) = std::env::var("SPARK_CONF_DIR")
            && !dir.trim().is_empty()
        {
            conf_dir_defaults(&mut conf, Path::new(dir.trim()))?;
        }
        let master_url = conf.get("spark.master").unwrap_or("local[*]").to_string();
        let master = Master::parse(&master_url)?;
        let max_task_failures = conf.get_usize("spark.task.maxFailures", 4)?.max(1) as u32;
        let max_stage_attempts = conf.get_usize("spark.stage.maxConsecutiveAttempts", 4)?.max(1) as u32;
        let exclude_on_failure = conf.get_bool("spark.excludeOnFailure.enabled", true)?;
        let unschedulable_timeout = conf.get_duration(
            "spark.scheduler.excludeOnFailure.unschedulableTaskSetTimeout",
            dag::DEFAULT_UNSCHEDULABLE_TIMEOUT,
        )?;
        let speculation = SpeculationConf::from_conf(&conf)?;
        let memory = conf.get_bytes("spark.executor.memory", 1 << 30)?;
        let monitoring = Monitoring::start(&conf, &master_url)?;
        // Checked here too: executors would each fail on it, one after another.
        ember_core::memory::memory_fraction(&conf)?;
        let locality_wait =
            conf.get_duration("spark.locality.wait", crate::scheduler::task_scheduler::DEFAULT_LOCALITY_WAIT)?;
        let scheduler = TaskScheduler::with_bus(monitoring.bus.clone(), locality_wait);
        let tracker = Arc::new(MapOutputTracker::default());
        let broadcasts = Arc::new(BroadcastManager::new(
            conf.get_bytes("spark.broadcast.blockSize", 4 << 20)?,
            conf.get_bool("spark.broadcast.checksum", true)?,
        ));
        let endpoints = Arc::new(Endpoints::default());
        // Weak: the endpoints live as long as the executors that call them.
        endpoints.register(BLOCK_MANAGER_MASTER, block_updates_to(monitoring.bus.clone(), Arc::downgrade(&scheduler)));
        endpoints.register(BLOCK_LOCATIONS, block_locations_from(Arc::downgrade(&scheduler)));
        endpoints.register(EXECUTOR_LOG_URLS, log_urls_to(monitoring.bus.clone()));
        if let Some(m) = &monitoring.metrics {
            let uploads = broadcasts.clone();
            m.set_broadcast_source(move || uploads.block_master.bytes_uploaded());
        }
        let mut local_executors = Vec::new();
        let mut cluster = None;
        let mut allocation = None;
        let registration_wait =
            conf.get_duration("spark.scheduler.maxRegisteredResourcesWaitingTime", std::time::Duration::from_secs(30))?;
        let cores = match &master {
            Master::Local { threads } => {
                if conf.get_bool("spark.dynamicAllocation.enabled", false)? {
                    tracing::warn!(
                        "dynamic allocation needs a cluster master (local-cluster, ember://); off in local mode"
                    );
                }
                let driver = Arc::new(InProcessDriver {
                    tracker: tracker.clone(),
                    broadcasts: broadcasts.clone(),
                    endpoints: endpoints.clone(),
                });
                let executor = Executor::start(
                    ExecutorConfig {
                        executor_id: "driver".into(),
                        cores: *threads,
                        memory_bytes: memory,
                        local_dirs: local_dirs(&conf),
                        advertise_address: String::new(),
                        conf: conf.clone(),
                    },
                    driver,
                    Arc::new(NoRemoteBlocks),
                    Arc::new(SchedulerSink(scheduler.clone())),
                )?;
                broadcasts.block_master.add_executor("driver", "");
                let link = Arc::new(InProcessExecutor(executor.clone()));
                broadcasts.add_evictor(link.clone());
                scheduler.add_executor("driver", *threads, link);
                local_executors.push(executor);
                *threads
            }
            Master::LocalCluster { executors, cores, memory_mb } => {
                if crate::is_executor_process() {
                    return Err(EmberError::Config(
                        "this process was started as an executor (EMBER_ROLE=executor) but its main does not call ember::entry".into(),
                    ));
                }
                // A secret per application when none is given: this driver
                // starts every executor and hands it over.
                let secret = match security::secret_from_conf(&conf)? {
                    None if security::authenticate_enabled(&conf)? => Some(security::generate_secret()?),
                    given => given,
                };
                let backend = ClusterBackend::start(
                    &conf,
                    Listen { host: "127.0.0.1", port: 0, security: RpcSecurity { secret, tls: rpc_tls(&conf)? } },
                    scheduler.clone(),
                    tracker.clone(),
                    broadcasts.clone(),
                    endpoints.clone(),
                )?;
                let binds: Vec<String> = conf
                    .get("ember.localCluster.bindAddresses")
                    .unwrap_or("127.0.0.1")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let dirs = local_dirs(&conf);
                // With dynamic allocation the cluster's N executors are its room,
                // and it starts with the initial number.
                let dynamic = AllocationConf::from_conf(&conf, Some(*executors))
                    .map(|d| d.map(|d| AllocationConf { tasks_per_executor: (*cores).max(1), ..d }));
                let first = match &dynamic {
                    Ok(Some(d)) => d.initial,
                    _ => *executors,
                };
                let started = dynamic.and_then(|dynamic| {
                    backend.launch_local_executors(first, *cores, *memory_mb, &binds, &dirs)?;
                    backend.wait_for_executors(first, registration_wait, true)?;
                    dynamic.map(|d| backend.start_allocation(d, monitoring.allocation.clone(), true)).transpose()
                });
                match started {
                    Ok(manager) => allocation = manager,
                    Err(e) => {
                        backend.stop();
                        return Err(e);
                    }
                }
                cluster = Some(backend);
                executors * cores
            }
            Master::Standalone { host, port } => {
                let secret = security::secret_from_conf(&conf)?;
                if secret.is_none() && security::authenticate_enabled(&conf)? {
                    return Err(EmberError::Config(
                        "spark.authenticate=true on an ember:// master needs spark.authenticate.secret or \
                         spark.authenticate.secret.file: executors started elsewhere must be given the same \
                         secret (EMBER_AUTH_SECRET or EMBER_AUTH_SECRET_FILE)"
                            .into(),
                    ));
                }
                let backend = ClusterBackend::start(
                    &conf,
                    Listen { host, port: *port, security: RpcSecurity { secret, tls: rpc_tls(&conf)? } },
                    scheduler.clone(),
                    tracker.clone(),
                    broadcasts.clone(),
                    endpoints.clone(),
                )?;
                // With dynamic allocation the cluster manager starts the initial
                // executors and then follows the demand published on the UI.
                let dynamic = AllocationConf::from_conf(&conf, None)?;
                if dynamic.is_some() && conf.get(crate::allocation::OPERATOR_MANAGED_KEY) == Some("false") {
                    return Err(EmberError::Config(
                        "spark.dynamicAllocation.enabled is true, but the Kubernetes operator does not follow this                          driver's demand (it reads spec.dynamicAllocation and sparkConf, not sparkConfigMap): set it                          in the SparkApplication's sparkConf or spec.dynamicAllocation"
                            .into(),
                    ));
                }
                let expected = match &dynamic {
                    Some(d) => d.initial,
                    None => conf.get_usize("spark.executor.instances", 0)?,
                };
                if expected > 0 {
                    backend.wait_for_executors(expected, registration_wait, false)?;
                }
                if let Some(d) = dynamic {
                    if monitoring.ui_address().is_none() {
                        tracing::warn!(
                            "dynamic allocation publishes its demand on the web UI, which is off: no cluster manager will see it"
                        );
                    }
                    allocation = Some(backend.start_allocation(d, monitoring.allocation.clone(), false)?);
                }
                cluster = Some(backend);
                scheduler.total_cores().max(2)
            }
        };
        let default_parallelism = conf.get_usize("spark.default.parallelism", cores.max(2))?.max(1);
        tracing::info!(master = %master_url, app = conf.get("spark.app.name").unwrap_or("ember"), "context started");
        let trace = ember_core::telemetry::enabled().then(|| {
            tracing::info_span!(
                target: ember_core::telemetry::TARGET,
                parent: None,
                "application",
                app_id = %monitoring.app_id,
                app_name = conf.get("spark.app.name").unwrap_or("ember"),
                master = %master_url,
            )
        });
        let sc = Self {
            inner: Arc::new(ContextInner {
                conf,
                master,
                scheduler,
                tracker,
                broadcasts,
                accumulators: Mutex::new(HashMap::new()),
                local_executors: Mutex::new(local_executors),
                shuffles: Mutex::new(HashMap::new()),
                cluster,
                allocation,
                stopped: AtomicBool::new(false),
                next_job_id: AtomicU64::new(0),
                default_parallelism,
                max_task_failures,
                max_stage_attempts,
                unschedulable_timeout,
                exclude_on_failure,
                speculation,
                speculation_counters: SpeculationCounters::default(),
                task_metrics: Mutex::new(TaskMetricsSnapshot::default()),
                checkpoint_dir: Mutex::new(None),
                fetched_files: Mutex::new(None),
                endpoints,
                monitoring,
                trace: Mutex::new(trace),
            }),
        };
        for file in spark_files(&sc.inner.conf) {
            if let Err(err) = sc.add_file(&file) {
                sc.stop();
                return Err(err);
            }
        }
        Ok(sc)
    }

    /// A `local[threads]` context with default settings.
    pub fn local(threads: usize) -> Result<Self> {
        Self::new(Conf::new().master(format!("local[{}]", threads.max(1))))
    }

    pub fn conf(&self) -> &Conf {
        &self.inner.conf
    }

    pub fn master(&self) -> &Master {
        &self.inner.master
    }

    /// Partitions used when an operation is not told how many (`spark.default.parallelism`).
    pub fn default_parallelism(&self) -> usize {
        self.inner.default_parallelism
    }

    pub(crate) fn wrap<T: Data>(&self, node: impl RddNode<T>) -> Rdd<T> {
        Rdd::from_node(Arc::new(node), self.inner.clone())
    }

    /// Distributes a local collection over `slices` partitions.
    ///
    /// # Panics
    /// When `slices` is 0 (Spark: "Positive number of partitions required"); the
    /// message names the call site. Use [`EmberContext::empty_rdd`] for no partitions.
    #[track_caller]
    pub fn parallelize<T: Data>(&self, data: Vec<T>, slices: usize) -> Rdd<T> {
        assert!(slices > 0, "parallelize: the number of slices must be positive (got 0)");
        self.wrap(ParallelCollectionRdd::new(data, slices))
    }

    /// The numbers `start, start+step, …` below `end` (above it for a negative step).
    pub fn range(&self, start: i64, end: i64, step: i64, slices: usize) -> Result<Rdd<i64>> {
        if step == 0 {
            return Err(EmberError::Invalid("range step must not be zero".into()));
        }
        Ok(self.wrap(RangeRdd::new(start, end, step, slices)))
    }

    /// Lines of a text file, a directory of files, a glob, or a comma-separated
    /// list of those. A missing path is an error here, before any task runs.
    pub fn text_file(&self, path: &str, min_partitions: usize) -> Result<Rdd<String>> {
        let files = resolve_input_files(path, &self.inner.conf)?;
        let splits = plan_splits(&files, min_partitions.max(1))?;
        Ok(self.wrap(TextFileRdd::new(splits)))
    }

    /// `(file:<path>, content)` of every file `path` names (a file, directory, glob
    /// or comma-separated list, as [`EmberContext::text_file`]), each file read
    /// whole and decompressed by its extension (Spark's `wholeTextFiles`). Files
    /// are grouped into at most `min_partitions` partitions of about equal size.
    ///
    /// # Errors
    /// [`EmberError::InputPath`] for a missing path, before any task runs.
    pub fn whole_text_files(&self, path: &str, min_partitions: usize) -> Result<Rdd<(String, String)>> {
        let files = resolve_input_files(path, &self.inner.conf)?;
        let groups = ember_core::text::plan_whole_files(&files, min_partitions.max(1))?;
        Ok(self.wrap(WholeTextFilesRdd::new(groups)))
    }

    /// Fixed-length binary records (Spark's `binaryRecords`); every file's size
    /// must be a multiple of `record_len`.
    pub fn binary_records(&self, path: &str, record_len: usize, min_partitions: usize) -> Result<Rdd<Vec<u8>>> {
        let files = resolve_input_files(path, &self.inner.conf)?;
        let splits = plan_record_splits(&files, record_len as u64, min_partitions.max(1))?;
        Ok(self.wrap(BinaryRecordsRdd::new(splits, record_len)))
    }

    pub fn empty_rdd<T: Data>(&self) -> Rdd<T> {
        self.wrap(EmptyRdd::<T>::new())
    }

    /// All elements of every RDD, partitions one after the other.
    pub fn union<T: Data>(&self, rdds: &[Rdd<T>]) -> Rdd<T> {
        self.wrap(UnionRdd::new(rdds.iter().map(|r| r.node.clone()).collect()))
    }

    /// Ships `value` to each executor once, however many tasks read it.
    pub fn broadcast<T: Data>(&self, value: T) -> Result<Broadcast<T>> {
        let compress = self.inner.conf.get_bool("spark.broadcast.compress", true)?;
        let id = next_broadcast_id();
        self.inner.broadcasts.put(id, encode_value(&value, compress)?, compress);
        let owner: Arc<dyn BroadcastOwner> = self.inner.broadcasts.clone();
        Ok(Broadcast::new_on_driver(id, Arc::new(value), owner))
    }

    /// A value tasks add to and the driver reads; each partition's updates count once.
    pub fn accumulator<T: AccumulatorValue>(&self, initial: T) -> Accumulator<T> {
        let (acc, merge) = Accumulator::create(initial);
        self.inner.accumulators.lock().insert(acc.id(), merge);
        acc
    }

    /// Sets the directory RDD checkpoints are written under (Spark's
    /// `setCheckpointDir`): an `s3a://` prefix, or a local path created when
    /// missing and made absolute, which every executor must see at the same path
    /// (a shared volume on a cluster).
    ///
    /// Errors: an unsupported scheme; a local directory that cannot be created.
    pub fn set_checkpoint_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        let abs = ember_core::filesystem::checkpoint_dir(dir.as_ref())?;
        *self.inner.checkpoint_dir.lock() = Some(abs);
        Ok(())
    }

    /// The directory set with [`EmberContext::set_checkpoint_dir`].
    pub fn checkpoint_dir(&self) -> Option<Location> {
        self.inner.checkpoint_dir()
    }

    /// Registers a driver endpoint that running tasks can ask with
    /// `TaskContext::ask_driver(name, bytes)`, in local mode and on executors
    /// alike (Spark's driver-side `RpcEndpoint`). Replaces an endpoint of the
    /// same name.
    pub fn register_endpoint(&self, name: &str, handler: EndpointHandler) {
        self.inner.endpoints.register(name, handler);
    }

    /// Removes a driver endpoint.
    pub fn unregister_endpoint(&self, name: &str) {
        self.inner.endpoints.unregister(name);
    }

    /// The executors that can hold blocks for others, as `(executor id, block
    /// server address)`; empty in local mode, whose one executor needs no peers.
    pub fn executor_block_addresses(&self) -> Vec<(String, String)> {
        self.inner.cluster.as_ref().map(|c| c.registry().addresses()).unwrap_or_default()
    }

    /// Frees received stream blocks (see `ember_core::task::ExecutorEnv::put_stream_block`)
    /// on every executor. Blocks an executor does not hold are ignored.
    pub fn remove_stream_blocks(&self, block_ids: Vec<String>) {
        if block_ids.is_empty() {
            return;
        }
        for e in self.inner.local_executors.lock().iter() {
            e.services().stream_blocks.remove(&block_ids);
        }
        if let Some(cluster) = &self.inner.cluster {
            use ember_core::wire::v1::{RemoveStreamBlocks, driver_command::Kind};
            cluster.registry().broadcast(Kind::RemoveStreamBlocks(RemoveStreamBlocks { block_ids }));
        }
    }

    /// An RDD over a custom node: the extension point for libraries that add
    /// their own sources (the streaming crate's received blocks, for example).
    pub fn rdd_from_node<T: Data>(&self, node: Arc<dyn RddNode<T>>) -> Rdd<T> {
        Rdd::from_node(node, self.inner.clone())
    }

    /// Stops the executors; later jobs fail with `Stopped`.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Address the driver's gRPC server listens on (distributed masters only).
    pub fn driver_address(&self) -> Option<std::net::SocketAddr> {
        self.inner.cluster.as_ref().map(|c| c.address)
    }

    /// Registered executors and their process ids (distributed masters only).
    pub fn executor_pids(&self) -> Vec<(String, u32)> {
        self.inner.cluster.as_ref().map(|c| c.registry().pids()).unwrap_or_default()
    }

    /// Bytes of broadcast and file pieces each process has uploaded so far: the
    /// driver, and every registered executor (asked over its block server).
    pub fn broadcast_bytes_uploaded(&self) -> BroadcastUploads {
        let driver = self.inner.broadcasts.block_master.bytes_uploaded();
        let executors = self.inner.cluster.as_ref().map(|c| c.executor_upload_stats()).unwrap_or_default();
        BroadcastUploads { driver, executors }
    }

    /// Size of a broadcast value as stored and shipped (serialized, compressed).
    pub fn broadcast_stored_bytes(&self, id: u64) -> Option<u64> {
        self.inner.broadcasts.block_master.meta(&ember_core::pieces::BlobId::Broadcast(id)).ok().map(|m| m.total_bytes)
    }

    /// Number of executors currently registered.
    pub fn executor_count(&self) -> usize {
        self.inner.scheduler.executor_count()
    }

    /// What speculative execution did so far: copies launched, won and killed.
    pub fn speculation_metrics(&self) -> SpeculationMetrics {
        self.inner.speculation_counters.snapshot()
    }

    /// The application's id (`spark.app.id`, else `app-<yyyyMMddHHmmss>-<4 hex digits>`).
    pub fn app_id(&self) -> &str {
        &self.inner.monitoring.app_id
    }

    /// The web UI's address, when it runs (`spark.ui.enabled`, `spark.ui.port`).
    /// An unspecified bind address (0.0.0.0) is given as 127.0.0.1, which reaches it.
    pub fn ui_address(&self) -> Option<std::net::SocketAddr> {
        let mut address = self.inner.monitoring.ui_address()?;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Some(address)
    }

    /// `http://host:port` of the web UI, when it runs.
    pub fn ui_url(&self) -> Option<String> {
        self.ui_address().map(|a| format!("http://{a}"))
    }

    /// The event log being written (`spark.eventLog.enabled`): its in-progress
    /// file, a local path or, on an object store, the URL of the uploaded object.
    pub fn event_log_location(&self) -> Option<&str> {
        self.inner.monitoring.event_log_location()
    }

    /// The application's listener bus (to wait for listeners with `flush`, or read dropped counts).
    pub fn listener_bus(&self) -> &crate::listener::ListenerBus {
        &self.inner.monitoring.bus
    }

    /// Totals over the tasks that produced results so far (one attempt per
    /// partition): shuffle bytes and records written and read, spills.
    pub fn task_metrics(&self) -> TaskMetricsSnapshot {
        self.inner.task_metrics.lock().clone()
    }
}

/// Broadcast bytes uploaded per process (`EmberContext::broadcast_bytes_uploaded`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BroadcastUploads {
    pub driver: u64,
    /// By executor id (executors that could not be asked are left out).
    pub executors: Vec<(String, u64)>,
}

impl BroadcastUploads {
    pub fn executors_total(&self) -> u64 {
        self.executors.iter().map(|(_, b)| b).sum()
    }
}

impl ContextInner {
    fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for e in self.local_executors.lock().drain(..) {
            e.stop();
        }
        if let Some(allocation) = &self.allocation {
            allocation.stop();
        }
        if let Some(cluster) = &self.cluster {
            cluster.stop();
        }
        // Broadcast blocks end with the application (executors' go with their work dirs).
        self.broadcasts.block_master.clear();
        // Listeners see every executor go before the application ends.
        for executor_id in self.scheduler.executor_ids() {
            self.scheduler.remove_executor(&executor_id, "the application stopped");
        }
        self.scheduler.stop();
        self.monitoring.stop();
        // The application's span ends here; what is batched goes out now (bounded).
        let application = self.trace.lock().take();
        if let Some(span) = application {
            drop(span);
            ember_core::telemetry::flush();
        }
        tracing::info!("context stopped");
    }

    /// Deletes the outputs of shuffles no RDD references any more (Spark's ContextCleaner).
    pub(crate) fn clean_unreferenced_shuffles(&self) {
        let dead: Vec<u32> = {
            let mut shuffles = self.shuffles.lock();
            let dead: Vec<u32> = shuffles.iter().filter(|(_, w)| w.strong_count() == 0).map(|(id, _)| *id).collect();
            for id in &dead {
                shuffles.remove(id);
            }
            dead
        };
        for shuffle_id in dead {
            tracing::debug!(shuffle_id, "removing the files of an unreferenced shuffle");
            self.tracker.remove_shuffle(shuffle_id);
            for e in self.local_executors.lock().iter() {
                e.services().shuffle.remove_shuffle(shuffle_id);
            }
            if let Some(cluster) = &self.cluster {
                use ember_core::wire::v1::{RemoveShuffle, driver_command::Kind};
                cluster.registry().broadcast(Kind::RemoveShuffle(RemoveShuffle { shuffle_id }));
            }
        }
    }

    /// Frees every cached partition of an RDD on every executor.
    pub(crate) fn remove_rdd_blocks(&self, rdd_id: u64) {
        self.scheduler.cache_locations().remove_rdd(rdd_id);
        if self.monitoring.bus.is_active() {
            self.monitoring
                .bus
                .post(Event::UnpersistRdd(listener::UnpersistRdd { rdd_id, time_ms: listener::now_ms() }));
        }
        for e in self.local_executors.lock().iter() {
            e.services().blocks.remove_rdd(rdd_id);
        }
        if let Some(cluster) = &self.cluster {
            use ember_core::wire::v1::{RemoveRdd, driver_command::Kind};
            cluster.registry().broadcast(Kind::RemoveRdd(RemoveRdd { rdd_id }));
        }
    }

    pub(crate) fn default_parallelism(&self) -> usize {
        self.default_parallelism
    }

    pub(crate) fn checkpoint_dir(&self) -> Option<Location> {
        self.checkpoint_dir.lock().clone()
    }

    fn merge_accumulators(&self, updates: &[(u64, Vec<u8>)]) {
        let accs = self.accumulators.lock();
        for (id, bytes) in updates {
            if let Some(merge) = accs.get(id)
                && let Err(e) = merge(bytes)
            {
                tracing::warn!(accumulator = id, error = %e, "dropping an accumulator update that does not decode");
            }
        }
    }

    /// Runs `func` over the given partitions of `rdd` (all when None) and returns
    /// one result per partition, in order.
    pub(crate) fn run_job<T: Data, R: Data, F: PartitionFn<T, R>>(
        &self,
        rdd: &Arc<dyn RddNode<T>>,
        func: F,
        partitions: Option<Vec<usize>>,
    ) -> Result<Vec<R>> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(EmberError::Stopped);
        }
        let partitions = partitions.unwrap_or_else(|| (0..rdd.num_partitions()).collect());
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        self.clean_unreferenced_shuffles();
        let rdd_base: Arc<dyn ember_core::rdd::RddBase> = rdd.clone();
        let binary = encode_root(&ResultStage::new(rdd.clone(), func), &rdd_base)?;
        let job_id = self.next_job_id.fetch_add(1, Ordering::Relaxed);
        let merge = |u: &[(u64, Vec<u8>)]| self.merge_accumulators(u);
        let trace = self.trace.lock().clone().unwrap_or_else(tracing::Span::none);
        let cx = DagContext {
            scheduler: &self.scheduler,
            tracker: &self.tracker,
            max_task_failures: self.max_task_failures,
            max_stage_attempts: self.max_stage_attempts,
            unschedulable_timeout: self.unschedulable_timeout,
            exclude_on_failure: self.exclude_on_failure,
            stopped: &self.stopped,
            merge_accumulators: &merge,
            track_shuffle: &|dep: &Arc<dyn ShuffleDepBase>| {
                self.shuffles.lock().insert(dep.shuffle_id(), Arc::downgrade(dep));
            },
            speculation: &self.speculation,
            speculation_counters: &self.speculation_counters,
            task_metrics: &self.task_metrics,
            bus: &self.monitoring.bus,
            trace: &trace,
            long_running: local_properties::is_set(local_properties::LONG_RUNNING),
        };
        let base: Arc<dyn RddBase> = rdd.clone();
        let started = std::time::Instant::now();
        let before = self.task_metrics.lock().clone();
        let results = dag::run_job(job_id, cx, base, binary, partitions)?;
        let after = self.task_metrics.lock().clone();
        // Deltas of the application's counters: exact unless jobs run concurrently.
        tracing::info!(
            job_id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            shuffle_bytes_written = after.shuffle_bytes_written - before.shuffle_bytes_written,
            shuffle_records_written = after.shuffle_records_written - before.shuffle_records_written,
            shuffle_bytes_read = after.shuffle_bytes_read - before.shuffle_bytes_read,
            spill_bytes = after.spill_bytes - before.spill_bytes,
            "job finished"
        );
        results.iter().map(|bytes| Ok(postcard::from_bytes(bytes)?)).collect()
    }
}

impl Drop for ContextInner {
    fn drop(&mut self) {
        self.stop();
    }
}
