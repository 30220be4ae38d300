#!/usr/bin/env bash
# End-to-end tests of the operator on a kind cluster:
#   1. create a kind cluster, build both images (Dockerfile targets operator and engine),
#      load them into the cluster and `helm install` the chart;
#   2. run each example in examples/k8s/ and wait for COMPLETED with the expected result
#      in the last line of the driver's log;
#   3. delete an executor pod mid-job and see it replaced and the job complete;
#   4. an invalid manifest ends FAILED with a message naming the field;
#   5. timeToLiveSeconds removes a finished application.
#
# Skips (exit 0, with a message) when docker with a running engine, kind or kubectl is
# missing. Environment: EMBER_E2E_CLUSTER (cluster name, default ember-e2e),
# EMBER_E2E_KEEP=1 keeps the cluster afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

skip() {
  echo "SKIP kind e2e: $*"
  exit 0
}
command -v docker >/dev/null || skip "docker is not installed"
docker info >/dev/null 2>&1 || skip "docker has no running engine"
command -v kind >/dev/null || skip "kind is not installed"
command -v kubectl >/dev/null || skip "kubectl is not installed"

CLUSTER="${EMBER_E2E_CLUSTER:-ember-e2e}"
NS=e2e
HELM="$(tests/tools/install-helm.sh | tail -n1)"
CONTEXT="kind-$CLUSTER"
k() { kubectl --context "$CONTEXT" "$@"; }

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "---- diagnostics"
    k get sparkapp,pods,svc -A -o wide || true
    k -n ember-system logs deployment/ember-ember-operator --tail=100 || true
  fi
  if [[ "${EMBER_E2E_KEEP:-0}" != 1 ]]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# wait_state APP STATE SECONDS: waits for status.applicationState.state; fails early on a
# terminal state that is not the one expected.
wait_state() {
  local app=$1 want=$2 secs=$3 state=""
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    state="$(k -n "$NS" get sparkapp "$app" -o jsonpath='{.status.applicationState.state}' 2>/dev/null || true)"
    [[ "$state" == "$want" ]] && return 0
    if [[ "$state" =~ ^(COMPLETED|FAILED|SUBMISSION_FAILED)$ ]]; then
      k -n "$NS" get sparkapp "$app" -o jsonpath='{.status.applicationState.errorMessage}' >&2 || true
      fail "$app ended $state, expected $want"
    fi
    sleep 2
  done
  fail "$app did not reach $want within ${secs}s (last state: ${state:-none})"
}

# result_has APP PYTHON_EXPR: the driver log's last line is JSON and the expression over
# it (bound to `r`) is true.
result_has() {
  local app=$1 expr=$2 line
  line="$(k -n "$NS" logs "$app-driver" | tail -n1)"
  echo "$app result: $line"
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($expr) else 1)" "$line" \
    || fail "$app: unexpected result $line (wanted $expr)"
}

passed=0
failed_tests=0
run() {
  local name=$1
  shift
  echo "==== $name"
  if ( "$@" ); then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAILED: $name"
    failed_tests=$((failed_tests + 1))
  fi
}

echo "==== setup: kind cluster $CLUSTER, images, helm install"
kind create cluster --name "$CLUSTER" --wait 180s
docker build --target operator -t ember-operator:e2e .
docker build --target engine -t ember-engine:dev .
kind load docker-image --name "$CLUSTER" ember-operator:e2e ember-engine:dev
"$HELM" --kube-context "$CONTEXT" install ember charts/ember-operator \
  --namespace ember-system --create-namespace \
  --set image.repository=ember-operator --set image.tag=e2e \
  --set driverStartTimeoutSeconds=90 \
  --wait --timeout 300s
k create namespace "$NS"

