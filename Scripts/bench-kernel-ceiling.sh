#!/usr/bin/env bash
# Is there slack left inside the step's largest products? Times OpenBLAS against a plain
# AVX-512 micro-kernel of our own (weights packed once, no zero fill, K in blocks of 512)
# on the training step's largest product shapes, in alternation on one pinned core, with a
# 2048² product as the reference rate. Source and method: Scripts/microbench/gemm_kernel_ceiling.c.
#
#   Scripts/bench-kernel-ceiling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! grep -q -m1 avx512f /proc/cpuinfo; then
  echo "bench-kernel-ceiling: this CPU has no AVX-512; the own kernel is written for it (nothing measured)"
  exit 0
fi
Scripts/setup.sh >/dev/null
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
gcc -O3 -march=skylake-avx512 Scripts/microbench/gemm_kernel_ceiling.c \
  -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -lm -o "$build/gemm_kernel_ceiling"
# Debian's OpenBLAS 0.3.21 picks its generic kernels on this CPU unless told (see docs/PERFORMANCE.md).
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX} OPENBLAS_NUM_THREADS=1 taskset -c 0 "$build/gemm_kernel_ceiling"
