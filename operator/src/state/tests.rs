//! Tests of the state machine: [`decide`] case by case.
use super::*;
use crate::crd::{RestartPolicy, SparkApplicationSpec};

fn t0() -> Timestamp {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

fn spec() -> SparkApplicationSpec {
    serde_json::from_value(serde_json::json!({
        "image": "img", "mainApplicationFile": "local:///bin/job",
        "executor": {"instances": 2}
    }))
    .unwrap()
}

fn pod(name: &str, phase: PodPhase) -> PodView {
    PodView {
        name: name.into(),
        phase,
        terminating: false,
        uid: None,
        deletion_deadline: None,
        created: None,
        waiting: None,
        termination: None,
    }
}

fn ended(name: &str, code: i32, message: &str) -> PodView {
    PodView {
        termination: Some(Termination {
            exit_code: code,
            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
            message: Some(message.into()),
        }),
        ..pod(name, if code == 0 { PodPhase::Succeeded } else { PodPhase::Failed })
    }
}

fn status(state: AppState) -> SparkApplicationStatus {
    let mut s = SparkApplicationStatus::default();
    s.application_state.state = state;
    s.observed_generation = Some(1);
    s.submission_attempts = 1;
    s.last_submission_attempt_time = Some(Time(t0()));
    s
}

fn running_status() -> SparkApplicationStatus {
    let mut s = status(AppState::Running);
    s.execution_attempts = 1;
    s.last_executor_id = 2;
    s.running_executors = 2;
    s.executor_state = BTreeMap::from([
        ("app-exec-1".to_string(), ExecutorState::Running),
        ("app-exec-2".to_string(), ExecutorState::Running),
    ]);
    s
}

fn live_executors(ids: &[i32]) -> BTreeMap<i32, PodView> {
    ids.iter().map(|id| (*id, pod(&format!("app-exec-{id}"), PodPhase::Running))).collect()
}

struct Case {
    name: &'static str,
    spec: SparkApplicationSpec,
    spec_ok: bool,
    generation: i64,
    status: SparkApplicationStatus,
    driver: Option<PodView>,
    executors: BTreeMap<i32, PodView>,
    earlier_pods: Vec<String>,
    after_secs: i64,
    want_state: AppState,
    want_actions: Vec<Action>,
    want_error: Option<&'static str>,
}

fn case(name: &'static str, status: SparkApplicationStatus) -> Case {
    Case {
        name,
        spec: spec(),
        spec_ok: true,
        generation: 1,
        status,
        driver: None,
        executors: BTreeMap::new(),
        earlier_pods: Vec::new(),
        after_secs: 0,
        want_state: AppState::New,
        want_actions: vec![],
        want_error: None,
    }
}

fn on_failure(retries: i32) -> SparkApplicationSpec {
    let mut s = spec();
    s.restart_policy = RestartPolicy {
        policy_type: RestartPolicyType::OnFailure,
        on_failure_retries: Some(retries),
        on_failure_retry_interval: Some(10),
        ..Default::default()
    };
    s
}

fn cases() -> Vec<Case> {
    let settings_timeout = 300;
    vec![
        Case {
            want_state: AppState::Submitted,
            want_actions: vec![Action::Submit],
            ..case("new application is submitted", SparkApplicationStatus::default())
        },
        Case {
            driver: Some(PodView { terminating: true, ..pod("app-driver", PodPhase::Running) }),
            want_state: AppState::New,
            ..case("new application waits for a terminating pod of the same name", SparkApplicationStatus::default())
        },
        Case {
            spec_ok: false,
            want_state: AppState::Failed,
            want_actions: vec![],
            want_error: Some("invalid spec.executor.memory"),
            ..case("invalid spec fails without pods", SparkApplicationStatus::default())
        },
        Case {
            driver: Some(pod("app-driver", PodPhase::Pending)),
            want_state: AppState::Submitted,
            ..case("pending driver: wait", status(AppState::Submitted))
        },
        Case {
            driver: Some(pod("app-driver", PodPhase::Running)),
            want_state: AppState::Running,
            want_actions: vec![Action::CreateExecutor(1), Action::CreateExecutor(2)],
            ..case("running driver: executors created", status(AppState::Submitted))
        },
        Case {
            driver: Some(pod("app-driver", PodPhase::Running)),
            executors: BTreeMap::from([(1, pod("app-exec-1", PodPhase::Pending))]),
            want_state: AppState::Running,
            want_actions: vec![Action::CreateExecutor(2)],
            ..case("executor left by a half-done reconcile is kept; ids continue above it", status(AppState::Submitted))
        },
        Case {
            driver: Some(ended("app-driver", 0, "")),
            want_state: AppState::Completed,
            ..case("driver done before running was seen", status(AppState::Submitted))
        },
        Case {
            driver: Some(PodView {
                waiting: Some("ImagePullBackOff: no such image".into()),
                ..pod("app-driver", PodPhase::Pending)
            }),
            after_secs: settings_timeout,
            want_state: AppState::Failed,
            want_actions: vec![Action::DeleteAllPods],
            want_error: Some("did not start within 300s: ImagePullBackOff"),
            ..case("driver start timeout", status(AppState::Submitted))
        },
        Case {
            driver: None,
            want_state: AppState::Failed,
            want_error: Some("disappeared before it started"),
            ..case("driver pod gone before start", status(AppState::Submitted))
        },
        Case {
            driver: Some(pod("app-driver", PodPhase::Running)),
            executors: live_executors(&[1, 2]),
            want_state: AppState::Running,
            ..case("steady running", running_status())
        },
        Case {
            driver: Some(pod("app-driver", PodPhase::Running)),
            executors: {
                let mut e = live_executors(&[1]);
                e.insert(2, ended("app-exec-2", 1, "lost"));
                e
            },
            want_state: AppState::Running,
            want_actions: vec![Action::CreateExecutor(3)],
            ..case("failed executor replaced with a new id", running_status())
        },
        Case {
            driver: Some(pod("app-driver", PodPhase::Running)),
            executors: live_executors(&[2]),
            want_state: AppState::Running,
            want_actions: vec![Action::CreateExecutor(3)],
            ..case("vanished executor replaced", running_status())
        },
        Case {
            driver: Some(ended("app-driver", 0, "")),
            executors: live_executors(&[1, 2]),
            want_state: AppState::Completed,
            want_actions: vec![Action::DeleteExecutors],
            ..case("driver exit 0 completes", running_status())
        },
        Case {
            driver: Some(ended("app-driver", 2, "bad input")),
            executors: live_executors(&[1, 2]),
            want_state: AppState::Failed,
            want_actions: vec![Action::DeleteExecutors],
            want_error: Some("exited with code 2 (Error): bad input"),
            ..case("driver exit 2 fails (Never)", running_status())
        },
        Case {
            spec: on_failure(1),
            driver: Some(ended("app-driver", 2, "bad input")),
            executors: live_executors(&[1, 2]),
            want_state: AppState::PendingRerun,
            want_actions: vec![Action::DeleteAllPods],
            want_error: Some("bad input"),
            ..case("driver failure with retries left reruns", running_status())
        },
        Case {
            spec: on_failure(1),
            driver: Some(ended("app-driver", 2, "again")),
            want_state: AppState::Failed,
            want_error: Some("again"),
            ..case("driver failure with no retries left fails", {
                let mut s = running_status();
                s.execution_failures = 1;
                s
            })
        },
        Case {
            want_state: AppState::PendingRerun,
            ..case("rerun waits for its backoff", {
                let mut s = status(AppState::PendingRerun);
                s.rerun_time = Some(Time(t0().checked_add(SignedDuration::from_secs(5)).unwrap()));
                s
            })
        },
        Case {
            driver: Some(PodView { terminating: true, ..pod("app-driver", PodPhase::Failed) }),
            want_state: AppState::PendingRerun,
            ..case("rerun waits for old pods to go", status(AppState::PendingRerun))
        },
        Case {
            want_state: AppState::Submitted,
            want_actions: vec![Action::Submit],
            ..case("rerun submits when due and clear", status(AppState::PendingRerun))
        },
        Case {
            spec: SparkApplicationSpec { suspend: true, ..spec() },
            generation: 2,
            driver: Some(pod("app-driver", PodPhase::Running)),
            executors: live_executors(&[1, 2]),
            want_state: AppState::Suspended,
            want_actions: vec![Action::DeleteAllPods],
            ..case("suspend deletes pods", running_status())
        },
        Case {
            generation: 3,
            want_state: AppState::Submitted,
            want_actions: vec![Action::Submit],
            ..case("resume submits", status(AppState::Suspended))
        },
        Case {
            generation: 2,
            driver: Some(pod("app-driver", PodPhase::Running)),
            want_state: AppState::PendingRerun,
            want_actions: vec![Action::DeleteAllPods],
            ..case("spec change while running restarts", running_status())
        },
        Case {
            generation: 2,
            want_state: AppState::Submitted,
            want_actions: vec![Action::Submit],
            ..case("fixed spec after failure submits", status(AppState::Failed))
        },
        Case {
            driver: Some(ended("app-driver", 0, "")),
            want_state: AppState::Completed,
            ..case("completed stays completed", {
                let mut s = status(AppState::Completed);
                s.termination_time = Some(Time(t0()));
                s
            })
        },
        Case {
            spec: SparkApplicationSpec { time_to_live_seconds: Some(60), ..spec() },
            after_secs: 60,
            want_state: AppState::Completed,
            want_actions: vec![Action::DeleteApplication],
            ..case("ttl passed deletes the application", {
                let mut s = status(AppState::Completed);
                s.termination_time = Some(Time(t0()));
                s
            })
        },
    ]
}

#[test]
fn transitions() {
    let settings = Settings::default();
    for c in cases() {
        let obs = Observed {
            name: "app",
            namespace: "ns",
            generation: Some(c.generation),
            spec: &c.spec,
            spec_check: if c.spec_ok {
                Ok(())
            } else {
                Err(SpecError { field: "spec.executor.memory".into(), reason: "bad".into() })
            },
            web_ui: None,
            status: &c.status,
            driver: c.driver.clone(),
            executors: c.executors.clone(),
            earlier_pods: c.earlier_pods.clone(),
            demand: None,
            now: t0().checked_add(SignedDuration::from_secs(c.after_secs)).unwrap(),
        };
        let d = decide(&obs, &settings);
        assert_eq!(d.status.application_state.state, c.want_state, "{}", c.name);
        assert_eq!(d.actions, c.want_actions, "{}", c.name);
        assert_eq!(d.status.observed_generation, Some(c.generation), "{}", c.name);
        if let Some(want) = c.want_error {
            let got = d.status.application_state.error_message.clone().unwrap_or_default();
            assert!(got.contains(want), "{}: {got:?} lacks {want:?}", c.name);
        }
        // Deciding again from the result is stable: no new state, no repeated work
        // beyond what the observation still calls for.
        assert_eq!(decide(&obs, &settings), d, "{}: deterministic", c.name);
    }
}

#[test]
fn executors_pending_past_the_timeout_fail_a_run_that_has_none_running() {
    let settings = Settings { executor_start_timeout: Duration::from_secs(60), ..Settings::default() };
    let spec = spec();
    let status = running_status();
    let why = "Unschedulable: 0/1 nodes are available: 1 Insufficient memory.";
    let pending =
        |name: &str| PodView { created: Some(t0()), waiting: Some(why.into()), ..pod(name, PodPhase::Pending) };
    let decide_at = |secs: i64, executors: BTreeMap<i32, PodView>| {
        let obs = Observed {
            name: "app",
            namespace: "ns",
            generation: Some(1),
            spec: &spec,
            spec_check: Ok(()),
            web_ui: None,
            status: &status,
            driver: Some(pod("app-driver", PodPhase::Running)),
            executors,
            earlier_pods: Vec::new(),
            demand: None,
            now: t0().checked_add(SignedDuration::from_secs(secs)).unwrap(),
        };
        decide(&obs, &settings)
    };
    let both_pending = BTreeMap::from([(1, pending("app-exec-1")), (2, pending("app-exec-2"))]);

    let early = decide_at(30, both_pending.clone());
    assert_eq!(early.status.application_state.state, AppState::Running);
    assert_eq!(early.requeue_after, Some(Duration::from_secs(30)), "looks again at the deadline");
    assert!(early.notes.iter().all(|n| n.reason != "ExecutorPending"));

    let late = decide_at(60, both_pending);
    assert_eq!(late.status.application_state.state, AppState::Failed);
    let message = late.status.application_state.error_message.clone().unwrap();
    assert_eq!(message, format!("executor pod app-exec-1, app-exec-2 did not start within 60s: {why}"));
    assert!(late.actions.contains(&Action::DeleteAllPods), "{:?}", late.actions);
    assert!(late.notes.iter().any(|n| n.reason == "ExecutorPending" && n.warning));
    assert_eq!(late.status.executor_state["app-exec-1"], ExecutorState::Failed);

    // With an executor running, the run goes on; the pending one is reported.
    let one_running = BTreeMap::from([(1, pending("app-exec-1")), (2, pod("app-exec-2", PodPhase::Running))]);
    let partial = decide_at(90, one_running);
    assert_eq!(partial.status.application_state.state, AppState::Running);
    assert!(!partial.actions.contains(&Action::DeleteAllPods));
    assert!(partial.notes.iter().any(|n| n.reason == "ExecutorPending" && n.message.contains("app-exec-1")));
}

#[test]
fn a_pod_stuck_terminating_is_force_deleted_so_the_rerun_can_go() {
    let spec = spec();
    let mut status = status(AppState::PendingRerun);
    status.rerun_time = Some(Time(t0()));
    let stuck = PodView {
        terminating: true,
        uid: Some("uid-9".into()),
        deletion_deadline: Some(t0()),
        ..pod("app-driver", PodPhase::Running)
    };
    let decide_at = |secs: i64| {
        let obs = Observed {
            name: "app",
            namespace: "ns",
            generation: Some(1),
            spec: &spec,
            spec_check: Ok(()),
            web_ui: None,
            status: &status,
            driver: Some(stuck.clone()),
            executors: BTreeMap::new(),
            earlier_pods: Vec::new(),
            demand: None,
            now: t0().checked_add(SignedDuration::from_secs(secs)).unwrap(),
        };
        decide(&obs, &Settings::default())
    };
    let force = Action::ForceDeletePod { name: "app-driver".into(), uid: "uid-9".into() };
    let waiting = decide_at(10);
    assert!(!waiting.actions.contains(&force));
    assert_eq!(waiting.requeue_after, Some(SHORT_REQUEUE));
    let overdue = decide_at(STUCK_TERMINATING.as_secs() as i64);
    assert_eq!(overdue.actions, [force]);
    assert!(overdue.notes.iter().any(|n| n.reason == "PodForceDeleted" && n.warning));
    assert_eq!(overdue.status.application_state.state, AppState::PendingRerun, "submits once it is gone");
}

#[test]
fn backoff_doubles_and_caps() {
    let secs = |n| backoff(Some(10), n).as_secs();
    assert_eq!([secs(1), secs(2), secs(3), secs(5), secs(6), secs(40)], [10, 20, 40, 160, 160, 160]);
    assert_eq!(backoff(None, 1).as_secs(), DEFAULT_RETRY_INTERVAL_SECS);
    assert_eq!(backoff(Some(0), 3).as_secs(), 0);
}

#[test]
fn submission_rejection_retries_then_gives_up() {
    let mut s = spec();
    s.restart_policy = RestartPolicy {
        policy_type: RestartPolicyType::OnFailure,
        on_submission_failure_retries: Some(1),
        on_submission_failure_retry_interval: Some(7),
        ..Default::default()
    };
    let fresh = SparkApplicationStatus::default();
    let obs = Observed {
        name: "app",
        namespace: "ns",
        generation: Some(1),
        spec: &s,
        spec_check: Ok(()),
        web_ui: None,
        status: &fresh,
        driver: None,
        executors: BTreeMap::new(),
        earlier_pods: Vec::new(),
        demand: None,
        now: t0(),
    };
    let d = submission_failed(&s, decide(&obs, &Settings::default()), "forbidden".into(), t0());
    assert_eq!(d.status.application_state.state, AppState::PendingRerun);
    assert_eq!(d.status.submission_failures, 1);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(7)));
    assert!(d.actions.is_empty());
    let again = submission_failed(&s, Decision { status: d.status.clone(), ..d }, "forbidden".into(), t0());
    assert_eq!(again.status.application_state.state, AppState::SubmissionFailed);
    assert!(again.status.application_state.error_message.unwrap().contains("forbidden"));
}

