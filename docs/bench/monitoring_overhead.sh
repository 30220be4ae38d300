#!/usr/bin/env bash
# The cost of watching a job: scheduler-bench and wordcount with everything off,
# with the web UI and metrics on (ui), and with the event log on too (on),
# interleaved in one run.
# Usage: docs/bench/monitoring_overhead.sh [BINARY] [RUNS]   (default target/release/ember-examples, 3)
set -euo pipefail
B="${1:-target/release/ember-examples}"
RUNS="${2:-3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$B" gen-text --bytes 100000000 --output "$WORK/corpus.txt" >/dev/null
OFF=(--conf spark.ui.enabled=false)
UI=(--conf spark.ui.port=0)
ON=(--conf spark.ui.port=0 --conf spark.eventLog.enabled=true --conf "spark.eventLog.dir=$WORK/events")
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
for i in $(seq "$RUNS"); do
  for mode in off ui on; do
    case $mode in off) conf=("${OFF[@]}") ;; ui) conf=("${UI[@]}") ;; on) conf=("${ON[@]}") ;; esac
    for master in 'local[2]' 'local-cluster[2,1,256]'; do
      ms=$("$B" --master "$master" "${conf[@]}" scheduler-bench --tasks 10000 2>/dev/null | field job_ms)
      echo "scheduler-bench $master $mode run $i: job_ms=$ms"
    done
    start=$(date +%s.%N)
    "$B" --master 'local[2]' "${conf[@]}" wordcount --input "$WORK/corpus.txt" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "wordcount-100MB local[2] $mode run $i: wall_s=$(python3 -c "print(round($end-$start,2))")"
  done
done
