#!/usr/bin/env bash
# Builds Ember's container images from the project's Dockerfile with podman, on a
# machine without a Docker engine and without a registry (docs/OPERATOR.md, "Images").
#
#   tests/images/build.sh            # base images (once), then operator, engine and job images
#   tests/images/build.sh --check    # exit 0 when podman can run containers here, else say why
#                                    # (installs podman, runc and debootstrap when missing)
#
# What is built is the Dockerfile users build: only the base images differ, passed
# as the build arguments BUILDER_IMAGE and RUNTIME_IMAGE, made here locally:
#   localhost/ember-base/rust:<version>-slim-bookworm  debootstrap'd Debian bookworm
#       (minbase, gcc, libc6-dev, ca-certificates) with this machine's own Rust
#       toolchain copied in, laid out as the official rust image lays it out;
#   localhost/ember-base/cc-debian12:nonroot  a distroless-style runtime root made
#       from the same Debian packages distroless's cc image holds (libc6, libgcc-s1,
#       libstdc++6, libssl3, ca-certificates, tzdata, netbase, base-files), with the
#       nonroot user 65532 and no shell.
# Results: localhost/ember-operator:dev, localhost/ember-engine:dev,
# localhost/ember-job-template:dev.
#
# Environment:
#   EMBER_IMAGE_TAG   tag of the built images (default dev)
#   CONTAINERS_CONF   defaults to tests/images/containers.conf (runc, no default ulimits:
#                     what this machine's sandbox accepts)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
tag="${EMBER_IMAGE_TAG:-dev}"
rust_version="$(sed -n 's/^ARG RUST_VERSION=//p' "$root/Dockerfile")"
builder_image="localhost/ember-base/rust:${rust_version}-slim-bookworm"
runtime_image="localhost/ember-base/cc-debian12:nonroot"
suite=bookworm
mirror="${EMBER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { echo "[images] $*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Installs podman and the tools the base images need, from Debian's packages.
install_tools() {
    local missing=()
    for tool in podman:podman runc:runc debootstrap:debootstrap; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing ${missing[*]} and cannot install them (needs root and apt-get)"
        return 1
    fi
    log "installing ${missing[*]} from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" uidmap >/dev/null 2>&1 || {
        apt-get update -q >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" uidmap >/dev/null
    }
}

# Whether a container runs here at all: an empty image with one static file.
# Building needs root (debootstrap, files owned by 65532), as does the runner's use.
can_run() {
    if [[ $(id -u) != 0 ]]; then
        log "building the base images needs root (debootstrap)"
        return 1
    fi
    install_tools || return 1
    podman image exists localhost/ember-base/probe:1 || {
        mkdir -p "$work/probe"
        printf 'ok\n' > "$work/probe/probe"
        tar -C "$work/probe" -c . | podman import -q - localhost/ember-base/probe:1 >/dev/null || return 1
    }
    # The image has no program to run; a runtime that starts the container fails with
    # "executable file not found", one that cannot start any container fails earlier.
    local out
    out="$(podman run --rm --network none localhost/ember-base/probe:1 /probe 2>&1 || true)"
    if grep -qE '"/probe": (permission denied|exec format error)' <<<"$out"; then
        return 0
    fi
    log "podman cannot start a container here: $out"
    return 1
}

# The build stage's base: Debian bookworm plus this machine's Rust toolchain.
make_builder_base() {
    podman image exists "$builder_image" && return 0
    local toolchain
    toolchain="$(rustc --print sysroot)"
    [[ -x "$toolchain/bin/cargo" ]] || { log "no cargo in $toolchain"; return 1; }
    local have
    have="$(rustc --version | awk '{print $2}')"
    if [[ "$have" != "$rust_version" ]]; then
        log "the Dockerfile's RUST_VERSION is $rust_version but this machine's rustc is $have"
        return 1
    fi
    local dir="$work/builder"
    mkdir -p "$dir"
    log "debootstrap $suite (minbase, gcc, libc6-dev) for $builder_image"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates "$suite" "$dir/rootfs" "$mirror" \
        > "$dir/debootstrap.log" 2>&1 || { tail -20 "$dir/debootstrap.log" >&2; return 1; }
    rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"*
    # Trust what this machine trusts: where a TLS-inspecting proxy stands between
    # the build and crates.io, its CA is in the host's bundle (a local setting, as a
    # company's CA would be added to a company's base image).
    cp /etc/ssl/certs/ca-certificates.crt "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
    # As the official image: RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo,
    # the toolchain named by its version, rustup's proxies on PATH.
    local tc="$dir/rootfs/usr/local/rustup/toolchains/${rust_version}-x86_64-unknown-linux-gnu"
    mkdir -p "$tc" "$dir/rootfs/usr/local/cargo/bin"
    cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$tc/"
    rm -rf "$tc/lib/rustlib/"manifest-rust-docs* "$tc/lib/rustlib/src"
    local rustup
    rustup="$(command -v rustup)" || { log "no rustup on PATH: the build image's toolchain comes from this machine's"; return 1; }
    cp "$rustup" "$dir/rootfs/usr/local/cargo/bin/rustup"
    for proxy in cargo rustc rustdoc cargo-clippy clippy-driver rustfmt cargo-fmt; do
        ln -s rustup "$dir/rootfs/usr/local/cargo/bin/$proxy"
    done
    printf 'version = "12"\ndefault_toolchain = "%s-x86_64-unknown-linux-gnu"\n' "$rust_version" \
        > "$dir/rootfs/usr/local/rustup/settings.toml"
    tar -C "$dir/rootfs" -c . | podman import -q \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "ENV RUST_VERSION=$rust_version" \
        --change 'CMD ["/bin/bash"]' \
        - "$builder_image" >/dev/null
    log "made $builder_image"
}

