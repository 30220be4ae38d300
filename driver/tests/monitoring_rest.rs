//! The driver's web UI and REST API on a real job: Spark's field names, task
//! quantiles against the task list, pages, metrics, port choice.

mod support {
    pub mod http;
}

use ember::prelude::*;
use serde_json::Value;
use std::time::Duration;
use support::http::{fetch, get, get_json};

fn context(extra: &[(&str, &str)]) -> EmberContext {
    let mut conf = Conf::new().master("local[2]").app_name("rest-test").set("spark.ui.port", "0");
    for (k, v) in extra {
        conf = conf.set(*k, *v);
    }
    EmberContext::new(conf).expect("context")
}

/// Runs a two-stage job: 6 map tasks, 3 reduce tasks.
fn two_stage_job(sc: &EmberContext) -> Vec<(u64, u64)> {
    let mut out = sc
        .range(0, 6000, 1, 6)
        .expect("range")
        .map(Fn!(|x: i64| ((x % 30) as u64, 1u64)))
        .reduce_by_key_with(Fn!(|a: u64, b: u64| a + b), 3)
        .collect()
        .expect("job");
    out.sort();
    out
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    k.sort();
    k
}

fn has_all(v: &Value, names: &[&str]) {
    for n in names {
        assert!(v.get(*n).is_some(), "missing Spark field {n:?} in {}", serde_json::to_string_pretty(v).unwrap());
    }
}

