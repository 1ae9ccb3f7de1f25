#!/usr/bin/env bash
# Starts and stops a real Kubernetes control plane (etcd, kube-apiserver and
# kube-controller-manager v1.20.2) on 127.0.0.1 for the end-to-end tests, and optionally two
# nodes that run pods (kube-scheduler, and a kubelet with its own dockerd on 127.0.0.1 and on
# 127.0.0.2; see scripts/lib/node.sh). The binaries come from scripts/build-control-plane.sh and
# scripts/build-node.sh, which build them from Debian's sources once and cache them.
#
# Usage: scripts/control-plane.sh up [--node]|down|env|status|load-image IMAGE...
#   up      start everything (or reuse a running instance) and print `export KUBECONFIG=...`;
#           with --node, also the scheduler and the nodes (the API server then runs the Node
#           authorizer, NodeRestriction and ServiceAccount admission, and an audit log in
#           logs/audit.log), waiting until both nodes are Ready
#   down    stop the processes this script started (by recorded pid), drop etcd's data, and undo
#           every host change the nodes made (containers, mounts, cgroups, sysctls, paths)
#   env     print the `export KUBECONFIG=...` line
#   status  exit 0 if the control plane (and its nodes, if it has them) is up, 1 otherwise
#   load-image IMAGE...  copy images from the default Docker daemon into every node's
#
# Environment:
#   LOSANT_CP_DIR     state directory (PKI, pids, logs, kubeconfig); default /tmp/losant-operator-cp
#   LOSANT_CP_PORT    apiserver secure port; default 16443. etcd uses PORT-4064 and PORT-4063;
#                     kube-controller-manager serves no port at all.
#   LOSANT_CP_NO_KCM  set to 1 to skip kube-controller-manager (then namespaces never finish
#                     deleting and owner references are not garbage-collected)
#                     kubelets listen on PORT+12..PORT+15 of their own 127.0.0.x.
#
# Everything listens on loopback only; nothing here ever talks to another host.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOSANT_CP_DIR:-/tmp/losant-operator-cp}
port=${LOSANT_CP_PORT:-16443}
etcd_port=$((port - 4064))
etcd_peer_port=$((etcd_port + 1))
kubeconfig=$dir/kubeconfig
# Components in stop order: the controller manager first, so it never sees the apiserver vanish
# under it and spams its log; etcd last, since the apiserver needs it to shut down cleanly.
components=(kcm apiserver etcd)
# shellcheck source=scripts/lib/node.sh
source "$repo/scripts/lib/node.sh"

log() { echo "control-plane: $*" >&2; }

export_line() { echo "export KUBECONFIG=$kubeconfig"; }

# Installs the few command-line tools this script and the tests use when they are missing.
ensure_tools() {
  local missing=()
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  # The tests drive the cluster with kubectl. Debian's own kubectl (kubernetes-client, 1.20) matches
  # the server; a newer one already on the machine is kept.
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
  fi
}

# The pid recorded for a component, if that process still runs the program we started. Checking
# the command line guards against a recycled pid after a reboot or a long pause.
live_pid() {
  local name=$1 file=$dir/$1.pid pid
  [[ -f $file ]] || return 1
  pid=$(cat "$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local expected
  case $name in
    kcm) expected=kube-controller-manager ;;
    apiserver) expected=kube-apiserver ;;
    etcd) expected=etcd ;;
    scheduler) expected=kube-scheduler ;;
    node*-docker) expected=dockerd ;;
    node*-kubelet) expected=kubelet ;;
    *) return 1 ;;
  esac
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$expected"* ]] || return 1
  echo "$pid"
}

# GET a path on the apiserver with the admin token; succeeds on HTTP 2xx.
api_get() {
  curl -sf -o /dev/null --max-time 5 --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $(token)" "https://127.0.0.1:$port$1"
}

token() { cut -d, -f1 "$dir/pki/tokens.csv"; }

want_kcm() { [[ ${LOSANT_CP_NO_KCM:-} != 1 ]]; }

