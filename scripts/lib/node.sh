# shellcheck shell=bash
# The node part of scripts/control-plane.sh (sourced by it): kube-scheduler, and two nodes, each a
# kubelet (dockershim) with its own dockerd, so that Deployments run and two hostNetwork replicas
# of one pod template can run side by side on their own addresses, 127.0.0.1 and 127.0.0.2.
#
# Isolation, so that several clusters coexist and `down` leaves the host as it was:
#  - Each node's dockerd and kubelet share a private mount namespace (made with unshare) in which
#    /var/lib/kubelet, /var/log/pods and /var/log/containers (paths kubelet 1.20 hard-codes) are
#    bind mounts of the node's own directories. Every mount the kubelet or Docker makes stays in
#    that namespace and goes with its last process.
#  - Each dockerd has its own socket, data root, exec root and pid file; no bridge, no iptables,
#    no forwarding. Each kubelet has its own dockershim socket, cgroup root and ports.
#  - Host changes the kubelet makes (sysctls, cgroups, mount points it needs) are recorded at `up`
#    and undone at `down`.
# Everything listens on 127.0.0.x or a unix socket. The kubelet is built without cloud code
# (scripts/build-node.sh); scripts/loopback-only.sh proves that nothing leaves loopback.

node_count=2
node_ip() { echo "127.0.0.$1"; }
# Ports derive from the API server's, so clusters on other LOSANT_CP_PORTs never collide.
kubelet_port() { echo $((port + 10 + 2 * $1)); }
kubelet_healthz_port() { echo $((port + 11 + 2 * $1)); }
node_dir() { echo "$dir/node$1"; }
docker_sock() { echo "$(node_dir "$1")/docker.sock"; }
node_docker() {
  local n=$1
  shift
  docker -H "unix://$(docker_sock "$n")" "$@"
}
# One cgroup root per cluster and node: kubelets remove pod cgroups they do not know, so they
# must never share one.
cgroup_root() { echo "losant-$(basename "$dir")-node$1"; }
pause_image=localhost/losant-pause:v1.20.2
# sysctls kubelet 1.20 sets at start (setupKernelTunables) and the no-op network plugin's one.
kubelet_sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/bridge/bridge-nf-call-iptables)
# Paths kubelet 1.20 uses whatever its flags say; bind-mounted per node inside its namespace.
kubelet_fixed_paths=(/var/lib/kubelet /var/log/pods /var/log/containers)

node_wanted() { [[ -f $dir/node-mode ]]; }

ensure_docker() {
  command -v dockerd >/dev/null && command -v docker >/dev/null && command -v unshare >/dev/null && return 0
  log "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker.io containerd runc util-linux >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends docker.io containerd runc util-linux >&2; }
}

# Client certificates signed by the cluster CA: each kubelet's (its node identity, for the Node
# authorizer) and the API server's own for reaching kubelets.
make_node_pki() {
  local pki=$dir/pki n
  client_cert "$pki/apiserver-kubelet-client" kube-apiserver-kubelet-client system:masters
  for n in $(seq 1 $node_count); do
    client_cert "$pki/node$n" "system:node:$(node_ip "$n")" system:nodes
  done
}

client_cert() {
  local base=$1 cn=$2 org=$3
  [[ -f $base.crt ]] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$base.key" -out "$base.csr" -subj "/O=$org/CN=$cn" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$base.ext"
  openssl x509 -req -in "$base.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" -CAcreateserial \
    -out "$base.crt.tmp" -days 3650 -extfile "$base.ext" 2>/dev/null
  mv "$base.crt.tmp" "$base.crt"
}

save_host_state() {
  [[ -f $dir/host-state/sysctl ]] && return 0
  mkdir -p "$dir/host-state"
  local key
  : >"$dir/host-state/sysctl.tmp"
  for key in "${kubelet_sysctls[@]}"; do
    [[ -f /proc/sys/$key ]] && echo "$key $(cat "/proc/sys/$key")" >>"$dir/host-state/sysctl.tmp"
  done
  mv "$dir/host-state/sysctl.tmp" "$dir/host-state/sysctl"
}

