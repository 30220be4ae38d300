#!/usr/bin/env bash
# A real Kubernetes control plane on loopback: etcd + kube-apiserver +
# kube-controller-manager, no kubelet, no scheduler, no kind.
#
#   cluster.sh start [STATE_DIR]   start everything; prints STATE_DIR last on stdout
#   cluster.sh stop STATE_DIR      kill what start started (by recorded PID)
#   cluster.sh stop --clean STATE_DIR   ... and remove STATE_DIR
#   cluster.sh install-crds STATE_DIR DIR_OR_FILE
#                                  apply CRD YAML (x-kubernetes-validations
#                                  stripped: 1.20 has no CEL) and wait for
#                                  Established; EMBER_CLUSTER_CRDS=DIR at start
#                                  does this before the controller manager runs
#   cluster.sh sa-kubeconfig STATE_DIR NAMESPACE SA OUT
#                                  write a kubeconfig that authenticates as the
#                                  ServiceAccount's real token (created by the
#                                  controller-manager's token controller)
#
# STATE_DIR (a fresh temp dir when not given) holds:
#   env            shell-sourceable: KUBECONFIG, EMBER_CLUSTER_SERVER, ports, ...
#   kubeconfig     cluster-admin (static token, group system:masters)
#   pki/           self-made CA, apiserver serving cert, service-account key
#   tokens.csv     the static token file
#   pids/*.pid     one per process; stop kills exactly these
#   logs/*.log     etcd, kube-apiserver, kube-controller-manager
#   etcd/          etcd's data
# Ports are picked free at start; nothing listens on a fixed port. Every wait
# is bounded (EMBER_CLUSTER_START_TIMEOUT seconds each, default 90).
#
# Binaries: EMBER_CLUSTER_BIN if set, else the directory build.sh prints
# (build.sh is a no-op when the build is cached).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TIMEOUT="${EMBER_CLUSTER_START_TIMEOUT:-90}"