is_up() {
  [[ -f $dir/pki/tokens.csv && -f $kubeconfig ]] || return 1
  live_pid etcd >/dev/null && live_pid apiserver >/dev/null || return 1
  if want_kcm; then live_pid kcm >/dev/null || return 1; fi
  if node_wanted; then
    live_pid scheduler >/dev/null || return 1
    local n
    for n in $(seq 1 $node_count); do
      live_pid "node$n-docker" >/dev/null && live_pid "node$n-kubelet" >/dev/null || return 1
    done
  fi
  api_get /readyz
}

# Stops one component: SIGTERM, up to 15 s, then SIGKILL.
stop_component() {
  local name=$1 pid
  if pid=$(live_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
}

stop_all() {
  local name
  # Nodes first (their pods' containers with them), while the API server still answers.
  if node_wanted || compgen -G "$dir/node*" >/dev/null; then
    nodes_down
  fi
  rm -f "$dir/node-mode"
  for name in "${components[@]}"; do
    stop_component "$name"
  done
  rm -rf "$dir/etcd-data"
}

# A private CA, a serving certificate valid for 127.0.0.1 and localhost, the service-account
# signing key pair and a random static admin token. Kept across restarts; only etcd data is not.
make_pki() {
  local pki=$dir/pki
  [[ -f $pki/tokens.csv && -f $pki/apiserver.crt && -f $pki/sa.pub ]] && return 0
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj /CN=losant-operator-test-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj /CN=kube-apiserver 2>/dev/null
    cat >serving.ext <<'EXT'
subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
EXT
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 3650 -extfile serving.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # tokens.csv is written last: its presence marks a complete PKI.
    echo "$(openssl rand -hex 24),losant-admin,losant-admin,system:masters" >tokens.csv.tmp
    mv tokens.csv.tmp tokens.csv
  )
}

write_kubeconfig() {
  cat >"$kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: losant-operator-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $dir/pki/ca.crt
users:
- name: losant-admin
  user:
    token: $(token)
contexts:
- name: losant-operator-test
  context:
    cluster: losant-operator-test
    user: losant-admin
current-context: losant-operator-test
EOF
  mv "$kubeconfig.tmp" "$kubeconfig"
}

# Starts a component in its own session (so a Ctrl-C meant for the caller does not reach it) with
# no terminal and its output in logs/; records its pid.
spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/$name.pid"
  # Until the forked shell has exec'd, /proc/PID/cmdline still names this script, and
  # live_pid would take the process for dead: wait (briefly) for the exec.
  local binary
  binary=$(basename "$1")
  for _ in $(seq 1 100); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$binary"; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.02
  done
}

fail() {
  log "$1"
  for f in apiserver etcd kcm scheduler node1-docker node1-kubelet node2-docker node2-kubelet; do
    if [[ -s $dir/logs/$f.log ]]; then
      echo "---- last lines of $dir/logs/$f.log" >&2
      tail -n 30 "$dir/logs/$f.log" >&2
    fi
  done
  stop_all
  exit 1
}