#[test]
fn rest_api_uses_sparks_field_names_and_quantiles_match_the_task_list() {
    let sc = context(&[("spark.authenticate.secret", "hunter2")]);
    let result = two_stage_job(&sc);
    assert_eq!(result.len(), 30);
    assert!(sc.listener_bus().flush(Duration::from_secs(10)), "listeners caught up");
    let ui = sc.ui_address().expect("UI on");
    let app = sc.app_id().to_string();

    let apps = get_json(ui, "/api/v1/applications");
    assert_eq!(apps[0]["id"], app);
    assert_eq!(apps[0]["name"], "rest-test");
    has_all(&apps[0]["attempts"][0], &["startTime", "endTime", "lastUpdated", "duration", "sparkUser", "completed"]);
    assert_eq!(apps[0]["attempts"][0]["completed"], false);

    let jobs = get_json(ui, &format!("/api/v1/applications/{app}/jobs"));
    let job = &jobs[0];
    has_all(
        job,
        &[
            "jobId",
            "name",
            "submissionTime",
            "completionTime",
            "stageIds",
            "status",
            "numTasks",
            "numActiveTasks",
            "numCompletedTasks",
            "numSkippedTasks",
            "numFailedTasks",
            "numKilledTasks",
            "numCompletedIndices",
            "numActiveStages",
            "numCompletedStages",
            "numSkippedStages",
            "numFailedStages",
        ],
    );
    assert_eq!(job["status"], "SUCCEEDED");
    assert_eq!(job["numTasks"], 9);
    assert_eq!(job["numCompletedTasks"], 9);
    assert_eq!(job["numCompletedStages"], 2);
    assert_eq!(job["numActiveTasks"], 0);
    let job_id = job["jobId"].as_u64().expect("id");
    assert_eq!(get_json(ui, &format!("/api/v1/applications/{app}/jobs/{job_id}"))["jobId"], job_id);

    let stages = get_json(ui, &format!("/api/v1/applications/{app}/stages"));
    let stages = stages.as_array().expect("list");
    assert_eq!(stages.len(), 2);
    for st in stages {
        has_all(
            st,
            &[
                "status",
                "stageId",
                "attemptId",
                "numTasks",
                "numActiveTasks",
                "numCompleteTasks",
                "numFailedTasks",
                "numKilledTasks",
                "numCompletedIndices",
                "submissionTime",
                "completionTime",
                "executorRunTime",
                "shuffleReadBytes",
                "shuffleReadRecords",
                "shuffleWriteBytes",
                "shuffleWriteRecords",
                "diskBytesSpilled",
                "name",
            ],
        );
        assert_eq!(st["status"], "COMPLETE");
    }
    let map = stages.iter().find(|s| s["numTasks"] == 6).expect("map stage");
    let reduce = stages.iter().find(|s| s["numTasks"] == 3).expect("reduce stage");
    assert!(map["shuffleWriteBytes"].as_u64().unwrap() > 0);
    // Map-side combine: each of 6 map tasks writes its 30 keys once.
    assert_eq!(map["shuffleWriteRecords"], 180);
    assert_eq!(reduce["shuffleReadRecords"], 180);
    assert_eq!(reduce["shuffleReadBytes"], map["shuffleWriteBytes"]);

    let (sid, att) = (map["stageId"].as_u64().unwrap(), map["attemptId"].as_u64().unwrap());
    let base = format!("/api/v1/applications/{app}/stages/{sid}/{att}");
    let tasks = get_json(ui, &format!("{base}/taskList?length=100"));
    let tasks = tasks.as_array().expect("tasks");
    assert_eq!(tasks.len(), 6);
    for t in tasks {
        has_all(
            t,
            &[
                "taskId",
                "index",
                "attempt",
                "partitionId",
                "launchTime",
                "duration",
                "executorId",
                "host",
                "status",
                "taskLocality",
                "speculative",
                "taskMetrics",
                "schedulerDelay",
            ],
        );
        assert_eq!(t["status"], "SUCCESS");
        assert_eq!(t["speculative"], false);
        assert_eq!(t["executorId"], "driver");
        has_all(
            &t["taskMetrics"],
            &["executorRunTime", "diskBytesSpilled", "shuffleWriteMetrics", "shuffleReadMetrics"],
        );
        assert_eq!(t["taskMetrics"]["shuffleWriteMetrics"]["recordsWritten"], 30);
    }
    let page = get_json(ui, &format!("{base}/taskList?offset=2&length=3"));
    assert_eq!(page.as_array().unwrap().len(), 3);
    assert_eq!(page[0]["taskId"], tasks[2]["taskId"]);

    // Spark's quantile method: sorted values, index min(floor(q*n), n-1).
    let qs = [0.0, 0.25, 0.5, 0.75, 1.0];
    let summary = get_json(ui, &format!("{base}/taskSummary?quantiles=0,0.25,0.5,0.75,1"));
    assert_eq!(keys(&summary["shuffleWriteMetrics"]), vec!["writeBytes", "writeRecords"]);
    let expect = |f: &dyn Fn(&Value) -> f64| {
        let mut v: Vec<f64> = tasks.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        qs.iter().map(|q| v[((q * v.len() as f64) as usize).min(v.len() - 1)]).collect::<Vec<f64>>()
    };
    let got = |v: &Value| v.as_array().expect("array").iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>();
    assert_eq!(got(&summary["quantiles"]), qs.to_vec());
    assert_eq!(got(&summary["duration"]), expect(&|t| t["duration"].as_f64().unwrap()));
    assert_eq!(got(&summary["schedulerDelay"]), expect(&|t| t["schedulerDelay"].as_f64().unwrap()));
    assert_eq!(got(&summary["executorRunTime"]), expect(&|t| t["taskMetrics"]["executorRunTime"].as_f64().unwrap()));
    assert_eq!(
        got(&summary["shuffleWriteMetrics"]["writeBytes"]),
        expect(&|t| t["taskMetrics"]["shuffleWriteMetrics"]["bytesWritten"].as_f64().unwrap())
    );
    let default_qs = get_json(ui, &format!("{base}/taskSummary"));
    assert_eq!(got(&default_qs["quantiles"]), vec![0.05, 0.25, 0.5, 0.75, 0.95]);
    assert_eq!(get(ui, &format!("{base}/taskSummary?quantiles=2")).unwrap().0, 400);
    assert_eq!(get(ui, &format!("/api/v1/applications/{app}/stages/999/0")).unwrap().0, 404);

    let execs = get_json(ui, &format!("/api/v1/applications/{app}/executors"));
    let driver = &execs[0];
    has_all(
        driver,
        &[
            "id",
            "hostPort",
            "isActive",
            "totalCores",
            "maxTasks",
            "activeTasks",
            "failedTasks",
            "completedTasks",
            "totalTasks",
            "totalDuration",
            "totalShuffleRead",
            "totalShuffleWrite",
            "addTime",
        ],
    );
    assert_eq!(driver["id"], "driver");
    assert_eq!(driver["totalCores"], 2);
    assert_eq!(driver["completedTasks"], 9);
    assert_eq!(driver["totalShuffleWrite"], map["shuffleWriteBytes"]);

    let env = get_json(ui, &format!("/api/v1/applications/{app}/environment"));
    let props = env["sparkProperties"].as_array().expect("pairs");
    let prop = |k: &str| props.iter().find(|p| p[0] == k).map(|p| p[1].as_str().unwrap().to_string());
    assert_eq!(prop("spark.ui.port").as_deref(), Some("0"));
    assert_eq!(prop("spark.authenticate.secret").as_deref(), Some("*********(redacted)"));
    assert!(!serde_json::to_string(&env).unwrap().contains("hunter2"));

    // The pages render the same state.
    let (status, jobs_page) = get(ui, "/jobs/").unwrap();
    assert_eq!(status, 200);
    assert!(jobs_page.contains("Completed Jobs (1)"), "{jobs_page}");
    let (_, stage_page) = get(ui, &format!("/stages/stage/?id={sid}&attempt={att}")).unwrap();
    assert!(stage_page.contains("Summary Metrics for 6 Completed Tasks"), "{stage_page}");
    assert!(stage_page.contains("75th percentile"));
    let (_, env_page) = get(ui, "/environment/").unwrap();
    assert!(env_page.contains("*********(redacted)") && !env_page.contains("hunter2"));
    let (_, job_page) = get(ui, &format!("/jobs/job/?id={job_id}")).unwrap();
    assert!(job_page.contains("<svg") && job_page.contains(&format!("Stage {sid}")), "{job_page}");
    assert_eq!(get(ui, "/").unwrap().0, 302);

    let (status, metrics) = get(ui, "/metrics").unwrap();
    assert_eq!(status, 200);
    for line in [
        "ember_tasks_total{outcome=\"success\"} 9",
        "ember_jobs_total{outcome=\"succeeded\"} 1",
        "ember_stages_total{outcome=\"completed\"} 2",
        "ember_shuffle_write_records_total 180",
        "ember_shuffle_read_records_total 180",
        "ember_executors_alive 1",
        "ember_task_duration_seconds_count 9",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
    sc.stop();
}

#[test]
fn behind_a_reverse_proxy_every_link_and_redirect_carries_the_proxy_base() {
    let sc = context(&[("spark.ui.proxyBase", "/spark/ns/app-1/")]);
    assert_eq!(two_stage_job(&sc).len(), 30);
    assert!(sc.listener_bus().flush(Duration::from_secs(10)), "listeners caught up");
    let ui = sc.ui_address().expect("UI on");
    // The proxy strips the base: the UI still answers at `/`, and sends the browser
    // back through the proxy.
    let (status, head, _) = fetch(ui, "/").expect("GET /");
    assert_eq!(status, 302, "{head}");
    assert!(head.to_ascii_lowercase().contains("location: /spark/ns/app-1/jobs/"), "{head}");
    // Job and stage ids are unique in the process, not per context.
    let jobs = get_json(ui, &format!("/api/v1/applications/{}/jobs", sc.app_id()));
    let (job, stage) = (&jobs[0]["jobId"], &jobs[0]["stageIds"][0]);
    let (job_page, stage_page) = (format!("/jobs/job/?id={job}"), format!("/stages/stage/?id={stage}&attempt=0"));
    let pages = ["/jobs/", &job_page, "/stages/", &stage_page, "/storage/", "/executors/", "/environment/"];
    for page in pages {
        let (status, body) = get(ui, page).expect("GET");
        assert_eq!(status, 200, "{page}: {body}");
        let paths: Vec<&str> = body
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| href.starts_with('/'))
            .collect();
        assert!(paths.contains(&"/spark/ns/app-1/jobs/"), "{page} links to the Jobs tab through the proxy: {paths:?}");
        for href in paths {
            assert!(href.starts_with("/spark/ns/app-1/"), "{page} links to {href}, outside the proxy base");
        }
    }
    sc.stop();

    let bad = Conf::new().master("local[1]").set("spark.ui.port", "0").set("spark.ui.proxyBase", "spark/app");
    let err = EmberContext::new(bad).err().expect("a relative proxy base is refused");
    assert!(err.to_string().contains("spark.ui.proxyBase"), "{err}");
}

