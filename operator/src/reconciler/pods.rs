//! What the reconciler observes of pods: each pod's view for the state machine, and an
//! application's pods told apart by owner (this application, or another object of the
//! same name).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::builder::{self, CONTAINER_NAME, LABEL_EXECUTOR_ID, LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY};
use crate::crd::SparkApplication;
use crate::ownership;
use crate::state::{PodPhase, PodView, Termination};

/// What the operator reports of a pod.
pub fn pod_view(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Unknown") => PodPhase::Unknown,
        _ => PodPhase::Pending,
    };
    let container =
        status.and_then(|s| s.container_statuses.as_ref()).and_then(|cs| cs.iter().find(|c| c.name == CONTAINER_NAME));
    let container_state = container.and_then(|c| c.state.as_ref());
    let termination = container_state.and_then(|s| s.terminated.as_ref()).map(|t| Termination {
        exit_code: t.exit_code,
        reason: t.reason.clone(),
        message: t.message.clone(),
    });
    let waiting = container_state
        .and_then(|s| s.waiting.as_ref())
        .filter(|w| w.reason.as_deref() != Some("ContainerCreating"))
        .and_then(|w| {
            w.reason.as_ref().map(|reason| match &w.message {
                Some(message) => format!("{reason}: {message}"),
                None => reason.clone(),
            })
        })
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| {
                    cs.iter().find(|c| {
                        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
                    })
                })
                .map(|c| format!("Unschedulable: {}", c.message.clone().unwrap_or_default()))
        });
    PodView {
        name: pod.name_any(),
        phase,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        uid: pod.metadata.uid.clone(),
        deletion_deadline: pod.metadata.deletion_timestamp.as_ref().map(|t| t.0),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        waiting,
        termination,
    }
}

/// The pods listed under an application's name, by whose they are.
#[derive(Debug, Default)]
pub struct PodsByObject<'p> {
    /// This application object's pods.
    pub ours: Vec<&'p Pod>,
    /// Of these, the ones made before Ember labelled pods with [`builder::LABEL_APP_UID`]
    /// (an operator upgrade), known by their controller owner reference: relabelled.
    pub unlabelled: Vec<&'p Pod>,
    /// Names of pods Ember made for an earlier object of the same name.
    pub earlier: Vec<String>,
}

/// Splits the pods listed under an application's name (kubeflow's label, which every
/// Ember pod carries too) into this application object's ([`ownership::holder`]: the
/// controller owner reference, else [`builder::LABEL_APP_UID`]); earlier objects' (Ember's
/// pods held by anyone else); and the rest (another operator's), which are left out.
pub fn split_by_object<'p>(pods: &'p [Pod], app: &SparkApplication) -> PodsByObject<'p> {
    let mut split = PodsByObject::default();
    for pod in pods {
        let labels = pod.labels();
        let ember = labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
            || labels.contains_key(builder::LABEL_EMBER_APP_NAME);
        if !ember {
            continue;
        }
        match ownership::holder(&pod.metadata, app) {
            ownership::Holder::This => {
                if !labels.contains_key(builder::LABEL_APP_UID) {
                    split.unlabelled.push(pod);
                }
                split.ours.push(pod);
            }
            _ => split.earlier.push(pod.name_any()),
        }
    }
    split
}

/// Splits an application's pods into the driver and the executors by id.
pub fn observe_pods<'p>(pods: impl IntoIterator<Item = &'p Pod>) -> (Option<PodView>, BTreeMap<i32, PodView>) {
    let mut driver = None;
    let mut executors = BTreeMap::new();
    for pod in pods {
        let labels = pod.labels();
        match labels.get(LABEL_ROLE).map(String::as_str) {
            Some("driver") => driver = Some(pod_view(pod)),
            Some("executor") => {
                if let Some(id) = labels.get(LABEL_EXECUTOR_ID).and_then(|id| id.parse::<i32>().ok()) {
                    executors.insert(id, pod_view(pod));
                }
            }
            _ => {}
        }
    }
    (driver, executors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::LABEL_ROLE;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app-driver", "labels": {LABEL_ROLE: "driver"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn pod_view_reports_why_a_pod_waits_or_how_it_ended() {
        let unschedulable = pod(serde_json::json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient memory."}]}));
        assert_eq!(
            pod_view(&unschedulable).waiting.as_deref(),
            Some("Unschedulable: 0/1 nodes are available: 1 Insufficient memory.")
        );
        let pulling = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "ember", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}));
        assert_eq!(pod_view(&pulling).waiting.as_deref(), Some("ImagePullBackOff: Back-off pulling image \"x\""));
        let creating = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "ember", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(pod_view(&creating).waiting, None, "normal start is not a problem");
        let failed = pod(serde_json::json!({"phase": "Failed", "containerStatuses": [{
            "name": "ember", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}));
        let view = pod_view(&failed);
        assert_eq!(view.phase, PodPhase::Failed);
        assert_eq!(
            view.termination,
            Some(Termination { exit_code: 137, reason: Some("OOMKilled".into()), message: None })
        );
        let (driver, executors) = observe_pods(&[failed]);
        assert!(driver.is_some() && executors.is_empty());
    }
}
