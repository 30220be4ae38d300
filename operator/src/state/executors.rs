//! Executors while the driver runs: their states in the status, failures counted,
//! pods created up to the wanted number (`executor.instances`, or the driver's demand
//! under dynamic allocation, in batches), surplus and finished pods released, and
//! pods pending past their timeout.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::builder::executor_pod_name;
use crate::crd::ExecutorState;

use super::{Action, Draft, PodPhase, PodView, RESYNC, Settings, until};

fn executor_state(pod: &PodView) -> ExecutorState {
    if pod.terminating && pod.phase != PodPhase::Succeeded {
        return ExecutorState::Failed;
    }
    match pod.phase {
        PodPhase::Pending => ExecutorState::Pending,
        PodPhase::Running => ExecutorState::Running,
        PodPhase::Succeeded => ExecutorState::Completed,
        PodPhase::Failed => ExecutorState::Failed,
        PodPhase::Unknown => ExecutorState::Unknown,
    }
}

/// While the driver runs: record executor states, count failures, and create executors
/// up to `executor.instances` with fresh ids.
pub(super) fn manage_executors(draft: &mut Draft<'_>, settings: &Settings) {
    let obs = draft.obs;
    let dynamic = crate::allocation::bounds(obs.spec).ok().flatten();
    let mut states: BTreeMap<String, ExecutorState> = BTreeMap::new();
    for pod in obs.executors.values() {
        let mut state = executor_state(pod);
        // A pod the operator deleted as surplus is not a failure while it terminates.
        if pod.terminating && obs.status.executor_state.get(&pod.name) == Some(&ExecutorState::Completed) {
            state = ExecutorState::Completed;
        }
        states.insert(pod.name.clone(), state);
    }
    // Executors the status knows but that no longer exist were deleted under us.
    for (name, previous) in &obs.status.executor_state {
        if !states.contains_key(name) {
            let now = match previous {
                ExecutorState::Completed | ExecutorState::Failed => *previous,
                _ => ExecutorState::Failed,
            };
            states.insert(name.clone(), now);
        }
    }
    let mut newly_failed = Vec::new();
    for (name, state) in &states {
        let before = obs.status.executor_state.get(name);
        if *state == ExecutorState::Failed && before != Some(&ExecutorState::Failed) {
            newly_failed.push(name.clone());
        }
    }
    draft.status.executor_failures += newly_failed.len() as i32;
    for name in &newly_failed {
        draft.note(true, "ExecutorFailed", format!("executor pod {name} failed or was deleted"));
    }

    // Executors the driver retired (dynamic allocation) are on their way out.
    let retired = |id: &i32| obs.demand.as_ref().is_some_and(|d| d.retired(*id));
    let alive_pods: Vec<(&i32, &PodView)> = obs
        .executors
        .iter()
        .filter(|(id, p)| {
            !p.terminating
                && !retired(id)
                && matches!(p.phase, PodPhase::Pending | PodPhase::Running | PodPhase::Unknown)
        })
        .collect();
    let mut alive = alive_pods.len() as i32;
    let completed = obs.executors.values().filter(|p| p.phase == PodPhase::Succeeded).count() as i32;
    // Pods may exist that the status does not know yet (created by a reconcile whose
    // status write did not happen); new ids start above every existing one.
    if let Some(highest) = obs.executors.keys().max() {
        draft.status.last_executor_id = draft.status.last_executor_id.max(*highest);
    }
    if pending_past_timeout(draft, settings, dynamic.is_some()) {
        return;
    }
    let first_run = obs.status.last_executor_id == 0 && draft.status.executor_failures == 0;
    let mut dynamic_target = 0;
    let wanted = match dynamic {
        None => (obs.spec.executor.instances - alive - completed).max(0),
        Some(bounds) => {
            let target = match &obs.demand {
                Some(demand) => bounds.clamp(demand.target),
                None if first_run => bounds.initial,
                // The driver did not answer: nothing changes until it does.
                None => alive,
            };
            alive -= release_executors(draft, &mut states, &alive_pods, target);
            dynamic_target = target;
            (target - alive).clamp(0, bounds.batch)
        }
    };
    let mut created = 0;
    if wanted > 0 {
        if !first_run && draft.status.executor_failures > settings.max_executor_failures {
            if !newly_failed.is_empty() {
                draft.note(
                    true,
                    "ExecutorReplacementLimit",
                    format!(
                        "{} executors failed, more than the limit of {}; not replacing them",
                        draft.status.executor_failures, settings.max_executor_failures
                    ),
                );
            }
        } else {
            for _ in 0..wanted {
                draft.status.last_executor_id += 1;
                let id = draft.status.last_executor_id;
                draft.actions.push(Action::CreateExecutor(id));
                states.insert(executor_pod_name(obs.name, id), ExecutorState::Pending);
                created += 1;
            }
            match (&obs.demand, dynamic) {
                (Some(demand), Some(_)) => draft.note(
                    false,
                    "ExecutorsRequested",
                    format!(
                        "created {created} executor pod(s): dynamic allocation asks for {dynamic_target} ({} pending \
                         tasks)",
                        demand.pending_tasks
                    ),
                ),
                _ if !first_run => draft.note(
                    false,
                    "ExecutorReplaced",
                    format!("created {created} executor pod(s) to keep {} running", obs.spec.executor.instances),
                ),
                _ => {}
            }
        }
    }
    draft.status.executor_state = states;
    draft.status.running_executors = alive + created;
    draft.requeue(if dynamic.is_some() { crate::allocation::POLL } else { RESYNC });
}

