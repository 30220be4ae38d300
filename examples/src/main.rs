//! `ember-examples`: the seed jobs, benchmarks and generators. Every subcommand
//! takes spark-submit's options (`--master`, `--conf key=value`, `--name`,
//! `--properties-file`, `--executor-memory`, … : `ember::launcher::SubmitArgs`)
//! and prints one JSON object as its last line of output.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ember_examples::jobs::{
    broadcast, caching, diagnostics, gen_text, join, pi, robustness, security, shuffle_bench, stream_model, streaming,
    sumsq, tasklist, terasort, wordcount,
};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(name = "ember-examples", version, about = "Ember's example jobs")]
struct Cli {
    #[command(flatten)]
    submit: ember::launcher::SubmitArgs,
    #[command(subcommand)]
    job: Job,
}

#[derive(Subcommand, Debug)]
enum Job {
    /// The first seed job: count and exact sum of f(x) = Σ_{i<50} (x+i)² over 0..n.
    Sumsq {
        #[arg(long, default_value_t = 10_000_000)]
        n: u64,
        #[arg(long, default_value_t = 50)]
        partitions: usize,
    },
    /// The same sum with a hand-written multi-threaded loop (the benchmark baseline).
    SumsqBaseline {
        #[arg(long, default_value_t = 10_000_000)]
        n: u64,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// The second seed pattern: task parameters generated on the driver, mapped, collected, aggregated.
    Tasklist {
        /// Samples per time window.
        #[arg(long, default_value_t = 50)]
        samples: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 8)]
        partitions: usize,
    },
    /// Counts words of a text file (or directory, or glob).
    Wordcount {
        #[arg(long)]
        input: String,
        /// Writes `word<TAB>count` part files here.
        #[arg(long)]
        output: Option<String>,
        /// Compresses the part files (gzip, bzip2, zstd or lz4).
        #[arg(long, requires = "output")]
        codec: Option<ember::Codec>,
        /// Minimum number of input partitions.
        #[arg(long, default_value_t = 2)]
        partitions: usize,
    },
    /// Estimates π by Monte Carlo sampling.
    Pi {
        #[arg(long, default_value_t = 10_000_000)]
        samples: u64,
        #[arg(long, default_value_t = 8)]
        partitions: usize,
    },
    /// Joins a large and a small generated pair dataset; prints the row count and a checksum.
    Join {
        #[arg(long, default_value_t = 1_000_000)]
        large: u64,
        #[arg(long, default_value_t = 10_000)]
        small: u64,
        /// Distinct keys on the large side.
        #[arg(long, default_value_t = 20_000)]
        keys: u64,
        #[arg(long, default_value_t = 8)]
        partitions: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Run every stage once, then wait for this file before the final job (for fault tests).
        #[arg(long)]
        pause_file: Option<String>,
        /// Milliseconds each task of the large side's map stage sleeps first (a slow
        /// wide stage, for dynamic allocation tests).
        #[arg(long, default_value_t = 0)]
        task_ms: u64,
    },
    /// Writes 100-byte TeraSort records (10-byte keys, 90-byte values).
    Teragen {
        #[arg(long)]
        records: u64,
        #[arg(long)]
        output: String,
        #[arg(long, default_value_t = 8)]
        partitions: usize,
    },
    /// Sorts TeraSort records globally by key.
    Terasort {
        #[arg(long)]
        input: String,
        #[arg(long)]
        output: String,
        /// Output partitions (default: as many as input splits).
        #[arg(long, default_value_t = 0)]
        partitions: usize,
    },
    /// Checks that TeraSort output is globally sorted; prints its record count and checksum.
    Teravalidate {
        #[arg(long)]
        input: String,
    },
    /// `depth` chained maps and a chain of `unions` unions, counted on the
    /// executors: lineage as deep as iterative jobs build.
    DeepLineage {
        #[arg(long, default_value_t = 20_000)]
        depth: usize,
        #[arg(long, default_value_t = 2_000)]
        unions: usize,
    },
    /// A job whose task on one partition takes its executor process down every
    /// time (abort, segfault, stack overflow or exit), to see the job fail
    /// after `spark.task.maxFailures` executor losses.
    ExecutorKiller {
        #[arg(long, value_enum, default_value_t = robustness::Crash::Abort)]
        crash: robustness::Crash,
        #[arg(long, default_value_t = 1)]
        partition: usize,
    },
    /// A broadcast lookup table read by a reduceByKey's map side; pauses after the
    /// first count with its shuffle blocks and broadcast pieces served.
    LookupTable {
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        #[arg(long, default_value_t = 100_000)]
        table: u64,
        #[arg(long)]
        pause_file: String,
    },
    /// Calls a running application as an executor would (register, map outputs,
    /// shuffle block, broadcast piece), signing with EMBER_AUTH_SECRET if set.
    AuthProbe {
        /// The driver's host:port.
        #[arg(long)]
        driver: String,
        /// A block server's host:port (default: where map output 0 is, asked of the driver).
        #[arg(long)]
        block_server: Option<String>,
        #[arg(long, default_value_t = 0)]
        shuffle: u32,
        #[arg(long, default_value_t = 0)]
        broadcast: u64,
    },
    /// A job whose tasks on one partition always panic (to see retries and the job's error).
    Faulty {
        #[arg(long, default_value_t = 4)]
        partitions: usize,
        #[arg(long, default_value_t = 1)]
        fail_partition: usize,
    },
    /// Caches an RDD of `records` numbers in `partitions` partitions (memory, or with
    /// --disk on disk), counts it twice (the second count reads the cache), and
    /// optionally waits for a file with it still cached (to look at the Storage page).
    CacheCheck {
        #[arg(long, default_value_t = 4)]
        partitions: usize,
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        #[arg(long)]
        disk: bool,
        #[arg(long)]
        pause_file: Option<String>,
    },
    /// A cached RDD with a non-deterministic map read by several actions;
    /// prints how many times its partitions were computed and each action's checksum.
    CacheReuse {
        #[arg(long, default_value_t = 8)]
        partitions: usize,
        #[arg(long, default_value_t = 20_000)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        actions: usize,
        /// memory, memory-ser, memory-and-disk or disk.
        #[arg(long, default_value = "memory")]
        level: String,
        /// In the second action, fail the first attempt of this partition.
        #[arg(long)]
        fail_first_attempt_of: Option<usize>,
        /// Wait for this file before the last action.
        #[arg(long)]
        pause_file: Option<String>,
    },
    /// Measures start-up until all executors registered, and per-task scheduling overhead.
    SchedulerBench {
        #[arg(long, default_value_t = 10_000)]
        tasks: usize,
    },
    /// Tasks that take `delay-ms` longer on one executor (a slow node); shows speculation.
    Straggler {
        #[arg(long, default_value_t = 24)]
        tasks: usize,
        /// Records per task.
        #[arg(long, default_value_t = 1000)]
        records: u64,
        /// Every task's own work (a wait), in ms.
        #[arg(long, default_value_t = 200)]
        base_ms: u64,
        /// Id of the slow executor ("1".."N" on local-cluster); none when absent.
        #[arg(long)]
        slow_executor: Option<String>,
        #[arg(long, default_value_t = 3000)]
        delay_ms: u64,
        /// Save the records as text part files here instead of summing them.
        #[arg(long)]
        output: Option<String>,
    },
    /// Broadcasts SIZE MB of pseudo-random bytes and runs tasks that each read it and
    /// return its checksum; reports the time until every executor has it and the
    /// bytes uploaded by the driver and by executors.
    Broadcast {
        #[arg(long, default_value_t = 16.0)]
        mb: f64,
        #[arg(long, default_value_t = 16)]
        tasks: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Ship the bytes with addFile instead of as a broadcast variable.
        #[arg(long)]
        via_file: bool,
        /// Let one task read the value first, then wait for this file (for fault tests).
        #[arg(long)]
        pause_file: Option<String>,
        /// Afterwards: unpersist and read again, or destroy and read again.
        #[arg(long, value_enum, default_value = "nothing")]
        after: broadcast::After,
    },
    /// Shuffle benchmark: reduceByKey of PAIRS pairs (i mod KEYS, i); prints checksums,
    /// the time and the shuffle bytes written and read.
    ReduceByKey {
        #[arg(long, default_value_t = 20_000_000)]
        pairs: u64,
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        #[arg(long, default_value_t = 8)]
        partitions: usize,
    },
    /// groupByKey with one hot key of VALUES values of VALUE_BYTES bytes (more than an
    /// executor's memory); prints the group's count and checksum, whether it spilled,
    /// and the peak RSS of the executor that grouped it.
    GroupSkew {
        #[arg(long, default_value_t = 2_000_000)]
        values: u64,
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
        #[arg(long, default_value_t = 1000)]
        other_keys: u64,
        #[arg(long, default_value_t = 16)]
        partitions: usize,
    },
    /// reduceByKey, groupByKey, sortByKey, join, cogroup and distinct over the same
    /// generated data, each reduced to a count and an order-independent digest.
    ShuffleCheck {
        #[arg(long, default_value_t = 200_000)]
        n: u64,
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        #[arg(long, default_value_t = 6)]
        partitions: usize,
    },
    /// The seed's streaming word count: lines from a TCP server, each batch's word
    /// counts printed (`print`).
    NetworkWordcount {
        #[arg(long, default_value = "localhost")]
        host: String,
        #[arg(long, default_value_t = 7777)]
        port: u16,
        /// Batch interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        /// Stop gracefully after this many batches (default: run until stopped).
        #[arg(long)]
        batches: Option<usize>,
    },
    /// Running word totals across batches of lines from a TCP server
    /// (`update_state_by_key`), printed each batch; resumes from its checkpoint.
    StatefulWordcount {
        #[arg(long, default_value = "localhost")]
        host: String,
        #[arg(long, default_value_t = 7777)]
        port: u16,
        #[arg(long)]
        checkpoint: String,
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        /// Also save the totals each batch as `word<TAB>count` lines in OUTPUT-<time ms>/.
        #[arg(long)]
        output: Option<String>,
        #[arg(long)]
        batches: Option<usize>,
        /// Benchmark report: a `BATCH` line per batch once its totals are computed
        /// (time, lines, wall clock, checksum) and a `STAT` line per completed batch
        /// (scheduling and processing delays); see docs/bench/stream_latency.py.
        #[arg(long)]
        report: bool,
    },
    /// Running word totals of the files that appear in DIR, saved each batch as
    /// `word<TAB>count` lines in OUTPUT-<time ms>/; resumes from its checkpoint.
    FileWordcount {
        #[arg(long)]
        dir: String,
        #[arg(long)]
        checkpoint: String,
        #[arg(long)]
        output: String,
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        /// How often the running totals are checkpointed (default: Spark's, ≥ 10 s).
        #[arg(long)]
        checkpoint_interval_ms: Option<u64>,
        #[arg(long)]
        batches: Option<usize>,
    },
    /// The seed's online trainer: refines a linear regression with every batch of
    /// `y,x1,x2,…` lines appearing in DIR and saves it to MODEL/model.json.
    StreamTrain {
        #[arg(long)]
        dir: String,
        #[arg(long)]
        model: String,
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        /// Gradient descent step size.
        #[arg(long, default_value_t = 0.8)]
        step: f64,
        /// Gradient steps per batch.
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        #[arg(long)]
        batches: Option<usize>,
    },
    /// The seed's predictor: predicts y for every `x1,x2,…` line appearing in DIR
    /// with the newest model in MODEL at each batch.
    StreamPredict {
        #[arg(long)]
        model: String,
        #[arg(long)]
        dir: String,
        /// Save `x…,y,model version` lines in OUTPUT-<time ms>/.
        #[arg(long)]
        output: Option<String>,
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        #[arg(long)]
        batches: Option<usize>,
    },
    /// Writes a deterministic Zipf-like word corpus of exactly `bytes` bytes.
    GenText {
        #[arg(long)]
        bytes: u64,
        #[arg(long)]
        output: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn run(cli: Cli) -> anyhow::Result<Value> {
    let conf = || -> anyhow::Result<ember::Conf> {
        let mut conf = cli.submit.to_conf()?;
        if !conf.contains("spark.app.name") {
            conf.insert("spark.app.name", "ember-examples");
        }
        Ok(conf)
    };
    let ctx = || ember::EmberContext::new(conf()?).context("cannot start the context");
    Ok(match cli.job {
        Job::Sumsq { n, partitions } => sumsq::run(&ctx()?, n, partitions)?,
        Job::SumsqBaseline { n, threads } => sumsq::baseline(n, threads),
        Job::Tasklist { samples, seed, partitions } => tasklist::run(&ctx()?, samples, seed, partitions)?,
        Job::Wordcount { input, output, codec, partitions } => {
            wordcount::run(&ctx()?, &input, output.as_deref().map(|o| (o, codec)), partitions)?
        }
        Job::Pi { samples, partitions } => pi::run(&ctx()?, samples, partitions)?,
        Job::Join { large, small, keys, partitions, seed, pause_file, task_ms } => {
            join::run(&ctx()?, &join::JoinParams { large, small, keys, partitions, seed, pause_file, task_ms })?
        }
        Job::DeepLineage { depth, unions } => robustness::deep_lineage(&ctx()?, depth, unions)?,
        Job::ExecutorKiller { crash, partition } => robustness::executor_killer(&ctx()?, crash, partition)?,
        Job::LookupTable { records, table, pause_file } => {
            security::lookup_table(&ctx()?, records, table, &pause_file)?
        }
        Job::AuthProbe { driver, block_server, shuffle, broadcast } => {
            security::auth_probe(&driver, block_server.as_deref(), shuffle, broadcast)?
        }
        Job::Faulty { partitions, fail_partition } => diagnostics::faulty(&ctx()?, partitions, fail_partition)?,
        Job::CacheCheck { partitions, records, disk, pause_file } => {
            diagnostics::cache_check(&ctx()?, partitions, records, disk, pause_file.as_deref())?
        }
        Job::CacheReuse { partitions, records, actions, level, fail_first_attempt_of, pause_file } => {
            let level = match level.as_str() {
                "memory" => ember::prelude::StorageLevel::MemoryOnly,
                "memory-ser" => ember::prelude::StorageLevel::MemoryOnlySer,
                "memory-and-disk" => ember::prelude::StorageLevel::MemoryAndDisk,
                "disk" => ember::prelude::StorageLevel::DiskOnly,
                other => anyhow::bail!("--level {other}: expected memory, memory-ser, memory-and-disk or disk"),
            };
            caching::cache_reuse(
                &ctx()?,
                &caching::CacheReuseParams { partitions, records, actions, level, fail_first_attempt_of, pause_file },
            )?
        }
        Job::SchedulerBench { tasks } => diagnostics::scheduler_bench(conf()?, tasks)?,
        Job::Straggler { tasks, records, base_ms, slow_executor, delay_ms, output } => diagnostics::straggler(
            &ctx()?,
            &diagnostics::StragglerParams { tasks, records, base_ms, slow_executor, delay_ms, output },
        )?,
        Job::Teragen { records, output, partitions } => terasort::teragen(&ctx()?, records, &output, partitions)?,
        Job::Terasort { input, output, partitions } => terasort::terasort(&ctx()?, &input, &output, partitions)?,
        Job::Teravalidate { input } => terasort::teravalidate(&ctx()?, &input)?,
        Job::Broadcast { mb, tasks, seed, via_file, pause_file, after } => {
            broadcast::run(&ctx()?, &broadcast::BroadcastParams { mb, tasks, seed, via_file, pause_file, after })?
        }
        Job::ReduceByKey { pairs, keys, partitions } => shuffle_bench::reduce_by_key(&ctx()?, pairs, keys, partitions)?,
        Job::GroupSkew { values, value_bytes, other_keys, partitions } => {
            shuffle_bench::group_skew(&ctx()?, values, value_bytes, other_keys, partitions)?
        }
        Job::ShuffleCheck { n, keys, partitions } => shuffle_bench::shuffle_check(&ctx()?, n, keys, partitions)?,
        Job::NetworkWordcount { host, port, batch_ms, batches } => {
            streaming::network_wordcount(&ctx()?, &host, port, batch_ms, streaming::StopAfter { batches })?
        }
        Job::StatefulWordcount { host, port, checkpoint, batch_ms, output, batches, report } => {
            streaming::stateful_wordcount(
                &ctx()?,
                &streaming::StatefulWordcount { host, port, checkpoint, batch_ms, output, report },
                streaming::StopAfter { batches },
            )?
        }
        Job::FileWordcount { dir, checkpoint, output, batch_ms, checkpoint_interval_ms, batches } => {
            streaming::file_wordcount(
                &ctx()?,
                &streaming::FileWordcount { dir, checkpoint, output, batch_ms, checkpoint_interval_ms },
                streaming::StopAfter { batches },
            )?
        }
        Job::StreamTrain { dir, model, batch_ms, step, iterations, batches } => stream_model::train(
            &ctx()?,
            &stream_model::TrainParams { dir, model, batch_ms, step, iterations },
            streaming::StopAfter { batches },
        )?,
        Job::StreamPredict { model, dir, output, batch_ms, batches } => {
            stream_model::predict(&ctx()?, &model, &dir, output.as_deref(), batch_ms, streaming::StopAfter { batches })?
        }
        Job::GenText { bytes, output, seed } => {
            gen_text::run(bytes, &output, seed).with_context(|| format!("cannot write {output}"))?
        }
    })
}

fn main() -> std::process::ExitCode {
    ember::entry(|| {
        ember::logging::init();
        let cli = Cli::parse();
        match run(cli) {
            Ok(result) => {
                println!("{result}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
