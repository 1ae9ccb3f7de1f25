# syntax=docker/dockerfile:1
#
# The losant-operator image: the release binary built from the locked dependencies, run as a
# non-root user on distroless/cc (glibc and libgcc for the binary, CA certificates for TLS to
# Losant, nothing else: no shell, no package manager).
#
# Build:                        docker build -t losant-operator:dev .   (CI: scripts/build-image.sh)
# Check it starts:              docker run --rm losant-operator:dev --help
#                               docker run --rm losant-operator:dev crds
#
# Both base images are build arguments; their defaults are the real upstream images. Where this
# repository is developed no container registry is reachable, so the upstream bases are not pulled
# there: scripts/build-image.sh builds this same Dockerfile (both stages, the real cargo build) on
# local stand-in bases assembled from Debian bookworm packages (BUILDER_IMAGE: Debian's Rust with
# rust:*-bookworm's CARGO_HOME and PATH; RUNTIME_IMAGE: the files of distroless/cc-debian12:nonroot)
# and checks the image (runs read-only as 65532, prints the CRDs, no shell, CA bundle present).

# The toolchain the repository is tested with (Cargo.toml's rust-version is the minimum).
ARG RUST_VERSION=1.95
# The build stage needs cargo and a C toolchain (ring), with CARGO_HOME=/usr/local/cargo.
ARG BUILDER_IMAGE=docker.io/library/rust:${RUST_VERSION}-bookworm
# The runtime needs glibc, libgcc_s, the CA bundle and a user 65532; no shell.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
# Dependencies first, against stub sources: editing src/ then reuses this (slow) layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > src/bin/losant-emulator.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin losant-operator \
    && rm -rf src
COPY src ./src
# The stubs' build outputs are older than the real sources only by mtime; touch makes sure cargo
# rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin losant-operator \
    && cp target/release/losant-operator /losant-operator

FROM ${RUNTIME_IMAGE}
COPY --from=build /losant-operator /usr/local/bin/losant-operator
# distroless's nonroot user (65532), by number so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/losant-operator"]
CMD ["run"]
