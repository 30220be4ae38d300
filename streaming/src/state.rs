//! Running state across batches: `update_state_by_key` and `map_with_state`
//! (Spark's `StateDStream` and `MapWithStateDStream`), and the store that
//! persists each batch's state RDD and checkpoints it by the operation's name.
//!
//! Each batch's state is computed from the previous batch's state and the
//! batch's values; its RDD is kept serialized in memory. Every checkpoint
//! interval it is written to `<checkpoint>/state/<name>/<batch ms>/` and its
//! lineage is cut there, so state never grows a longer lineage batch after
//! batch. A recovery restores the state by the operation's name, refusing
//! (with the name) a checkpoint whose state type differs from the job's.

use crate::checkpoint::StateCheckpoint;
use crate::context::StreamingContext;
use crate::dstream::{Compute, DStream, DStreamBase, Node};
use crate::ops::{StateAgg, TagState, TagValue, UpdateState};
use crate::time::{Time, millis};
use crate::window::STATE_STORAGE;
use ember::{BoxIter, Rdd};
use ember_core::closure::SerFn;
use ember_core::data::{Data, Key};
use ember_core::error::{EmberError, Result};
use ember_core::filesystem::Location;
use ember_core::rdd::{CheckpointRdd, CutLineageRdd, PartitionOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// A stateful operation, as the context sees it: checkpointed and restored by name.
pub(crate) trait StatefulOp: Send + Sync {
    fn name(&self) -> &str;
    /// After batch `time` (a checkpoint time) completed: write its state under `dir`.
    fn checkpoint(&self, time: Time, dir: &Location) -> Result<()>;
    fn last_checkpoint(&self) -> Option<StateCheckpoint>;
    /// Takes the state of a checkpoint as this operation's state at its time.
    fn restore(&self, checkpoint: &StateCheckpoint) -> Result<()>;
}

/// The state RDDs of one operation, by batch time.
pub(crate) struct StateStore<E: Data> {
    name: String,
    ssc: StreamingContext,
    node: OnceLock<Weak<Node<E>>>,
    cuts: Mutex<BTreeMap<Time, Arc<CutLineageRdd<E>>>>,
    last: Mutex<Option<StateCheckpoint>>,
}

/// Creates the store of a stateful operation of `kind` and registers it.
pub(crate) fn register_stateful<E: Data>(ssc: &StreamingContext, kind: &str, name: Option<&str>) -> Arc<StateStore<E>> {
    let name = ssc.inner.graph.unique_name(kind, name);
    let store = Arc::new(StateStore {
        name,
        ssc: ssc.clone(),
        node: OnceLock::new(),
        cuts: Mutex::new(BTreeMap::new()),
        last: Mutex::new(None),
    });
    ssc.inner.graph.add_stateful(store.clone());
    store
}

fn dir_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

impl<E: Data> StateStore<E> {
    /// The stream node whose RDDs this store keeps (restored state goes there).
    pub fn attach(&self, node: &Arc<Node<E>>) {
        let _ = self.node.set(Arc::downgrade(node));
    }

    /// The state RDD of batch `time`: `rdd`, persisted, with a lineage a
    /// checkpoint can cut.
    pub fn wrap(&self, time: Time, rdd: &Rdd<E>) -> Rdd<E> {
        let cut = Arc::new(CutLineageRdd::new(rdd.node()));
        let out = self.ssc.spark_context().rdd_from_node(cut.clone());
        out.persist(STATE_STORAGE);
        self.cuts.lock().insert(time, cut);
        out
    }
}

impl<E: Data> StatefulOp for StateStore<E> {
    fn name(&self) -> &str {
        &self.name
    }

    fn checkpoint(&self, time: Time, dir: &Location) -> Result<()> {
        let Some(cut) = self.cuts.lock().get(&time).cloned() else { return Ok(()) };
        let sc = self.ssc.spark_context();
        let conf = sc.conf();
        let op_dir = dir.join("state").join(&dir_name(&self.name));
        let target = op_dir.join(&time.0.to_string());
        // Files a run that died before recording this checkpoint may have left.
        target.remove_all(conf)?;
        let rdd = sc.rdd_from_node(cut.clone());
        let partitions = rdd.num_partitions();
        rdd.checkpoint_to(&target)?;
        cut.set_checkpoint(&target, conf)?;
        let previous = self.last.lock().replace(StateCheckpoint {
            state_type: std::any::type_name::<E>().to_string(),
            time_ms: time.0,
            dir: target.url(),
            partitions,
        });
        self.cuts.lock().retain(|t, _| *t > time);
        // Keep this checkpoint and the one before it (an older metadata file may name it).
        let keep_from = previous.map_or(time.0, |p| p.time_ms);
        for name in op_dir.list(conf).unwrap_or_default() {
            if name.parse::<u64>().is_ok_and(|t| t < keep_from)
                && let Err(e) = op_dir.join(&name).remove_all(conf)
            {
                tracing::warn!(operation = %self.name, error = %e, "could not remove an old state checkpoint");
            }
        }
        tracing::debug!(operation = %self.name, batch_time = time.0, "state checkpointed");
        Ok(())
    }

    fn last_checkpoint(&self) -> Option<StateCheckpoint> {
        self.last.lock().clone()
    }

    fn restore(&self, ck: &StateCheckpoint) -> Result<()> {
        let expected = std::any::type_name::<E>();
        if ck.state_type != expected {
            return Err(EmberError::Invalid(format!(
                "the checkpointed state of {:?} holds {} but the job's {:?} now keeps {expected}: \
                 keep the state type, give the new operation another name, or start with an empty checkpoint directory",
                self.name, ck.state_type, self.name
            )));
        }
        let node = self.node.get().and_then(Weak::upgrade).ok_or_else(|| {
            EmberError::Internal(format!("stateful operation {:?} has no stream to restore into", self.name))
        })?;
        let dir = Location::parse(&ck.dir)
            .map_err(|e| EmberError::Config(format!("state checkpoint of {:?} in {}: {e}", self.name, ck.dir)))?;
        let reader = CheckpointRdd::<E>::open(&dir, ck.partitions, self.ssc.spark_context().conf())?;
        let rdd = self.ssc.spark_context().rdd_from_node(Arc::new(reader));
        rdd.persist(STATE_STORAGE);
        node.put_generated(Time(ck.time_ms), rdd);
        *self.last.lock() = Some(ck.clone());
        tracing::info!(operation = %self.name, batch_time = ck.time_ms, "state restored from the checkpoint");
        Ok(())
    }
}

/// Each batch's state from the previous batch's state and the batch's values.
struct StateCompute<K: Key, V: Data, S: Data, F> {
    parent: Arc<Node<(K, V)>>,
    f: F,
    partitions: usize,
    store: Arc<StateStore<(K, S)>>,
}

impl<K: Key, V: Data, S: Data, F> Compute<(K, S)> for StateCompute<K, V, S, F>
where
    F: SerFn<(Vec<V>, Option<S>), Output = Option<S>> + Clone,
{
    fn name(&self) -> String {
        format!("updateStateByKey {}", self.store.name)
    }
    fn slide_ms(&self) -> u64 {
        self.parent.slide()
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        vec![self.parent.clone()]
    }
    fn compute(&self, node: &Node<(K, S)>, time: Time) -> Result<Option<Rdd<(K, S)>>> {
        let parts = previous_and_batch(node, &self.parent, time, TagState::<S, V>::new(true), TagValue::<S, V>::new())?;
        let sc = node.ssc.spark_context();
        let all = if parts.is_empty() { sc.empty_rdd() } else { sc.union(&parts) };
        let state = all
            .combine_by_key_with_aggregator(StateAgg::<S, V>::new(), self.partitions, false)
            .map_partitions_op(UpdateState(self.f.clone()));
        Ok(Some(self.store.wrap(time, &state)))
    }
}

/// The previous batch's state (computed again if it is not remembered) and
/// this batch's values, each tagged, ready for one union.
fn previous_and_batch<K: Key, V: Data, P: Data, X: Data, A, B>(
    node: &Node<(K, P)>,
    parent: &Arc<Node<(K, V)>>,
    time: Time,
    tag_state: A,
    tag_value: B,
) -> Result<Vec<Rdd<(K, X)>>>
where
    A: PartitionOp<(K, P), (K, X)>,
    B: PartitionOp<(K, V), (K, X)>,
{
    let prev_time = time.minus(node.slide());
    let mut parts = Vec::new();
    if node.is_time_valid(prev_time)
        && let Some(prev) = node.get_or_compute(prev_time)?
    {
        parts.push(prev.map_partitions_op(tag_state));
    }
    if let Some(batch) = parent.get_or_compute(time)? {
        parts.push(batch.map_partitions_op(tag_value));
    }
    Ok(parts)
}

impl<K: Key, V: Data> DStream<(K, V)> {
    /// A running state per key (Spark's `updateStateByKey`): every batch,
    /// `f(new_values, previous_state)` for every key that has new values or a
    /// state — keys with no new values are visited too, with an empty vector —
    /// returns the new state, or `None` to drop the key. Needs a checkpoint
    /// directory; the state is checkpointed as `updateStateByKey-N` (N counting
    /// such operations in creation order): use
    /// [`DStream::update_state_by_key_named`] when the job's code may change.
    pub fn update_state_by_key<S: Data, F>(&self, f: F) -> DStream<(K, S)>
    where
        F: SerFn<(Vec<V>, Option<S>), Output = Option<S>> + Clone,
    {
        let partitions = self.context().spark_context().default_parallelism();
        self.update_state_by_key_with(None, f, partitions)
    }

    /// [`DStream::update_state_by_key`] with the name its state is
    /// checkpointed and restored under.
    pub fn update_state_by_key_named<S: Data, F>(&self, name: &str, f: F) -> DStream<(K, S)>
    where
        F: SerFn<(Vec<V>, Option<S>), Output = Option<S>> + Clone,
    {
        let partitions = self.context().spark_context().default_parallelism();
        self.update_state_by_key_with(Some(name), f, partitions)
    }

    /// [`DStream::update_state_by_key`] with an optional name and the state's
    /// number of partitions.
    pub fn update_state_by_key_with<S: Data, F>(&self, name: Option<&str>, f: F, partitions: usize) -> DStream<(K, S)>
    where
        F: SerFn<(Vec<V>, Option<S>), Output = Option<S>> + Clone,
    {
        let ssc = self.context();
        let store = register_stateful::<(K, S)>(ssc, "updateStateByKey", name);
        let stream = DStream::from_compute(
            ssc,
            StateCompute { parent: self.node.clone(), f, partitions: partitions.max(1), store: store.clone() },
        );
        store.attach(&stream.node);
        stream
    }

    /// A running state per key with a mapped output (Spark's `mapWithState`):
    /// for every record `(k, v)` of a batch, `f(k, Some(v), &mut state)` reads,
    /// updates or removes the key's state and returns a record of the output
    /// stream. With a timeout, a key without records for that long is called
    /// once more with `None` and `state.is_timing_out()`, then dropped.
    pub fn map_with_state<S: Data, M: Data, F>(&self, spec: StateSpec<F>) -> MapWithStateDStream<K, S, M>
    where
        F: for<'a> SerFn<(K, Option<V>, &'a mut State<S>), Output = M> + Clone,
    {
        let ssc = self.context();
        let store = register_stateful::<(K, MapWithStateRecord<S, M>)>(ssc, "mapWithState", spec.name.as_deref());
        let partitions = spec.partitions.unwrap_or_else(|| ssc.spark_context().default_parallelism()).max(1);
        let records = DStream::from_compute(
            ssc,
            MapWithStateCompute {
                parent: self.node.clone(),
                f: spec.function,
                timeout_ms: spec.timeout.map(millis),
                partitions,
                store: store.clone(),
            },
        );
        store.attach(&records.node);
        let mapped = records.derive("mapWithState", |rdd| Ok(rdd.map_partitions_op(TakeMapped)));
        let snapshots = records.derive("stateSnapshots", |rdd| Ok(rdd.map_partitions_op(TakeState)));
        MapWithStateDStream { mapped, snapshots }
    }
}