# The runtime base: distroless's cc image rebuilt from the same Debian packages.
make_runtime_base() {
    podman image exists "$runtime_image" && return 0
    local dir="$work/runtime"
    mkdir -p "$dir/debs" "$dir/rootfs"
    log "downloading $suite's runtime packages for $runtime_image"
    # From the suite's archive (not this machine's apt sources), as the builder.
    debootstrap --download-only --variant=minbase \
        --include=netbase,tzdata,libgomp1,libstdc++6,libssl3,ca-certificates \
        "$suite" "$dir/download" "$mirror" > "$dir/debootstrap.log" 2>&1 \
        || { tail -20 "$dir/debootstrap.log" >&2; return 1; }
    for pkg in base-files netbase tzdata libc6 libgcc-s1 libgomp1 libstdc++6 libssl3 ca-certificates; do
        local deb
        deb="$(ls "$dir/download/var/cache/apt/archives/${pkg}_"*.deb 2>/dev/null | head -n 1)"
        [[ -n "$deb" ]] || { log "$suite has no package $pkg"; return 1; }
        dpkg-deb -x "$deb" "$dir/rootfs"
    done
    local r="$dir/rootfs"
    # Only what a program needs at run time: no package scripts ran, and nothing that
    # is a shell or a tool (distroless has none).
    rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/lintian" "$r/usr/share/locale" \
           "$r/usr/share/info" "$r/usr/share/common-licenses" "$r/usr/sbin" "$r/usr/bin" \
           "$r/sbin" "$r/bin" "$r/usr/lib/x86_64-linux-gnu/gconv" "$r/usr/libexec"
    mkdir -p "$r/tmp" "$r/home/nonroot" "$r/etc/ssl/certs" "$r/var/run"
    chmod 1777 "$r/tmp"
    chown 65532:65532 "$r/home/nonroot"
    # The bundle update-ca-certificates would have made from the package's certificates.
    find "$r/usr/share/ca-certificates" -name '*.crt' -print0 | sort -z | xargs -0 cat \
        > "$r/etc/ssl/certs/ca-certificates.crt"
    cat > "$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    cat > "$r/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
    # Debian's usrmerge layout: /lib64 and /lib point into /usr.
    [[ -e "$r/lib64" ]] || ln -s usr/lib64 "$r/lib64"
    [[ -e "$r/lib" ]] || ln -s usr/lib "$r/lib"
    tar -C "$r" -c . | podman import -q \
        --change 'USER 65532' \
        --change 'WORKDIR /home/nonroot' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        - "$runtime_image" >/dev/null
    log "made $runtime_image"
}

build_image() {
    local target="$1" name="$2"
    local t0=$SECONDS
    local out="$work/build-$target.log"
    if ! podman build --format docker --network host --layers \
        --build-arg "BUILDER_IMAGE=$builder_image" \
        --build-arg "RUNTIME_IMAGE=$runtime_image" \
        --target "$target" -t "localhost/$name:$tag" -f "$root/Dockerfile" "$root" >"$out" 2>&1; then
        tail -40 "$out" >&2
        log "building target $target failed"
        return 1
    fi
    log "built localhost/$name:$tag (target $target) in $((SECONDS - t0)) s"
}

if [[ "${1:-}" == --check ]]; then
    can_run
    exit
fi
can_run || { log "podman cannot run containers here"; exit 1; }
make_runtime_base
make_builder_base
build_image operator ember-operator
build_image engine ember-engine
build_image job ember-job-template
