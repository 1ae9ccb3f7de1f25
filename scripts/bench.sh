#!/usr/bin/env bash
# The scale benchmark (see bench/README.md). Builds the release binaries, then for every size,
# strategy and run starts a fresh local control plane, runs `bench run`, and throws the control
# plane away; finally `bench summarize` writes bench/results.json and bench/table.md.
#
# Usage:
#   scripts/bench.sh                       # 1,000 and 10,000 Integrations, 3 runs each; the
#                                          # per-object baseline only up to 1,000 unless
#                                          # --strategies names it (at 10,000 it needs 333
#                                          # requests/s against a budget of 50)
#   scripts/bench.sh --sizes "1000" --runs 1 --strategies per-application
#   scripts/bench.sh --smoke               # a tiny run of each strategy on the control plane in
#                                          # $KUBECONFIG (what CI runs), results in target/bench-smoke
#
# Environment: BENCH_CP_DIR / BENCH_CP_PORT choose the benchmark's own control plane
# (default /tmp/losant-bench-cp, port 17843), so a developer's cluster is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="1000 10000"
runs=3
strategies="per-application per-object"
strategies_given=0
smoke=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --strategies) strategies=$2; strategies_given=1; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ $smoke == 1 ]]; then
  # Debug binaries (the test run already built them, with the test kit the benchmark needs) on
  # the running control plane, in throwaway namespaces: this proves the benchmark works, it
  # measures nothing.
  cargo build --locked --bins --features testkit
  out=target/bench-smoke
  rm -rf "$out" && mkdir -p "$out"
  files=()
  for strategy in per-application per-object; do
    ns="bench-smoke-$strategy-$RANDOM"
    target/debug/bench run --size 20 --applications 2 --strategy "$strategy" \
      --resync-seconds 4 --sweeps 1 --edits 5 --bin-dir target/debug --namespace "$ns" \
      --timeout-seconds 300 --cleanup --log-dir "$out/logs-$strategy" --out "$out/$strategy.json"
    files+=("$out/$strategy.json")
  done
  target/debug/bench summarize "${files[@]}" --out "$out/results.json" --table "$out/table.md"
  exit 0
fi

# The operator and the emulator as released, without the test kit; then the benchmark, which
# drives them with it (its own build of the library, so the measured operator stays kit-free).
cargo build --release --locked --bins
cargo build --release --locked --features testkit --bin bench
export LOSANT_CP_DIR=${BENCH_CP_DIR:-/tmp/losant-bench-cp}
export LOSANT_CP_PORT=${BENCH_CP_PORT:-17843}
trap 'scripts/control-plane.sh down >/dev/null 2>&1 || true' EXIT
mkdir -p target/bench-runs
files=()
for size in $sizes; do
  for strategy in $strategies; do
    if [[ $strategy == per-object && $strategies_given == 0 && $size -gt 1000 ]]; then
      continue
    fi
    for run in $(seq 1 "$runs"); do
      name="$size-$strategy-$run"
      echo "== bench $name"
      scripts/control-plane.sh down >/dev/null 2>&1 || true
      eval "$(scripts/control-plane.sh up)"
      target/release/bench run --size "$size" --strategy "$strategy" \
        --log-dir "target/bench-logs/$name" --out "target/bench-runs/$name.json" "${extra[@]}"
      files+=("target/bench-runs/$name.json")
      scripts/control-plane.sh down >/dev/null
    done
  done
done
target/release/bench summarize "${files[@]}" --out bench/results.json --table bench/table.md
