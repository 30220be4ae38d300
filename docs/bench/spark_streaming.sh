#!/usr/bin/env bash
# Spark Streaming side of the streaming benchmark (docs/BENCHMARKS.md, "Streaming, side
# by side with Spark Streaming"): installs pyspark 4.x from PyPI if missing (a full Spark
# distribution: bin/spark-submit, the spark-streaming jar, Scala 2.13 compiler and
# library jars), compiles docs/bench/spark_streaming/StatefulWordCount.scala with the
# Scala compiler those jars ship (scala.tools.nsc.Main on Java 17) into a jar, and runs
# one measurement through docs/bench/stream_bench.sh.
#
#   docs/bench/spark_streaming.sh build                  # -> $BUILD/stateful-wordcount.jar
#   docs/bench/spark_streaming.sh run RATE BATCH_MS SECONDS OUTDIR
#
# BUILD defaults to /tmp/spark-streaming-bench. `run` = build (if needed) +
# `docs/bench/stream_bench.sh spark RATE BATCH_MS SECONDS OUTDIR`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-/tmp/spark-streaming-bench}

spark_home() {
  python3 -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))' 2>/dev/null
}

build() {
  if ! spark_home >/dev/null; then
    pip install 'pyspark>=4,<5'
  fi
  local home jar src
  home=$(spark_home)
  jar="$BUILD/stateful-wordcount.jar"
  src="$here/spark_streaming/StatefulWordCount.scala"
  if [[ -f "$jar" && "$jar" -nt "$src" ]]; then
    echo "$jar"
    return
  fi
  mkdir -p "$BUILD/classes"
  rm -rf "$BUILD/classes"/*
  # The wheel's jars: Spark (core, streaming) to compile against, and the Scala 2.13
  # compiler (scala-compiler, scala-reflect, scala-library) to compile with.
  java -Xss8m -cp "$home/jars/*" scala.tools.nsc.Main \
    -usejavacp -deprecation -d "$BUILD/classes" "$src" >&2
  jar cf "$jar" -C "$BUILD/classes" .
  echo "$jar"
}

case "${1:-}" in
  build) build ;;
  run)
    shift
    build >/dev/null
    exec "$here/stream_bench.sh" spark "$@"
    ;;
  *)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
