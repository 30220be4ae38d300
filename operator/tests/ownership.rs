//! The reconciler's sharp edges (issue 15): whose pods it counts and deletes, a status
//! cache that lags, a concurrent writer, and exact retry counts. Against the fake API
//! server of `support`, where each race is provoked, not hoped for.

mod support;

use std::time::Duration;

use ember_operator::crd::AppState;
use kube::runtime::controller::Action;
use serde_json::json;
use support::{Harness, application, base_spec};

const PODS: &str = "/api/v1/namespaces/jobs/pods";

fn failing_spec(retries: i32) -> serde_json::Value {
    let mut spec = base_spec(1);
    spec["restartPolicy"] = json!({"type": "OnFailure", "onFailureRetries": retries, "onFailureRetryInterval": 0});
    spec
}

/// A driver pod of kubeflow's spark-operator for an application of the same name.
fn kubeflow_driver(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "jobs", "labels": {
            "sparkoperator.k8s.io/app-name": "sumsq", "spark-role": "driver",
            "sparkoperator.k8s.io/launched-by-spark-operator": "true"},
            "ownerReferences": [{"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
                "name": "sumsq", "uid": "kubeflow-uid", "controller": true}]},
        "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "spark:4"}]},
    })
}

#[tokio::test]
async fn a_lagging_cache_never_deletes_the_reruns_new_driver() {
    let h = Harness::new(application("sumsq", failing_spec(2)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Failed", Some((1, "Error", "fails at once")));
    h.reconcile().await;
    assert_eq!(h.state(), "PENDING_RERUN");
    // The cache keeps showing PENDING_RERUN while the next reconcile submits the rerun.
    let stale = h.app();
    h.reconcile().await;
    assert_eq!(h.state(), "SUBMITTED");
    let new_driver = h.pod("sumsq-driver").metadata.uid;
    h.cluster.lock().unwrap().cached_app = Some(stale);
    let (_, requests) = h.reconcile_counting().await;
    assert!(!requests.contains(&format!("DELETE {PODS}")), "{requests:?}");
    assert_eq!(h.pod("sumsq-driver").metadata.uid, new_driver, "the rerun's driver is kept");
    assert_eq!(h.state(), "SUBMITTED");
}

#[tokio::test]
async fn a_concurrent_write_stops_the_decision_before_any_deletion() {
    let h = Harness::new(application("sumsq", base_spec(2)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Succeeded", Some((0, "Completed", "")));
    h.cluster.lock().unwrap().concurrent_writer = true;
    let (action, requests) = h.reconcile_counting().await;
    assert!(!requests.contains(&format!("DELETE {PODS}")), "{requests:?}");
    assert_eq!(h.state(), "RUNNING", "the conditional status write was refused");
    assert!(action == Action::requeue(Duration::from_millis(200)), "decides again soon: {action:?}");
    h.cluster.lock().unwrap().concurrent_writer = false;
    h.reconcile().await;
    assert_eq!(h.state(), "COMPLETED");
    assert_eq!(h.pod_names(), ["sumsq-driver"]);
}

#[tokio::test]
async fn on_failure_retries_n_gives_n_plus_one_runs_even_when_each_ends_unseen() {
    for retries in [0, 1, 2] {
        let h = Harness::new(application("sumsq", failing_spec(retries)));
        let mut runs = 0;
        for _ in 0..10 {
            h.reconcile().await;
            match h.state().as_str() {
                // Each driver fails before the operator sees it running.
                "SUBMITTED" => {
                    runs += 1;
                    h.set_phase("sumsq-driver", "Failed", Some((1, "Error", "fails at once")));
                }
                "FAILED" => break,
                _ => {}
            }
        }
        let status = h.app().status.unwrap();
        assert_eq!(status.application_state.state, AppState::Failed, "retries {retries}");
        assert_eq!(runs, retries + 1, "retries {retries}");
        assert_eq!(status.submission_attempts, retries + 1, "retries {retries}");
        assert_eq!(status.execution_attempts, retries + 1, "retries {retries}");
        assert_eq!(status.execution_failures, retries, "retries {retries}");
    }
}

#[tokio::test]
async fn a_kubeflow_pod_under_the_same_application_name_is_never_touched() {
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.add_foreign_pod(kubeflow_driver("sumsq-kubeflow-driver"));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.executor_state.len(), 1, "{:?}", status.executor_state);
    h.set_phase("sumsq-driver", "Failed", Some((1, "Error", "boom")));
    h.reconcile().await;
    assert_eq!(h.state(), "FAILED");
    assert!(h.pod_names().contains(&"sumsq-kubeflow-driver".to_string()), "{:?}", h.pod_names());
    assert_eq!(h.pod("sumsq-kubeflow-driver").metadata.labels.unwrap()["spark-role"], "driver");
}

#[tokio::test]
async fn a_driver_name_held_by_another_owner_fails_the_submission_clearly() {
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.add_foreign_pod(kubeflow_driver("sumsq-driver"));
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::SubmissionFailed);
    let message = status.application_state.error_message.unwrap();
    assert!(
        message.contains("Pod sumsq-driver already exists and does not belong to this SparkApplication"),
        "{message}"
    );
    assert!(message.contains("owned by SparkApplication sumsq"), "{message}");
    let kept = h.pod("sumsq-driver");
    assert_eq!(kept.spec.unwrap().containers[0].image.as_deref(), Some("spark:4"), "not changed");
}

#[tokio::test]
async fn pods_of_an_earlier_object_of_the_same_name_are_waited_for_never_adopted() {
    let h = Harness::new(application("sumsq", base_spec(1)));
    // Left by a deleted application object of the same name (another UID), not yet
    // removed by the garbage collector.
    let mut old = kubeflow_driver("sumsq-driver");
    old["metadata"]["labels"] = json!({"ember.dev/app-name": "sumsq", "ember.dev/app-uid": "old-uid",
        "spark-role": "driver", "sparkoperator.k8s.io/app-name": "sumsq"});
    old["metadata"]["ownerReferences"] = json!([{"apiVersion": "ember.dev/v1alpha1", "kind": "SparkApplication",
        "name": "sumsq", "uid": "old-uid", "controller": true}]);
    h.add_foreign_pod(old);
    let action = h.reconcile().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::New);
    let message = status.application_state.error_message.unwrap();
    assert!(message.contains("earlier SparkApplication named sumsq") && message.contains("sumsq-driver"), "{message}");
    assert_eq!(h.pod("sumsq-driver").metadata.labels.unwrap()["ember.dev/app-uid"], "old-uid");

    h.remove_pod("sumsq-driver");
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::Submitted);
    assert_eq!(status.application_state.error_message, None);
    assert_eq!(h.pod("sumsq-driver").metadata.labels.unwrap()["ember.dev/app-uid"], "app-uid-sumsq");
}

