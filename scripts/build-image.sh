#!/usr/bin/env bash
# Builds the real image losant-operator:dev from the repository's Dockerfile with `docker build`
# (both stages, the release `cargo build` inside the builder stage), then checks the image.
#
# No container registry is reachable where this repository is developed, so by default the two
# base images the Dockerfile takes as build arguments are local stand-ins assembled from Debian
# bookworm packages only (deb.debian.org). Each is tagged REPO:bookworm-<hash of its recipe> and
# REPO:bookworm, and reused while its recipe is unchanged:
#   losant-operator-base/builder  debootstrap minbase + Debian's rustc-web/cargo-web (Rust 1.96,
#       bookworm-security), gcc, libc6-dev, pkg-config, ca-certificates; CARGO_HOME and PATH as
#       in the official rust:*-bookworm image.
#   losant-operator-base/runtime  the files distroless/cc-debian12:nonroot has: glibc, libgcc_s,
#       libstdc++, libssl3, the CA bundle, tzdata, netbase, passwd/group with nonroot (65532),
#       nsswitch.conf, /tmp; no shell, no package manager; USER 65532:65532.
#
# Checks (any miss fails the script): --help runs read-only, as 65532, with no capabilities, no
# network and no-new-privileges; `crds` prints exactly crds/losant.io_crds.yaml; no shell and no
# dpkg/apt in the image, and /bin/sh cannot be run; the CA bundle the binary reads exists and holds
# PEM certificates; the configured user is 65532. The image size (MB) is printed on stdout.
#
# Usage: scripts/build-image.sh [--tag TAG] [--upstream-bases] [--rebuild-bases] [--no-cache]
#                               [--skip-checks]
#   --tag TAG          image to build (default losant-operator:dev)
#   --upstream-bases   use the Dockerfile's default bases (rust:*-bookworm, distroless): needs a
#                      registry; no stand-ins are assembled
#   --rebuild-bases    reassemble the stand-in bases even if their recipe is unchanged (picks up
#                      newer Debian packages)
#   --no-cache         docker build --no-cache (a cold build of both stages)
#   --skip-checks      build only
#
# Environment:
#   DOCKER                  docker client (default: docker)
#   LOSANT_DOCKERD_PIDFILE  pid file of a dockerd this script starts (default
#                           /tmp/losant-operator-dockerd.pid)
#   LOSANT_DOCKERD_LOG      its log (default /tmp/losant-operator-dockerd.log)
#   LOSANT_DEBIAN_MIRROR    Debian archive (default http://deb.debian.org/debian)
#   LOSANT_DEBIAN_SECURITY  Debian security archive (default http://deb.debian.org/debian-security)
#   LOSANT_BUILDER_CA_DIR   local CA certificates (*.crt) the builder stand-in trusts besides
#                           Debian's, as the host does (default /usr/local/share/ca-certificates):
#                           the build stage fetches crates from crates.io, through whatever
#                           TLS-inspecting egress proxy the host trusts. Never in the runtime image.
#
# The Docker daemon: if none is reachable, one is started (as root) with
#   dockerd --iptables=false --bridge=none --ip-forward=false --ip-masq=false
# and left running; its pid is in $LOSANT_DOCKERD_PIDFILE (written by dockerd itself via
# --pidfile, removed by dockerd when it exits). This script never stops a daemon. To stop the one it
# started:  kill "$(cat /tmp/losant-operator-dockerd.pid)"  and wait for the pid to exit. A daemon
# that was already running is used as is and no pid file is written.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
docker=${DOCKER:-docker}
dockerd_pidfile=${LOSANT_DOCKERD_PIDFILE:-/tmp/losant-operator-dockerd.pid}
dockerd_log=${LOSANT_DOCKERD_LOG:-/tmp/losant-operator-dockerd.log}
mirror=${LOSANT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${LOSANT_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
builder_ca_dir=${LOSANT_BUILDER_CA_DIR:-/usr/local/share/ca-certificates}

# Each stand-in is tagged REPO:bookworm-<recipe hash> (what the build uses; its presence means
# reuse) and REPO:bookworm (the latest, for people).
builder_repo=losant-operator-base/builder
runtime_repo=losant-operator-base/runtime
builder_base=
runtime_base=

# What distroless/cc-debian12 ships (static + base + cc), as Debian packages.
runtime_packages=(libc6 libgcc-s1 gcc-12-base libstdc++6 libssl3 ca-certificates tzdata netbase)
# What the Dockerfile's build stage runs: cargo, and cc for ring's C and assembly.
builder_packages=(rustc-web cargo-web gcc libc6-dev pkg-config ca-certificates)
# Must be in neither base nor image: shells and package managers.
forbidden_re='^(usr/)?s?bin/(sh|bash|dash|ash|busybox|dpkg|dpkg-deb|apt|apt-get)$'

tag=losant-operator:dev
upstream=false
rebuild_bases=false
no_cache=false
checks=true

# Messages go to the script's own stderr (fd 3), also from functions whose output goes to a log.
exec 3>&2
log() { echo "build-image: $*" >&3; }
die() { echo "build-image: ERROR: $*" >&3; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# Temporary directories and chroot mounts, removed on any exit; on failure, the tail of the
# log of the base being assembled.
cleanup_dirs=()
cleanup_mounts=()
assembly_log=
cleanup() {
  local rc=$? m d
  if ((rc != 0)) && [[ -n $assembly_log ]]; then
    tail -n 25 "$assembly_log" >&3
    echo "build-image: see $assembly_log" >&3
  fi
  for m in "${cleanup_mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  for d in "${cleanup_dirs[@]}"; do rm -rf --one-file-system "$d"; done
}
trap cleanup EXIT

parse_args() {
  while (($#)); do
    case $1 in
      --tag) tag=${2:?--tag needs a value}; shift ;;
      --upstream-bases) upstream=true ;;
      --rebuild-bases) rebuild_bases=true ;;
      --no-cache) no_cache=true ;;
      --skip-checks) checks=false ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
}

