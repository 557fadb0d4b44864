#!/usr/bin/env bash
# Installs the system libraries the trainer builds against, idempotently: apt runs only
# when something is missing, and `apt-get update` only then.
set -euo pipefail

packages=(libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-dev libdnnl-dev zlib1g-dev pkg-config iproute2)  # iproute2: Cluster/simulate-hosts.sh
# Cluster/slurm-tests.sh: a single-node Slurm (slurm-wlm: slurmctld, slurmd, the clients) and its
# authentication (munge); libpmix-dev holds the libpmix.so that Slurm's mpi_pmix plugin opens
# (srun --mpi=pmix). The tests start daemons of their own, not the packages' services.
packages+=(slurm-wlm munge libpmix-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -f /usr/include/oneapi/dnnl/dnnl.h ] || { echo "setup: oneDNN's header is missing (libdnnl-dev)" >&2; exit 1; }
for module in ompi-c hdf5 openblas zlib; do
  pkg-config --exists "$module" || { echo "setup: pkg-config cannot find '$module'" >&2; exit 1; }
done
command -v swift >/dev/null || { echo "setup: the Swift toolchain is not on PATH" >&2; exit 1; }
