// Records what Apache Spark returns for each case of Ember's RDD conformance suite
// (driver/tests/conformance/), as JSON lines: one header line naming the versions,
// then one line per case: {"case", "op", "ordered", "result"} with each element's
// toString, or {"case", "op", "error"} when Spark refuses the case.
//
// Built and run by driver/tests/conformance/record.sh (spark-submit of pyspark's
// Spark distribution, master local[2]). Each case here has a twin of the same name
// in driver/tests/conformance/cases.rs; collections inside elements are rendered
// sorted as List(...) on both sides, so that only Spark's semantics are compared,
// not the order of values inside a group that Spark leaves unspecified.

import org.apache.spark.{HashPartitioner, SparkConf, SparkContext}
import org.apache.spark.rdd.RDD

import java.io.PrintWriter
import java.nio.file.{Files, Path, Paths}
import scala.collection.mutable.ArrayBuffer

object Record {
  private def json(s: String): String = {
    val b = new StringBuilder("\"")
    s.foreach {
      case '"' => b ++= "\\\""
      case '\\' => b ++= "\\\\"
      case '\n' => b ++= "\\n"
      case '\r' => b ++= "\\r"
      case '\t' => b ++= "\\t"
      case c if c < ' ' => b ++= f"\\u${c.toInt}%04x"
      case c => b += c
    }
    b += '"'
    b.toString
  }

  /** The innermost cause's class and the first line of its message, with the
    * input and scratch directories as `<inputs>` and `<scratch>`. */
  private def why(e: Throwable, dirs: Seq[(String, String)]): String = {
    var t = e
    while (t.getCause != null && t.getCause != t) t = t.getCause
    val msg = Option(t.getMessage).getOrElse("").linesIterator.take(1).mkString
    dirs.foldLeft(s"${t.getClass.getSimpleName}: $msg") { case (m, (dir, name)) => m.replace(dir, name) }.take(300)
  }

  private def list[T](xs: Iterable[T])(implicit ord: Ordering[T]): String = xs.toList.sorted.mkString("List(", ", ", ")")

