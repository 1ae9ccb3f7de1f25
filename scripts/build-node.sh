#!/usr/bin/env bash
# Builds what a local Kubernetes node needs, offline from the same Debian source package
# (`kubernetes` 1.20.2) that scripts/build-control-plane.sh uses: kubelet, kube-scheduler and
# the pause binary of the pod sandbox image. Docker itself is Debian's docker.io.
#
# Usage: scripts/build-node.sh [OUT_DIR]
#   OUT_DIR defaults to $LOSANT_NODE_CACHE or ~/.cache/losant-operator/node-<hash>, where <hash>
#   is this script's SHA-256, so a changed recipe rebuilds. The directory is printed on the last
#   line of stdout. A finished build is reused.
#
# Two changes to the kubelet, both checked after they are applied:
#  - No cloud code. kubelet 1.20 links credential providers and cAdvisor cloud probes that reach
#    out to cloud metadata addresses at start. Their imports are removed and the build uses the
#    upstream `providerless` tag; the dependency list is then checked to be free of them.
#  - No negative oom_score_adj. These machines grant no CAP_SYS_RESOURCE, so the -998/-997 that
#    dockershim gives pod sandboxes and Guaranteed pods make runc fail; they become 0.
set -euo pipefail

recipe_hash=$(sha256sum "$0" | cut -c1-12)
out=${1:-${LOSANT_NODE_CACHE:-$HOME/.cache/losant-operator/node-$recipe_hash}}
if [[ -x "$out/kubelet" && -x "$out/kube-scheduler" && -x "$out/pause" && -f "$out/.complete" ]]; then
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
apt-get install -y -qq --no-install-recommends golang-go rsync make gcc libc6-dev \
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev >&2

work=$(mktemp -d /tmp/losant-node-build.XXXXXX)
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

# The vendored reflect2 1.0.1 crashes under Go >= 1.18 when iterating maps (as in
# build-control-plane.sh): use Debian's newer reflect2 and json-iterator.
for lib in modern-go/reflect2 json-iterator/go; do
  rm -rf "$src/vendor/github.com/$lib"
  cp -rL "/usr/share/gocode/src/github.com/$lib" "$src/vendor/github.com/$lib"
  rm -f "$src/vendor/github.com/$lib"/*_test.go
done

# Edits a file with sed and fails when the pattern it must remove is still there.
edit() {
  local file=$src/$1 expression=$2 gone=$3
  sed -i "$expression" "$file"
  if grep -qE "$gone" "$file"; then
    echo "build-node: the edit of $1 did not apply ($gone is still there)" >&2
    exit 1
  fi
}
edit cmd/kubelet/app/plugins.go '\#_ "k8s.io/kubernetes/pkg/credentialprovider/\(aws\|azure\|gcp\)"#d' 'credentialprovider/(aws|azure|gcp)'
edit cmd/kubelet/app/options/globalflags.go '\#_ "k8s.io/kubernetes/pkg/credentialprovider/\(azure\|gcp\)"#d' 'credentialprovider/(azure|gcp)'
edit pkg/kubelet/cadvisor/cadvisor_linux.go '\#_ "github.com/google/cadvisor/utils/cloudinfo/\(aws\|azure\|gce\)"#d' 'cloudinfo/(aws|azure|gce)'
edit pkg/kubelet/dockershim/docker_sandbox.go 's/defaultSandboxOOMAdj int = -998/defaultSandboxOOMAdj int = 0/' 'defaultSandboxOOMAdj int = -998'
edit pkg/kubelet/qos/policy.go 's/guaranteedOOMScoreAdj int = -997/guaranteedOOMScoreAdj int = 0/' 'guaranteedOOMScoreAdj int = -997'

export GOPATH=$work/gopath GOCACHE=${GOCACHE:-$work/gocache} GO111MODULE=off CGO_ENABLED=0 GOPROXY=off HOME=$work
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$src" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
make generated_files >&2

# Nothing that talks to a cloud may be linked in.
cloud_deps=$(go list -tags providerless -deps ./cmd/kubelet ./cmd/kube-scheduler |
  grep -E 'credentialprovider/(aws|azure|gcp)|cloudinfo/(aws|azure|gce)|aws-sdk-go|cloud.google.com|Azure/azure-sdk|legacy-cloud-providers' || true)
if [[ -n $cloud_deps ]]; then
  echo "build-node: cloud packages are still linked:" >&2
  echo "$cloud_deps" >&2
  exit 1
fi

ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=v1.20.2 -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean -X $pkg.buildDate=2021-01-13T00:00:00Z"
done
mkdir -p "$out"
for cmd in kube-scheduler kubelet; do
  go build -trimpath -tags providerless -ldflags "$ldflags" -o "$out/$cmd" "./cmd/$cmd" >&2
done
gcc -Os -static -DVERSION=v1.20.2-losant -o "$out/pause" build/pause/linux/pause.c
strip "$out/pause"
"$out/kubelet" --version >&2
touch "$out/.complete"
echo "$out"
