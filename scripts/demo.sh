#!/usr/bin/env bash
# Runs the operator's main job on an embedded default: a local Kubernetes control plane (a real
# kube-apiserver + etcd, built from Debian's sources the first time), the Losant API emulator, and
# the operator, then applies examples/ and shows every integration going Ready.
#
# Usage: scripts/demo.sh [--once]
#   --once   stop everything after showing the result (default: keep running until Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[[ "${1:-}" == "--once" ]] && once=true

namespace=losant-demo
app_id=575ec8687ae143cd83dc4a97
export LOSANT_CP_DIR=${LOSANT_CP_DIR:-/tmp/losant-operator-demo}
export LOSANT_CP_PORT=${LOSANT_CP_PORT:-18443}
work=$(mktemp -d /tmp/losant-demo.XXXXXX)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/control-plane.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "Building the operator and the emulator"
cargo build --quiet --bins

step "Starting a local Kubernetes control plane (the first run builds it: about 5 minutes)"
eval "$(scripts/control-plane.sh up | grep '^export ')"

step "Starting the Losant API emulator on 127.0.0.1:8787"
target/debug/losant-emulator --listen 127.0.0.1:8787 --token demo-token --application "$app_id" \
  > "$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q listening "$work/emulator.log" && break; sleep 0.1; done
grep -q listening "$work/emulator.log" || { cat "$work/emulator.log"; exit 1; }

step "Installing the CRDs"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for condition=established crd/integrations.losant.io crd/losantapplications.losant.io --timeout=60s >/dev/null
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null

step "Starting the operator (watching namespace $namespace)"
target/debug/losant-operator run --namespace "$namespace" --resync-interval 10s --log-format text \
  --allowed-http-hosts 127.0.0.1 --metrics-addr 127.0.0.1:0 \
  > "$work/operator.log" 2>&1 &
pids+=($!)

step "kubectl apply -f examples/"
kubectl apply -n "$namespace" -f examples/

step "Waiting for every integration to be Ready"
if ! kubectl wait -n "$namespace" --for=condition=Ready integrations --all --timeout=120s; then
  kubectl get losant -n "$namespace" -o wide
  tail -50 "$work/operator.log"
  exit 1
fi
kubectl get losant -n "$namespace"

step "What Losant (the emulator) now holds"
curl -s -H 'Authorization: Bearer demo-token' \
  "http://127.0.0.1:8787/applications/$app_id/integrations?_links=false&sortField=name" |
  python3 -c '
import json, sys
for item in json.load(sys.stdin)["items"]:
    print("  %s  %-14s %s" % (item["id"], item["integrationType"], item["name"]))
'

if $once; then
  step "Done (--once): stopping everything"
  exit 0
fi
cat <<TXT

Everything keeps running until Ctrl-C. Try:
  export KUBECONFIG=$LOSANT_CP_DIR/kubeconfig
  kubectl get losant -n $namespace
  kubectl describe integration factory-broker -n $namespace
  kubectl get events -n $namespace
Operator log: $work/operator.log
TXT
wait "${pids[1]}"
