use super::*;
use crate::scheduler::task_scheduler::ExecutorLoad;

fn conf(pairs: &[(&str, &str)]) -> AllocationConf {
    let mut c = Conf::new().set("spark.dynamicAllocation.enabled", "true");
    for (k, v) in pairs {
        c.insert(format!("spark.dynamicAllocation.{k}"), *v);
    }
    AllocationConf::from_conf(&c, None).unwrap().unwrap()
}

fn executor(id: &str, running: usize, idle_secs: u64) -> ExecutorLoad {
    ExecutorLoad { executor_id: id.into(), cores: 1, running, idle_for: Duration::from_secs(idle_secs) }
}

fn load(pending: usize, executors: Vec<ExecutorLoad>) -> SchedulerLoad {
    let running = executors.iter().map(|e| e.running).sum();
    SchedulerLoad { pending, running, executors }
}

#[test]
fn off_unless_enabled_and_checked_like_spark() {
    assert_eq!(AllocationConf::from_conf(&Conf::new(), None).unwrap(), None);
    let on = |pairs: &[(&str, &str)]| {
        let mut c = Conf::new().set("spark.dynamicAllocation.enabled", "true");
        for (k, v) in pairs {
            c.insert(*k, *v);
        }
        AllocationConf::from_conf(&c, Some(3))
    };
    let err = |pairs: &[(&str, &str)]| on(pairs).unwrap_err().to_string();
    assert!(err(&[("spark.dynamicAllocation.maxExecutors", "0")]).contains("cannot be 0"));
    assert!(
        err(&[("spark.dynamicAllocation.minExecutors", "5"), ("spark.dynamicAllocation.maxExecutors", "2")])
            .contains("minExecutors (5) must not exceed")
    );
    assert!(err(&[("spark.dynamicAllocation.executorAllocationRatio", "1.5")]).contains("(0, 1]"));
    assert!(err(&[("spark.dynamicAllocation.schedulerBacklogTimeout", "0")]).contains("above 0"));
    // The cluster's size caps maxExecutors; initial is the largest of the three, capped.
    let c =
        on(&[("spark.dynamicAllocation.initialExecutors", "2"), ("spark.executor.instances", "5")]).unwrap().unwrap();
    assert_eq!((c.max, c.initial), (3, 3));
    // Bare numbers are seconds, but milliseconds for shuffleTracking.timeout (Spark's units).
    let c =
        conf(&[("executorIdleTimeout", "3"), ("cachedExecutorIdleTimeout", "4"), ("shuffleTracking.timeout", "500")]);
    assert_eq!(c.idle_timeout, Duration::from_secs(3));
    assert_eq!(c.cached_idle_timeout, Some(Duration::from_secs(4)));
    assert_eq!(c.shuffle_timeout, Some(Duration::from_millis(500)));
    assert_eq!(conf(&[]).cached_idle_timeout, None);
}

#[test]
fn a_backlog_adds_one_then_doubling_up_to_what_the_tasks_need_and_max() {
    let mut a =
        Allocator::new(conf(&[("minExecutors", "1"), ("maxExecutors", "10"), ("schedulerBacklogTimeout", "1")]));
    let t0 = Instant::now();
    let busy = |n: usize| (0..n).map(|i| executor(&i.to_string(), 1, 0)).collect::<Vec<_>>();
    assert_eq!(a.target(), 1);
    // Tasks just queued: no request before the backlog timeout.
    assert_eq!(a.step(&load(20, busy(1)), &Holdings::default(), t0).target, 1);
    assert_eq!(a.step(&load(20, busy(1)), &Holdings::default(), t0 + Duration::from_millis(999)).target, 1);
    // Then +1, +2, +4 each sustained timeout (same as the first by default) ...
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    assert_eq!(a.step(&load(20, busy(1)), &Holdings::default(), s(1)).target, 2);
    assert_eq!(a.step(&load(20, busy(2)), &Holdings::default(), s(2)).target, 4);
    // ... but never past what the tasks can use: 20 pending + 4 running on 1-core executors.
    assert_eq!(a.step(&load(20, busy(4)), &Holdings::default(), s(3)).target, 8);
    assert_eq!(a.step(&load(20, busy(8)), &Holdings::default(), s(4)).target, 10, "capped at maxExecutors");
    // Fewer tasks: the target drops at once, not below minExecutors.
    assert_eq!(a.step(&load(0, busy(3)), &Holdings::default(), s(5)).target, 3);
    assert_eq!(a.step(&load(0, vec![executor("1", 0, 0)]), &Holdings::default(), s(6)).target, 1);
}

#[test]
fn the_initial_executors_are_kept_until_there_is_work_or_one_times_out() {
    let mut a = Allocator::new(conf(&[("initialExecutors", "3"), ("executorIdleTimeout", "5")]));
    let now = Instant::now();
    let fresh = vec![executor("1", 0, 1), executor("2", 0, 1)];
    // Nothing submitted yet, executors still starting: the target stays at 3.
    assert_eq!(a.step(&load(0, fresh), &Holdings::default(), now).target, 3);
    // Work came and went: now it follows the need (0).
    assert_eq!(a.step(&load(1, vec![executor("1", 0, 1)]), &Holdings::default(), now).target, 1);
    assert_eq!(a.step(&load(0, vec![executor("1", 0, 1)]), &Holdings::default(), now).target, 0);
    // Or an executor times out idle before any work: the same.
    let mut a = Allocator::new(conf(&[("initialExecutors", "3"), ("executorIdleTimeout", "5")]));
    assert_eq!(a.step(&load(0, vec![executor("1", 0, 6)]), &Holdings::default(), now).target, 0);
}

