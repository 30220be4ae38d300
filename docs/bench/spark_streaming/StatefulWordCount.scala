// The seed's stateful word count on Spark Streaming (DStream API), the Spark side of
// Ember's `ember-examples stateful-wordcount --report` (docs/BENCHMARKS.md, "Streaming,
// side by side with Spark Streaming"): socket lines -> words -> (word, 1) ->
// reduceByKey -> updateStateByKey (running totals), checkpointing on; the totals are
// printed with print() each batch, as Ember's job does with pprint().
//
// Benchmark report, the same lines as Ember's (docs/bench/stream_latency.py reads them):
//   BATCH time_ms=<batch time> lines=<lines in the batch> cum_lines=<lines so far>
//         done_ms=<wall clock ms once the batch's totals were computed> words=<total
//         words> checksum=<sum over words w<i> of count * (i + 1)>
//     from foreachRDD on the totals (one pass over the state; every generated line has
//     ten words, so lines so far = words / 10), and
//   STAT time_ms=<batch time> records=<received> sched_ms=<scheduling delay>
//        proc_ms=<processing time> total_ms=<total delay>
//     from a StreamingListener's onBatchCompleted.
//
// Arguments: HOST PORT BATCH_MS CHECKPOINT_DIR BATCHES (stops, not gracefully, after
// BATCHES batches completed). Built and run by docs/bench/spark_streaming.sh.

import java.util.concurrent.atomic.{AtomicLong, AtomicInteger}

import org.apache.spark.SparkConf
import org.apache.spark.streaming.{Milliseconds, StreamingContext, Time}
import org.apache.spark.streaming.scheduler.{StreamingListener, StreamingListenerBatchCompleted}

object StatefulWordCount {
  def main(args: Array[String]): Unit = {
    val Array(host, port, batchMs, checkpoint, batches) = args
    val conf = new SparkConf().setAppName("StatefulWordCount")
    val ssc = new StreamingContext(conf, Milliseconds(batchMs.toLong))
    ssc.sparkContext.setLogLevel("WARN")
    ssc.checkpoint(checkpoint)

    val lines = ssc.socketTextStream(host, port.toInt)
    val counts = lines.flatMap(_.split(" ").filter(_.nonEmpty)).map(w => (w, 1L)).reduceByKey(_ + _)
    val totals = counts.updateStateByKey[Long]((values: Seq[Long], total: Option[Long]) =>
      Some(values.sum + total.getOrElse(0L)))
    totals.print()

    val previous = new AtomicLong(0L)
    totals.foreachRDD { (rdd, time: Time) =>
      val (words, checksum) = rdd.aggregate((0L, 0L))(
        { case ((w, c), (word, n)) =>
          val weight =
            if (word.length > 1 && word.charAt(0) == 'w') {
              try word.substring(1).toLong + 1 catch { case _: NumberFormatException => 0L }
            } else 0L
          (w + n, c + n * weight)
        },
        { case ((w1, c1), (w2, c2)) => (w1 + w2, c1 + c2) })
      val doneMs = System.currentTimeMillis()
      val cumLines = words / 10
      val lines = cumLines - previous.getAndSet(cumLines)
      println(s"BATCH time_ms=${time.milliseconds} lines=$lines cum_lines=$cumLines done_ms=$doneMs " +
        s"words=$words checksum=$checksum")
    }

    val completed = new AtomicInteger(0)
    ssc.addStreamingListener(new StreamingListener {
      override def onBatchCompleted(b: StreamingListenerBatchCompleted): Unit = {
        val i = b.batchInfo
        println(s"STAT time_ms=${i.batchTime.milliseconds} records=${i.numRecords} " +
          s"sched_ms=${i.schedulingDelay.getOrElse(-1L)} proc_ms=${i.processingDelay.getOrElse(-1L)} " +
          s"total_ms=${i.totalDelay.getOrElse(-1L)}")
        completed.incrementAndGet()
      }
    })

    ssc.start()
    while (completed.get() < batches.toInt && !ssc.awaitTerminationOrTimeout(100)) {}
    ssc.stop(stopSparkContext = true, stopGracefully = false)
    println(s"""{"batches":${completed.get()}}""")
  }
}