#[test]
fn submission_points_driver_info_at_the_ui_service_and_ingress() {
    let spec: SparkApplicationSpec = serde_json::from_value(serde_json::json!({
        "image": "img", "mainApplicationFile": "local:///bin/job",
        "sparkConf": {"spark.ui.port": "4050"}, "sparkUIOptions": {"servicePort": 80}
    }))
    .unwrap();
    let mut app = crate::crd::SparkApplication::new("app", spec.clone());
    app.metadata.namespace = Some("ns".into());
    let settings = crate::ui::UiSettings {
        ingress_url_format: Some("{{$appName}}.{{$appNamespace}}.example.com".into()),
        ..Default::default()
    };
    let plan = crate::ui::plan(&app, &settings).unwrap();
    let fresh = SparkApplicationStatus::default();
    let obs = Observed {
        name: "app",
        namespace: "ns",
        generation: Some(1),
        spec: &spec,
        spec_check: Ok(()),
        web_ui: plan.web_ui.clone(),
        status: &fresh,
        driver: None,
        executors: BTreeMap::new(),
        earlier_pods: Vec::new(),
        demand: None,
        now: t0(),
    };
    let mut d = decide(&obs, &Settings::default());
    assert_eq!(d.actions, [Action::Submit]);
    let info = d.status.driver_info.clone();
    assert_eq!(info.pod_name.as_deref(), Some("app-driver"));
    assert_eq!(info.web_ui_service_name.as_deref(), Some("app-ui-svc"));
    assert_eq!(info.web_ui_port, Some(80), "the Service's port, not the driver's 4050");
    assert_eq!(info.web_ui_address, None, "no cluster IP before the Service is applied");
    assert_eq!(info.web_ui_ingress_name.as_deref(), Some("app-ui-ingress"));
    assert_eq!(info.web_ui_ingress_address.as_deref(), Some("http://app.ns.example.com"));

    // The Service as the API server returned it: its cluster IP makes the address.
    let service = |name: &str, ip: &str| -> Service {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": {"clusterIP": ip}})).unwrap()
    };
    record_web_ui_service(&mut d.status, &service("app-driver-svc", "10.0.0.9"));
    assert_eq!(d.status.driver_info.web_ui_address, None, "another Service");
    record_web_ui_service(&mut d.status, &service("app-ui-svc", "None"));
    assert_eq!(d.status.driver_info.web_ui_address, None, "headless");
    record_web_ui_service(&mut d.status, &service("app-ui-svc", "10.0.0.7"));
    assert_eq!(d.status.driver_info.web_ui_address.as_deref(), Some("10.0.0.7:80"));
    record_web_ui_service(&mut d.status, &service("app-ui-svc", "fd00::7"));
    assert_eq!(d.status.driver_info.web_ui_address.as_deref(), Some("[fd00::7]:80"));

    // With the UI off there is no UI Service, and nothing points at one.
    let obs = Observed { web_ui: None, ..obs };
    let mut d = decide(&obs, &Settings::default());
    let info = d.status.driver_info.clone();
    assert_eq!((info.web_ui_service_name, info.web_ui_port, info.web_ui_ingress_name), (None, None, None));
    record_web_ui_service(&mut d.status, &service("app-ui-svc", "10.0.0.7"));
    assert_eq!(d.status.driver_info.web_ui_address, None);
}

