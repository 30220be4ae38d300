"""The shuffle benchmarks of docs/BENCHMARKS.md run on Apache Spark (pyspark).

usage: python3 spark_shuffle.py MASTER JOB ARGS...
  wordcount INPUT                 textFile -> flatMap(split) -> (w, 1) -> reduceByKey(+)
  reducebykey PAIRS KEYS PARTS    (i mod KEYS, i) for i < PAIRS -> reduceByKey(+)
  terasort INPUT OUTPUT           100-byte records (teragen) sorted by their 10-byte key, written raw

Each job runs with the RDD API (Python lambdas, the pyspark user's code) and,
for wordcount and reducebykey, also with the DataFrame API (no Python in the
loop: the JVM's fastest path). Prints one JSON line per run with wall seconds
of the job alone (context start and executor registration excluded).
"""
import json
import os
import sys
import time
from operator import add

from pyspark import SparkConf
from pyspark.sql import SparkSession, functions as F

master, job, args = sys.argv[1], sys.argv[2], sys.argv[3:]
conf = (SparkConf().setMaster(master).setAppName(f"shuffle-{job}")
        .set("spark.driver.memory", "2g").set("spark.ui.enabled", "false")
        .set("spark.python.worker.reuse", "true").set("spark.sql.adaptive.enabled", "true"))
spark = SparkSession.builder.config(conf=conf).getOrCreate()
sc = spark.sparkContext
sc.setLogLevel("WARN")
if master.startswith("local-cluster"):
    want = int(master.split("[")[1].split(",")[0])
    t_wait = time.time()
    while sc._jsc.sc().getExecutorMemoryStatus().size() < want + 1 and time.time() - t_wait < 180:
        time.sleep(0.2)
# Start the Python workers before timing.
sc.parallelize(range(8), 8).map(lambda x: os.getpid()).collect()


def report(api, seconds, **result):
    print(json.dumps({"job": job, "api": api, "master": master, "seconds": round(seconds, 2), **result}), flush=True)


if job == "wordcount":
    path = args[0]
    t0 = time.time()
    counts = (sc.textFile(path).flatMap(lambda line: line.split())
              .map(lambda w: (w, 1)).reduceByKey(add))
    distinct, total = counts.aggregate((0, 0), lambda a, wc: (a[0] + 1, a[1] + wc[1]),
                                       lambda a, b: (a[0] + b[0], a[1] + b[1]))
    report("rdd", time.time() - t0, distinct=distinct, total=total)
    t0 = time.time()
    words = spark.read.text(path).select(F.explode(F.split(F.col("value"), r"\s+")).alias("w")).where("w != ''")
    row = words.groupBy("w").count().agg(F.count("*").alias("d"), F.sum("count").alias("t")).collect()[0]
    report("dataframe", time.time() - t0, distinct=row["d"], total=row["t"])
elif job == "reducebykey":
    pairs, keys, parts = int(args[0]), int(args[1]), int(args[2])
    t0 = time.time()
    sums = sc.range(0, pairs, numSlices=parts).map(lambda i: (i % keys, i)).reduceByKey(add)
    d, s, w = sums.aggregate((0, 0, 0), lambda a, kv: (a[0] + 1, a[1] + kv[1], a[2] + kv[0] * kv[1]),
                             lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
    report("rdd", time.time() - t0, distinct_keys=d, sum=s, weighted_sum=w % (1 << 64))
    t0 = time.time()
    df = spark.range(0, pairs, numPartitions=parts).selectExpr(f"id % {keys} AS k", "id AS v")
    sums = df.groupBy("k").agg(F.sum("v").alias("s"))
    row = sums.agg(F.count("*").alias("d"), F.sum("s").alias("s")).collect()[0]
    report("dataframe", time.time() - t0, distinct_keys=row["d"], sum=row["s"])
elif job == "terasort":
    src, dst = args[0], args[1]
    os.makedirs(dst)

    def write_part(index, records):
        n = 0
        with open(os.path.join(dst, f"part-{index:05d}"), "wb") as out:
            for key, value in records:
                out.write(key)
                out.write(value)
                n += 1
        yield n

    t0 = time.time()
    recs = sc.binaryRecords(src, 100).map(lambda r: (bytes(r[:10]), bytes(r[10:])))
    written = sum(recs.sortByKey(numPartitions=recs.getNumPartitions()).mapPartitionsWithIndex(write_part).collect())
    report("rdd", time.time() - t0, records=written)
else:
    sys.exit(f"unknown job {job}")
spark.stop()
