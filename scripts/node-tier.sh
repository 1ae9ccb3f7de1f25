#!/usr/bin/env bash
# The node tier of the tests: the Helm chart as users install it, on real nodes, with the real
# image. Builds the image (scripts/build-image.sh), then, inside scripts/loopback-only.sh (a
# network namespace where any packet off loopback fails the run), starts a control plane with two
# nodes (scripts/control-plane.sh up --node), loads the image into the nodes and runs
# tests/helm_node.rs; then stops everything and undoes the nodes' host changes.
#
# Usage: scripts/node-tier.sh
# Environment: LOSANT_NODE_CP_DIR (default /tmp/losant-operator-node-cp) and LOSANT_NODE_CP_PORT
# (default 17443) place its cluster beside the main tests' one. Nothing here is skipped: if
# Docker, a node or the image cannot start, the tier fails and says why.
set -euo pipefail
cd "$(dirname "$0")/.."

image=losant-operator:dev
export LOSANT_CP_DIR=${LOSANT_NODE_CP_DIR:-/tmp/losant-operator-node-cp}
export LOSANT_CP_PORT=${LOSANT_NODE_CP_PORT:-17443}
export LOSANT_NODE_IMAGE=$image

# A Docker daemon for the image build (started by build-image.sh when none runs; stopped again
# at the end if it was).
dockerd_pidfile=${LOSANT_DOCKERD_PIDFILE:-/tmp/losant-operator-dockerd.pid}
started_dockerd=
[[ -f $dockerd_pidfile ]] || started_dockerd=1
stop_build_dockerd() {
  [[ -n $started_dockerd && -f $dockerd_pidfile ]] || return 0
  local pid
  pid=$(cat "$dockerd_pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
}

echo "== node tier: the image"
scripts/build-image.sh --tag "$image"
# Everything that downloads happens out here (apt, the Debian sources, crates.io, npm): inside
# the namespace nothing may leave loopback. The binaries are built (or found cached) first.
echo "== node tier: control plane and node binaries"
scripts/build-control-plane.sh >/dev/null
scripts/build-node.sh >/dev/null
cargo build --locked --tests --bins >/dev/null 2>&1 || cargo build --locked --tests --bins
eval "$(scripts/install-helm.sh)"

echo "== node tier: loopback-only namespace, nodes, chart"
inner() {
  set -euo pipefail
  trap 'scripts/control-plane.sh down >&2 || true' EXIT
  eval "$(scripts/control-plane.sh up --node)"
  export KUBECONFIG
  scripts/control-plane.sh load-image "$image"
  export LOSANT_E2E=1 LOSANT_NODE_E2E=1 LOSANT_REQUIRE_HELM=1
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --offline --locked --no-fail-fast --test helm_node
  else
    cargo test --offline --locked --no-fail-fast --test helm_node
  fi
}
export -f inner
export image
status=0
scripts/loopback-only.sh --self-test -- bash -c inner || status=$?
stop_build_dockerd
exit "$status"
