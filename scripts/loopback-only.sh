#!/usr/bin/env bash
# Runs a command in a new network namespace whose only way off loopback is a counting black hole,
# and fails if anything in it sent a packet anywhere but loopback. The node tier of the tests runs
# this way, so the rule "nothing but 127.0.0.0/8 or a unix socket" is proven for every component
# it starts (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the kubelets, dockerd,
# containerd, the operator's pods, the emulator), not assumed.
#
# Usage: scripts/loopback-only.sh [--self-test] [--] COMMAND [ARG...]
#   --self-test  first prove the detector: a connection attempt to the cloud metadata address,
#                made in a namespace set up the same way, must be caught
#
# The namespace has `lo` and a veth pair, `blackhole` and its peer `sink`, both inside it. The
# default routes (IPv4 and IPv6) point at `blackhole` through a static neighbour, so a packet
# for any address off loopback is really sent, arrives at `sink`, and is dropped there (nothing
# forwards), never reaching a network. tcpdump on `blackhole` records every such packet; the
# only ones ignored are the kernel's own MLD reports (hop-by-hop, to ff02::/16) when the
# interface comes up. Only the network namespace changes: the command shares the host's
# filesystem, mounts and cgroups (so Docker and the kubelet work). The exit status is the
# command's, or 3 when anything was sent off loopback.
set -euo pipefail

log() { echo "loopback-only: $*" >&2; }

ensure_tools() {
  command -v tcpdump >/dev/null && command -v ip >/dev/null && command -v nsenter >/dev/null && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends tcpdump iproute2 util-linux >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends tcpdump iproute2 util-linux >&2; }
}

# Sets up namespace $1 and starts tcpdump on its black hole, writing to $2; prints tcpdump's pid.
make_namespace() {
  local ns=$1 capture=$2 key mac
  ip netns add "$ns"
  # No IPv6 autoconfiguration: no link-local address, router solicitation or DAD on the pair.
  for key in default all; do
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$key.addr_gen_mode=1" "net.ipv6.conf.$key.accept_ra=0" \
      "net.ipv6.conf.$key.router_solicitations=0" "net.ipv6.conf.$key.dad_transmits=0"
  done
  ip -n "$ns" link set lo up
  ip -n "$ns" link add blackhole type veth peer name sink
  ip -n "$ns" link set sink up
  ip -n "$ns" link set blackhole up
  # Documentation addresses (TEST-NET-1, 2001:db8::/32), with the next hop's MAC fixed so no
  # ARP or neighbour discovery is needed: the packets themselves are sent.
  ip -n "$ns" addr add 192.0.2.1/32 dev blackhole
  ip -n "$ns" -6 addr add 2001:db8::1/128 dev blackhole nodad
  mac=$(ip -n "$ns" -o link show sink | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip -n "$ns" neigh add 192.0.2.2 lladdr "$mac" dev blackhole nud permanent
  ip -n "$ns" -6 neigh add 2001:db8::2 lladdr "$mac" dev blackhole nud permanent
  ip -n "$ns" route add 192.0.2.2/32 dev blackhole
  ip -n "$ns" route add default via 192.0.2.2 dev blackhole
  ip -n "$ns" -6 route add 2001:db8::2/128 dev blackhole
  ip -n "$ns" -6 route add default via 2001:db8::2 dev blackhole
  nsenter --net="/run/netns/$ns" tcpdump -i blackhole -nn -l -U \
    'not (ip6 and ip6[6] == 0 and dst net ff02::/16)' >"$capture" 2>/dev/null &
  local pid=$!
  # tcpdump needs a moment before it captures.
  sleep 1.5
  kill -0 "$pid" 2>/dev/null || { log "tcpdump did not start"; exit 2; }
  echo "$pid"
}

sent_packets() { grep -c . "$1" || true; }

drop_namespace() {
  local ns=$1 tcpdump_pid=$2
  kill "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
}

self_test() {
  local ns=losant-selftest-$$ capture pid sent
  capture=$(mktemp)
  trap 'ip netns delete "$ns" 2>/dev/null || true' EXIT
  pid=$(make_namespace "$ns" "$capture")
  # What kubelet 1.20's cloud code would do: connect to the metadata address.
  nsenter --net="/run/netns/$ns" timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null || true
  sleep 0.5
  drop_namespace "$ns" "$pid"
  trap - EXIT
  sent=$(sent_packets "$capture")
  if ((sent == 0)) || ! grep -q '169.254.169.254' "$capture"; then
    log "self-test FAILED: a connection to 169.254.169.254 went unnoticed (sent=$sent)"
    cat "$capture" >&2
    rm -f "$capture"
    exit 1
  fi
  log "self-test: a connection attempt to 169.254.169.254 was caught ($sent packets):"
  head -n 3 "$capture" | sed 's/^/  /' >&2
  rm -f "$capture"
}

[[ $(id -u) == 0 ]] || { log "needs root (network namespaces)"; exit 2; }
ensure_tools
if [[ ${1:-} == --self-test ]]; then
  self_test
  shift
fi
[[ ${1:-} == -- ]] && shift
(($#)) || exit 0

ns=losant-lo-$$
capture_dir=${LOSANT_LOOPBACK_CAPTURE_DIR:-/tmp}
capture=$capture_dir/losant-loopback-$$.txt
trap 'ip netns delete "$ns" 2>/dev/null || true' EXIT
tcpdump_pid=$(make_namespace "$ns" "$capture")
trap 'drop_namespace "$ns" "$tcpdump_pid"' EXIT
status=0
nsenter --net="/run/netns/$ns" -- "$@" || status=$?
sleep 1
drop_namespace "$ns" "$tcpdump_pid"
trap - EXIT
sent=$(sent_packets "$capture")
if ((sent > 0)); then
  log "FAILED: $sent packet(s) left loopback (the rule is: only 127.0.0.0/8 or unix sockets):"
  head -n 50 "$capture" >&2
  exit 3
fi
log "no packet left loopback"
rm -f "$capture"
exit "$status"