/// What `map_with_state` does: its function, timeout, partitions and name
/// (Spark's `StateSpec`).
pub struct StateSpec<F> {
    function: F,
    timeout: Option<Duration>,
    partitions: Option<usize>,
    name: Option<String>,
}

impl<F> StateSpec<F> {
    /// `f(key, value, &mut state) -> mapped record` (shipped: `Fn!(…)`).
    pub fn function(f: F) -> Self {
        Self { function: f, timeout: None, partitions: None, name: None }
    }
    /// Drop a key's state after this long without records for it.
    pub fn timeout(mut self, idle: Duration) -> Self {
        self.timeout = Some(idle);
        self
    }
    /// Partitions of the state (default `spark.default.parallelism`).
    pub fn num_partitions(mut self, partitions: usize) -> Self {
        self.partitions = Some(partitions);
        self
    }
    /// The name the state is checkpointed under (default `mapWithState-N`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// One key's state as `map_with_state`'s function sees it (Spark's `State`).
#[derive(Debug)]
pub struct State<S> {
    value: Option<S>,
    changed: bool,
    timing_out: bool,
}

impl<S> State<S> {
    /// True when the key has a state.
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }
    /// The state, if any.
    pub fn get(&self) -> Option<&S> {
        self.value.as_ref()
    }
    /// Sets the state. A key that is timing out cannot be updated (as in
    /// Spark): the update is ignored and its state is dropped.
    pub fn update(&mut self, value: S) {
        if !self.timing_out {
            self.value = Some(value);
            self.changed = true;
        }
    }
    /// Drops the key's state.
    pub fn remove(&mut self) {
        self.value = None;
        self.changed = true;
    }
    /// True in the last call for a key whose state timed out.
    pub fn is_timing_out(&self) -> bool {
        self.timing_out
    }
}