restore_host_state() {
  local key value path
  if [[ -f $dir/host-state/sysctl ]]; then
    while read -r key value; do
      [[ -n $key && -f /proc/sys/$key ]] || continue
      [[ $(cat "/proc/sys/$key") == "$value" ]] || echo "$value" >"/proc/sys/$key" 2>/dev/null ||
        log "could not restore sysctl $key to $value"
    done <"$dir/host-state/sysctl"
  fi
  if [[ -f $dir/host-state/created-paths ]]; then
    # Deepest first; only directories this script created, and only while empty.
    sort -r "$dir/host-state/created-paths" | while read -r path; do
      [[ -n $path ]] && rmdir "$path" 2>/dev/null || true
    done
  fi
  rm -rf "$dir/host-state"
}

# Creates a directory on the host (recording each level it had to create, for `down`).
make_host_path() {
  local path=$1 missing=()
  while [[ ! -e $path ]]; do
    missing+=("$path")
    path=$(dirname "$path")
  done
  ((${#missing[@]})) || return 0
  mkdir -p "$1"
  printf '%s\n' "${missing[@]}" >>"$dir/host-state/created-paths"
}

cgroup_hierarchies() {
  local h
  for h in /sys/fs/cgroup/*/; do
    h=${h%/}
    if [[ -f $h/cgroup.procs ]]; then echo "$h"; fi
  done
}

make_cgroup_root() {
  local name=$1 h
  for h in $(cgroup_hierarchies); do
    mkdir -p "$h/$name"
    # A v1 cpuset starts empty and takes no task until given cpus and mems.
    if [[ -f $h/cpuset.cpus ]]; then
      cat "$h/cpuset.cpus" >"$h/$name/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h/$name/cpuset.mems"
    fi
  done
}

remove_cgroup_root() {
  local name=$1 h cg pid
  for h in $(cgroup_hierarchies); do
    [[ -d $h/$name ]] || continue
    # Leftover tasks (none after a clean stop) are killed, then the tree goes deepest first.
    while read -r cg; do
      while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$cg/cgroup.procs"
    done < <(find "$h/$name" -type d)
    find "$h/$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    if [[ -d $h/$name ]]; then log "cgroup $h/$name is still there"; fi
  done
}

kubelet_config() {
  local n=$1
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$n")
port: $(kubelet_port "$n")
readOnlyPort: 0
healthzBindAddress: $(node_ip "$n")
healthzPort: $(kubelet_healthz_port "$n")
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /$(cgroup_root "$n")
cgroupsPerQOS: true
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
hairpinMode: none
clusterDomain: cluster.local
evictionHard: {memory.available: 1Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
oomScoreAdj: 0
serializeImagePulls: false
EOF
}

kubelet_kubeconfig() {
  local n=$1
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$port", certificate-authority: "$dir/pki/ca.crt"}
users:
- name: node
  user: {client-certificate: "$dir/pki/node$n.crt", client-key: "$dir/pki/node$n.key"}
contexts:
- name: node
  context: {cluster: local, user: node}
current-context: node
EOF
}

# Runs inside a node's new mount namespace (control-plane.sh _dockerd N): bind-mounts the node's
# own directories over the kubelet's fixed paths, then becomes that node's dockerd.
node_dockerd_exec() {
  local n=$1 nd path
  nd=$(node_dir "$n")
  for path in "${kubelet_fixed_paths[@]}"; do
    mount --bind "$nd/fixed/$(basename "$path")" "$path"
  done
  exec dockerd -H "unix://$nd/docker.sock" --data-root "$nd/docker" --exec-root "$nd/exec" \
    --pidfile "$nd/docker.pid" --iptables=false --ip-forward=false --ip-masq=false \
    --bridge=none --userland-proxy=false --log-level=warn
}

start_node() {
  local n=$1 bin=$2 nd path docker_pid
  nd=$(node_dir "$n")
  mkdir -p "$nd/fixed" "$nd/volume-plugins" "$nd/dockershim"
  for path in "${kubelet_fixed_paths[@]}"; do
    mkdir -p "$nd/fixed/$(basename "$path")"
    make_host_path "$path"
  done
  make_cgroup_root "$(cgroup_root "$n")"
  kubelet_config "$n" >"$nd/kubelet-config.yaml"
  kubelet_kubeconfig "$n" >"$nd/kubeconfig"

  spawn "node$n-docker" unshare --mount --propagation private -- "$repo/scripts/control-plane.sh" _dockerd "$n"
  local ready=
  for _ in $(seq 1 120); do
    live_pid "node$n-docker" >/dev/null || fail "dockerd of node $n exited during startup"
    if node_docker "$n" info >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 0.5
  done
  [[ -n $ready ]] || fail "dockerd of node $n not ready after 60 s"
  # The sandbox image must be present: dockershim would otherwise try to pull it.
  tar -C "$bin" -c pause | node_docker "$n" import --change 'ENTRYPOINT ["/pause"]' - "$pause_image" >/dev/null

  docker_pid=$(live_pid "node$n-docker")
  spawn "node$n-kubelet" nsenter --target "$docker_pid" --mount -- "$bin/kubelet" \
    --config="$nd/kubelet-config.yaml" --kubeconfig="$nd/kubeconfig" \
    --hostname-override="$(node_ip "$n")" \
    --container-runtime=docker --docker-endpoint="unix://$nd/docker.sock" \
    --container-runtime-endpoint="unix://$nd/dockershim.sock" \
    --experimental-dockershim-root-directory="$nd/dockershim" \
    --pod-infra-container-image="$pause_image" \
    --volume-plugin-dir="$nd/volume-plugins" \
    --cert-dir="$nd/pki" \
    --v=1
}

start_scheduler() {
  local bin=$1
  # No serving port at all (like the controller manager): nothing to clash with.
  spawn scheduler "$bin/kube-scheduler" --kubeconfig="$kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --port=0
}

nodes_up() {
  ensure_docker
  local bin
  bin=$("$repo/scripts/build-node.sh" | tail -n 1)
  [[ -x $bin/kubelet && -x $bin/kube-scheduler && -x $bin/pause ]] || fail "no node binaries in '$bin'"
  make_node_pki
  save_host_state
  start_scheduler "$bin"
  local n
  for n in $(seq 1 $node_count); do
    start_node "$n" "$bin"
  done
  local ready=
  for _ in $(seq 1 240); do
    for n in $(seq 1 $node_count); do
      live_pid "node$n-kubelet" >/dev/null || fail "the kubelet of node $n exited during startup"
    done
    live_pid scheduler >/dev/null || fail "kube-scheduler exited during startup"
    if [[ $(kubectl --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l) -eq $node_count ]] &&
      ! kubectl --kubeconfig "$kubeconfig" get nodes -o jsonpath='{.items[*].spec.taints[*].key}' 2>/dev/null | grep -q not-ready; then
      ready=1
      break
    fi
    sleep 0.5
  done
  [[ -n $ready ]] || fail "nodes not Ready after 120 s"
  log "nodes up: $(node_ip 1) and $(node_ip 2)"
}

# Stops kubelets, then every container, then the dockerds, then undoes the host changes.
nodes_down() {
  local n pid nd
  for n in $(seq 1 $node_count); do
    stop_component "node$n-kubelet"
  done
  for n in $(seq 1 $node_count); do
    nd=$(node_dir "$n")
    if live_pid "node$n-docker" >/dev/null; then
      local ids
      ids=$(node_docker "$n" ps -aq 2>/dev/null || true)
      # shellcheck disable=SC2086 # one id per word
      if [[ -n $ids ]]; then node_docker "$n" rm -f $ids >/dev/null 2>&1 || true; fi
    fi
    stop_component "node$n-docker"
    # containerd shims outlive a killed dockerd; any process still using the node's directory goes.
    for pid in $(pgrep -f -- "$nd/" || true); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    remove_cgroup_root "$(cgroup_root "$n")"
  done
  stop_component scheduler
  restore_host_state
  for n in $(seq 1 $node_count); do
    rm -rf "$(node_dir "$n")"
  done
}

# `load-image IMAGE...`: copies images from the default Docker daemon into every node's, as
# `kind load docker-image` does (pods use imagePullPolicy: Never; there is no registry).
load_images() {
  node_wanted || { log "no nodes: start with 'up --node'"; exit 1; }
  local n image
  for n in $(seq 1 $node_count); do
    for image in "$@"; do
      docker save "$image" | node_docker "$n" load >/dev/null ||
        { log "could not load $image into node $n"; exit 1; }
    done
  done
  log "loaded $* into $node_count nodes"
}
