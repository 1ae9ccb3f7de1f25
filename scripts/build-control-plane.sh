#!/usr/bin/env bash
# Builds a real kube-apiserver and kube-controller-manager (v1.20.2) offline from Debian bookworm's
# source package `kubernetes` (the full upstream tree with vendor/), using Debian's Go. etcd is
# Debian's etcd-server package. No container runtime and no downloads beyond Debian's archive.
#
# Usage: scripts/build-control-plane.sh [OUT_DIR]
#   OUT_DIR defaults to $LOSANT_CONTROL_PLANE_CACHE or ~/.cache/losant-operator/control-plane-<hash>,
#   where <hash> is this script's SHA-256, so a changed recipe rebuilds. The directory is printed on
#   the last line of stdout. A finished build is reused. If KUBEBUILDER_ASSETS points at a
#   directory with kube-apiserver and etcd (as envtest users expect), that is used instead.
set -euo pipefail

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

recipe_hash=$(sha256sum "$0" | cut -c1-12)
out=${1:-${LOSANT_CONTROL_PLANE_CACHE:-$HOME/.cache/losant-operator/control-plane-$recipe_hash}}
if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/etcd" && -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi

k8s_version=1.20.5+really1.20.2-1.1+deb12u1
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "$k8s_version"; then
  cat > /etc/apt/sources.list.d/losant-operator-debian-src.sources <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt-get update -qq >&2
fi
apt-get install -y -qq --no-install-recommends golang-go etcd-server rsync make openssl curl \
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev >&2

work=$(mktemp -d /tmp/losant-k8s-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq --download-only "kubernetes=$k8s_version" >&2
tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
tar xJf kubernetes_1.20.5+really1.20.2-1.1+deb12u1.debian.tar.xz
src=$work/kubernetes-1.20.2
while read -r patch; do
  [[ -z "$patch" || "$patch" == \#* ]] && continue
  patch -d "$src" -p1 -s < "debian/patches/$patch"
done < debian/patches/series

# The vendored reflect2 1.0.1 crashes under Go >= 1.18 when iterating maps: use Debian's newer
# reflect2 and json-iterator instead.
for lib in modern-go/reflect2 json-iterator/go; do
  rm -rf "$src/vendor/github.com/$lib"
  cp -rL "/usr/share/gocode/src/github.com/$lib" "$src/vendor/github.com/$lib"
  rm -f "$src/vendor/github.com/$lib"/*_test.go
done

# Since Go 1.16 every empty string built at run time shares reflect.Zero's buffer, so the vendored
# CRD validator takes "" for null and rejects empty strings in custom resources. Apply the upstream
# fix (kubernetes/kube-openapi#230): only nil is null.
for pkg in k8s.io/kube-openapi/pkg/validation/validate github.com/go-openapi/validate; do
  file="$src/vendor/$pkg/type.go"
  sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$file"
  if grep -q 'reflect.DeepEqual(reflect.Zero' "$file"; then
    echo "empty-string fix did not apply to $file" >&2
    exit 1
  fi
done

export GOPATH=$work/gopath GOCACHE=${GOCACHE:-$work/gocache} GO111MODULE=off CGO_ENABLED=0 GOPROXY=off HOME=$work
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$src" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
make generated_files >&2
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=v1.20.2 -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean -X $pkg.buildDate=2021-01-13T00:00:00Z"
done
mkdir -p "$out"
for cmd in kube-apiserver kube-controller-manager; do
  go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "./cmd/$cmd" >&2
done
ln -sf "$(command -v etcd)" "$out/etcd"
"$out/kube-apiserver" --version >&2
touch "$out/.complete"
echo "$out"