log() { printf '[cluster.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND every 0.2 s for $TIMEOUT s.
wait_for() {
    local what="$1"; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "timed out after ${TIMEOUT}s waiting for $what"
        fi
        sleep 0.2
    done
}

pid_alive() { # pid_alive NAME: the recorded process still runs
    local f="$STATE/pids/$1.pid"
    [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# spawn NAME COMMAND...: start in the background, own session, log + pid recorded.
spawn() {
    local name="$1"; shift
    setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
    log "started $name (pid $!)"
}

check_alive() { # fail fast (with the log tail) when a process died
    local name="$1"
    if ! pid_alive "$name"; then
        tail -n 30 "$STATE/logs/$name.log" >&2 || true
        die "$name exited; log: $STATE/logs/$name.log"
    fi
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" --request-timeout=10s "$@"; }

write_kubeconfig() { # write_kubeconfig FILE USER TOKEN
    local ca
    ca="$(base64 -w0 <"$STATE/pki/ca.crt")"
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ember-cluster
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: ember-cluster
  context:
    cluster: ember-cluster
    user: $2
    namespace: default
current-context: ember-cluster
EOF
    chmod 600 "$1"
}

# strip_validations: drops `x-kubernetes-validations` (CEL rules; Kubernetes
# 1.25+) from CRD YAML on stdin, since 1.20 rejects the field. The rules stay
# in crds/ for real clusters. The key's value (a block list) is every
# following line indented deeper, or at the same indent starting with "- ".
strip_validations() {
    awk '
        skipping {
            match($0, /^ */); ind = RLENGTH
            rest = substr($0, ind + 1)
            if (rest == "" || ind > kind || (ind == kind && rest ~ /^- /)) next
            skipping = 0
        }
        /^ *(- )?x-kubernetes-validations:/ {
            match($0, /^ */); kind = RLENGTH
            if ($0 ~ /^ *- /) { sub(/x-kubernetes-validations:.*/, ""); print; kind += 2 }
            skipping = 1; next
        }
        { print }'
}

# install_crds DIR_OR_FILE: applies the CRDs (validations stripped) and waits
# until each is Established.
install_crds() {
    local src="$1" f names
    local files=()
    if [[ -d "$src" ]]; then
        while IFS= read -r f; do files+=("$f"); done < <(find "$src" -maxdepth 1 -name '*.yaml' -o -maxdepth 1 -name '*.yml' | sort)
    else
        files=("$src")
    fi
    [[ ${#files[@]} -gt 0 ]] || die "no CRD YAML in $src"
    for f in "${files[@]}"; do
        strip_validations <"$f" >"$STATE/crd.$(basename "$f")"
        names="$(kubectl_ apply -f "$STATE/crd.$(basename "$f")" -o name)" ||
            die "the API server rejected the CRDs in $f"
        log "installed $names"
        local n
        for n in $names; do
            kubectl_ wait --for condition=established --timeout="${TIMEOUT}s" "$n" >/dev/null ||
                die "$n not Established within ${TIMEOUT}s"
        done
    done
}

make_pki() {
    local pki="$STATE/pki"
    mkdir -p "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ember-cluster-ca" \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
        -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
    cat >"$pki/apiserver.ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 2 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

cmd_start() {
    STATE="${1:-}"
    if [[ -z "$STATE" ]]; then
        STATE="$(mktemp -d "${TMPDIR:-/tmp}/ember-cluster.XXXXXX")"
    fi
    mkdir -p "$STATE"
    STATE="$(cd "$STATE" && pwd)"
    [[ ! -d "$STATE/pids" ]] || die "$STATE already holds a cluster (stop it first)"
    mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/etcd"
    # Whatever fails below, leave nothing running.
    trap 'rc=$?; if [[ $rc -ne 0 ]]; then log "start failed; stopping what was started"; cmd_stop "$STATE" || true; fi' EXIT

    BIN="${EMBER_CLUSTER_BIN:-}"
    if [[ -z "$BIN" ]]; then
        BIN="$("$HERE/build.sh" | tail -n1)"
    fi
    for b in kube-apiserver kube-controller-manager kubectl; do
        [[ -x "$BIN/$b" ]] || die "$BIN/$b missing (run tests/cluster/build.sh)"
    done
    command -v etcd >/dev/null || die "etcd missing (run tests/cluster/build.sh)"

    local t0=$SECONDS
    make_pki
    ADMIN_TOKEN="$(openssl rand -hex 24)"
    printf '%s,ember-admin,ember-admin,"system:masters"\n' "$ADMIN_TOKEN" >"$STATE/tokens.csv"
    chmod 600 "$STATE/tokens.csv"

    ETCD_PORT="$(free_port)"
    ETCD_PEER_PORT="$(free_port)"
    API_PORT="$(free_port)"
    while [[ "$ETCD_PEER_PORT" == "$ETCD_PORT" ]]; do ETCD_PEER_PORT="$(free_port)"; done
    while [[ "$API_PORT" == "$ETCD_PORT" || "$API_PORT" == "$ETCD_PEER_PORT" ]]; do API_PORT="$(free_port)"; done

    spawn etcd etcd --name ember --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "ember=http://127.0.0.1:$ETCD_PEER_PORT" \
        --listen-metrics-urls "" --log-level warn --quota-backend-bytes 2147483648
    wait_for "etcd health" bash -c "pid_alive() { kill -0 \$(cat '$STATE/pids/etcd.pid'); }; pid_alive && curl -sf --max-time 2 http://127.0.0.1:$ETCD_PORT/health"
    check_alive etcd

    spawn kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
        --secure-port "$API_PORT" --insecure-port 0 \
        --cert-dir "$STATE/pki" \
        --tls-cert-file "$STATE/pki/apiserver.crt" --tls-private-key-file "$STATE/pki/apiserver.key" \
        --client-ca-file "$STATE/pki/ca.crt" \
        --token-auth-file "$STATE/tokens.csv" \
        --authorization-mode RBAC \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$STATE/pki/sa.pub" \
        --service-account-signing-key-file "$STATE/pki/sa.key" \
        --api-audiences https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range 10.0.0.0/24 \
        --allow-privileged=true --profiling=false \
        --v 1
    export STATE ADMIN_TOKEN API_PORT
    wait_for "kube-apiserver /readyz" bash -c "kill -0 \$(cat '$STATE/pids/kube-apiserver.pid') && curl -sf --max-time 3 --cacert '$STATE/pki/ca.crt' -H 'Authorization: Bearer $ADMIN_TOKEN' https://127.0.0.1:$API_PORT/readyz"
    check_alive kube-apiserver
    log "API server version: $(curl -sf --max-time 5 --cacert "$STATE/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$API_PORT/version" | tr -d ' \n')"
    write_kubeconfig "$STATE/kubeconfig" ember-admin "$ADMIN_TOKEN"

    # CRDs installed before the controller manager starts are known to its
    # garbage collector at once (otherwise only after its ~30 s rediscovery).
    if [[ -n "${EMBER_CLUSTER_CRDS:-}" ]]; then
        install_crds "$EMBER_CLUSTER_CRDS"
    fi

    # The controller manager talks to the API server as the admin. Controllers
    # not needed without kubelets are off: nodelifecycle would evict pods from
    # the pod runner's node, which posts no heartbeats.
    write_kubeconfig "$STATE/kcm.kubeconfig" ember-admin "$ADMIN_TOKEN"
    spawn kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$STATE/kcm.kubeconfig" \
        --port 0 --secure-port 0 --leader-elect=false \
        --controllers '*,-nodelifecycle,-cloud-node-lifecycle,-service,-route,-nodeipam,-attachdetach,-persistentvolume-expander,-persistentvolume-binder,-ttl' \
        --service-account-private-key-file "$STATE/pki/sa.key" \
        --root-ca-file "$STATE/pki/ca.crt" \
        --cluster-signing-cert-file "$STATE/pki/ca.crt" \
        --cluster-signing-key-file "$STATE/pki/ca.key" \
        --use-service-account-credentials=false \
        --v 1
    # Ready when the token controller has made the default ServiceAccount's token.
    wait_for "kube-controller-manager (default ServiceAccount token)" bash -c \
        "kill -0 \$(cat '$STATE/pids/kube-controller-manager.pid') && test -n \"\$('$BIN/kubectl' --kubeconfig '$STATE/kubeconfig' --request-timeout=5s -n default get serviceaccount default -o jsonpath='{.secrets[0].name}')\""
    check_alive kube-controller-manager

    cat >"$STATE/env" <<EOF
export KUBECONFIG='$STATE/kubeconfig'
export EMBER_CLUSTER_STATE='$STATE'
export EMBER_CLUSTER_SERVER='https://127.0.0.1:$API_PORT'
export EMBER_CLUSTER_CA='$STATE/pki/ca.crt'
export EMBER_CLUSTER_BIN='$BIN'
export EMBER_CLUSTER_ETCD='http://127.0.0.1:$ETCD_PORT'
EOF
    trap - EXIT
    log "cluster up in $((SECONDS - t0)) s: server https://127.0.0.1:$API_PORT, kubeconfig $STATE/kubeconfig"
    echo "$STATE"
}

# Kill one recorded process: TERM, up to 10 s, then KILL. The PID is only
# signalled while its command line still mentions the state dir, so a reused
# PID is never hit.
stop_one() {
    local name="$1" f="$STATE/pids/$1.pid" pid
    [[ -f "$f" ]] || return 0
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE"; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            log "killed $name (pid $pid) after 10 s"
        else
            log "stopped $name (pid $pid)"
        fi
    fi
    rm -f "$f"
}

cmd_stop() {
    local clean=0
    if [[ "${1:-}" == "--clean" ]]; then clean=1; shift; fi
    STATE="${1:?usage: cluster.sh stop [--clean] STATE_DIR}"
    [[ -d "$STATE" ]] || return 0
    STATE="$(cd "$STATE" && pwd)"
    # The two API clients at once (each takes a few seconds to shut down),
    # then their store.
    # (Wait for exactly these two: when start fails, the servers themselves
    # are this shell's background jobs, and a bare `wait` would wait for them.)
    local w1 w2
    stop_one kube-controller-manager &
    w1=$!
    stop_one kube-apiserver &
    w2=$!
    wait "$w1" "$w2" || true
    stop_one etcd
    if [[ -d "$STATE/pids" ]]; then
        for f in "$STATE"/pids/*.pid; do [[ -e "$f" ]] && stop_one "$(basename "$f" .pid)"; done
        rmdir "$STATE/pids" 2>/dev/null || true
    fi
    if [[ $clean -eq 1 ]]; then rm -rf "$STATE"; fi
}

cmd_sa_kubeconfig() {
    STATE="${1:?state dir}"; local ns="${2:?namespace}" sa="${3:?serviceaccount}" out="${4:?output file}"
    # shellcheck disable=SC1091
    source "$STATE/env"
    BIN="$EMBER_CLUSTER_BIN"
    API_PORT="${EMBER_CLUSTER_SERVER##*:}"
    kubectl_ get namespace "$ns" >/dev/null 2>&1 || kubectl_ create namespace "$ns" >/dev/null
    kubectl_ -n "$ns" get serviceaccount "$sa" >/dev/null 2>&1 || kubectl_ -n "$ns" create serviceaccount "$sa" >/dev/null
    local secret=""
    local deadline=$((SECONDS + TIMEOUT))
    while [[ -z "$secret" ]]; do
        secret="$(kubectl_ -n "$ns" get serviceaccount "$sa" -o jsonpath='{.secrets[0].name}' 2>/dev/null || true)"
        [[ -n "$secret" ]] && break
        ((SECONDS < deadline)) || die "timed out waiting for the token of $ns/$sa"
        sleep 0.2
    done
    local token
    token="$(kubectl_ -n "$ns" get secret "$secret" -o jsonpath='{.data.token}' | base64 -d)"
    [[ -n "$token" ]] || die "secret $ns/$secret has no token"
    write_kubeconfig "$out" "system:serviceaccount:$ns:$sa" "$token"
    log "wrote $out (system:serviceaccount:$ns:$sa)"
}

cmd_install_crds() {
    STATE="${1:?state dir}"
    # shellcheck disable=SC1091
    source "$STATE/env"
    BIN="$EMBER_CLUSTER_BIN"
    install_crds "${2:?CRD file or directory}"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    sa-kubeconfig) shift; cmd_sa_kubeconfig "$@" ;;
    install-crds) shift; cmd_install_crds "$@" ;;
    *) echo "usage: $0 start [STATE_DIR] | stop [--clean] STATE_DIR | install-crds STATE_DIR PATH | sa-kubeconfig STATE_DIR NS SA OUT" >&2; exit 2 ;;
esac