/// Dynamic allocation: a running application with `spec` and `executors`, deciding
/// with the driver's `demand`.
fn decide_dynamic(
    executors: BTreeMap<i32, PodView>,
    status: &SparkApplicationStatus,
    demand: Option<crate::allocation::Demand>,
) -> Decision {
    decide_dynamic_with(executors, status, demand, serde_json::json!({}), t0())
}

fn decide_dynamic_with(
    executors: BTreeMap<i32, PodView>,
    status: &SparkApplicationStatus,
    demand: Option<crate::allocation::Demand>,
    spark_conf: serde_json::Value,
    now: Timestamp,
) -> Decision {
    let spec: SparkApplicationSpec = serde_json::from_value(serde_json::json!({
        "image": "img", "mainApplicationFile": "local:///bin/job", "executor": {"instances": 1},
        "sparkConf": spark_conf,
        "dynamicAllocation": {"enabled": true, "initialExecutors": 2, "minExecutors": 1, "maxExecutors": 4}
    }))
    .unwrap();
    let obs = Observed {
        name: "app",
        namespace: "ns",
        generation: Some(1),
        spec: &spec,
        spec_check: Ok(()),
        web_ui: None,
        status,
        driver: Some(pod("app-driver", PodPhase::Running)),
        executors,
        earlier_pods: Vec::new(),
        demand,
        now,
    };
    decide(&obs, &Settings::default())
}

