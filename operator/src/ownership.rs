//! Whose an object is. The operator names its pods, Services and Ingresses after the
//! application (`<app>-driver`, `<app>-ui-svc`, ...), and those names may already be taken:
//! by a kubeflow spark-operator application of the same name (whose objects use the same
//! patterns), by something the user made, or by an earlier `SparkApplication` object of
//! the same name that was deleted and whose objects the garbage collector has not removed
//! yet. Objects are therefore created with POST, never applied blindly: a name already
//! taken is an error unless the object is this application object's own, so nothing is
//! adopted and nothing of another owner is changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::{LABEL_APP_UID, app_uid};
use crate::crd::SparkApplication;

/// Who holds an object's name, as seen from one application object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// This application object (its UID).
    This,
    /// An earlier `SparkApplication` object of the same name (another UID): it was
    /// deleted, and the garbage collector removes the object soon.
    EarlierObject,
    /// Made by Ember for an earlier object of the same name, which was deleted with
    /// `--cascade=orphan`: it has no owner any more, and nothing will remove it.
    Orphaned,
    /// Anything else; the text says what, for the error message.
    Other(String),
}

/// Who holds the object with metadata `meta`, for application `app`: by its controller
/// owner reference when it is a `SparkApplication` of Ember's group, else by Ember's
/// [`LABEL_APP_UID`] label.
pub fn holder(meta: &ObjectMeta, app: &SparkApplication) -> Holder {
    let uid = app_uid(app);
    let group = SparkApplication::group(&());
    let controller = meta.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    if let Some(owner) = controller {
        let ours_kind = owner.kind == SparkApplication::kind(&())
            && owner.api_version.split('/').next() == Some(group.as_ref())
            && owner.name == app.name_any();
        return match (ours_kind, owner.uid == uid) {
            (true, true) => Holder::This,
            (true, false) => Holder::EarlierObject,
            (false, _) => Holder::Other(format!("it is owned by {} {}", owner.kind, owner.name)),
        };
    }
    match meta.labels.as_ref().and_then(|l| l.get(LABEL_APP_UID)) {
        Some(label) if *label == uid => Holder::This,
        Some(_) => Holder::Orphaned,
        None => Holder::Other("it was not created by Ember for this application".to_string()),
    }
}

/// Why [`create_owned`] did not create an object.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The name is held by something other than this application.
    #[error("{kind} {name} already exists and does not belong to this SparkApplication: {why}")]
    Taken {
        /// Kind of the object.
        kind: String,
        /// Its name.
        name: String,
        /// Who holds it.
        why: String,
    },
    /// The name is held by an object of an earlier application object of the same name,
    /// which the garbage collector is removing.
    #[error("{kind} {name} still belongs to an earlier SparkApplication of the same name")]
    Earlier {
        /// Kind of the object.
        kind: String,
        /// Its name.
        name: String,
    },
    /// The API request failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// An object [`create_owned`] made sure of.
#[derive(Debug, Clone)]
pub struct Claimed<K> {
    /// The object as the API server stored it.
    pub object: K,
    /// Whether this call created it (rather than finding it).
    pub created: bool,
}

/// Creates `object` (POST). When its name exists already: an object of this application
/// is kept, and with `update` brought to `object` by server-side apply as `manager`; so
/// is an orphaned one ([`Holder::Orphaned`]) with `update` (a Service or Ingress, which
/// holds no work: taking it over loses nothing); any other holder is a [`ClaimError`].
/// Pods are created with `update` false: an orphaned pod is never adopted, and the
/// caller waits for it to go ([`ClaimError::Earlier`]). Returns the object as the API
/// server stored it.
pub async fn create_owned<K>(
    api: &Api<K>,
    object: &K,
    app: &SparkApplication,
    update: bool,
    manager: &str,
) -> Result<Claimed<K>, ClaimError>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = object.name_any();
    match api.create(&PostParams { field_manager: Some(manager.to_string()), ..Default::default() }, object).await {
        Ok(object) => return Ok(Claimed { object, created: true }),
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => return Err(err.into()),
    }
    let existing = api.get(&name).await?;
    match holder(existing.meta(), app) {
        Holder::This | Holder::Orphaned if update => {
            let object = api.patch(&name, &PatchParams::apply(manager).force(), &Patch::Apply(object)).await?;
            Ok(Claimed { object, created: false })
        }
        Holder::This => Ok(Claimed { object: existing, created: false }),
        Holder::EarlierObject | Holder::Orphaned => Err(ClaimError::Earlier { kind: K::kind(&()).into_owned(), name }),
        Holder::Other(why) => Err(ClaimError::Taken { kind: K::kind(&()).into_owned(), name, why }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn app(uid: &str) -> SparkApplication {
        let mut app: SparkApplication = serde_json::from_value(serde_json::json!({
            "apiVersion": "ember.dev/v1alpha1", "kind": "SparkApplication",
            "metadata": {"name": "etl", "namespace": "jobs", "uid": uid},
            "spec": {"image": "ember:test", "mainApplicationFile": "local:///opt/ember/bin/ember-examples",
                     "mainClass": "sumsq"},
        }))
        .unwrap();
        app.metadata.uid = Some(uid.to_string());
        app
    }

    fn owned_by(api_version: &str, kind: &str, name: &str, uid: &str) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                api_version: api_version.into(),
                kind: kind.into(),
                name: name.into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn only_this_object_holds_its_names() {
        let app = app("uid-2");
        assert_eq!(holder(&owned_by("ember.dev/v1alpha1", "SparkApplication", "etl", "uid-2"), &app), Holder::This);
        assert_eq!(
            holder(&owned_by("ember.dev/v1alpha1", "SparkApplication", "etl", "uid-1"), &app),
            Holder::EarlierObject,
            "deleted and recreated: the old object's pods are not adopted"
        );
        assert!(matches!(
            holder(&owned_by("sparkoperator.k8s.io/v1beta2", "SparkApplication", "etl", "uid-9"), &app),
            Holder::Other(why) if why.contains("SparkApplication etl")
        ));
        let labelled = |uid: &str| ObjectMeta {
            labels: Some(BTreeMap::from([(LABEL_APP_UID.to_string(), uid.to_string())])),
            ..Default::default()
        };
        assert_eq!(holder(&labelled("uid-2"), &app), Holder::This);
        assert_eq!(holder(&labelled("uid-1"), &app), Holder::Orphaned, "deleted with --cascade=orphan");
        assert!(matches!(holder(&ObjectMeta::default(), &app), Holder::Other(_)));
    }
}