#[test]
fn a_taken_port_moves_the_ui_to_the_next_and_the_ui_can_be_turned_off() {
    // Two consecutive free ports: hold the first, expect the UI on the second.
    let (held, port) = loop {
        let l = std::net::TcpListener::bind(("0.0.0.0", 0)).expect("bind");
        let p = l.local_addr().unwrap().port();
        if p < u16::MAX && std::net::TcpListener::bind(("0.0.0.0", p + 1)).is_ok() {
            break (l, p);
        }
    };
    let sc = context(&[("spark.ui.port", &port.to_string())]);
    let bound = sc.ui_address().expect("UI on").port();
    assert!(bound > port && bound <= port + 16, "UI on {bound}, {port} taken");
    assert_eq!(get(sc.ui_address().unwrap(), "/api/v1/applications").unwrap().0, 200);
    drop(held);
    sc.stop();

    let off = context(&[("spark.ui.enabled", "false")]);
    assert_eq!(off.ui_url(), None);
    assert_eq!(two_stage_job(&off).len(), 30);
}

#[test]
fn storage_shows_cached_rdds_and_where_their_partitions_are_with_sparks_field_names() {
    let sc = context(&[]);
    let memory = sc.range(0, 4000, 1, 4).expect("range").map(Fn!(|x: i64| x * 2)).persist(StorageLevel::MemoryOnly);
    assert_eq!(memory.count().expect("count"), 4000);
    let disk = sc.range(0, 1000, 1, 2).expect("range").map(Fn!(|x: i64| x + 1)).persist(StorageLevel::DiskOnly);
    assert_eq!(disk.count().expect("count"), 1000);
    let not_cached = sc.range(0, 10, 1, 2).expect("range");
    assert_eq!(not_cached.count().expect("count"), 10);
    assert!(sc.listener_bus().flush(Duration::from_secs(10)), "listeners caught up");
    let ui = sc.ui_address().expect("UI on");
    let base = format!("/api/v1/applications/{}/storage/rdd", sc.app_id());

    let list = get_json(ui, &base);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 2, "the two cached RDDs: {list:?}");
    let by_id = |id: u64| list.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("rdd {id} in {list:?}"));
    let m = by_id(memory.id());
    assert_eq!(
        keys(m),
        ["diskUsed", "id", "memoryUsed", "name", "numCachedPartitions", "numPartitions", "storageLevel"],
        "the list leaves dataDistribution and partitions out, as Spark's does"
    );
    assert_eq!(m["name"], "map");
    assert_eq!(m["numPartitions"], 4);
    assert_eq!(m["numCachedPartitions"], 4);
    assert_eq!(m["storageLevel"], "Memory Deserialized 1x Replicated");
    assert!(m["memoryUsed"].as_u64().expect("memoryUsed") > 0);
    assert_eq!(m["diskUsed"], 0);
    let d = by_id(disk.id());
    assert_eq!(d["storageLevel"], "Disk Serialized 1x Replicated");
    assert_eq!((d["numPartitions"].as_u64(), d["numCachedPartitions"].as_u64()), (Some(2), Some(2)));
    assert_eq!(d["memoryUsed"], 0);
    assert!(d["diskUsed"].as_u64().expect("diskUsed") > 0);

    let one = get_json(ui, &format!("{base}/{}", memory.id()));
    has_all(&one, &["id", "name", "numPartitions", "numCachedPartitions", "storageLevel", "memoryUsed", "diskUsed"]);
    let distribution = one["dataDistribution"].as_array().expect("dataDistribution");
    assert_eq!(distribution.len(), 1, "local mode: one executor");
    has_all(&distribution[0], &["address", "memoryUsed", "diskUsed"]);
    assert_eq!(distribution[0]["memoryUsed"], m["memoryUsed"]);
    let partitions = one["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 4);
    for (i, p) in partitions.iter().enumerate() {
        has_all(p, &["blockName", "storageLevel", "memoryUsed", "diskUsed", "executors"]);
        assert_eq!(p["blockName"], format!("rdd_{}_{i}", memory.id()));
        assert_eq!(p["storageLevel"], "Memory Deserialized 1x Replicated");
        assert_eq!(p["executors"], serde_json::json!(["driver"]));
    }
    let total: u64 = partitions.iter().map(|p| p["memoryUsed"].as_u64().unwrap()).sum();
    assert_eq!(Some(total), m["memoryUsed"].as_u64());
    let (status, _) = get(ui, &format!("{base}/{}", not_cached.id())).expect("get");
    assert_eq!(status, 404, "an RDD that is not cached");

    let (status, page) = get(ui, "/storage/").expect("storage page");
    assert_eq!(status, 200);
    assert!(page.contains("Memory Deserialized 1x Replicated") && page.contains("Disk Serialized 1x Replicated"));
    assert!(page.contains(&format!("/storage/rdd/?id={}", memory.id())), "{page}");
    let (status, page) = get(ui, &format!("/storage/rdd/?id={}", memory.id())).expect("rdd page");
    assert_eq!(status, 200);
    assert!(page.contains(&format!("rdd_{}_3", memory.id())) && page.contains("Data Distribution on 1 Executors"));

    memory.unpersist();
    assert!(sc.listener_bus().flush(Duration::from_secs(10)), "listeners caught up");
    let list = get_json(ui, &base);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "unpersisted: {list}");
    assert_eq!(list[0]["id"], disk.id());
}
