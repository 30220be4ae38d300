//! Submitting an application: its Services and Ingresses, its `spark.authenticate`
//! Secret and its driver pod, undone step by step when a step fails.

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use tracing::warn;

use super::{Context, Error, FIELD_MANAGER, claim_err, kube_err};
use crate::crd::SparkApplication;
use crate::{builder, ownership, spec, ui};

/// Creates the driver's Services and Ingresses, then the driver pod; returns the UI
/// Service as the API server stored it (with its cluster IP), when there is one. When a
/// step fails, the Services and Ingresses this call created are deleted again, so a
/// failed submission leaves nothing behind.
pub(super) async fn submit(
    ctx: &Context,
    app: &SparkApplication,
    valid: &spec::ValidSpec,
    namespace: &str,
) -> Result<Option<Service>, Error> {
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace);
    let mut created = Created::default();
    let result = submit_steps(ctx, app, valid, namespace, &services, &ingresses, &mut created).await;
    if result.is_err() {
        for name in &created.services {
            ctx.metrics.api_request("delete_service");
            if let Err(err) = services.delete(name, &DeleteParams::background()).await {
                warn!(service = %name, error = %err, "could not remove a Service of a failed submission");
            }
        }
        for name in &created.ingresses {
            ctx.metrics.api_request("delete_ingress");
            if let Err(err) = ingresses.delete(name, &DeleteParams::background()).await {
                warn!(ingress = %name, error = %err, "could not remove an Ingress of a failed submission");
            }
        }
    }
    result
}

/// What a submission created, to be removed again if it fails.
#[derive(Default)]
struct Created {
    services: Vec<String>,
    ingresses: Vec<String>,
}

async fn submit_steps(
    ctx: &Context,
    app: &SparkApplication,
    valid: &spec::ValidSpec,
    namespace: &str,
    services: &Api<Service>,
    ingresses: &Api<Ingress>,
    created: &mut Created,
) -> Result<Option<Service>, Error> {
    let service = builder::driver_service(app, valid);
    ctx.metrics.api_request("create_service");
    let claimed = ownership::create_owned(services, &service, app, true, FIELD_MANAGER)
        .await
        .map_err(claim_err("create_driver_service"))?;
    if claimed.created {
        created.services.push(service.name_any());
    }
    let mut ui_service = None;
    let exposures =
        valid.ui.web_ui.iter().map(|e| (e, true)).chain(valid.ui.driver_ingresses.iter().map(|e| (e, false)));
    for (exposure, is_ui) in exposures {
        let service = ui::driver_exposure_service(app, exposure);
        ctx.metrics.api_request("create_service");
        let claimed = ownership::create_owned(services, &service, app, true, FIELD_MANAGER)
            .await
            .map_err(claim_err(if is_ui { "create_ui_service" } else { "create_driver_ingress_service" }))?;
        if claimed.created {
            created.services.push(service.name_any());
        }
        if is_ui {
            ui_service = Some(claimed.object);
        }
        if let Some(ingress) = ui::driver_exposure_ingress(app, exposure) {
            ctx.metrics.api_request("create_ingress");
            let claimed = ownership::create_owned(ingresses, &ingress, app, true, FIELD_MANAGER)
                .await
                .map_err(claim_err("create_ingress"))?;
            if claimed.created {
                created.ingresses.push(ingress.name_any());
            }
        }
    }
    if valid.authenticate {
        create_auth_secret(ctx, app, namespace).await?;
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let pod = builder::driver_pod(app, valid);
    ctx.metrics.api_request("create_pod");
    ownership::create_owned(&pods, &pod, app, false, FIELD_MANAGER).await.map_err(claim_err("create_driver_pod"))?;
    Ok(ui_service)
}

/// Creates the application's `spark.authenticate` Secret unless it exists
/// ([`crate::auth`]): a resubmitted driver keeps the secret its executors have.
async fn create_auth_secret(ctx: &Context, app: &SparkApplication, namespace: &str) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = crate::auth::auth_secret(app, &crate::auth::generate_secret());
    ctx.metrics.api_request("create_secret");
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(kube_err("create_auth_secret")(e)),
    }
}