up() {
  local with_node=
  [[ ${1:-} == --node ]] && with_node=1
  if is_up; then
    if [[ -n $with_node ]] && ! node_wanted; then
      log "running without nodes; run '$0 down' first, then '$0 up --node'"
      exit 1
    fi
    export_line
    return 0
  fi
  ensure_tools
  local bin
  bin=$("$repo/scripts/build-control-plane.sh" | tail -n 1)
  [[ -x $bin/kube-apiserver && -x $bin/etcd ]] || { log "no binaries in '$bin'"; exit 1; }

  # Whatever is left of an earlier, half-dead instance goes first.
  stop_all
  # Another control plane (or anything else) on our ports would make the new one fail in a
  # confusing way, or worse, make us talk to the wrong one.
  local p
  for p in "$port" "$etcd_port" "$etcd_peer_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      log "port $p on 127.0.0.1 is already in use; choose other ports with LOSANT_CP_PORT"
      exit 1
    fi
  done
  mkdir -p "$dir/logs"
  make_pki
  write_kubeconfig
  local node_flags=(--authorization-mode=RBAC --disable-admission-plugins=ServiceAccount)
  local kcm_controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-attachdetach,-persistentvolume-binder,-ttl,-csrsigning'
  if [[ -n $with_node ]]; then
    touch "$dir/node-mode"
    make_node_pki
    # Pods get their ServiceAccount token mounted (ServiceAccount admission), kubelets are
    # confined to their own node (Node authorizer, NodeRestriction), and every request is
    # audited at Metadata level, so tests can say who did what.
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n' >"$dir/audit-policy.yaml"
    node_flags=(--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
      --kubelet-client-certificate="$dir/pki/apiserver-kubelet-client.crt"
      --kubelet-client-key="$dir/pki/apiserver-kubelet-client.key"
      --kubelet-preferred-address-types=InternalIP,Hostname
      --audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/logs/audit.log"
      --audit-log-maxsize=200)
    kcm_controllers='*,-nodeipam,-cloud-node-lifecycle,-attachdetach,-persistentvolume-binder,-ttl,-csrsigning'
  fi

  spawn etcd "$bin/etcd" --name losant-operator-test --data-dir "$dir/etcd-data" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "losant-operator-test=http://127.0.0.1:$etcd_peer_port"

  # Without nodes, ServiceAccount admission is off so Pods can be created before the token
  # controller has made the default ServiceAccount. The service CIDR is never routed: nothing
  # connects to it.
  spawn apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$port" --insecure-port=0 \
    --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" --token-auth-file="$dir/pki/tokens.csv" \
    "${node_flags[@]}" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allow-privileged=true

  # The `default` namespace appears about a second after /readyz; clients that create objects
  # right away need it, so wait for both.
  local ready=
  for _ in $(seq 1 240); do
    live_pid etcd >/dev/null || fail "etcd exited during startup"
    live_pid apiserver >/dev/null || fail "kube-apiserver exited during startup"
    if api_get /readyz && api_get /api/v1/namespaces/default; then
      ready=1
      break
    fi
    sleep 0.5
  done
  [[ -n $ready ]] || fail "kube-apiserver not ready after 120 s"

  if want_kcm; then
    [[ -x $bin/kube-controller-manager ]] || fail "no kube-controller-manager in '$bin'"
    # Controllers that need nodes, cloud providers or volume plugins are left out; the rest give
    # namespace deletion, owner-reference garbage collection and service-account tokens. It
    # serves no health port (--secure-port=0), so it cannot clash with anything listening.
    spawn kcm "$bin/kube-controller-manager" --kubeconfig="$kubeconfig" \
      --service-account-private-key-file="$dir/pki/sa.key" --root-ca-file="$dir/pki/ca.crt" \
      --use-service-account-credentials=false --leader-elect=false \
      --secure-port=0 --port=0 \
      --controllers="$kcm_controllers"
    # The `default` ServiceAccount is made by one of its controllers: once it exists, the
    # controllers are running.
    ready=
    for _ in $(seq 1 120); do
      live_pid kcm >/dev/null || fail "kube-controller-manager exited during startup"
      if api_get /api/v1/namespaces/default/serviceaccounts/default; then
        ready=1
        break
      fi
      sleep 0.5
    done
    [[ -n $ready ]] || fail "kube-controller-manager's controllers not running after 60 s"
  fi
  [[ -n $with_node ]] && nodes_up
  log "up: apiserver https://127.0.0.1:$port, logs in $dir/logs"
  export_line
}

case ${1:-} in
  up) up "${2:-}" ;;
  load-image)
    shift
    load_images "$@"
    ;;
  _dockerd) node_dockerd_exec "$2" ;;
  down)
    stop_all
    log "down"
    ;;
  env) export_line ;;
  status)
    if is_up; then
      log "up"
    else
      log "not running"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 up [--node]|down|env|status|load-image IMAGE..." >&2
    exit 2
    ;;
esac