fn demand(target: i32, decommissioned: &[&str]) -> Option<crate::allocation::Demand> {
    Some(crate::allocation::Demand {
        target,
        pending_tasks: 7,
        decommissioned: decommissioned.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

fn with_uid(mut p: PodView) -> PodView {
    p.uid = Some(format!("uid-{}", p.name));
    p
}

#[test]
fn dynamic_allocation_starts_with_the_initial_count_then_follows_the_driver_within_bounds() {
    // First run, the driver not heard yet: initialExecutors (2), not executor.instances (1).
    let mut fresh = status(AppState::Running);
    fresh.execution_attempts = 1;
    let d = decide_dynamic(BTreeMap::new(), &fresh, None);
    assert_eq!(d.actions, [Action::CreateExecutor(1), Action::CreateExecutor(2)]);
    assert_eq!(d.requeue_after, Some(crate::allocation::POLL), "the demand is read often");

    // The driver asks for 6: capped at maxExecutors (4); two more pods, with an event.
    let d = decide_dynamic(live_executors(&[1, 2]), &running_status(), demand(6, &[]));
    assert_eq!(d.actions, [Action::CreateExecutor(3), Action::CreateExecutor(4)]);
    assert_eq!(d.status.running_executors, 4);
    assert!(d.notes.iter().any(|n| n.reason == "ExecutorsRequested" && n.message.contains("asks for 4 (7 pending")));

    // Not heard this time: nothing is created or deleted.
    let d = decide_dynamic(live_executors(&[1, 2]), &running_status(), None);
    assert!(d.actions.is_empty(), "{:?}", d.actions);

    // The driver asks for 0: minExecutors (1) is kept; running executors are the
    // driver's to retire, so nothing is deleted here.
    let d = decide_dynamic(live_executors(&[1, 2]), &running_status(), demand(0, &[]));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
}

#[test]
fn dynamic_allocation_releases_retired_and_surplus_pods_without_counting_failures() {
    let mut executors = live_executors(&[1, 2]);
    executors.insert(3, with_uid(pod("app-exec-3", PodPhase::Pending)));
    executors.insert(4, with_uid(ended("app-exec-4", 0, "")));
    let mut before = running_status();
    before.last_executor_id = 4;
    before.executor_state.insert("app-exec-3".into(), ExecutorState::Pending);
    before.executor_state.insert("app-exec-4".into(), ExecutorState::Running);
    // The driver retired 2 (still running while it exits) and wants 1: the pending
    // pod 3 is surplus, and 4 (retired earlier, exited 0) is released.
    let d = decide_dynamic(executors.clone(), &before, demand(1, &["2", "4"]));
    assert_eq!(
        d.actions,
        [
            Action::DeleteExecutor { name: "app-exec-3".into(), uid: "uid-app-exec-3".into() },
            Action::DeleteExecutor { name: "app-exec-4".into(), uid: "uid-app-exec-4".into() },
        ]
    );
    assert_eq!(d.status.executor_failures, 0);
    assert_eq!(d.status.executor_state["app-exec-3"], ExecutorState::Completed);
    assert_eq!(d.status.executor_state["app-exec-4"], ExecutorState::Completed);
    assert_eq!(d.status.running_executors, 1, "3 is released, 2 retired");
    assert!(d.notes.iter().any(|n| n.reason == "ExecutorsReleased" && n.message.contains("app-exec-3, app-exec-4")));

    // Next look: 3 terminating, 4 gone, 2 exited 0: no failure is counted, nothing repeats.
    let mut after = executors;
    after.insert(3, PodView { terminating: true, ..with_uid(pod("app-exec-3", PodPhase::Pending)) });
    after.remove(&4);
    after.insert(2, with_uid(ended("app-exec-2", 0, "")));
    let d2 = decide_dynamic(after, &d.status, demand(1, &["2", "4"]));
    assert_eq!(d2.status.executor_failures, 0);
    assert_eq!(d2.actions, [Action::DeleteExecutor { name: "app-exec-2".into(), uid: "uid-app-exec-2".into() }]);
    assert_eq!(d2.status.executor_state["app-exec-3"], ExecutorState::Completed);
    assert_eq!(d2.status.executor_state["app-exec-4"], ExecutorState::Completed);
}

#[test]
fn dynamic_allocation_creates_in_batches_and_never_releases_a_registered_executor() {
    // spark.kubernetes.allocation.batch.size 1: one pod per reconcile.
    let batch = serde_json::json!({"spark.kubernetes.allocation.batch.size": "1"});
    let d = decide_dynamic_with(live_executors(&[1, 2]), &running_status(), demand(4, &[]), batch, t0());
    assert_eq!(d.actions, [Action::CreateExecutor(3)]);
    assert!(
        d.notes
            .iter()
            .any(|n| n.message == "created 1 executor pod(s): dynamic allocation asks for 4 (7 pending tasks)")
    );

    // The target drops to 1 while pod 3 still looks pending here but its executor has
    // registered with the driver: it is not deleted (it may run tasks already).
    let mut executors = live_executors(&[1]);
    executors.insert(3, with_uid(pod("app-exec-3", PodPhase::Pending)));
    executors.insert(4, with_uid(pod("app-exec-4", PodPhase::Pending)));
    let mut seen = demand(1, &[]).unwrap();
    seen.executors = vec![crate::allocation::RegisteredExecutor { id: "3".into() }];
    let d = decide_dynamic(executors, &running_status(), Some(seen));
    assert_eq!(d.actions, [Action::DeleteExecutor { name: "app-exec-4".into(), uid: "uid-app-exec-4".into() }]);
}

#[test]
fn dynamic_allocation_reports_but_does_not_fail_on_a_stuck_pod_once_executors_ran() {
    // Every executor retired (min 0 would allow it); a new burst's pod is stuck pending
    // past the start timeout: a warning, the run goes on.
    let mut status = running_status();
    status.executor_state = BTreeMap::from([("app-exec-1".to_string(), ExecutorState::Completed)]);
    status.last_executor_id = 2;
    let stuck = PodView {
        created: Some(t0()),
        waiting: Some("Unschedulable: 0/1 nodes are available".into()),
        ..with_uid(pod("app-exec-2", PodPhase::Pending))
    };
    let later = t0().checked_add(SignedDuration::from_secs(301)).unwrap();
    let d = decide_dynamic_with(
        BTreeMap::from([(2, stuck.clone())]),
        &status,
        demand(1, &[]),
        serde_json::json!({}),
        later,
    );
    assert_eq!(d.status.application_state.state, AppState::Running);
    assert!(d.notes.iter().any(|n| n.reason == "ExecutorPending"), "{:?}", d.notes);
    // Before any executor ran, the same pod fails the run with the scheduler's reason.
    let mut fresh = running_status();
    fresh.executor_state = BTreeMap::from([("app-exec-2".to_string(), ExecutorState::Pending)]);
    let d = decide_dynamic_with(BTreeMap::from([(2, stuck)]), &fresh, None, serde_json::json!({}), later);
    assert_eq!(d.status.application_state.state, AppState::Failed);
    assert!(d.status.application_state.error_message.unwrap_or_default().contains("Unschedulable"));
}