#[tokio::test]
async fn an_orphaned_service_of_an_earlier_object_is_taken_over_but_a_kubeflow_one_is_not() {
    // Left by an earlier object of the same name deleted with --cascade=orphan: Ember's
    // labels with the old UID, no owner any more.
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.add_foreign_service(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "sumsq-driver-svc", "namespace": "jobs",
                     "labels": {"ember.dev/app-name": "sumsq", "ember.dev/app-uid": "old-uid"}},
        "spec": {"clusterIP": "None", "selector": {"ember.dev/app-uid": "old-uid"}},
    }));
    h.reconcile().await;
    assert_eq!(h.state(), "SUBMITTED");
    let svc = h.service("sumsq-driver-svc");
    assert_eq!(svc.metadata.owner_references.unwrap()[0].uid, "app-uid-sumsq");
    assert_eq!(svc.spec.unwrap().selector.unwrap()["ember.dev/app-uid"], "app-uid-sumsq");

    // kubeflow's UI Service has the same name pattern as Ember's.
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.add_foreign_service(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "sumsq-ui-svc", "namespace": "jobs",
                     "ownerReferences": [{"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
                                          "name": "sumsq", "uid": "kubeflow-uid", "controller": true}]},
        "spec": {"selector": {"spark-role": "driver"}},
    }));
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.application_state.state, AppState::SubmissionFailed);
    let message = status.application_state.error_message.unwrap();
    assert!(message.contains("Service sumsq-ui-svc already exists and does not belong"), "{message}");
    assert_eq!(h.service("sumsq-ui-svc").metadata.owner_references.unwrap()[0].uid, "kubeflow-uid");
    assert!(!h.pod_names().contains(&"sumsq-driver".to_string()), "nothing half-submitted runs");
    let services: Vec<String> = h.cluster.lock().unwrap().services.keys().cloned().collect();
    assert_eq!(services, ["sumsq-ui-svc"], "the headless Service it created went again");
}

#[tokio::test]
async fn pods_from_before_the_uid_label_are_kept_and_labelled_after_an_operator_upgrade() {
    let h = Harness::new(application("sumsq", base_spec(0)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.reconcile().await;
    assert_eq!(h.state(), "RUNNING");
    // What the previous operator version made: kubeflow's label, managed-by, the owner
    // reference, and no Ember labels.
    {
        let mut cluster = h.cluster.lock().unwrap();
        let labels = cluster.pods.get_mut("sumsq-driver").unwrap().metadata.labels.as_mut().unwrap();
        labels.remove("ember.dev/app-name");
        labels.remove("ember.dev/app-uid");
    }
    h.reconcile().await;
    assert_eq!(h.state(), "RUNNING", "the running driver is still this application's");
    let labels = h.pod("sumsq-driver").metadata.labels.unwrap();
    assert_eq!(labels["ember.dev/app-uid"], "app-uid-sumsq");
    h.set_phase("sumsq-driver", "Succeeded", Some((0, "Completed", "")));
    h.reconcile().await;
    assert_eq!(h.state(), "COMPLETED");
}

#[tokio::test]
async fn an_executor_the_api_server_refuses_is_reported_and_does_not_freeze_the_status() {
    let h = Harness::new(application("sumsq", base_spec(1)));
    h.reconcile().await;
    h.set_phase("sumsq-driver", "Running", None);
    h.cluster.lock().unwrap().reject_pod_apply = Some((403, "exceeded quota: pods=10".into()));
    h.reconcile().await;
    assert_eq!(h.state(), "RUNNING", "the driver's start is recorded");
    assert!(h.event_reasons().contains(&"ExecutorRejected".to_string()), "{:?}", h.event_reasons());
    h.cluster.lock().unwrap().reject_pod_apply = None;
    h.reconcile().await;
    let status = h.app().status.unwrap();
    assert_eq!(status.executor_failures, 1, "the refused executor counts as failed");
    assert!(h.pod_names().contains(&"sumsq-exec-2".to_string()), "{:?}", h.pod_names());
}