/// Dynamic allocation: deletes executor pods that ended `Succeeded` (those the driver
/// retired), and, when more pods live than `target`, the newest ones that have not
/// started yet and whose executor has not registered (a running executor is the
/// driver's to retire: it knows whether it is idle). Deleted pods are recorded
/// `Completed`, not failed. Returns how many of `alive_pods` it deletes.
fn release_executors(
    draft: &mut Draft<'_>,
    states: &mut BTreeMap<String, ExecutorState>,
    alive_pods: &[(&i32, &PodView)],
    target: i32,
) -> i32 {
    let obs = draft.obs;
    let surplus = (alive_pods.len() as i32 - target).max(0) as usize;
    // Pending as this reconcile saw it, and not registered with the driver: a pod the
    // cache still shows pending may already run tasks.
    let registered = |id: &i32| obs.demand.as_ref().is_some_and(|d| d.registered(*id));
    let unstarted =
        alive_pods.iter().rev().filter(|(id, p)| p.phase == PodPhase::Pending && !registered(id)).take(surplus);
    let ended = obs.executors.values().filter(|p| p.phase == PodPhase::Succeeded && !p.terminating);
    let unstarted: Vec<&PodView> = unstarted.map(|(_, p)| *p).filter(|p| p.uid.is_some()).collect();
    let surplus_released = unstarted.len() as i32;
    let mut names = Vec::new();
    for pod in unstarted.into_iter().chain(ended) {
        let Some(uid) = pod.uid.clone() else { continue };
        draft.actions.push(Action::DeleteExecutor { name: pod.name.clone(), uid });
        states.insert(pod.name.clone(), ExecutorState::Completed);
        names.push(pod.name.as_str());
    }
    if !names.is_empty() {
        draft.note(
            false,
            "ExecutorsReleased",
            format!("released executor pod(s) {}: dynamic allocation asks for {target}", names.join(", ")),
        );
    }
    surplus_released
}

/// Executor pods pending past [`Settings::executor_start_timeout`]: with no executor
/// running, the run fails with the first one's waiting reason (and every pod goes, so
/// nothing holds its resource requests); with some running, a warning is recorded. Also
/// requeues for the next pending executor's deadline. Returns whether the run failed.
///
/// With dynamic allocation (`dynamic`), executors come and go, so once one of the run
/// has started, pods stuck pending are only reported: the driver fails a job that has
/// had no executor for its unschedulable timeout.
fn pending_past_timeout(draft: &mut Draft<'_>, settings: &Settings, dynamic: bool) -> bool {
    let obs = draft.obs;
    let timeout = SignedDuration::try_from(settings.executor_start_timeout).unwrap_or(SignedDuration::MAX);
    let pending: Vec<(&PodView, Timestamp)> = obs
        .executors
        .values()
        .filter(|p| !p.terminating && p.phase == PodPhase::Pending)
        .filter_map(|p| Some((p, p.created?.saturating_add(timeout).unwrap_or(Timestamp::MAX))))
        .collect();
    let (stuck, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, deadline)| obs.now >= *deadline);
    if let Some(next) = waiting.iter().map(|(_, deadline)| *deadline).min() {
        draft.requeue(until(obs.now, next));
    }
    let Some((first, _)) = stuck.first() else { return false };
    let why = first.waiting.clone().unwrap_or_else(|| "still pending".to_string());
    let names: Vec<&str> = stuck.iter().map(|(p, _)| p.name.as_str()).collect();
    let message = format!(
        "executor pod {} did not start within {}s: {why}",
        names.join(", "),
        settings.executor_start_timeout.as_secs()
    );
    draft.note(true, "ExecutorPending", message.clone());
    let running = obs.executors.values().any(|p| !p.terminating && p.phase == PodPhase::Running);
    let ever_ran =
        || obs.status.executor_state.values().any(|s| matches!(s, ExecutorState::Running | ExecutorState::Completed));
    if running || (dynamic && ever_ran()) {
        return false;
    }
    draft.fail_run(message);
    draft.delete_all_pods();
    for (pod, _) in &stuck {
        draft.status.executor_state.insert(pod.name.clone(), ExecutorState::Failed);
    }
    true
}
