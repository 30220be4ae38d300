//! A reducer's memory stays bounded whatever its partition holds: a groupByKey
//! whose one key has ten times more data than an executor's memory completes on
//! local-cluster, the group is spilled and read back exactly, and the peak RSS
//! of the executor that grouped it stays under its configured memory plus a
//! stated overhead.

mod support;

use std::process::Command;
use support::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_ember-examples");

/// Executor memory (local-cluster's third field), MB.
const MEMORY_MB: u64 = 32;
/// What an executor process holds besides its budgeted buffers: the binary and
/// runtime (~9 MB), fetched blocks not yet consumed (spark.reducer.maxSizeInFlight,
/// 8 MB here; a block larger than that is held whole, so 64 map tasks keep the
/// hot partition's blocks near 5 MB), one frame per open run, allocator slack.
const OVERHEAD_MB: u64 = 48;

#[test]
fn group_by_key_of_a_key_larger_than_executor_memory_stays_within_memory() {
    let values: u64 = 3_400_000;
    let value_bytes: u64 = 100;
    let mut cmd = Command::new(BIN);
    cmd.arg("--master")
        .arg(format!("local-cluster[2,1,{MEMORY_MB}]"))
        .args(["--conf", "spark.reducer.maxSizeInFlight=8m"])
        .args(["group-skew", "--values", &values.to_string(), "--value-bytes", &value_bytes.to_string()])
        .args(["--other-keys", "1000", "--partitions", "64"])
        .env("EMBER_LOG", "info")
        .env_remove("EMBER_CONF");
    let (result, stderr) = Proc::spawn(cmd).result_and_stderr();
    eprintln!("{result}");

    let expected_checksum = (0..values)
        .map(|i| {
            ember_examples::jobs::shuffle_bench::value_checksum(&ember_examples::jobs::shuffle_bench::hot_value(
                i,
                value_bytes as usize,
            ))
        })
        .fold(0u64, u64::wrapping_add);
    assert_eq!(result["keys"], 1001, "{stderr}");
    assert_eq!(result["hot_values"], values);
    assert_eq!(result["hot_bytes"], values * value_bytes);
    assert_eq!(result["hot_checksum"], expected_checksum);
    assert_eq!(result["hot_spilled"], true, "the hot group must live on disk");
    let group_mb = (values * value_bytes) >> 20;
    assert!(group_mb >= 10 * MEMORY_MB, "the group ({group_mb} MB) is far larger than the executor's memory");

    let rss = result["hot_executor_peak_rss_bytes"].as_u64().expect("rss");
    eprintln!(
        "peak RSS of the grouping executor: {:.1} MB (memory {MEMORY_MB} MB + overhead {OVERHEAD_MB} MB allowed); group {group_mb} MB",
        rss as f64 / (1 << 20) as f64
    );
    assert!(rss > 0, "VmHWM was read");
    assert!(rss < (MEMORY_MB + OVERHEAD_MB) << 20, "peak RSS {rss} B over {MEMORY_MB} MB + {OVERHEAD_MB} MB");
}

/// Every shuffle operation on local-cluster, with executors so small that map
/// outputs, aggregations, sorts and groups spill, equals the sequential reference.
#[test]
fn shuffle_operations_on_local_cluster_equal_the_sequential_reference_while_spilling() {
    let (n, keys) = (200_000u64, 10_000u64);
    let expected = ember_examples::jobs::shuffle_bench::shuffle_check_reference(n, keys);
    for conf in ["spark.memory.fraction=0.6", "spark.memory.fraction=0.005"] {
        let mut cmd = Command::new(BIN);
        cmd.arg("--master")
            .arg("local-cluster[2,1,64]")
            .args(["--conf", conf])
            .args(["shuffle-check", "--n", &n.to_string(), "--keys", &keys.to_string()])
            .env("EMBER_LOG", "warn")
            .env_remove("EMBER_CONF");
        let mut result = Proc::spawn(cmd).result();
        let spills = result.as_object_mut().expect("object").remove("spills").and_then(|s| s.as_u64()).expect("spills");
        assert_eq!(result, expected, "with {conf}");
        if conf.ends_with("0.005") {
            // 64 MB × 0.005 = 335 KB per task: every stage spills.
            assert!(spills >= 10, "{spills} spills");
        }
    }
}
