#!/usr/bin/env bash
# Starts and stops a real Kubernetes control plane (etcd, kube-apiserver and
# kube-controller-manager v1.20.2) on 127.0.0.1 for the end-to-end tests, and optionally two
# nodes that run pods (kube-scheduler, and a kubelet with its own dockerd on 127.0.0.1 and on
# 127.0.0.2; see scripts/lib/node.sh). The binaries come from scripts/build-control-plane.sh and
# scripts/build-node.sh, which build them from Debian's sources once and cache them.
#
# Usage: scripts/control-plane.sh up [--node]|down|env|status|stop|start|compact|load-image IMAGE...
#   up      start everything (or reuse a running instance) and print `export KUBECONFIG=...`;
#           with --node, also the scheduler and the nodes (the API server then runs the Node
#           authorizer, NodeRestriction and ServiceAccount admission), waiting until both nodes
#           are Ready. Either way the API server writes an audit log, logs/audit.log (Secrets
#           with request and response bodies, everything else metadata only), and the
#           kubeconfig has a second context, losant-operator-e2e, for the operators the tests
#           run (a user of its own, so the audit log can tell their requests apart)
#   down    stop the processes this script started (by recorded pid), drop etcd's data, and undo
#           every host change the nodes made (containers, mounts, cgroups, sysctls, paths)
#   env     print the `export KUBECONFIG=...` line
#   status  exit 0 if the control plane (and its nodes, if it has them) is up, 1 otherwise
#   stop [--kill] COMPONENT  stop one component of a running control plane: SIGTERM, SIGKILL
#           after 15 s; with --kill, SIGKILL at once (a crash). etcd keeps its data.
#   start COMPONENT  start it (again) with exactly the command line `up` gave it (same binary,
#           ports, PKI and data) and wait until it serves: etcd its /health, an API server its
#           /readyz, the controller manager its controllers. Already running is fine.
#           COMPONENT is etcd, apiserver, kcm, or apiserver-uncached: a second kube-apiserver
#           on the same etcd, on PORT+1, without a watch cache (every watch is served by etcd
#           itself, so a watch resumed from a compacted revision gets 410 Gone), which only
#           `start` starts; it prints the `export KUBECONFIG=...` line that reaches it.
#   compact compact etcd's history up to its current revision (waiting until it is done) and
#           print that revision
#   load-image IMAGE...  copy images from the default Docker daemon into every node's
#
# Environment:
#   LOSANT_CP_DIR     state directory (PKI, pids, logs, kubeconfig); default /tmp/losant-operator-cp
#   LOSANT_CP_PORT    apiserver secure port; default 16443. etcd uses PORT-4064 and PORT-4063,
#                     apiserver-uncached PORT+1; kube-controller-manager serves no port at all.
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
uncached_port=$((port + 1))
kubeconfig=$dir/kubeconfig
# Components in stop order: the controller manager first, so it never sees the apiserver vanish
# under it and spams its log; etcd last, since the apiservers need it to shut down cleanly.
components=(kcm apiserver-uncached apiserver etcd)
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
    apiserver | apiserver-uncached) expected=kube-apiserver ;;
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

# GET a path on the apiserver (on port $2, default the main one) with the admin token; succeeds
# on HTTP 2xx.
api_get() {
  curl -sf -o /dev/null --max-time 5 --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $(token)" "https://127.0.0.1:${2:-$port}$1"
}

etcd_url() { echo "http://127.0.0.1:$etcd_port"; }

# The token of user $1 (default: the admin).
token() { awk -F, -v user="${1:-losant-admin}" '$2 == user { print $1 }' "$dir/pki/tokens.csv"; }

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

# The operators the tests start authenticate as their own user (with an admin's rights), so the
# audit log can tell their requests from the tests' own. Added to an older PKI too.
add_operator_token() {
  grep -q ',losant-operator-e2e,' "$dir/pki/tokens.csv" && return 0
  echo "$(openssl rand -hex 24),losant-operator-e2e,losant-operator-e2e,system:masters" \
    >>"$dir/pki/tokens.csv"
}

