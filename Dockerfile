# syntax=docker/dockerfile:1
#
# The losant-operator image: the release binary built from the locked dependencies, run as a
# non-root user on distroless/cc (glibc and libgcc for the binary, CA certificates for TLS to
# Losant, nothing else: no shell, no package manager).
#
# Build (the command CI runs):  docker build -t losant-operator:dev .
# Check it starts:              docker run --rm losant-operator:dev --help
#                               docker run --rm losant-operator:dev crds
#
# No container runtime exists where this repository is developed, so the image build itself is
# unverified there; see the README ("Container image") for what is and is not checked.

# The toolchain the repository is tested with (Cargo.toml's rust-version is the minimum).
ARG RUST_VERSION=1.95
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
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
