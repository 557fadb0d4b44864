#!/usr/bin/env bash
# Training-step benchmark, Swift against PyTorch on the same machine, printed as one table.
#
#   Scripts/bench.sh                       # paper config, batch 32, 3 timed iterations each
#   ITERATIONS=2 BATCH=16 Scripts/bench.sh # quicker
#   SKIP_TORCH=1 Scripts/bench.sh          # Swift rows only
#
# Rows: the Swift trainer as 1 process × 1 thread, 1 process × 2 threads and
# `mpirun -np 2` × 1 thread (global batch split over the ranks); PyTorch (CPU, float32,
# Scripts/reference/bench_torch.py in .venv-reference, created by
# Scripts/reference/setup_venv.sh) with the padded batch-first implementation and the exact
# per-utterance one, with 1 and 2 threads. Ratio = best PyTorch median with the same cores ÷
# this row's median (> 1: Swift is faster). GFLOP/s use the analytic count of useful FLOPs
# printed by `vavl bench` (valid frames only; formula in Sources/Training/Benchmark/StepBenchmark.swift).
# "% of sgemm" divides by the machine's sgemm rate (2048², same threads) that `vavl bench`
# measures between its timed iterations (median), so that it drifts with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh
iterations=${ITERATIONS:-3}
batch=${BATCH:-32}
log=$(mktemp -d)

Scripts/setup.sh
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"

value() { grep -m1 "^$2=" "$1" | cut -d= -f2; }

echo "== Swift: 1 process × 1 thread"
"$vavl" bench --model paper --batch-size "$batch" --threads 1 --iterations "$iterations" | tee "$log/swift-1x1"
echo "== Swift: 1 process × 2 threads"
"$vavl" bench --model paper --batch-size "$batch" --threads 2 --iterations "$iterations" | tee "$log/swift-1x2"
echo "== Swift: mpirun -np 2 × 1 thread"
"${mpirun_cmd[@]}" -np 2 "$vavl" bench --model paper --batch-size "$batch" --threads 1 --iterations "$iterations" | tee "$log/swift-2x1"

if [ -z "${SKIP_TORCH:-}" ]; then
  Scripts/reference/setup_venv.sh >/dev/null
  for threads in 1 2; do
    echo "== PyTorch: $threads thread(s)"
    .venv-reference/bin/python Scripts/reference/bench_torch.py --threads "$threads" --iterations "$iterations" \
      --batch "$batch" --no-check | tee "$log/torch-$threads"
  done
fi

gflop=$(grep -m1 "^useful work" "$log/swift-1x1" | sed 's/useful work: \([0-9.]*\) GFLOP.*/\1/')
sgemm1=$(grep -m1 "^machine sgemm" "$log/swift-1x1" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
sgemm2=$(grep -m1 "^machine sgemm" "$log/swift-1x2" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
best_torch() {  # best (lowest) PyTorch median with $1 threads
  [ -f "$log/torch-$1" ] || { echo ""; return; }
  printf '%s\n%s\n' "$(value "$log/torch-$1" padded.median_s)" "$(value "$log/torch-$1" packed.median_s)" | sort -g | head -1
}
echo
echo "| row | median s | min s | GFLOP/s | % of sgemm | ratio vs best PyTorch | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
row() {  # name file cores sgemm
  local median min rss torch ratio
  median=$(value "$2" median_s); min=$(value "$2" min_s)
  rss=$(grep -m1 "^peak RSS" "$2" | sed 's/.*: \([0-9]*\) MiB/\1/')
  torch=$(best_torch "$3")
  ratio=$([ -n "$torch" ] && awk -v t="$torch" -v s="$median" 'BEGIN { printf "%.2f", t / s }' || echo "n/a")
  awk -v n="$1" -v m="$median" -v mi="$min" -v g="$gflop" -v sg="$4" -v r="$ratio" -v rss="$rss" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.1f | %.0f %% | %s | %s |\n", n, m, mi, g / m, 100 * g / m / sg, r, rss }'
}
row "Swift 1 process × 1 thread" "$log/swift-1x1" 1 "$sgemm1"
row "Swift 1 process × 2 threads" "$log/swift-1x2" 2 "$sgemm2"
# Both ranks measured sgemm at the same time: the 2-rank reference is twice the per-rank rate.
sgemm_ranks=$(grep -m1 "^machine sgemm" "$log/swift-2x1" | sed 's/.*: \([0-9.]*\) GFLOP.*/\1/')
row "Swift mpirun -np 2 × 1 thread" "$log/swift-2x1" 2 "$(awk -v s="$sgemm_ranks" 'BEGIN { print 2 * s }')"
for threads in 1 2; do
  [ -f "$log/torch-$threads" ] || continue
  for impl in padded packed; do
    median=$(value "$log/torch-$threads" "$impl.median_s"); min=$(value "$log/torch-$threads" "$impl.min_s")
    rss=$(value "$log/torch-$threads" "$impl.peak_rss_mb")
    sg=$([ "$threads" = 1 ] && echo "$sgemm1" || echo "$sgemm2")
    awk -v n="PyTorch $impl, $threads thread(s)" -v m="$median" -v mi="$min" -v g="$gflop" -v sg="$sg" -v rss="$rss" \
      'BEGIN { printf "| %s | %.2f | %.2f | %.1f | %.0f %% | — | %s |\n", n, m, mi, g / m, 100 * g / m / sg, rss }'
  done
done
echo
echo "machine sgemm (medians between timed iterations): $sgemm1 GFLOP/s (1 thread), $sgemm2 GFLOP/s (2 threads)," \
  "$sgemm_ranks GFLOP/s per rank with 2 ranks; useful work $gflop GFLOP per iteration"
grep -h "^inference latency" "$log/swift-1x2" || true
grep -h "^allreduce" "$log/swift-2x1" | sed 's/^/mpirun -np 2: /' || true