# The expected values: sumsq's exact sum for n=10^7; pi within 0.05; the word counts of the ConfigMap text.
test_examples() {
  k -n "$NS" apply -f examples/k8s/sumsq.yaml
  k -n "$NS" apply -f examples/k8s/pi.yaml
  k -n "$NS" apply -f examples/k8s/wordcount.yaml
  wait_state sumsq COMPLETED 600
  result_has sumsq "r['count'] == 10000000 and r['sum'] == '16666786667058750000000'"
  wait_state pi COMPLETED 600
  result_has pi "abs(r['pi'] - 3.14159) < 0.05"
  wait_state wordcount COMPLETED 600
  result_has wordcount "r['distinct'] == 10 and r['total'] == 15"
}

test_executor_replacement() {
  sed -e 's/name: sumsq$/name: sumsq-kill/' -e 's/"10000000"/"400000000"/' -e 's/"50"\]/"400"]/' \
    examples/k8s/sumsq.yaml | k -n "$NS" apply -f -
  wait_state sumsq-kill RUNNING 300
  k -n "$NS" wait --for=jsonpath='{.status.phase}'=Running pod/sumsq-kill-exec-1 --timeout=120s
  k -n "$NS" delete pod sumsq-kill-exec-1 --wait=false
  local deadline=$((SECONDS + 120))
  until k -n "$NS" get pod sumsq-kill-exec-3 >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "no replacement executor sumsq-kill-exec-3"
    sleep 2
  done
  wait_state sumsq-kill COMPLETED 900
  local failures
  failures="$(k -n "$NS" get sparkapp sumsq-kill -o jsonpath='{.status.executorFailures}')"
  [[ "$failures" -ge 1 ]] || fail "executorFailures is $failures"
}

test_invalid_manifest() {
  # Refused at admission by the schema (a pattern; works without CEL).
  if sed -e 's/name: sumsq$/name: bad-memory/' -e '0,/memory: 256m/s//memory: 12x/' \
      examples/k8s/sumsq.yaml | k -n "$NS" apply -f - 2>/tmp/ember-e2e-admission.err; then
    fail "a memory of 12x was admitted"
  fi
  grep -q "memory" /tmp/ember-e2e-admission.err || fail "admission error does not name memory"
  # Valid for the schema, invalid for the operator: a mount of a volume that does not exist.
  k -n "$NS" apply -f - <<'YAML'
apiVersion: ember.dev/v1alpha1
kind: SparkApplication
metadata:
  name: bad-mount
spec:
  image: ember-engine:dev
  mainApplicationFile: local:///opt/ember/bin/ember-examples
  arguments: ["sumsq", "--n", "100"]
  driver:
    volumeMounts:
      - name: missing
        mountPath: /data
YAML
  wait_state bad-mount FAILED 60
  local message
  message="$(k -n "$NS" get sparkapp bad-mount -o jsonpath='{.status.applicationState.errorMessage}')"
  echo "bad-mount: $message"
  [[ "$message" == *"spec.driver.volumeMounts[0].name"* ]] || fail "message does not name the field"
  [[ -z "$(k -n "$NS" get pods -l sparkoperator.k8s.io/app-name=bad-mount -o name)" ]] \
    || fail "an invalid application got pods"
}

test_ttl() {
  sed -e 's/name: sumsq$/name: sumsq-ttl/' -e 's/"10000000"/"1000"/' -e 's/timeToLiveSeconds: 3600/timeToLiveSeconds: 5/' \
    examples/k8s/sumsq.yaml | k -n "$NS" apply -f -
  wait_state sumsq-ttl COMPLETED 300
  local deadline=$((SECONDS + 90))
  while k -n "$NS" get sparkapp sumsq-ttl >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "sumsq-ttl still exists 90s after completion"
    sleep 2
  done
  k -n "$NS" wait --for=delete pod/sumsq-ttl-driver --timeout=60s || true
}

run "examples complete with their results" test_examples
run "a deleted executor is replaced and the job completes" test_executor_replacement
run "an invalid manifest ends FAILED with its message" test_invalid_manifest
run "timeToLiveSeconds removes a finished application" test_ttl

echo "$passed passed, $failed_tests failed"
[[ $failed_tests -eq 0 ]]