  def main(args: Array[String]): Unit = {
    val inputs = Paths.get(args(0)).toAbsolutePath
    val out = new PrintWriter(args(1), "UTF-8")
    val scratch = Files.createTempDirectory("ember-conformance")
    val sc = new SparkContext(new SparkConf().setMaster("local[2]").setAppName("ember-conformance"))
    sc.setLogLevel("ERROR")
    out.println(
      s"""{"spark":${json(sc.version)},"scala":${json(scala.util.Properties.versionNumberString)},"java":${json(
          System.getProperty("java.version"))},"master":"local[2]"}""")
    val names = ArrayBuffer[String]()

    def record(name: String, op: String, ordered: Boolean)(body: => Seq[String]): Unit = {
      require(!names.contains(name), s"case $name twice")
      names += name
      val line =
        try {
          val r = body
          s"""{"case":${json(name)},"op":${json(op)},"ordered":$ordered,"result":[${r.map(json).mkString(",")}]}"""
        } catch {
          case e: Throwable =>
            val dirs = Seq(scratch.toString -> "<scratch>", inputs.toString -> "<inputs>")
            s"""{"case":${json(name)},"op":${json(op)},"error":${json(why(e, dirs))}}"""
        }
      out.println(line)
    }
    def input(name: String): String = inputs.resolve(name).toString
    def scratchDir(name: String): String = scratch.resolve(name).toString
    def glom[T](rdd: RDD[T]): Seq[String] = rdd.glom().collect().toSeq.map(_.mkString("[", ",", "]"))

    val ints = sc.parallelize(1 to 10, 3)
    val pairs = sc.parallelize(Seq(("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("a", 6)), 3)
    val others = sc.parallelize(Seq(("a", "x"), ("c", "y"), ("c", "z"), ("d", "w")), 2)

    // Creating RDDs: how elements are sliced into partitions.
    record("parallelize_slices", "parallelize", true)(glom(ints))
    record("parallelize_more_slices_than_elements", "parallelize", true)(glom(sc.parallelize(1 to 3, 6)))
    record("parallelize_empty", "parallelize", true)(glom(sc.parallelize(Seq.empty[Int], 3)))
    record("parallelize_zero_slices", "parallelize", true)(sc.parallelize(1 to 3, 0).collect().toSeq.map(_.toString))
    record("range_slices", "range", true)(glom(sc.range(0, 10, 3, 4)))
    record("range_negative_step", "range", true)(sc.range(10, 0, -3, 2).collect().toSeq.map(_.toString))
    record("range_whole_i64_span", "range", true)(
      sc.range(Long.MinValue, Long.MaxValue, 1L << 62, 3).collect().toSeq.map(_.toString))
    record("range_empty", "range", true)(glom(sc.range(5, 5, 1, 2)))
    record("empty_rdd", "emptyRDD", true)(Seq(sc.emptyRDD[Int].getNumPartitions.toString, sc.emptyRDD[Int].count().toString))

    // Element-wise transformations.
    record("map_filter_flat_map", "map,filter,flatMap", true)(
      ints.flatMap(x => Seq.fill(x % 3)(x)).filter(_ % 2 == 0).map(_ * 10).collect().toSeq.map(_.toString))
    record("map_partitions_with_index", "mapPartitionsWithIndex", true)(
      ints.mapPartitionsWithIndex((i, it) => Iterator(s"$i:${it.sum}")).collect().toSeq)
    record("glom_after_filter", "glom", true)(glom(ints.filter(_ > 7)))
    record("key_by", "keyBy", true)(ints.keyBy(_ % 3).collect().toSeq.map(_.toString))
    record("group_by", "groupBy", false)(
      ints.groupBy(_ % 3).collect().toSeq.map { case (k, vs) => s"($k,${list(vs)})" })

    // Set-like transformations.
    val dups = sc.parallelize(Seq(3, 1, 3, 2, 1, 3, 5), 3)
    record("distinct", "distinct", false)(dups.distinct().collect().toSeq.map(_.toString))
    record("distinct_strings", "distinct", false)(
      sc.parallelize(Seq("b", "a", "b", "é", "e\u0301", "é"), 2).distinct().collect().toSeq)
    record("union_partitions", "union", true)(glom(ints.union(sc.parallelize(Seq(100, 200), 2))))
    record("intersection", "intersection", false)(
      dups.intersection(sc.parallelize(Seq(3, 3, 5, 7), 2)).collect().toSeq.map(_.toString))
    record("subtract_keeps_duplicates", "subtract", false)(
      dups.subtract(sc.parallelize(Seq(3), 1)).collect().toSeq.map(_.toString))
    record("cartesian", "cartesian", true)(
      sc.parallelize(Seq(1, 2), 2).cartesian(sc.parallelize(Seq("x", "y", "z"), 2)).collect().toSeq.map(_.toString))

    // Zips.
    val letters = sc.parallelize(Seq("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"), 3)
    record("zip", "zip", true)(ints.zip(letters).collect().toSeq.map(_.toString))
    record("zip_different_partition_counts", "zip", true)(
      ints.zip(sc.parallelize(1 to 10, 2)).collect().toSeq.map(_.toString))
    record("zip_different_partition_sizes", "zip", true)(
      sc.parallelize(1 to 4, 2).zip(sc.parallelize(Seq(1), 2)).collect().toSeq.map(_.toString))
    record("zip_with_index_empty_partitions", "zipWithIndex", true)(
      sc.parallelize(Seq("a", "b", "c"), 5).zipWithIndex().collect().toSeq.map(_.toString))
    record("zip_with_unique_id", "zipWithUniqueId", true)(
      sc.parallelize(Seq("a", "b", "c", "d", "e"), 3).zipWithUniqueId().collect().toSeq.map(_.toString))
    record("zip_partitions", "zipPartitions", true)(
      ints.zipPartitions(letters)((a, b) => Iterator(s"${a.size}/${b.mkString}")).collect().toSeq)

    // Partition counts.
    record("coalesce", "coalesce", true)(glom(sc.parallelize(1 to 10, 5).coalesce(2)))
    record("coalesce_more_than_existing", "coalesce", true)(Seq(ints.coalesce(10).getNumPartitions.toString))
    record("coalesce_zero", "coalesce", true)(Seq(ints.coalesce(0).getNumPartitions.toString))
    record("repartition", "repartition", false)(
      Seq(ints.repartition(4).getNumPartitions.toString) ++ ints.repartition(4).collect().toSeq.map(_.toString))
    record("repartition_zero", "repartition", true)(Seq(ints.repartition(0).getNumPartitions.toString))

    // Actions.
    record("collect_order", "collect", true)(letters.collect().toSeq)
    record("count", "count", true)(Seq(ints.count().toString, sc.parallelize(Seq.empty[Int], 4).count().toString))
    record("take_across_empty_partitions", "take", true)(sc.parallelize(1 to 3, 6).take(2).toSeq.map(_.toString))
    record("take_more_than_there_are", "take", true)(ints.take(20).toSeq.map(_.toString))
    record("take_zero", "take", true)(ints.take(0).toSeq.map(_.toString))
    record("first", "first", true)(Seq(sc.parallelize(Seq(7, 8), 4).first().toString))
    record("first_of_empty", "first", true)(Seq(sc.parallelize(Seq.empty[Int], 2).first().toString))
    val ties = sc.parallelize(Seq(5, 1, 5, 3, 5, 2, 1), 3)
    record("top_ties", "top", true)(ties.top(4).toSeq.map(_.toString))
    record("take_ordered_ties", "takeOrdered", true)(ties.takeOrdered(4).toSeq.map(_.toString))
    record("top_more_than_there_are", "top", true)(ties.top(20).toSeq.map(_.toString))
    record("take_ordered_by_key", "takeOrdered", true)(
      letters.takeOrdered(3)(Ordering.by[String, Int](s => -s.charAt(0).toInt)).toSeq)
    record("top_by_key", "top", true)(ints.top(3)(Ordering.by[Int, Int](x => (x * 7) % 11)).toSeq.map(_.toString))
    record("top_strings", "top", true)(sc.parallelize(Seq("b", "Z", "a", "é", "aa"), 2).top(5).toSeq)
    record("reduce", "reduce", true)(Seq(ints.reduce(_ + _).toString))
    record("reduce_of_empty", "reduce", true)(Seq(sc.parallelize(Seq.empty[Int], 2).reduce(_ + _).toString))
    record("fold_zero_per_partition", "fold", true)(Seq(sc.parallelize(1 to 4, 3).fold(10)(_ + _).toString))
    record("fold_of_empty", "fold", true)(Seq(sc.parallelize(Seq.empty[Int], 2).fold(1)(_ + _).toString))
    record("aggregate_zero_per_partition", "aggregate", true)(
      Seq(sc.parallelize(1 to 4, 3).aggregate(100)(_ + _, _ + _).toString))
    record("aggregate_of_empty", "aggregate", true)(
      Seq(sc.parallelize(Seq.empty[Int], 3).aggregate(5)(_ + _, _ * _).toString))
    record("tree_reduce", "treeReduce", true)(Seq(sc.parallelize(1 to 100, 7).treeReduce(_ + _, 2).toString))
    record("tree_aggregate", "treeAggregate", true)(
      Seq(sc.parallelize(1 to 100, 7).treeAggregate(0)(_ + _, _ + _, 3).toString))
    record("count_by_value", "countByValue", false)(dups.countByValue().toSeq.map(_.toString))
    record("is_empty", "isEmpty", true)(
      Seq(
        sc.parallelize(Seq.empty[Int], 3).isEmpty().toString,
        ints.filter(_ > 100).isEmpty().toString,
        sc.parallelize(Seq(1), 4).isEmpty().toString))
    record("min_max_strings", "min,max", true)(
      Seq(letters.min(), letters.max(), sc.parallelize(Seq("b", "Z", "é"), 2).max()))
    record("max_of_empty", "max", true)(Seq(sc.parallelize(Seq.empty[Int], 2).max().toString))
    record("to_local_iterator", "toLocalIterator", true)(sc.parallelize(1 to 7, 4).toLocalIterator.toSeq.map(_.toString))

    // Numeric (DoubleRDDFunctions).
    val doubles = sc.parallelize(Seq(1.0, 2.5, -3.0, 4.0, 10.0, 0.5), 3)
    record("sum_mean", "sum,mean", true)(Seq(doubles.sum().toString, doubles.mean().toString))
    record("variance_stdev", "variance,stdev,sampleVariance,sampleStdev", true)(
      Seq(doubles.variance(), doubles.stdev(), doubles.sampleVariance(), doubles.sampleStdev()).map(_.toString))
    record("stats", "stats", true)(Seq(doubles.stats().toString))
    record("stats_of_empty", "stats", true)(Seq(sc.parallelize(Seq.empty[Double], 2).stats().toString))
    record("sum_of_empty", "sum", true)(Seq(sc.parallelize(Seq.empty[Double], 2).sum().toString))
    record("histogram_even", "histogram", true)(doubles.histogram(3) match {
      case (b, c) => Seq(b.mkString(","), c.mkString(","))
    })
    record("histogram_max_in_last_bucket", "histogram", true)(
      sc.parallelize(Seq(0.0, 5.0, 10.0, 10.0), 2).histogram(Array(0.0, 5.0, 10.0)).toSeq.map(_.toString))
    record("histogram_out_of_range", "histogram", true)(
      sc.parallelize(Seq(-1.0, 0.0, 11.0, Double.NaN), 2).histogram(Array(0.0, 5.0, 10.0)).toSeq.map(_.toString))
    record("histogram_one_value", "histogram", true)(sc.parallelize(Seq(2.0, 2.0), 2).histogram(4) match {
      case (b, c) => Seq(b.mkString(","), c.mkString(","))
    })
    record("histogram_of_empty", "histogram", true)(sc.parallelize(Seq.empty[Double], 2).histogram(2) match {
      case (b, c) => Seq(b.mkString(","), c.mkString(","))
    })
    record("doubles_to_string", "toString", true)(
      sc.parallelize(
        Seq(1.0, -0.0, 0.0, 100.0, 1e7, 12345678.9, 1.5e-5, 0.001, 0.0001, 123456.789, 1e21, 1.0 / 3,
          Double.NaN, Double.PositiveInfinity, Double.NegativeInfinity, Double.MaxValue),
        2).map(_.toString).collect().toSeq)

    // Floating-point keys: java.lang.Double's equals and hashCode (every NaN equals every NaN,
    // -0.0 differs from 0.0) and Ordering.Double (Double.compare: -0.0 < 0.0, NaN above Infinity).
    val oddNaN = java.lang.Double.longBitsToDouble(0x7ff0000000000001L)
    val floatKeys = sc.parallelize(
      Seq(1.5, -0.0, Double.NaN, 0.0, 1.5, oddNaN, Double.NegativeInfinity, 0.0, -1.0, Double.PositiveInfinity), 3)
    record("distinct_doubles", "distinct", false)(floatKeys.distinct().collect().toSeq.map(_.toString))
    record("reduce_by_key_doubles", "reduceByKey", false)(
      floatKeys.map(k => (k, 1)).reduceByKey(_ + _).collect().toSeq.map(_.toString))
    record("group_by_key_doubles", "groupByKey", false)(
      floatKeys.zipWithIndex().groupByKey().collect().toSeq.map { case (k, vs) => s"($k,${list(vs)})" })
    record("join_doubles", "join", false)(
      floatKeys
        .map(k => (k, "l"))
        .join(sc.parallelize(Seq((Double.NaN, "r"), (0.0, "z"), (-0.0, "m"), (2.0, "x")), 2))
        .collect()
        .toSeq
        .map(_.toString))
    record("subtract_doubles", "subtract", false)(
      floatKeys.subtract(sc.parallelize(Seq(Double.NaN, 0.0), 1)).collect().toSeq.map(_.toString))
    record("sort_by_key_doubles", "sortByKey", true)(
      floatKeys.map(k => (k, 0)).sortByKey().keys.collect().toSeq.map(_.toString))
    record("sort_by_key_doubles_descending", "sortByKey", true)(
      floatKeys.map(k => (k, 0)).sortByKey(ascending = false, numPartitions = 2).keys.collect().toSeq.map(_.toString))
    record("sort_by_doubles", "sortBy", true)(floatKeys.sortBy(x => -x).collect().toSeq.map(_.toString))
    record("top_doubles", "top", true)(floatKeys.top(4).toSeq.map(_.toString))
    record("take_ordered_doubles", "takeOrdered", true)(floatKeys.takeOrdered(4).toSeq.map(_.toString))
    record("min_max_doubles", "min,max", true)(
      Seq(floatKeys.min(), floatKeys.max(), floatKeys.filter(!_.isNaN).max()).map(_.toString))
    record("sort_by_key_float_pairs", "sortByKey", true)(
      sc.parallelize(Seq(((1.0, "b"), 1), ((Double.NaN, "a"), 2), ((-0.0, "c"), 3), ((0.0, "a"), 4), ((1.0, "a"), 5)), 2)
        .sortByKey()
        .collect()
        .toSeq
        .map(_.toString))

    // Pair RDDs.
    record("reduce_by_key", "reduceByKey", false)(pairs.reduceByKey(_ + _).collect().toSeq.map(_.toString))
    record("group_by_key", "groupByKey", false)(
      pairs.groupByKey().collect().toSeq.map { case (k, vs) => s"($k,${list(vs)})" })
    record("fold_by_key_zero_per_partition", "foldByKey", false)(
      pairs.foldByKey(10)(_ + _).collect().toSeq.map(_.toString))
    record("aggregate_by_key_zero_per_partition", "aggregateByKey", false)(
      pairs.aggregateByKey(100)(_ + _, _ + _).collect().toSeq.map(_.toString))
    record("combine_by_key", "combineByKey", false)(
      pairs
        .combineByKey((v: Int) => List(v), (c: List[Int], v: Int) => v :: c, (a: List[Int], b: List[Int]) => a ++ b)
        .collect()
        .toSeq
        .map { case (k, vs) => s"($k,${list(vs)})" })
    record("count_by_key", "countByKey", false)(pairs.countByKey().toSeq.map(_.toString))
    record("collect_as_map_last_wins", "collectAsMap", false)(
      sc.parallelize(Seq(("k", 1), ("j", 0), ("k", 2), ("k", 3)), 2).collectAsMap().toSeq.map(_.toString))
    record("keys_values", "keys,values", true)(pairs.keys.collect().toSeq ++ pairs.values.collect().toSeq.map(_.toString))
    record("map_values_flat_map_values", "mapValues,flatMapValues", true)(
      pairs.mapValues(_ * 2).flatMapValues(v => 1 to (v % 3)).collect().toSeq.map(_.toString))
    record("join_duplicate_keys", "join", false)(pairs.join(others).collect().toSeq.map(_.toString))
    record("left_outer_join", "leftOuterJoin", false)(pairs.leftOuterJoin(others).collect().toSeq.map(_.toString))
    record("right_outer_join", "rightOuterJoin", false)(pairs.rightOuterJoin(others).collect().toSeq.map(_.toString))
    record("full_outer_join", "fullOuterJoin", false)(pairs.fullOuterJoin(others).collect().toSeq.map(_.toString))
    record("join_with_empty", "join", false)(
      pairs.join(sc.parallelize(Seq.empty[(String, Int)], 2)).collect().toSeq.map(_.toString))
    record("cogroup", "cogroup", false)(
      pairs.cogroup(others).collect().toSeq.map { case (k, (a, b)) => s"($k,(${list(a)},${list(b)}))" })
    record("cogroup_three", "cogroup", false)(
      pairs.cogroup(others, sc.parallelize(Seq(("a", 1.5), ("e", 2.5)), 1)).collect().toSeq.map {
        case (k, (a, b, c)) => s"($k,(${list(a)},${list(b)},${list(c)}))"
      })
    record("group_with_four", "groupWith", false)(
      pairs
        .groupWith(others, sc.parallelize(Seq(("a", true)), 1), sc.parallelize(Seq(("f", 'q')), 1))
        .collect()
        .toSeq
        .map { case (k, (a, b, c, d)) => s"($k,(${list(a)},${list(b)},${list(c)},${list(d)}))" })
    record("subtract_by_key", "subtractByKey", false)(pairs.subtractByKey(others).collect().toSeq.map(_.toString))
    val unsorted = sc.parallelize(Seq((5, "e"), (1, "a"), (9, "i"), (3, "c"), (7, "g"), (2, "b"), (8, "h")), 3)
    record("sort_by_key", "sortByKey", true)(unsorted.sortByKey().collect().toSeq.map(_.toString))
    record("sort_by_key_descending", "sortByKey", true)(
      unsorted.sortByKey(ascending = false, numPartitions = 2).collect().toSeq.map(_.toString))
    record("sort_by_key_partitions", "sortByKey", true)(glom(unsorted.sortByKey(ascending = true, numPartitions = 3)))
    record("sort_by", "sortBy", true)(letters.sortBy(s => (s.charAt(0) * 7) % 13).collect().toSeq)
    record("sort_by_strings_unicode", "sortBy", true)(
      sc.parallelize(Seq("b", "Z", "a", "é", "aa", "", "e\u0301"), 3).sortBy(s => s).collect().toSeq)
    record("lookup", "lookup", false)(pairs.lookup("a").map(_.toString))
    record("lookup_missing", "lookup", false)(pairs.lookup("zz").map(_.toString))
    record("partition_by_count", "partitionBy", true)(
      Seq(pairs.partitionBy(new HashPartitioner(4)).getNumPartitions.toString))
    record("repartition_and_sort_within_partitions", "repartitionAndSortWithinPartitions", true)(
      unsorted
        .repartitionAndSortWithinPartitions(new HashPartitioner(2))
        .mapPartitions(it => { val ks = it.map(_._1).toList; Iterator((ks == ks.sorted).toString) })
        .collect()
        .toSeq)

    // Files.
    def lines(name: String, min: Int): Seq[String] = sc.textFile(input(name), min).collect().toSeq
    record("text_file_no_trailing_newline", "textFile", true)(lines("lf-no-trailing-newline.txt", 2))
    record("text_file_crlf", "textFile", true)(lines("crlf.txt", 2))
    record("text_file_lone_cr", "textFile", true)(lines("cr.txt", 2))
    record("text_file_mixed_line_ends", "textFile", true)(lines("mixed.txt", 1))
    record("text_file_empty", "textFile", true)(lines("empty.txt", 2))
    record("text_file_unicode_split_boundaries", "textFile", true)(lines("unicode.txt", 7))
    record("text_file_crlf_split_between_cr_and_lf", "textFile", true)(lines("crlf-split.txt", 16))
    record("text_file_cr_splits", "textFile", true)(lines("cr-split.txt", 9))
    record("text_file_missing", "textFile", true)(lines("no-such-file.txt", 2))
    record("whole_text_files", "wholeTextFiles", false)(
      sc.wholeTextFiles(input("whole"), 2).collect().toSeq.map { case (p, c) => s"(${Paths.get(p).getFileName},$c)" })
    record("save_as_text_file_pairs", "saveAsTextFile", false)({
      val dir = scratchDir("pairs")
      sc.parallelize(Seq(("a", (1.0, Some(1))), ("b", (2.5, None))), 2).saveAsTextFile(dir)
      sc.textFile(dir).collect().toSeq
    })
    record("save_as_text_file_existing_output", "saveAsTextFile", true)({
      val dir = scratchDir("twice")
      ints.saveAsTextFile(dir)
      ints.saveAsTextFile(dir)
      Seq("saved twice")
    })
    record("object_file_round_trip", "saveAsObjectFile,objectFile", false)({
      val dir = scratchDir("objects")
      pairs.saveAsObjectFile(dir)
      sc.objectFile[(String, Int)](dir).collect().toSeq.map(_.toString)
    })
    record("pipe", "pipe", true)(letters.pipe("tr a-z A-Z").collect().toSeq)

    // Argument checks.
    record("sample_fraction_above_one", "sample", true)(Seq(ints.sample(false, 1.5).count().toString))
    record("sample_negative_fraction", "sample", true)(Seq(ints.sample(true, -1.0).count().toString))
    record("sample_fraction_zero", "sample", true)(ints.sample(false, 0.0).collect().toSeq.map(_.toString))
    record("sample_fraction_one", "sample", false)(ints.sample(false, 1.0).collect().toSeq.map(_.toString))

    // More edges: empty sides, NaN, per-partition semantics.
    val empty = sc.parallelize(Seq.empty[Int], 3)
    val emptyPairs = sc.parallelize(Seq.empty[(String, Int)], 2)
    record("take_ordered_of_empty", "takeOrdered", true)(empty.takeOrdered(3).toSeq.map(_.toString))
    record("top_zero", "top", true)(ints.top(0).toSeq.map(_.toString))
    record("take_after_empty_partitions", "take", true)(
      sc.parallelize(1 to 100, 10).filter(_ > 95).take(3).toSeq.map(_.toString))
    record("is_empty_first_partitions_empty", "isEmpty", true)(
      Seq(sc.parallelize(1 to 100, 10).filter(_ > 95).isEmpty().toString))
    record("distinct_of_empty", "distinct", true)(empty.distinct().collect().toSeq.map(_.toString))
    record("union_with_itself", "union", true)(glom(sc.parallelize(Seq(1, 2), 2).union(sc.parallelize(Seq(1, 2), 2))))
    record("union_with_empty", "union", true)(glom(ints.union(empty)))
    record("cartesian_with_empty", "cartesian", true)(ints.cartesian(empty).collect().toSeq.map(_.toString))
    record("subtract_empty", "subtract", false)(dups.subtract(empty).collect().toSeq.map(_.toString))
    record("zip_with_index_all_empty", "zipWithIndex", true)(empty.zipWithIndex().collect().toSeq.map(_.toString))
    record("zip_with_unique_id_empty_partitions", "zipWithUniqueId", true)(
      sc.parallelize(Seq("a", "b"), 4).zipWithUniqueId().collect().toSeq.map(_.toString))
    record("coalesce_to_one", "coalesce", true)(glom(sc.parallelize(1 to 3, 6).coalesce(1)))
    record("repartition_of_empty", "repartition", true)(
      Seq(empty.repartition(5).getNumPartitions.toString, empty.repartition(5).count().toString))
    record("flat_map_to_nothing", "flatMap", true)(ints.flatMap(_ => Seq.empty[Int]).collect().toSeq.map(_.toString))
    record("aggregate_to_another_type", "aggregate", true)(
      Seq(ints.aggregate((0, 0))((acc, x) => (acc._1 + x, acc._2 + 1), (a, b) => (a._1 + b._1, a._2 + b._2)).toString))
    record("reduce_by_key_of_empty", "reduceByKey", true)(emptyPairs.reduceByKey(_ + _).collect().toSeq.map(_.toString))
    record("fold_by_key_of_empty", "foldByKey", true)(emptyPairs.foldByKey(1)(_ + _).collect().toSeq.map(_.toString))
    record("count_by_key_of_empty", "countByKey", true)(emptyPairs.countByKey().toSeq.map(_.toString))
    record("sort_by_key_of_empty", "sortByKey", true)(emptyPairs.sortByKey().collect().toSeq.map(_.toString))
    record("sort_by_key_duplicate_keys", "sortByKey", true)(
      sc.parallelize((1 to 60).map(i => (i % 7, i)), 5).sortByKey(numPartitions = 4).keys.collect().toSeq.map(_.toString))
    record("sort_by_key_skewed_key", "sortByKey", true)(
      glom(sc.parallelize(Seq.fill(30)(5) ++ Seq(1, 2, 3, 9), 2).map(k => (k, 0)).sortByKey(numPartitions = 3).keys))
    record("first_after_sort", "first", true)(Seq(unsorted.sortByKey(ascending = false).first().toString))
    record("left_outer_join_empty_left", "leftOuterJoin", true)(
      emptyPairs.leftOuterJoin(others).collect().toSeq.map(_.toString))
    record("full_outer_join_with_empty", "fullOuterJoin", false)(
      emptyPairs.fullOuterJoin(others).collect().toSeq.map(_.toString))
    record("cogroup_with_empty", "cogroup", false)(
      emptyPairs.cogroup(others).collect().toSeq.map { case (k, (a, b)) => s"($k,(${list(a)},${list(b)}))" })
    record("lookup_of_empty", "lookup", true)(emptyPairs.lookup("a").map(_.toString))
    val withNaN = sc.parallelize(Seq(1.0, Double.NaN, 3.0), 2)
    record("stats_with_nan", "stats", true)(Seq(withNaN.stats().toString))
    record("sum_with_nan", "sum", true)(Seq(withNaN.sum().toString))
    record("mean_of_empty", "mean", true)(Seq(sc.parallelize(Seq.empty[Double], 2).mean().toString))
    record("variance_of_one", "variance,sampleVariance", true)(
      Seq(sc.parallelize(Seq(4.0), 2).variance().toString, sc.parallelize(Seq(4.0), 2).sampleVariance().toString))
    record("histogram_unsorted_buckets", "histogram", true)(
      doubles.histogram(Array(5.0, 0.0, 10.0)).toSeq.map(_.toString))
    record("histogram_one_bucket_bound", "histogram", true)(doubles.histogram(Array(1.0)).toSeq.map(_.toString))
    record("histogram_with_infinity", "histogram", true)(sc.parallelize(Seq(1.0, Double.PositiveInfinity), 2).histogram(2) match {
      case (b, c) => Seq(b.mkString(","), c.mkString(","))
    })
    record("pipe_runs_per_partition", "pipe", true)(sc.parallelize(1 to 2, 4).pipe("echo hi").collect().toSeq)
    record("save_as_text_file_doubles", "saveAsTextFile", true)({
      val dir = scratchDir("doubles")
      sc.parallelize(Seq(1e7, 0.5, -0.0, Double.NaN), 1).saveAsTextFile(dir)
      sc.textFile(dir).collect().toSeq
    })
    record("save_as_text_file_empty", "saveAsTextFile", true)({
      val dir = scratchDir("empty")
      empty.saveAsTextFile(dir)
      sc.textFile(dir).collect().toSeq
    })

    out.close()
    sc.stop()
    println(s"recorded ${names.size} cases to ${args(1)}")
  }
}
