//! The scheduled applications' reconciler: lists a scheduled application's runs, runs
//! [`decide`] at the context's clock, deletes and creates runs, and writes the status.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action as ControllerAction, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, field, info, info_span};

use crate::crd::SparkApplication;
use crate::ownership::ClaimError;
use crate::reconciler::{self, CONFLICT_REQUEUE, Context, Error, FIELD_MANAGER, kube_err};
use crate::scheduled::crd::ScheduledSparkApplication;
use crate::scheduled::decide::{ScheduleDecision, decide};
use crate::scheduled::run::{self, LABEL_SCHEDULED_APP_UID};

fn failure_key(scheduled: &ScheduledSparkApplication) -> String {
    format!("ScheduledSparkApplication {}/{}", scheduled.namespace().unwrap_or_default(), scheduled.name_any())
}

/// Reconciles one scheduled application.
pub async fn reconcile(
    scheduled: Arc<ScheduledSparkApplication>,
    ctx: Arc<Context>,
) -> Result<ControllerAction, Error> {
    let span = info_span!("reconcile_scheduled", namespace = field::Empty, scheduled = %scheduled.name_any(), next_run = field::Empty);
    let key = failure_key(&scheduled);
    reconciler::measured(&ctx, key, reconcile_inner(&scheduled, &ctx, &span).instrument(span.clone())).await
}

async fn reconcile_inner(
    scheduled: &ScheduledSparkApplication,
    ctx: &Context,
    span: &tracing::Span,
) -> Result<ControllerAction, Error> {
    let name = scheduled.name_any();
    let namespace = scheduled.namespace().ok_or_else(|| Error::MissingNamespace(name.clone()))?;
    span.record("namespace", namespace.as_str());
    // As for applications: decide from the object as the API server has it now, and
    // write the status only if it did not change meanwhile.
    let scheduled_api: Api<ScheduledSparkApplication> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.metrics.api_request("get_scheduled_application");
    let Some(scheduled) = scheduled_api.get_opt(&name).await.map_err(kube_err("get_scheduled_application"))? else {
        return Ok(ControllerAction::await_change());
    };
    if scheduled.metadata.deletion_timestamp.is_some() {
        // The garbage collector deletes the runs.
        return Ok(ControllerAction::await_change());
    }
    let apps: Api<SparkApplication> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.metrics.api_request("list_runs");
    let selector = format!("{LABEL_SCHEDULED_APP_UID}={}", scheduled.uid().unwrap_or_default());
    let listed = apps.list(&ListParams::default().labels(&selector)).await.map_err(kube_err("list_runs"))?;
    let runs: Vec<_> = listed.items.iter().filter(|a| run::is_run_of(a, &scheduled)).map(run::run_view).collect();

    let now = ctx.clock.now();
    let decision = decide(&scheduled, &runs, now, &ctx.settings.ui);
    if let Some(next) = &decision.status.next_run {
        span.record("next_run", next.0.to_string());
    }
    // Runs first, then the status: a run's name is fixed by its time, so when the status
    // write is lost (a conflict, a restart) the next reconcile finds the run it made
    // ([`decide`] counts it as this time's) instead of making another; were the status
    // written first, a failed create would lose that time.
    carry_out(ctx, &apps, &scheduled, &listed.items, &decision).await?;
    let mut conflict = false;
    if scheduled.status.as_ref() != Some(&decision.status) {
        match reconciler::write_status(ctx, &scheduled, &decision.status, "patch_scheduled_status").await {
            Err(Error::Kube { source: kube::Error::Api(s), .. }) if s.code == 409 => conflict = true,
            other => other?,
        }
    }
    // Recorded even when the status write lost a race: the runs were made or deleted.
    reconciler::publish(ctx, &scheduled.object_ref(&()), &decision.notes).await;
    if let Some((run, at)) = &decision.create {
        info!(run = %run, scheduled_time = %at, "created run");
    }
    if conflict {
        return Ok(ControllerAction::requeue(CONFLICT_REQUEUE));
    }
    Ok(decision.requeue_after.map_or_else(ControllerAction::await_change, ControllerAction::requeue))
}

async fn carry_out(
    ctx: &Context,
    apps: &Api<SparkApplication>,
    scheduled: &ScheduledSparkApplication,
    listed: &[SparkApplication],
    decision: &ScheduleDecision,
) -> Result<(), Error> {
    // Replaced runs go before the new one starts; old finished runs after it, so a run
    // that cannot be deleted never costs a scheduled time.
    delete_runs(ctx, apps, listed, &decision.replace).await?;
    if let Some((name, at)) = &decision.create {
        create_run(ctx, apps, scheduled, name, *at).await?;
    }
    delete_runs(ctx, apps, listed, &decision.delete).await
}

async fn delete_runs(
    ctx: &Context,
    apps: &Api<SparkApplication>,
    listed: &[SparkApplication],
    runs: &[String],
) -> Result<(), Error> {
    for run in runs {
        ctx.metrics.api_request("delete_run");
        // The UID precondition keeps the delete from hitting a newer object of the name.
        let uid = listed.iter().find(|a| a.name_any() == *run).and_then(|a| a.uid());
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: uid.map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
            ..DeleteParams::default()
        };
        match apps.delete(run, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(err) => return Err(kube_err("delete_run")(err)),
        }
    }
    Ok(())
}

/// Creates the run `name` scheduled `at`; one that exists already as this scheduled
/// application's (a create repeated after a lost response) is kept.
async fn create_run(
    ctx: &Context,
    apps: &Api<SparkApplication>,
    scheduled: &ScheduledSparkApplication,
    name: &str,
    at: jiff::Timestamp,
) -> Result<(), Error> {
    let app = run::run_application(scheduled, at);
    ctx.metrics.api_request("create_run");
    let params = PostParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() };
    match apps.create(&params, &app).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            ctx.metrics.api_request("get_run");
            let existing = apps.get(name).await.map_err(kube_err("get_run"))?;
            if run::is_run_of(&existing, scheduled) {
                return Ok(());
            }
            let why = existing
                .owner_references()
                .iter()
                .find(|r| r.controller == Some(true))
                .map_or("it was not created for this ScheduledSparkApplication".to_string(), |r| {
                    format!("it is owned by {} {}", r.kind, r.name)
                });
            Err(Error::Claim {
                operation: "create_run",
                source: ClaimError::Taken {
                    kind: SparkApplication::kind(&()).into_owned(),
                    name: name.to_string(),
                    why,
                },
            })
        }
        Err(err) => Err(kube_err("create_run")(err)),
    }
}

/// What to do after a failed reconcile: retry after [`reconciler::error_backoff`].
pub fn error_policy(scheduled: Arc<ScheduledSparkApplication>, err: &Error, ctx: Arc<Context>) -> ControllerAction {
    reconciler::back_off(&ctx, failure_key(&scheduled), err)
}

/// Runs the scheduled applications' controller in one scope (a namespace, or all with
/// `None`) until `shutdown`: runs are owned objects, so a run's end wakes its scheduled
/// application's reconcile.
pub async fn run_controller(
    ctx: Arc<Context>,
    client: Client,
    scope: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let (scheduled, apps): (Api<ScheduledSparkApplication>, Api<SparkApplication>) = match &scope {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let runs = watcher::Config::default().labels(LABEL_SCHEDULED_APP_UID);
    info!(namespace = scope.as_deref().unwrap_or("<all>"), "starting scheduled application controller");
    Controller::new(scheduled, watcher::Config::default().any_semantic())
        .owns(apps, runs)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "scheduled controller event");
            }
        })
        .await;
}
