#!/usr/bin/env bash
# The soak (see bench/README.md, "Soak"): several hundred Integrations churned for at least
# half an hour with a fast resync, creates, edits, Secret rotations, deletions, changes made in
# Losant behind the operator's back and an emulator alternating clean and faulty phases; the
# operator's RSS, heap, file descriptors, threads and Tokio tasks and the Losant calls per sweep
# sampled over time; a hard end check (exactly one remote per live Integration by id and by
# name, none for deleted ones). Not a timed test: it fails only when the end state is wrong.
#
# Usage:
#   scripts/soak.sh                        # 400 Integrations, 30 minutes; writes bench/soak/
#   scripts/soak.sh --size 300 --minutes 45
#   scripts/soak.sh --smoke                # about 2 minutes, 24 Integrations, every kind of churn,
#                                          # on the control plane in $KUBECONFIG (what CI runs);
#                                          # results in target/soak-smoke
#   scripts/soak.sh --plot DIR             # only (re)draw DIR/soak.png from DIR/samples.csv
#
# Environment: SOAK_CP_DIR / SOAK_CP_PORT choose the soak's own control plane (default
# /tmp/losant-soak-cp, port 17853), so a developer's cluster is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

size=400
minutes=30
smoke=0
plot_only=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --plot) plot_only=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Draws DIR/soak.png with matplotlib: the system's, or a virtualenv's made once for it.
plot() {
  local dir=$1 python=python3
  if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
    if [[ ! -x target/soak-venv/bin/python ]]; then
      python3 -m venv target/soak-venv
      target/soak-venv/bin/pip install --quiet matplotlib
    fi
    python=target/soak-venv/bin/python
  fi
  "$python" scripts/soak-plot.py "$dir/samples.csv" "$dir/soak.png"
  echo "soak: plotted $dir/soak.png"
}

if [[ -n $plot_only ]]; then
  plot "$plot_only"
  exit 0
fi

if [[ $smoke == 1 ]]; then
  # Debug binaries (the test run built them, with the test kit) on the running control plane,
  # in a throwaway namespace: proves the soak works end to end, every kind of churn included,
  # and fails when the end check does. It measures nothing (too short to judge flatness).
  cargo build --locked --bins --features testkit
  out=target/soak-smoke
  rm -rf "$out" && mkdir -p "$out"
  target/debug/bench soak --size 24 --applications 2 --secrets 3 --duration-seconds 75 \
    --resync-seconds 2 --sample-seconds 3 --round-ms 1000 --phase-seconds 25 \
    --error-rate 0.1 --fault-after-commit 0.1 --converge-timeout-seconds 300 \
    --require-every-kind --bin-dir target/debug --namespace "soak-smoke-$RANDOM" --cleanup \
    --log-dir "$out/logs" --out "$out" "${extra[@]}"
  exit 0
fi

# The operator and the emulator as released, without the test kit; then the driver with it.
cargo build --release --locked --bins
cargo build --release --locked --features testkit --bin bench
export LOSANT_CP_DIR=${SOAK_CP_DIR:-/tmp/losant-soak-cp}
export LOSANT_CP_PORT=${SOAK_CP_PORT:-17853}
trap 'scripts/control-plane.sh down >/dev/null 2>&1 || true' EXIT
scripts/control-plane.sh down >/dev/null 2>&1 || true
eval "$(scripts/control-plane.sh up)"
mkdir -p bench/soak
status=0
target/release/bench soak --size "$size" --duration-seconds $((minutes * 60)) \
  --log-dir target/soak-logs --out bench/soak "${extra[@]}" || status=$?
# The samples are written even when the end check failed: plot them all the same.
if [[ -f bench/soak/samples.csv ]]; then
  plot bench/soak || echo "soak: the plot failed (the samples are in bench/soak/samples.csv)" >&2
fi
exit "$status"