# Every request is audited, so tests can say who did what: Secrets with the request and response
# bodies (what a patch changed, whether a read returned data), everything else at Metadata level.
# The RequestReceived stage repeats what ResponseComplete says and is left out.
write_audit_policy() {
  cat >"$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  resources:
  - group: ""
    resources: [secrets]
- level: Metadata
EOF
}

# A kubeconfig at $1 for the API server on port $2, as the admin (and a context for the
# operators the tests start).
write_kubeconfig() {
  local file=$1 server_port=$2
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: losant-operator-test
  cluster:
    server: https://127.0.0.1:$server_port
    certificate-authority: $dir/pki/ca.crt
users:
- name: losant-admin
  user:
    token: $(token)
- name: losant-operator-e2e
  user:
    token: $(token losant-operator-e2e)
contexts:
- name: losant-operator-test
  context:
    cluster: losant-operator-test
    user: losant-admin
- name: losant-operator-e2e
  context:
    cluster: losant-operator-test
    user: losant-operator-e2e
current-context: losant-operator-test
EOF
  mv "$file.tmp" "$file"
}

# Starts a component in its own session (so a Ctrl-C meant for the caller does not reach it) with
# no terminal and its output appended to logs/ (a restart continues the log); records its pid.
spawn() {
  local name=$1
  shift
  echo "---- control-plane.sh: starting $name at $(date -Is)" >>"$dir/logs/$name.log"
  setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
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

# The command line of component $1, into the array `cmdline`. `up` and `start` both run it, so a
# component started again gets exactly the binary and flags (ports, PKI, data dir) it first had.
component_command() {
  local bin
  bin=$(cat "$dir/bin")
  case $1 in
    etcd)
      cmdline=("$bin/etcd" --name losant-operator-test --data-dir "$dir/etcd-data" --unsafe-no-fsync
        --listen-client-urls "$(etcd_url)" --advertise-client-urls "$(etcd_url)"
        --listen-peer-urls "http://127.0.0.1:$etcd_peer_port"
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port"
        --initial-cluster "losant-operator-test=http://127.0.0.1:$etcd_peer_port")
      ;;
    apiserver) apiserver_command "$bin" "$port" "$dir/logs/audit.log" ;;
    apiserver-uncached)
      apiserver_command "$bin" "$uncached_port" "$dir/logs/audit-uncached.log" --watch-cache=false
      ;;
    kcm)
      # Controllers that need nodes, cloud providers or volume plugins are left out; the rest
      # give namespace deletion, owner-reference garbage collection and service-account tokens.
      # It serves no health port (--secure-port=0), so it cannot clash with anything listening.
      local controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-attachdetach,-persistentvolume-binder,-ttl,-csrsigning'
      node_wanted && controllers='*,-nodeipam,-cloud-node-lifecycle,-attachdetach,-persistentvolume-binder,-ttl,-csrsigning'
      cmdline=("$bin/kube-controller-manager" --kubeconfig="$kubeconfig"
        --service-account-private-key-file="$dir/pki/sa.key" --root-ca-file="$dir/pki/ca.crt"
        --use-service-account-credentials=false --leader-elect=false
        --secure-port=0 --port=0
        --controllers="$controllers")
      ;;
    *)
      log "unknown component '$1' (etcd, apiserver, apiserver-uncached or kcm)"
      exit 2
      ;;
  esac
}

