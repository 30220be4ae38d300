//! Runs one task attempt: decodes its stage (once per executor and stage attempt),
//! computes, and turns every way a task can end — result, error, panic — into a
//! `TaskOutcome`.

use crate::env::ExecutorServices;
use ember_core::error::{Result, from_panic};
use ember_core::lineage::decode_root;
use ember_core::protocol::{TaskDescription, TaskKind, TaskOutcome, TaskValue};
use ember_core::shuffle::ShuffleMapFn;
use ember_core::task::{ExecutorEnv, ResultTaskFn, TaskContext};
use ember_core::telemetry;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};
use std::time::Instant;

#[derive(Clone)]
enum StageRoot {
    Result(Arc<dyn ResultTaskFn>),
    ShuffleMap(Arc<dyn ShuffleMapFn>),
}

/// Decoded stage roots, keyed by stage attempt.
#[derive(Default)]
pub struct StageCache {
    roots: Mutex<HashMap<(u32, u32), StageRoot>>,
}

const MAX_CACHED_STAGES: usize = 128;

impl StageCache {
    fn root(&self, desc: &TaskDescription) -> Result<StageRoot> {
        let key = (desc.attempt.stage_id, desc.attempt.stage_attempt);
        if let Some(root) = self.roots.lock().get(&key) {
            return Ok(root.clone());
        }
        let root = match desc.kind {
            TaskKind::Result => StageRoot::Result(decode_root::<Arc<dyn ResultTaskFn>>(&desc.stage_binary)?),
            TaskKind::ShuffleMap => StageRoot::ShuffleMap(decode_root::<Arc<dyn ShuffleMapFn>>(&desc.stage_binary)?),
        };
        let mut roots = self.roots.lock();
        if roots.len() >= MAX_CACHED_STAGES {
            roots.clear();
        }
        roots.insert(key, root.clone());
        Ok(root)
    }
}

/// Keeps the default panic message for user panics, but stays quiet for the
/// engine's own aborts (they are reported as task errors).
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<ember_core::error::EngineAbort>().is_none() {
                previous(info);
            }
        }));
    });
}

pub fn run_task(
    services: &Arc<ExecutorServices>,
    stages: &StageCache,
    desc: &TaskDescription,
    killed: Arc<AtomicBool>,
) -> TaskOutcome {
    install_panic_hook();
    let start = Instant::now();
    let env: Arc<dyn ExecutorEnv> = services.clone();
    let ctx = Rc::new(TaskContext::with_kill_flag(env, desc.attempt, killed));
    let _current = TaskContext::enter(ctx.clone());
    let span = task_span(services, desc);
    let _enter = span.enter();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<TaskValue> {
        match stages.root(desc)? {
            StageRoot::Result(root) => Ok(TaskValue::Result(root.run(desc.attempt.partition, &ctx)?)),
            StageRoot::ShuffleMap(root) => Ok(TaskValue::MapOutput(root.run_map(desc.attempt.partition, &ctx)?)),
        }
    }))
    .unwrap_or_else(|payload| Err(from_panic(payload)));
    let run_ms = start.elapsed().as_millis() as u64;
    match result.and_then(|value| Ok((value, ctx.take_accumulator_updates()?))) {
        Ok((value, accumulator_updates)) => {
            TaskOutcome::Success { value, accumulator_updates, metrics: ctx.metrics().snapshot(), run_ms }
        }
        Err(error) => {
            if telemetry::enabled() {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", error.to_string());
            }
            TaskOutcome::Failed { error, run_ms }
        }
    }
}

/// The span of one task attempt. With traces exported and a `trace_parent` in the
/// launch, a `task` span of `telemetry::TARGET` under the driver's stage span
/// (attributes: `job_id`, `stage_id`, `stage_attempt`, `task_id`, `partition`,
/// `attempt`, `executor_id`); otherwise the debug-level span the logs had.
fn task_span(services: &ExecutorServices, desc: &TaskDescription) -> tracing::Span {
    let a = &desc.attempt;
    if let Some(parent) = desc.trace_parent.as_deref().filter(|_| telemetry::enabled()) {
        let span = tracing::info_span!(
            target: telemetry::TARGET,
            "task",
            job_id = desc.job_id,
            stage_id = a.stage_id,
            stage_attempt = a.stage_attempt,
            task_id = a.task_id,
            partition = a.partition,
            attempt = a.attempt,
            executor_id = %services.config().executor_id,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        telemetry::set_parent(&span, parent);
        return span;
    }
    tracing::debug_span!("task", task_id = a.task_id, stage = a.stage_id, partition = a.partition, attempt = a.attempt)
}
