#!/usr/bin/env bash
# An OpenMPI launch agent (`--mca plm_rsh_agent`) for simulated hosts: where ssh would log
# in to HOST and run COMMAND in a shell, this enters HOST's network namespace (and a UTS
# namespace carrying HOST's own hostname) and runs COMMAND there in a shell.
#
#   netns-agent.sh [ssh options…] HOST COMMAND…
#
# HOST is an address from the hostfile; $VAVL_SIMULATED_HOSTS names the map written by
# Cluster/simulate-hosts.sh, one "ADDRESS NAMESPACE HOSTNAME" per line. mpirun calls this
# once per host to start an `orted`; the orted (and so every rank it starts) lives in the
# namespace, sees only that host's veth interface, and reaches the others over TCP.
set -euo pipefail

# mpirun may pass ssh-style options before the host; a namespace has no use for them.
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
[ $# -ge 2 ] || { echo "netns-agent: usage: netns-agent.sh HOST COMMAND..." >&2; exit 255; }
host=$1; shift

map=${VAVL_SIMULATED_HOSTS:-}
[ -r "$map" ] || { echo "netns-agent: VAVL_SIMULATED_HOSTS does not name a readable host map (got '$map')" >&2; exit 255; }
read -r _ namespace hostname < <(awk -v host="$host" '$1 == host || $3 == host { print; exit }' "$map") || true
[ -n "${namespace:-}" ] || { echo "netns-agent: no simulated host '$host' in $map" >&2; exit 255; }

# Like ssh, hand the words to a shell as one command line: mpirun quotes its orted command
# for a remote shell.
exec ip netns exec "$namespace" unshare --uts -- sh -c 'hostname "$1" && shift && exec sh -c "$*"' netns-agent "$hostname" "$@"
