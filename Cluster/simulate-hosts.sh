#!/usr/bin/env bash
# N simulated hosts on one machine, for CI: each host is a Linux network namespace with its
# own address on a private bridge (one veth pair per host), and mpirun starts each rank
# inside its host's namespace through Cluster/netns-agent.sh (an OpenMPI launch agent that
# enters the namespace where ssh would log in). Ranks talk over TCP between the namespaces
# — `--mca btl tcp,self`, no shared memory — and mpirun's own control traffic (OOB) uses the
# same subnet, so the run exercises what a real multi-node job needs from the network.
#
#   Cluster/simulate-hosts.sh check
#       exit 0 if this machine can create the namespaces, else print why and exit 77
#   Cluster/simulate-hosts.sh run [-n N] [--keep-log] -- PROGRAM ARGS…
#       create N hosts (default 2), run `mpirun -np N PROGRAM ARGS…` with one rank per
#       host, remove the hosts again (also on failure or Ctrl-C), exit with mpirun's status
#       (77 if the hosts cannot be created)
#
# Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 (`ip`) and util-linux
# (`unshare`). The machine's mpirun flags come from Scripts/mpi.sh. Extra mpirun flags can
# be given in $SIMULATED_MPIRUN_FLAGS (words split on spaces).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repository=$(dirname "$here")
# shellcheck source=../Scripts/mpi.sh
source "$repository/Scripts/mpi.sh"

skip() { echo "simulate-hosts: SKIPPED: $*" >&2; exit 77; }

# Every name carries this process's id, so two runs at once (two engineers' test runs)
# never share a namespace, a bridge or a subnet.
tag=$$
bridge="vbr$tag"
namespaces=()
state=""

# check: can we create a namespace, a bridge and a veth pair here? Exits 77 with the reason.
check() {
  command -v ip >/dev/null || skip "'ip' (iproute2) is not installed: apt-get install iproute2"
  command -v unshare >/dev/null || skip "'unshare' (util-linux) is not installed"
  local probe="vavl-probe-$tag" error
  if ! error=$(ip netns add "$probe" 2>&1); then
    skip "cannot create network namespaces on this machine ($error); run as root or with CAP_SYS_ADMIN and CAP_NET_ADMIN"
  fi
  if ! error=$(ip netns exec "$probe" unshare --uts true 2>&1); then
    ip netns delete "$probe" 2>/dev/null || true
    skip "cannot enter a namespace here ($error)"
  fi
  ip netns delete "$probe"
  if ! error=$(ip link add "vpr$tag" type veth peer name "vpq$tag" 2>&1); then
    skip "cannot create veth pairs ($error)"
  fi
  ip link delete "vpr$tag"
}

# A /24 whose third octet is free in this namespace's routing table.
free_subnet() {
  local octet
  for offset in $(seq 0 199); do
    octet=$(( (tag + offset) % 200 + 20 ))
    if [ -z "$(ip -4 route show to match "10.77.$octet.1" | grep -v '^default' || true)" ]; then
      echo "10.77.$octet"; return
    fi
  done
  skip "no free 10.77.x.0/24 subnet"
}

teardown() {
  local namespace
  for namespace in "${namespaces[@]}"; do ip netns delete "$namespace" 2>/dev/null || true; done
  ip link delete "$bridge" 2>/dev/null || true
  [ -n "$state" ] && rm -rf "$state"
}

# up N: the bridge (with an address for mpirun, which stays in this namespace) and N hosts.
up() {
  local count=$1 prefix index namespace address hostname
  prefix=$(free_subnet) || exit 77
  subnet="$prefix.0/24"
  state=$(mktemp -d)
  hostfile="$state/hostfile"
  hostmap="$state/hosts"
  : >"$hostfile"; : >"$hostmap"
  trap teardown EXIT
  trap 'exit 130' INT TERM
  ip link add "$bridge" type bridge
  ip addr add "$prefix.254/24" dev "$bridge"
  ip link set "$bridge" up
  for (( index = 0; index < count; index++ )); do
    namespace="vavl-$tag-host$index"
    address="$prefix.$(( index + 1 ))"
    hostname="vavl-host$index"
    ip netns add "$namespace"
    namespaces+=("$namespace")
    ip link add "vh$tag-$index" type veth peer name "vn$tag-$index"
    ip link set "vh$tag-$index" master "$bridge" up
    ip link set "vn$tag-$index" netns "$namespace"
    ip -n "$namespace" link set lo up
    ip -n "$namespace" link set "vn$tag-$index" name eth0
    ip -n "$namespace" addr add "$address/24" dev eth0
    ip -n "$namespace" link set eth0 up
    echo "$address slots=1" >>"$hostfile"
    echo "$address $namespace $hostname" >>"$hostmap"
  done
  # Every host must reach every other before mpirun starts.
  for namespace in "${namespaces[@]}"; do
    while read -r address _ _; do reachable "$namespace" "$address"; done <"$hostmap"
  done
}

# A TCP connect to a closed port (ping is not in every image): "connection refused" comes
# from the other host, a timeout means there is no route.
reachable() {
  local namespace=$1 address=$2 answer
  answer=$(ip netns exec "$namespace" timeout 3 bash -c "exec 3<>/dev/tcp/$address/9" 2>&1 || true)
  case $answer in
    *refused*) return ;;
    *) echo "simulate-hosts: $namespace cannot reach $address: ${answer:-timeout}" >&2; exit 1 ;;
  esac
}

run() {
  local count=2
  while [ $# -gt 0 ]; do
    case $1 in
      -n) count=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || { echo "usage: simulate-hosts.sh run [-n N] -- PROGRAM ARGS..." >&2; exit 2; }
  check
  up "$count"
  echo "simulate-hosts: $count hosts on $subnet: $(awk '{ printf "%s%s (%s)", sep, $3, $1; sep = ", " }' "$hostmap")" >&2
  local flags=(
    --hostfile "$hostfile" -np "$count" --map-by node
    --mca plm_rsh_agent "$here/netns-agent.sh"
    --mca plm_rsh_no_tree_spawn 1
    --mca btl tcp,self
    --mca btl_tcp_if_include "$subnet"
    --mca oob_tcp_if_include "$subnet"
  )
  # shellcheck disable=SC2206
  local extra=(${SIMULATED_MPIRUN_FLAGS:-})
  local status=0
  VAVL_SIMULATED_HOSTS="$hostmap" "${mpirun_cmd[@]}" "${flags[@]}" "${extra[@]}" "$@" || status=$?
  return $status
}

case ${1:-} in
  check) check; echo "simulate-hosts: network namespaces are available" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