#[test]
fn a_ramp_starts_from_the_executors_already_there() {
    let mut a = Allocator::new(conf(&[("schedulerBacklogTimeout", "1")]));
    let t0 = Instant::now();
    let three = || (0..3).map(|i| executor(&i.to_string(), 1, 0)).collect::<Vec<_>>();
    a.step(&load(0, three()), &Holdings::default(), t0);
    assert_eq!(a.step(&load(0, vec![]), &Holdings::default(), t0).target, 0);
    // Three executors still registered when a backlog starts: 3 + 1, not 0 + 1.
    a.step(&load(20, three()), &Holdings::default(), t0);
    assert_eq!(a.step(&load(20, three()), &Holdings::default(), t0 + Duration::from_secs(1)).target, 4);
}

#[test]
fn the_ratio_and_cores_divide_the_need() {
    let mut c = conf(&[("executorAllocationRatio", "0.5"), ("schedulerBacklogTimeout", "1")]);
    c.tasks_per_executor = 4;
    let mut a = Allocator::new(c);
    let t0 = Instant::now();
    a.step(&load(40, vec![]), &Holdings::default(), t0);
    for i in 1..10 {
        a.step(&load(40, vec![]), &Holdings::default(), t0 + Duration::from_secs(i));
    }
    // ceil(40 × 0.5 / 4) = 5.
    assert_eq!(a.target(), 5);
}

#[test]
fn idle_executors_go_after_their_timeout_keeping_min_and_target() {
    let mut a = Allocator::new(conf(&[("minExecutors", "1"), ("executorIdleTimeout", "3")]));
    let now = Instant::now();
    let executors = vec![executor("1", 0, 10), executor("2", 0, 2), executor("3", 0, 5), executor("4", 1, 0)];
    let step = a.step(&load(0, executors), &Holdings::default(), now);
    // Target: 1 task running → 1; four executors, keep 1: the idle-past-timeout ones
    // go, longest idle first; "2" is idle for less than the timeout, "4" is busy.
    assert_eq!(step.target, 1);
    let ids: Vec<&str> = step.remove.iter().map(|r| r.executor_id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    assert!(step.remove[0].reason.contains("idle for 10.0s (executorIdleTimeout 3.0s)"), "{:?}", step.remove);
    assert_eq!(step.remove[0].idle_timeout, Duration::from_secs(3));
    // Never below minExecutors, even when every executor is idle.
    let mut a = Allocator::new(conf(&[("minExecutors", "2"), ("executorIdleTimeout", "1")]));
    let all_idle = vec![executor("1", 0, 9), executor("2", 0, 9), executor("3", 0, 9)];
    assert_eq!(a.step(&load(0, all_idle), &Holdings::default(), now).remove.len(), 1);
}

#[test]
fn executors_holding_shuffle_outputs_or_cached_blocks_wait_for_their_own_timeouts() {
    let executors = || vec![executor("1", 0, 100), executor("2", 0, 100), executor("3", 0, 100)];
    let holdings = Holdings { cache: ["2".to_string()].into(), shuffle: ["3".to_string()].into() };
    let now = Instant::now();
    // Default: both unbounded (Spark's shuffle tracking without a timeout).
    let mut a = Allocator::new(conf(&[("executorIdleTimeout", "1")]));
    let ids = |s: Step| s.remove.into_iter().map(|r| r.executor_id).collect::<Vec<_>>();
    assert_eq!(ids(a.step(&load(0, executors()), &holdings, now)), ["1"]);
    // With timeouts, each applies to what the executor holds.
    let mut a = Allocator::new(conf(&[
        ("executorIdleTimeout", "1"),
        ("cachedExecutorIdleTimeout", "200"),
        ("shuffleTracking.timeout", "50s"),
    ]));
    let step = a.step(&load(0, executors()), &holdings, now);
    assert!(step.remove[1].reason.contains("(shuffleTracking.timeout 50.0s)"), "{:?}", step.remove);
    assert_eq!(ids(step), ["1", "3"]);
    let c = a.conf();
    assert_eq!(c.timeout_for(true, true), Some(Duration::from_secs(50)), "the shorter of the two");
}

#[test]
fn the_demand_is_published_as_the_operator_reads_it() {
    let demand = AllocationDemand {
        target: 4,
        min_executors: 1,
        max_executors: None,
        pending_tasks: 12,
        running_tasks: 4,
        executors: vec![ExecutorDemand { id: "1".into(), running_tasks: 1, idle_ms: 0 }],
        decommissioned: vec!["2".into()],
    };
    assert_eq!(
        serde_json::to_value(&demand).unwrap(),
        serde_json::json!({"target": 4, "minExecutors": 1, "maxExecutors": null, "pendingTasks": 12,
            "runningTasks": 4, "executors": [{"id": "1", "runningTasks": 1, "idleMs": 0}],
            "decommissioned": ["2"]})
    );
}