/// A record of a `map_with_state` batch: an output record, or a key's state
/// with the time (ms) of its last update.
#[derive(Clone, Serialize, Deserialize)]
pub enum MapWithStateRecord<S, M> {
    Mapped(M),
    State(S, u64),
}

/// The output of `map_with_state`: the mapped records (it dereferences to
/// that stream) and [`MapWithStateDStream::state_snapshots`].
pub struct MapWithStateDStream<K: Key, S: Data, M: Data> {
    mapped: DStream<M>,
    snapshots: DStream<(K, S)>,
}

impl<K: Key, S: Data, M: Data> MapWithStateDStream<K, S, M> {
    /// Every key's state after each batch.
    pub fn state_snapshots(&self) -> DStream<(K, S)> {
        self.snapshots.clone()
    }
}

impl<K: Key, S: Data, M: Data> std::ops::Deref for MapWithStateDStream<K, S, M> {
    type Target = DStream<M>;
    fn deref(&self) -> &DStream<M> {
        &self.mapped
    }
}

#[derive(Serialize, Deserialize)]
struct TakeMapped;
impl<K: Data, S: Data, M: Data> PartitionOp<(K, MapWithStateRecord<S, M>), M> for TakeMapped {
    const NAME: &'static str = "mapped";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, MapWithStateRecord<S, M>)>) -> BoxIter<M> {
        Box::new(input.filter_map(|(_, r)| match r {
            MapWithStateRecord::Mapped(m) => Some(m),
            MapWithStateRecord::State(..) => None,
        }))
    }
}

