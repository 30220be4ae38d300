# Images of Ember:
#   docker build --target operator -t ember-operator:dev .
#   docker build --target engine   -t ember-engine:dev .
# The engine image holds the ember-examples job binary at /opt/ember/bin/ember-examples
# and is the base for users' own job images (COPY your binary to /opt/ember/bin/).
# Both run as a non-root user on a distroless base: no shell at run time.

ARG RUST_VERSION=1.95.0

# ---- dependencies: built from the manifests alone, so this layer is reused until
# ---- Cargo.toml or Cargo.lock change.
FROM rust:${RUST_VERSION}-slim-bookworm AS deps
ARG RUST_VERSION
# Use the image's toolchain rather than downloading the one rust-toolchain.toml names.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY driver/Cargo.toml driver/Cargo.toml
COPY executor/Cargo.toml executor/Cargo.toml
COPY operator/Cargo.toml operator/Cargo.toml
COPY examples/Cargo.toml examples/Cargo.toml
# Placeholder sources with the targets the manifests name, only to compile dependencies.
RUN for crate in core driver executor operator examples; do \
        mkdir -p "$crate/src/bin" && echo 'fn main() {}' > "$crate/src/main.rs" && : > "$crate/src/lib.rs"; \
    done \
 && echo 'fn main() {}' > operator/src/bin/crdgen.rs \
 && echo 'fn main() {}' > core/build.rs \
 && cargo build --release --locked -p ember-operator -p ember-examples \
 && rm -rf core driver executor operator examples \
           target/release/.fingerprint/ember* target/release/build/ember* \
           target/release/deps/*ember* target/release/ember*

# ---- the workspace's own crates.
FROM deps AS build
COPY . .
RUN cargo build --release --locked -p ember-operator -p ember-examples \
 && mkdir -p /out \
 && cp target/release/ember-operator target/release/ember-examples /out/

# ---- operator image.
FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/ember-operator /usr/local/bin/ember-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ember-operator"]

# ---- engine image: the job binary; the operator sets the command and the role.
FROM gcr.io/distroless/cc-debian12:nonroot AS engine
COPY --from=build /out/ember-examples /opt/ember/bin/ember-examples
WORKDIR /opt/ember/work
USER 65532:65532
ENV EMBER_LOCAL_DIRS=/tmp
ENTRYPOINT ["/opt/ember/bin/ember-examples"]