# ---- the daemon --------------------------------------------------------------------------------

# Debian's Docker and debootstrap, when missing (as on a fresh machine).
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io containerd runc iptables)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "${missing[*]} missing, and installing them needs root"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
}

ensure_dockerd() {
  "$docker" info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || die "no Docker daemon is reachable and dockerd is not installed"
  ((EUID == 0)) || die "no Docker daemon is reachable; starting one needs root"
  # No bridge or iptables here (none is usable); builds use --network host instead.
  # setsid: the daemon outlives this script and its process group.
  log "no Docker daemon reachable: starting dockerd (log $dockerd_log, pid file $dockerd_pidfile)"
  setsid dockerd --iptables=false --bridge=none --ip-forward=false --ip-masq=false \
    --pidfile "$dockerd_pidfile" >>"$dockerd_log" 2>&1 </dev/null &
  local pid=$! i
  for ((i = 0; i < 120; i++)); do
    if "$docker" info >/dev/null 2>&1; then
      log "started dockerd (pid $pid, left running; stop it with: kill \"\$(cat $dockerd_pidfile)\")"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dockerd_log" >&2; die "dockerd exited; see $dockerd_log"; }
    sleep 0.5
  done
  die "dockerd (pid $pid) not ready after 60 s; see $dockerd_log"
}

# ---- stand-in bases ----------------------------------------------------------------------------

# A hash of everything that shapes a base: the functions and variables named (their definitions).
recipe_hash() {
  local name
  for name in "$@"; do
    declare -f "$name" || declare -p "$name"
  done | sha256sum | cut -c1-16
}

have_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# After assembling $1:bookworm-$2: tag it $1:bookworm and untag older recipes' images (their
# layers stay while build cache uses them).
promote_base() {
  local repo=$1 hash=$2 ref
  "$docker" tag "$repo:bookworm-$hash" "$repo:bookworm"
  "$docker" image ls --format '{{.Repository}}:{{.Tag}}' "$repo" | while read -r ref; do
    [[ $ref == "$repo:bookworm" || $ref == "$repo:bookworm-$hash" ]] || "$docker" image rm "$ref" >/dev/null || true
  done
}

# Tar a root file system into an image; the rest of the arguments are docker import --change values.
import_rootfs() {
  local dir=$1 image=$2 changes=() c
  shift 2
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner -C "$dir" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    "$docker" import "${changes[@]}" - "$image" >/dev/null
}

# The runtime rootfs: Debian's .debs unpacked (no maintainer scripts run: there is no shell to run
# them in), then the few files their scripts or distroless would have made.
assemble_runtime_rootfs() {
  local root=$1 debs=$2 f
  (cd "$debs" && apt-get download -qq "${runtime_packages[@]}") ||
    { apt-get update -qq && (cd "$debs" && apt-get download -qq "${runtime_packages[@]}"); }
  for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$root"; done

  # ca-certificates' postinst would concatenate the certificates it enables (all of them by
  # default) into the bundle; awk 1 ends every file with a newline.
  mkdir -p "$root/etc/ssl/certs"
  find "$root/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z |
    xargs -0 awk 1 >"$root/etc/ssl/certs/ca-certificates.crt"
  # Only the bundle is kept; the helper script needs a shell and documentation is dead weight.
  rm -rf "$root/usr/share/ca-certificates" "$root/usr/sbin/update-ca-certificates" \
    "$root/etc/ca-certificates" "$root/usr/share/doc" "$root/usr/share/man" \
    "$root/usr/share/lintian" "$root/usr/share/bug"

  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd:         files
group:          files
shadow:         files
hosts:          files dns
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
EOF
  cat >"$root/etc/os-release" <<'EOF'
PRETTY_NAME="losant-operator stand-in for distroless/cc (Debian GNU/Linux 12 packages)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
EOF
  install -d -m 1777 "$root/tmp"
  install -d -m 0700 "$root/root"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  chmod 0755 "$root"

  if (cd "$root" && find . -mindepth 1 | sed 's|^\./||' | grep -E "$forbidden_re"); then
    die "the runtime rootfs has a shell or package manager (above)"
  fi
}

