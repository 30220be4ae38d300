# Images of Ember:
#   docker build --target operator -t ember-operator:dev .
#   docker build --target engine   -t ember-engine:dev .
#   docker build --target job      -t my-ember-job:dev .   # engine image + a job of your own
# The engine image holds the ember-examples job binary at /opt/ember/bin/ember-examples
# and is the base for users' own job images: the `job` stage builds the crate in
# JOB_DIR (default examples/job-template, README "Your first job") and puts its
# binary JOB_BIN next to ember-examples.
# Both run as a non-root user on a distroless base: no shell at run time.

ARG RUST_VERSION=1.95.0
# The base images, public by default. tests/images/build.sh passes images made
# locally instead (no registry there); nothing else in this file changes.
ARG BUILDER_IMAGE=rust:${RUST_VERSION}-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---- dependencies: built from the manifests alone, so this layer is reused until
# ---- Cargo.toml or Cargo.lock change.
FROM ${BUILDER_IMAGE} AS deps
ARG RUST_VERSION
# Use the image's toolchain rather than downloading the one rust-toolchain.toml names.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY macros/Cargo.toml macros/Cargo.toml
COPY driver/Cargo.toml driver/Cargo.toml
COPY executor/Cargo.toml executor/Cargo.toml
COPY streaming/Cargo.toml streaming/Cargo.toml
COPY operator/Cargo.toml operator/Cargo.toml
COPY examples/Cargo.toml examples/Cargo.toml
COPY tests/cluster/pod-runner/Cargo.toml tests/cluster/pod-runner/Cargo.toml
# Placeholder sources with the targets the manifests name, only to compile dependencies.
RUN for crate in core macros driver executor streaming operator examples tests/cluster/pod-runner; do \
        mkdir -p "$crate/src/bin" "$crate/tests" && echo 'fn main() {}' > "$crate/src/main.rs" && : > "$crate/src/lib.rs"; \
    done \
 && for file in operator/src/bin/crdgen.rs driver/src/bin/ember.rs streaming/tests/windows_cluster.rs core/build.rs; do \
        echo 'fn main() {}' > "$file"; \
    done \
 && cargo build --release --locked -p ember-operator -p ember-examples \
 && rm -rf core macros driver executor streaming operator examples tests/cluster/pod-runner \
           target/release/.fingerprint/ember* target/release/build/ember* \
           target/release/deps/*ember* target/release/ember*

# ---- the workspace's own crates.
FROM deps AS build
COPY . .
# Without debug info in the images (symbols stay: a backtrace still names functions).
RUN cargo build --release --locked -p ember-operator -p ember-examples \
 && mkdir -p /out \
 && cp target/release/ember-operator target/release/ember-examples /out/ \
 && strip --strip-debug /out/ember-operator /out/ember-examples

# ---- operator image.
FROM ${RUNTIME_IMAGE} AS operator
COPY --from=build /out/ember-operator /usr/local/bin/ember-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ember-operator"]

# ---- engine image: the job binary; the operator sets the command and the role.
FROM ${RUNTIME_IMAGE} AS engine
COPY --from=build /out/ember-examples /opt/ember/bin/ember-examples
WORKDIR /opt/ember/work
USER 65532:65532
ENV EMBER_LOCAL_DIRS=/tmp
ENTRYPOINT ["/opt/ember/bin/ember-examples"]

# ---- a job of your own, built with the same toolchain and glibc as the engine
# ---- image. Its crate depends on `ember` by the path ../../driver, so JOB_DIR is two
# ---- levels below the checkout (copy your crate to jobs/NAME, or edit the path).
FROM build AS job-build
ARG JOB_DIR=examples/job-template
ARG JOB_BIN=my-ember-job
RUN cp Cargo.lock "${JOB_DIR}/Cargo.lock" \
 && cargo build --release --manifest-path "${JOB_DIR}/Cargo.toml" --target-dir target \
 && mkdir -p /out/job \
 && cp "target/release/${JOB_BIN}" /out/job/ \
 && strip --strip-debug "/out/job/${JOB_BIN}" \
 && rm -rf target
# (The build tree is removed in the same step: only /out/job is used from this stage,
# and a layer holding the job's gigabytes of release artifacts is slow to commit and
# can fill the disk of a small build machine.)

FROM engine AS job
COPY --from=job-build /out/job/ /opt/ember/bin/