#[derive(Serialize, Deserialize)]
struct TakeState;
impl<K: Data, S: Data, M: Data> PartitionOp<(K, MapWithStateRecord<S, M>), (K, S)> for TakeState {
    const NAME: &'static str = "stateSnapshots";
    fn apply(self: Arc<Self>, _split: usize, input: BoxIter<(K, MapWithStateRecord<S, M>)>) -> BoxIter<(K, S)> {
        Box::new(input.filter_map(|(k, r)| match r {
            MapWithStateRecord::State(s, _) => Some((k, s)),
            MapWithStateRecord::Mapped(_) => None,
        }))
    }
}

/// Previous states (mapped records of the previous batch dropped) as state input.
#[derive(Serialize, Deserialize)]
struct TagPreviousState<S, M, V> {
    _p: std::marker::PhantomData<fn() -> (S, M, V)>,
}

impl<K: Data, S: Data, M: Data, V: Data>
    PartitionOp<(K, MapWithStateRecord<S, M>), (K, crate::ops::StateIn<(S, u64), V>)> for TagPreviousState<S, M, V>
{
    const NAME: &'static str = "tagState";
    fn apply(
        self: Arc<Self>,
        _split: usize,
        input: BoxIter<(K, MapWithStateRecord<S, M>)>,
    ) -> BoxIter<(K, crate::ops::StateIn<(S, u64), V>)> {
        Box::new(input.filter_map(|(k, r)| match r {
            MapWithStateRecord::State(s, t) => Some((k, crate::ops::StateIn::State((s, t)))),
            MapWithStateRecord::Mapped(_) => None,
        }))
    }
}