# kube-apiserver on port $2 with its audit log at $3, plus any further flags.
# Without nodes, ServiceAccount admission is off so Pods can be created before the token
# controller has made the default ServiceAccount. The service CIDR is never routed: nothing
# connects to it.
apiserver_command() {
  local bin=$1 secure_port=$2 audit_log=$3
  shift 3
  local mode_flags=(--authorization-mode=RBAC --disable-admission-plugins=ServiceAccount)
  if node_wanted; then
    # Pods get their ServiceAccount token mounted (ServiceAccount admission) and kubelets are
    # confined to their own node (Node authorizer, NodeRestriction).
    mode_flags=(--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
      --kubelet-client-certificate="$dir/pki/apiserver-kubelet-client.crt"
      --kubelet-client-key="$dir/pki/apiserver-kubelet-client.key"
      --kubelet-preferred-address-types=InternalIP,Hostname)
  fi
  # The audit log holds Secret data (the tests' throwaway values), so it stays in this
  # test-only directory; 50 MB files (an e2e run writes about 35 MB), two old ones kept.
  local audit_flags=(--audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$audit_log"
    --audit-log-maxsize=50 --audit-log-maxbackup=2)
  cmdline=("$bin/kube-apiserver"
    --etcd-servers="$(etcd_url)"
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1
    --secure-port="$secure_port" --insecure-port=0
    --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key"
    --client-ca-file="$dir/pki/ca.crt" --token-auth-file="$dir/pki/tokens.csv"
    "${mode_flags[@]}" "${audit_flags[@]}"
    --service-account-issuer=https://kubernetes.default.svc
    --service-account-key-file="$dir/pki/sa.pub"
    --service-account-signing-key-file="$dir/pki/sa.key"
    --service-cluster-ip-range=10.96.0.0/16
    --allow-privileged=true
    "$@")
}

# The ports component $1 listens on.
component_ports() {
  case $1 in
    etcd) echo "$etcd_port $etcd_peer_port" ;;
    apiserver) echo "$port" ;;
    apiserver-uncached) echo "$uncached_port" ;;
  esac
}

# Whether component $1 serves: etcd's /health, an API server's /readyz (the main one's `default`
# namespace too, which appears about a second later and which clients creating objects right
# away need), the controller manager's `default` ServiceAccount (made by one of its
# controllers: once it exists, they run).
serves() {
  case $1 in
    etcd) curl -sf --max-time 2 "$(etcd_url)/health" | grep -q '"health": *"true"' ;;
    apiserver) api_get /readyz && api_get /api/v1/namespaces/default ;;
    apiserver-uncached) api_get /readyz "$uncached_port" ;;
    kcm) api_get /api/v1/namespaces/default/serviceaccounts/default ;;
  esac
}

# Starts component $1 and waits up to $2 seconds for it to serve; on failure, says why and
# returns 1 (the caller decides what else to stop).
start_component() {
  local name=$1 seconds=$2 p
  for p in $(component_ports "$name"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      log "port $p on 127.0.0.1 is already in use; choose other ports with LOSANT_CP_PORT"
      return 1
    fi
  done
  local cmdline
  component_command "$name"
  spawn "$name" "${cmdline[@]}"
  for _ in $(seq 1 $((seconds * 2))); do
    live_pid "$name" >/dev/null || { log "$name exited during startup"; return 1; }
    serves "$name" && return 0
    sleep 0.5
  done
  log "$name not serving after $seconds s"
  return 1
}

# Seconds each component may take to serve.
start_timeout() {
  case $1 in
    apiserver | apiserver-uncached) echo 120 ;;
    *) echo 60 ;;
  esac
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

  # Whatever is left of an earlier, half-dead instance goes first, its logs too.
  stop_all
  rm -rf "$dir/logs"
  mkdir -p "$dir/logs"
  make_pki
  add_operator_token
  write_kubeconfig "$kubeconfig" "$port"
  write_audit_policy
  # `start` runs the same binaries.
  echo "$bin" >"$dir/bin"
  if [[ -n $with_node ]]; then
    touch "$dir/node-mode"
    make_node_pki
  fi
  local name
  for name in etcd apiserver; do
    # Another control plane (or anything else) on our ports would make this one fail in a
    # confusing way, or worse, make us talk to the wrong one: start_component checks.
    start_component "$name" "$(start_timeout "$name")" || fail "$name did not start"
  done
  if want_kcm; then
    [[ -x $bin/kube-controller-manager ]] || fail "no kube-controller-manager in '$bin'"
    start_component kcm "$(start_timeout kcm)" || fail "kube-controller-manager did not start"
  fi
  [[ -n $with_node ]] && nodes_up
  log "up: apiserver https://127.0.0.1:$port, logs in $dir/logs"
  export_line
}

