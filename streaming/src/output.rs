//! Output operations: what turns each batch into jobs (Spark's `foreachRDD`,
//! `print`, `saveAsTextFiles`). Output functions run on the driver, once per
//! batch, with the batch's RDD; only the RDD operations they call run on
//! executors.

use crate::dstream::{DStream, DStreamBase, Node};
use crate::graph::BatchJob;
use crate::time::Time;
use ember::Rdd;
use ember_core::data::Data;
use ember_core::error::{EmberError, Result};
use ember_core::format::SparkString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An output operation of the graph.
pub(crate) trait OutputOp: Send + Sync {
    fn root(&self) -> Arc<dyn DStreamBase>;
    /// The job of batch `time`, when the stream has an RDD then.
    fn generate(&self, time: Time) -> Result<Option<BatchJob>>;
}

type BatchFn<T> = Arc<dyn Fn(Rdd<T>, Time) -> Result<()> + Send + Sync>;

struct ForEachRdd<T: Data> {
    parent: Arc<Node<T>>,
    f: BatchFn<T>,
}

impl<T: Data> OutputOp for ForEachRdd<T> {
    fn root(&self) -> Arc<dyn DStreamBase> {
        self.parent.clone()
    }
    fn generate(&self, time: Time) -> Result<Option<BatchJob>> {
        let Some(rdd) = self.parent.get_or_compute(time)? else { return Ok(None) };
        let f = self.f.clone();
        Ok(Some(Box::new(move || f(rdd, time))))
    }
}

/// The text `print` writes for one batch: Spark's exact layout.
pub fn print_block<T: SparkString>(time: Time, first: &[T], num: usize) -> String {
    let mut out = String::new();
    out.push_str("-------------------------------------------\n");
    out.push_str(&format!("Time: {time}\n"));
    out.push_str("-------------------------------------------\n");
    for x in first.iter().take(num) {
        out.push_str(&x.spark_string());
        out.push('\n');
    }
    if first.len() > num {
        out.push_str("...\n");
    }
    out.push('\n');
    out
}

/// `prefix-<time ms>[.suffix]`, Spark's name for a batch's output.
pub fn batch_output_path(prefix: &str, suffix: &str, time: Time) -> String {
    if suffix.is_empty() { format!("{prefix}-{}", time.0) } else { format!("{prefix}-{}.{suffix}", time.0) }
}

/// Writes a batch's RDD as text into `dir` exactly once: into a hidden
/// temporary directory renamed into place when complete. When `dir` exists the
/// batch was written before (a batch run again after recovery) and nothing is
/// written.
fn save_batch<T: Data + SparkString>(rdd: &Rdd<T>, dir: &Path) -> Result<()> {
    if dir.exists() {
        tracing::info!(dir = %dir.display(), "batch output exists already (batch run again): not written twice");
        return Ok(());
    }
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| EmberError::io(parent.display(), e))?;
    let tmp = parent.join(format!(".{name}._temporary"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| EmberError::io(tmp.display(), e))?;
    }
    rdd.map_partitions_op(crate::ops::ToSparkStringOp).save_as_text_file(&tmp.display().to_string())?;
    std::fs::rename(&tmp, dir).map_err(|e| EmberError::io(dir.display(), e))
}

fn absolute(prefix: &str) -> Result<String> {
    let path = PathBuf::from(prefix);
    if path.is_absolute() {
        return Ok(prefix.to_string());
    }
    let cwd = std::env::current_dir().map_err(|e| EmberError::io(".", e))?;
    Ok(cwd.join(path).display().to_string())
}

impl<T: Data> DStream<T> {
    fn register_output(&self, op: Arc<dyn OutputOp>) {
        let ssc = self.context();
        if ssc.state() != crate::StreamingState::Initialized {
            ssc.inner
                .graph
                .record_error("output operations cannot be added after the streaming context started".into());
            return;
        }
        ssc.inner.graph.add_output(op);
    }

    /// Runs `f` on the driver with each batch's RDD and time (Spark's
    /// `foreachRDD`). An error fails the batch and stops the context
    /// (`await_termination` returns it).
    pub fn foreach_rdd(&self, f: impl Fn(Rdd<T>, Time) -> Result<()> + Send + Sync + 'static) {
        self.register_output(Arc::new(ForEachRdd { parent: self.node.clone(), f: Arc::new(f) }));
    }

    /// Prints the first `num` records of each batch to stdout in Spark's
    /// layout: a dashed line, `Time: <ms> ms`, a dashed line, the records, `...`
    /// when there are more, and an empty line.
    pub fn print(&self, num: usize)
    where
        T: SparkString,
    {
        self.foreach_rdd(move |rdd, time| {
            let first = rdd.take(num + 1)?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(print_block(time, &first, num).as_bytes());
            let _ = out.flush();
            Ok(())
        });
    }

    /// `print(10)` (PySpark's `pprint`).
    pub fn pprint(&self)
    where
        T: SparkString,
    {
        self.print(10);
    }

    /// Saves each batch as a directory of text part files named
    /// `prefix-<time ms>.suffix` (`prefix-<time ms>` with an empty suffix),
    /// one line per record as [`SparkString`] shows it. Each directory appears
    /// complete or not at all, and once even when a batch is run again after
    /// recovery. A relative prefix is taken from the driver's working directory.
    pub fn save_as_text_files(&self, prefix: &str, suffix: &str)
    where
        T: SparkString,
    {
        let prefix = match absolute(prefix) {
            Ok(p) => p,
            Err(e) => {
                self.context().inner.graph.record_error(format!("save_as_text_files({prefix:?}): {e}"));
                return;
            }
        };
        let suffix = suffix.to_string();
        self.foreach_rdd(move |rdd, time| save_batch(&rdd, Path::new(&batch_output_path(&prefix, &suffix, time))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_uses_sparks_layout() {
        let recs = vec![("buen".to_string(), 2u64), ("día".to_string(), 2)];
        assert_eq!(
            print_block(Time(1357008430000), &recs, 10),
            "-------------------------------------------\nTime: 1357008430000 ms\n-------------------------------------------\n(buen,2)\n(día,2)\n\n"
        );
        assert_eq!(
            print_block(Time(5), &[1u8, 2, 3], 2),
            "-------------------------------------------\nTime: 5 ms\n-------------------------------------------\n1\n2\n...\n\n"
        );
    }

    #[test]
    fn batch_outputs_are_named_as_in_spark() {
        assert_eq!(batch_output_path("/o/counts", "txt", Time(2000)), "/o/counts-2000.txt");
        assert_eq!(batch_output_path("/o/counts", "", Time(2000)), "/o/counts-2000");
    }
}