build_runtime_base() {
  local hash
  hash=$(recipe_hash assemble_runtime_rootfs build_runtime_base import_rootfs runtime_packages forbidden_re)
  runtime_base=$runtime_repo:bookworm-$hash
  if ! $rebuild_bases && have_image "$runtime_base"; then
    log "reusing $runtime_base"
    return 0
  fi
  log "assembling $runtime_base from Debian packages"
  local work
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/losant-runtime-base.XXXXXX")
  cleanup_dirs+=("$work")
  mkdir -p "$work/root" "$work/debs"
  # apt-get download drops to the _apt user; let it write there.
  chmod 0755 "$work"
  chown _apt "$work/debs" 2>/dev/null || true
  assembly_log=${TMPDIR:-/var/tmp}/losant-operator-base-runtime.log
  assemble_runtime_rootfs "$work/root" "$work/debs" >"$assembly_log" 2>&1
  assembly_log=
  # distroless's configuration: nonroot user and home, SSL_CERT_FILE for OpenSSL-style lookups.
  import_rootfs "$work/root" "$runtime_base" \
    "USER 65532:65532" "WORKDIR /home/nonroot" \
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
  promote_base "$runtime_repo" "$hash"
  rm -rf --one-file-system "$work"
}

# The builder rootfs: a minimal Debian with Rust from bookworm-security (rustc-web 1.96; bookworm
# itself has 1.85, older than Cargo.toml's rust-version 1.89), installed with apt in a chroot.
assemble_builder_rootfs() {
  local root=$1
  debootstrap --variant=minbase bookworm "$root" "$mirror"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  cleanup_mounts+=("$root/proc")
  local in_root=(chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
    DEBIAN_FRONTEND=noninteractive)
  "${in_root[@]}" apt-get update -qq
  "${in_root[@]}" apt-get install -y -qq --no-install-recommends "${builder_packages[@]}"
  "${in_root[@]}" apt-get clean
  # The host's local CAs (a TLS-inspecting egress proxy's, say), so cargo reaches crates.io as the
  # host's cargo does. Only in this build-stage base; the image copies nothing from it but the binary.
  local ca
  for ca in "$builder_ca_dir"/*.crt; do
    if [[ -f $ca ]]; then install -D -m 0644 "$ca" "$root/usr/local/share/ca-certificates/${ca##*/}"; fi
  done
  "${in_root[@]}" update-ca-certificates
  "${in_root[@]}" cargo --version
  "${in_root[@]}" rustc --version
  umount "$root/proc"
  # The official rust image's CARGO_HOME, writable by any user like there.
  install -d -m 0777 "$root/usr/local/cargo" "$root/usr/local/cargo/bin"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man "$root"/var/log/*.log
  : >"$root/etc/resolv.conf"
}

build_builder_base() {
  local hash
  # shellcheck disable=SC2034 # read by recipe_hash (declare -p): changed CAs, new base
  builder_cas=$(cat "$builder_ca_dir"/*.crt 2>/dev/null | sha256sum | cut -c1-16)
  hash=$(recipe_hash assemble_builder_rootfs build_builder_base import_rootfs builder_packages \
    mirror security builder_cas)
  builder_base=$builder_repo:bookworm-$hash
  if ! $rebuild_bases && have_image "$builder_base"; then
    log "reusing $builder_base"
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is needed to assemble $builder_base"
  log "assembling $builder_base with debootstrap (about a minute)"
  local work
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/losant-builder-base.XXXXXX")
  cleanup_dirs+=("$work")
  assembly_log=${TMPDIR:-/var/tmp}/losant-operator-base-builder.log
  assemble_builder_rootfs "$work/root" >"$assembly_log" 2>&1
  log "$(grep -E '^(cargo|rustc) ' "$assembly_log" | paste -sd ';' -)"
  assembly_log=
  # The environment rust:*-bookworm sets (cargo itself is /usr/bin/cargo here).
  import_rootfs "$work/root" "$builder_base" \
    "ENV CARGO_HOME=/usr/local/cargo" \
    "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "CMD [\"bash\"]"
  promote_base "$builder_repo" "$hash"
  rm -rf --one-file-system "$work"
}

# ---- the image ---------------------------------------------------------------------------------

build_image() {
  # --force-rm: no stopped containers left behind by a failed step.
  local args=(build --network host --force-rm -t "$tag")
  $no_cache && args+=(--no-cache)
  if ! $upstream; then
    args+=(--build-arg "BUILDER_IMAGE=$builder_base" --build-arg "RUNTIME_IMAGE=$runtime_base")
  fi
  log "docker ${args[*]} ."
  # The legacy builder: BuildKit would try to pull the `# syntax=` frontend image.
  if ! (cd "$repo" && DOCKER_BUILDKIT=0 "$docker" "${args[@]}" .) >&2; then
    $upstream && die "docker build failed (above); --upstream-bases pulls from docker.io and gcr.io"
    die "docker build failed (above)"
  fi
}

# ---- checks ------------------------------------------------------------------------------------

# The binary as a locked-down pod would run it.
run_locked() {
  "$docker" run --rm --read-only --user 65532 --cap-drop ALL --network none \
    --security-opt no-new-privileges "$tag" "$@"
}

failures=0
fail() { echo "build-image: CHECK FAILED: $*" >&3; failures=$((failures + 1)); }

check_image() {
  local work
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/losant-image-check.XXXXXX")
  cleanup_dirs+=("$work")

  if run_locked --help >"$work/help" 2>&1 && grep -q 'Usage:' "$work/help"; then
    log "ok: --help runs (read-only, user 65532, no capabilities, no network, no-new-privileges)"
  else
    cat "$work/help" >&2; fail "--help does not run in the locked-down container"
  fi

  if run_locked crds >"$work/crds" 2>"$work/crds.err" && cmp -s "$work/crds" "$repo/crds/losant.io_crds.yaml"; then
    log "ok: crds prints exactly crds/losant.io_crds.yaml"
  else
    cat "$work/crds.err" >&2; fail "crds output differs from crds/losant.io_crds.yaml"
  fi

  # It must fail for the right reason: the file is not there.
  if "$docker" run --rm --network none --entrypoint /bin/sh "$tag" -c true >"$work/sh" 2>&1; then
    fail "/bin/sh runs in the image"
  elif grep -q 'no such file or directory' "$work/sh"; then
    log "ok: /bin/sh cannot be run (no such file)"
  else
    cat "$work/sh" >&2; fail "running /bin/sh failed, but not for want of the file"
  fi

  # The whole file system, as a container of the image has it.
  local cid
  cid=$("$docker" create --network none "$tag")
  "$docker" export "$cid" >"$work/fs.tar" || fail "docker export failed"
  "$docker" rm "$cid" >/dev/null
  tar -tf "$work/fs.tar" | sed 's|^\./||; s|/$||' >"$work/files"
  if grep -E "$forbidden_re" "$work/files" >&2; then
    fail "the image has a shell or package manager (above)"
  else
    log "ok: no shell, no dpkg/apt ($(wc -l <"$work/files") paths)"
  fi

  # rustls-native-certs reads SSL_CERT_FILE when set (distroless sets it), else probes the usual
  # paths, the first of which on Debian is /etc/ssl/certs/ca-certificates.crt.
  local bundle n
  bundle=$("$docker" image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$tag" |
    sed -n 's/^SSL_CERT_FILE=//p')
  bundle=${bundle:-/etc/ssl/certs/ca-certificates.crt}
  n=$(tar -xOf "$work/fs.tar" "${bundle#/}" 2>/dev/null | grep -c -- '-----BEGIN CERTIFICATE-----' || true)
  if ((n > 0)); then
    log "ok: CA bundle $bundle holds $n PEM certificates"
  else
    fail "CA bundle $bundle missing, empty or without PEM certificates"
  fi

  local user
  user=$("$docker" image inspect -f '{{.Config.User}}' "$tag")
  if [[ $user =~ ^65532(:65532)?$ ]]; then
    log "ok: configured user $user"
  else
    fail "configured user is '$user', not 65532"
  fi

  ((failures == 0)) || die "$failures check(s) failed for $tag"
}

report_size() {
  local bytes
  bytes=$("$docker" image inspect -f '{{.Size}}' "$tag")
  awk -v t="$tag" -v b="$bytes" 'BEGIN { printf "%s: %.1f MB (%d bytes)\n", t, b / 1e6, b }'
}

main() {
  parse_args "$@"
  ensure_packages
  ensure_dockerd
  local start=$SECONDS
  if ! $upstream; then
    ((EUID == 0)) || die "assembling the stand-in bases needs root (debootstrap, chroot)"
    build_runtime_base
    build_builder_base
    log "bases ready after $((SECONDS - start)) s"
  fi
  build_image
  log "built $tag after $((SECONDS - start)) s"
  if $checks; then
    check_image
    log "all checks passed"
  fi
  report_size
}

main "$@"
