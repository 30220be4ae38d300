#!/usr/bin/env bash
# Records Apache Spark's answers for Ember's RDD conformance suite into
# driver/tests/conformance/spark.jsonl (committed; the test reads it, CI never runs
# Spark). Installs pyspark 4.x from PyPI if missing (a full Spark distribution with
# spark-submit and the Scala 2.13 compiler jars), compiles Record.scala with that
# compiler on the installed Java, and runs it with spark-submit on local[2].
#
#   driver/tests/conformance/record.sh          # rewrites spark.jsonl
#
# BUILD (default /tmp/ember-conformance-build) holds the classes and the jar.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-/tmp/ember-conformance-build}

spark_home() {
  python3 -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))' 2>/dev/null
}
if ! spark_home >/dev/null; then
  pip install 'pyspark>=4,<5'
fi
home=$(spark_home)
rm -rf "$BUILD" && mkdir -p "$BUILD/classes"
java -Xss8m -cp "$home/jars/*" scala.tools.nsc.Main -usejavacp -deprecation -nowarn \
  -d "$BUILD/classes" "$here/Record.scala"
jar cf "$BUILD/record.jar" -C "$BUILD/classes" .
"$home/bin/spark-submit" --master 'local[2]' --class Record "$BUILD/record.jar" \
  "$here/inputs" "$here/spark.jsonl"