# `start COMPONENT`: starts one component of a control plane `up` made, unless it runs already,
# and waits until it serves.
start_one() {
  local name=${1:-}
  [[ -f $dir/bin && -f $dir/pki/tokens.csv ]] || { log "no control plane in $dir; run '$0 up' first"; exit 1; }
  if [[ $name == etcd && ! -d $dir/etcd-data ]]; then
    log "etcd has no data in $dir/etcd-data (the control plane is down); run '$0 up'"
    exit 1
  fi
  # A control plane `up` made before every API server had an audit log has no policy yet.
  [[ -f $dir/audit-policy.yaml ]] || write_audit_policy
  local cmdline
  component_command "$name" # refuses an unknown name
  if live_pid "$name" >/dev/null; then
    for _ in $(seq 1 "$(($(start_timeout "$name") * 2))"); do
      serves "$name" && break
      sleep 0.5
    done
    serves "$name" || { log "$name runs but does not serve"; exit 1; }
  elif start_component "$name" "$(start_timeout "$name")"; then
    log "$name started"
  else
    tail -n 30 "$dir/logs/$name.log" >&2
    exit 1
  fi
  if [[ $name == apiserver-uncached ]]; then
    write_kubeconfig "$dir/kubeconfig-uncached" "$uncached_port"
    echo "export KUBECONFIG=$dir/kubeconfig-uncached"
  fi
}

# `stop [--kill] COMPONENT`.
stop_one() {
  local kill_now=
  if [[ ${1:-} == --kill ]]; then
    kill_now=1
    shift
  fi
  local name=${1:-} cmdline pid
  [[ -f $dir/bin ]] || { log "no control plane in $dir"; exit 1; }
  component_command "$name" # refuses an unknown name
  if [[ -n $kill_now ]] && pid=$(live_pid "$name"); then
    kill -KILL "$pid" 2>/dev/null || true
    # Gone once reaped, or a zombie (whose command line is empty): its ports are free either way.
    for _ in $(seq 1 100); do
      live_pid "$name" >/dev/null || break
      sleep 0.1
    done
  fi
  stop_component "$name"
  log "$name stopped"
}

# `compact`: compacts etcd up to its current revision (physically: done when this returns).
compact() {
  live_pid etcd >/dev/null || { log "etcd is not running"; exit 1; }
  local header revision
  # A read of any key answers with the current revision in its header.
  header=$(curl -sf --max-time 5 -X POST "$(etcd_url)/v3/kv/range" -d '{"key": "AA=="}') ||
    { log "etcd did not answer"; exit 1; }
  revision=$(sed -n 's/.*"revision": *"\([0-9]*\)".*/\1/p' <<<"$header")
  [[ -n $revision ]] || { log "no revision in etcd's answer: $header"; exit 1; }
  curl -sf --max-time 60 -o /dev/null -X POST "$(etcd_url)/v3/kv/compaction" \
    -d "{\"revision\": \"$revision\", \"physical\": true}" ||
    { log "etcd refused to compact at $revision"; exit 1; }
  echo "$revision"
}

usage="usage: $0 up [--node]|down|env|status|stop [--kill] COMPONENT|start COMPONENT|compact|load-image IMAGE..."
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
  start) start_one "${2:-}" ;;
  stop)
    shift
    stop_one "$@"
    ;;
  compact) compact ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
