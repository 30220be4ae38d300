import os, sys, time, json, zlib
from pyspark import SparkConf, SparkContext
mb = int(sys.argv[1]); n_exec = int(sys.argv[2])
conf = (SparkConf().setMaster(f"local-cluster[{n_exec},1,1024]").setAppName("bcast")
        .set("spark.driver.memory", "3g").set("spark.driver.maxResultSize", "1g")
        .set("spark.ui.enabled", "false").set("spark.python.worker.reuse", "true"))
sc = SparkContext(conf=conf)
sc.setLogLevel("WARN")
# Wait for all executors to register.
t_wait = time.time()
while sc._jsc.sc().getExecutorMemoryStatus().size() < n_exec + 1 and time.time() - t_wait < 180:
    time.sleep(0.2)
sc.parallelize(range(4 * n_exec), 4 * n_exec).map(lambda x: os.getpid()).collect()  # start python workers
data = os.urandom(mb << 20)
expected = zlib.crc32(data)
t0 = time.time()
b = sc.broadcast(data)
t1 = time.time()
def read(_):
    import zlib, time, socket
    v = b.value
    return (os.getpid(), zlib.crc32(v), time.time())
res = sc.parallelize(range(n_exec), n_exec).map(read).collect()
t2 = time.time()
print(json.dumps({"mb": mb, "executors": n_exec, "broadcast_call_s": round(t1 - t0, 2),
                  "job_s": round(t2 - t1, 2), "all_exact": all(r[1] == expected for r in res),
                  "distinct_workers": len(set(r[0] for r in res)),
                  "value_everywhere_s": round(max(r[2] for r in res) - t1, 2)}))
sc.stop()
