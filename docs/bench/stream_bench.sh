#!/usr/bin/env bash
# One run of the streaming benchmark (docs/BENCHMARKS.md, "Streaming, side by side with
# Spark Streaming"): the paced line server docs/bench/stream_load.py sends RATE
# ten-word lines/s for SECONDS s (logging its send times), the stateful word count
# (socket -> split -> (word, 1) -> reduceByKey -> updateStateByKey, checkpointing on,
# $MASTER, UI off) of ENGINE reads them in BATCH_MS batches and stops 10 s of batches
# after the data should have ended; docs/bench/stream_latency.py then prints the run's
# figures (also in OUTDIR/result.json). `uptime` is sampled every 5 s into load.txt.
#
#   docs/bench/stream_bench.sh ember|spark RATE BATCH_MS SECONDS OUTDIR
#
# Ember: $EMBER (default /work/target-bench/release/ember-examples) stateful-wordcount
# --report. Spark: spark-submit of the jar docs/bench/spark_streaming.sh builds
# ($BUILD/stateful-wordcount.jar), driver memory $SPARK_DRIVER_MEMORY (default 4g).
# CONF="k=v k2=v2" adds settings to both engines (e.g. spark.streaming.blockInterval=50ms).
# MASTER (default local[2]) is the master URL of both engines. PORT defaults to
# 9911. EMBER_PERF=1 records the Ember process with `perf record -g` into
# OUTDIR/perf.data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
engine=$1 rate=$2 batch_ms=$3 seconds=$4 out=$5
PORT=${PORT:-9911}
MASTER=${MASTER:-local[2]}
EMBER=${EMBER:-/work/target-bench/release/ember-examples}
BUILD=${BUILD:-/tmp/spark-streaming-bench}
rm -rf "$out"
mkdir -p "$out"
batches=$(( (seconds * 1000 + 10000 + batch_ms - 1) / batch_ms ))
conf=(--conf spark.ui.enabled=false)
for kv in ${CONF:-}; do conf+=(--conf "$kv"); done

(while true; do uptime; sleep 5; done) >"$out/load.txt" &
loadpid=$!
python3 "$here/stream_load.py" --port "$PORT" --rate "$rate" --seconds "$seconds" \
  --sent-log "$out/sent.txt" >"$out/gen.json" &
genpid=$!
sleep 0.5

case "$engine" in
  ember)
    cmd=("$EMBER" --master "$MASTER" "${conf[@]}" stateful-wordcount
      --host 127.0.0.1 --port "$PORT" --checkpoint "$out/ck" --batch-ms "$batch_ms"
      --batches "$batches" --report)
    if [[ "${EMBER_PERF:-0}" == 1 ]]; then
      cmd=(perf record ${EMBER_PERF_ARGS:--g} -o "$out/perf.data" -- "${cmd[@]}")
    fi
    ;;
  spark)
    home=$(python3 -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')
    cmd=("$home/bin/spark-submit" --master "$MASTER" "${conf[@]}"
      --driver-memory "${SPARK_DRIVER_MEMORY:-4g}" --class StatefulWordCount
      "$BUILD/stateful-wordcount.jar" 127.0.0.1 "$PORT" "$batch_ms" "$out/ck" "$batches")
    ;;
  *) echo "engine: ember or spark" >&2; exit 2 ;;
esac
echo "${cmd[*]}" >"$out/command.txt"
"${cmd[@]}" >"$out/job.out" 2>"$out/job.err" || echo "job exit $?" >>"$out/job.err"
kill "$genpid" 2>/dev/null || true
wait "$genpid" 2>/dev/null || true
kill "$loadpid" 2>/dev/null || true
python3 "$here/stream_latency.py" "$out" --batch-ms "$batch_ms" | tee "$out/result.json"
