#!/usr/bin/env bash
# Builds the release binary with the exact command the Dockerfile runs, then checks that binary:
# `--help` and `crds` work without a cluster (and print the committed CRDs), and it reaches an
# emulator over TLS trusting the system roots plus the emulator's CA (from a LosantApplication's
# caBundleSecretRef) against the local control plane. The image itself is built and run by
# scripts/build-image.sh and the node tier (scripts/node-tier.sh).
#
# Needs KUBECONFIG and LOSANT_E2E=1 for the TLS check (scripts/test.sh sets them).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Dockerfile's final build step, read from the Dockerfile itself so the two cannot drift.
build=$(grep -o 'cargo build --release --locked --bin losant-operator' Dockerfile | tail -n 1)
if [[ -z "$build" ]]; then
  echo "check-release: the Dockerfile has no 'cargo build --release --locked --bin losant-operator' step" >&2
  exit 1
fi
echo "== release build: $build"
$build
bin=$PWD/target/release/losant-operator
"$bin" --help >/dev/null
"$bin" crds | diff -q - crds/losant.io_crds.yaml >/dev/null ||
  { echo "check-release: '$bin crds' differs from crds/losant.io_crds.yaml" >&2; exit 1; }
echo "== release binary: --help, crds, and TLS to the emulator with its CA"
tests=(ops::the_binary_starts_without_a_cluster tenancy::a_private_install_with_its_own_ca_is_reached_with_tls_verified)
export LOSANT_OPERATOR_BIN=$bin
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --test e2e "${tests[@]}"
else
  cargo test --locked --test e2e -- "${tests[@]}"
fi