/// Calls the user's function for each record and each timed-out key.
#[derive(Serialize, Deserialize)]
#[serde(bound = "F: ember_core::closure::Ship")]
struct MapWithStateOp<F> {
    #[serde(with = "ember_core::closure::shipped")]
    f: F,
    now_ms: u64,
    timeout_ms: Option<u64>,
}

impl<K: Key, V: Data, S: Data, M: Data, F> PartitionOp<(K, (Option<(S, u64)>, Vec<V>)), (K, MapWithStateRecord<S, M>)>
    for MapWithStateOp<F>
where
    F: for<'a> SerFn<(K, Option<V>, &'a mut State<S>), Output = M>,
{
    const NAME: &'static str = "mapWithState";
    fn apply(
        self: Arc<Self>,
        _split: usize,
        input: BoxIter<(K, (Option<(S, u64)>, Vec<V>))>,
    ) -> BoxIter<(K, MapWithStateRecord<S, M>)> {
        Box::new(input.flat_map(move |(k, (previous, values))| {
            let mut out = Vec::new();
            let (mut value, mut updated) = match previous {
                Some((s, t)) => (Some(s), t),
                None => (None, 0),
            };
            if values.is_empty() {
                let timed_out = self.timeout_ms.is_some_and(|timeout| updated + timeout <= self.now_ms);
                if timed_out && value.is_some() {
                    let mut state = State { value, changed: false, timing_out: true };
                    out.push((k.clone(), MapWithStateRecord::Mapped(self.f.call((k, None, &mut state)))));
                    return out;
                }
            } else {
                for v in values {
                    let mut state = State { value: value.take(), changed: false, timing_out: false };
                    let m = self.f.call((k.clone(), Some(v), &mut state));
                    out.push((k.clone(), MapWithStateRecord::Mapped(m)));
                    if state.changed {
                        updated = self.now_ms;
                    }
                    value = state.value;
                }
            }
            if let Some(s) = value {
                out.push((k, MapWithStateRecord::State(s, updated)));
            }
            out
        }))
    }
}

struct MapWithStateCompute<K: Key, V: Data, S: Data, M: Data, F> {
    parent: Arc<Node<(K, V)>>,
    f: F,
    timeout_ms: Option<u64>,
    partitions: usize,
    store: Arc<StateStore<(K, MapWithStateRecord<S, M>)>>,
}

impl<K: Key, V: Data, S: Data, M: Data, F> Compute<(K, MapWithStateRecord<S, M>)> for MapWithStateCompute<K, V, S, M, F>
where
    F: for<'a> SerFn<(K, Option<V>, &'a mut State<S>), Output = M> + Clone,
{
    fn name(&self) -> String {
        format!("mapWithState {}", self.store.name)
    }
    fn slide_ms(&self) -> u64 {
        self.parent.slide()
    }
    fn parents(&self) -> Vec<Arc<dyn DStreamBase>> {
        vec![self.parent.clone()]
    }
    fn compute(
        &self,
        node: &Node<(K, MapWithStateRecord<S, M>)>,
        time: Time,
    ) -> Result<Option<Rdd<(K, MapWithStateRecord<S, M>)>>> {
        let parts = previous_and_batch(
            node,
            &self.parent,
            time,
            TagPreviousState::<S, M, V> { _p: std::marker::PhantomData },
            TagValue::<(S, u64), V>::new(),
        )?;
        let sc = node.ssc.spark_context();
        let all = if parts.is_empty() { sc.empty_rdd() } else { sc.union(&parts) };
        let records = all
            .combine_by_key_with_aggregator(StateAgg::<(S, u64), V>::new(), self.partitions, false)
            .map_partitions_op(MapWithStateOp { f: self.f.clone(), now_ms: time.0, timeout_ms: self.timeout_ms });
        Ok(Some(self.store.wrap(time, &records)))
    }
}
