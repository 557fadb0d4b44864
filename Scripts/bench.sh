#!/usr/bin/env bash
# Training-step benchmark, Swift against PyTorch on the same machine, printed as one table.
#
#   Scripts/bench.sh                       # paper config, batch 32, 2 rounds × 3 timed iterations
#   ITERATIONS=2 BATCH=16 Scripts/bench.sh # quicker
#   ROUNDS=3 Scripts/bench.sh              # more rounds of the Swift rows
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
# This VM's speed drifts by ~20 % over minutes, so the Swift rows run in ROUNDS rounds, the
# three configurations in turn within each round, and each row pools the iterations (and
# the sgemm measurements) of all its rounds: a slow spell then falls on every row alike.
# The last column is the inference latency of one utterance (150 audio, 90 video frames) by
# each head, as the paper reports it (§III-E): Swift rows from `vavl bench` (median over the
# rounds), PyTorch from bench_torch.py's per-utterance model (one utterance needs no padding).
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh
iterations=${ITERATIONS:-3}
rounds=${ROUNDS:-2}
batch=${BATCH:-32}
log=$(mktemp -d)

Scripts/setup.sh
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"

value() { grep -m1 "^$2=" "$1" | cut -d= -f2; }

for round in $(seq "$rounds"); do
  echo "== Swift: 1 process × 1 thread (round $round of $rounds)"
  "$vavl" bench --model paper --batch-size "$batch" --threads 1 --iterations "$iterations" | tee -a "$log/swift-1x1"
  echo "== Swift: 1 process × 2 threads (round $round of $rounds)"
  "$vavl" bench --model paper --batch-size "$batch" --threads 2 --iterations "$iterations" | tee -a "$log/swift-1x2"
  echo "== Swift: mpirun -np 2 × 1 thread (round $round of $rounds)"
  "${mpirun_cmd[@]}" -np 2 "$vavl" bench --model paper --batch-size "$batch" --threads 1 --iterations "$iterations" \
    | tee -a "$log/swift-2x1"
done

if [ -z "${SKIP_TORCH:-}" ]; then
  Scripts/reference/setup_venv.sh >/dev/null
  for threads in 1 2; do
    echo "== PyTorch: $threads thread(s)"
    .venv-reference/bin/python Scripts/reference/bench_torch.py --threads "$threads" --iterations "$iterations" \
      --batch "$batch" --no-check | tee "$log/torch-$threads"
  done
fi

# Pooled over the rounds: every value of `key=v1,v2,…` lines in a file, one per line.
pooled() { grep "^$2=" "$1" | cut -d= -f2 | tr ',' '\n'; }
median_of() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
gflop=$(grep -m1 "^useful work" "$log/swift-1x1" | sed 's/useful work: \([0-9.]*\) GFLOP.*/\1/')
sgemm1=$(pooled "$log/swift-1x1" sgemm_gflops | median_of)
sgemm2=$(pooled "$log/swift-1x2" sgemm_gflops | median_of)
best_torch() {  # best (lowest) PyTorch median with $1 threads
  [ -f "$log/torch-$1" ] || { echo ""; return; }
  printf '%s\n%s\n' "$(value "$log/torch-$1" padded.median_s)" "$(value "$log/torch-$1" packed.median_s)" | sort -g | head -1
}
echo
echo "| row | median s | min s | GFLOP/s | % of sgemm | ratio vs best PyTorch | peak RSS MiB | inference ms per utterance: AV / audio / video |"
echo "|---|---|---|---|---|---|---|---|"
# Inference latency of one utterance (150 audio, 90 video frames) per head, median over rounds.
swift_latency() {
  local head values=()
  for head in audio_visual audio video; do
    values+=("$(grep "^inference latency $head:" "$1" | sed 's/.*: \([0-9.]*\) ms.*/\1/' | median_of)")
  done
  [ -n "${values[0]}" ] && printf '%.0f / %.0f / %.0f' "${values[@]}" || echo "—"
}
row() {  # name file cores sgemm
  local median min rss torch ratio
  median=$(pooled "$2" iterations_s | median_of); min=$(pooled "$2" iterations_s | sort -g | head -1)
  rss=$(grep "^peak RSS" "$2" | sed 's/.*: \([0-9]*\) MiB/\1/' | sort -g | tail -1)
  torch=$(best_torch "$3")
  ratio=$([ -n "$torch" ] && awk -v t="$torch" -v s="$median" 'BEGIN { printf "%.2f", t / s }' || echo "n/a")
  awk -v n="$1" -v m="$median" -v mi="$min" -v g="$gflop" -v sg="$4" -v r="$ratio" -v rss="$rss" \
    -v lat="$(swift_latency "$2")" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.1f | %.0f %% | %s | %s | %s |\n", n, m, mi, g / m, 100 * g / m / sg, r, rss, lat }'
}
row "Swift 1 process × 1 thread" "$log/swift-1x1" 1 "$sgemm1"
row "Swift 1 process × 2 threads" "$log/swift-1x2" 2 "$sgemm2"
# Both ranks measured sgemm at the same time: the 2-rank reference is twice the per-rank rate.
sgemm_ranks=$(pooled "$log/swift-2x1" sgemm_gflops | median_of)
row "Swift mpirun -np 2 × 1 thread" "$log/swift-2x1" 2 "$(awk -v s="$sgemm_ranks" 'BEGIN { print 2 * s }')"
for threads in 1 2; do
  [ -f "$log/torch-$threads" ] || continue
  for impl in padded packed; do
    median=$(value "$log/torch-$threads" "$impl.median_s"); min=$(value "$log/torch-$threads" "$impl.min_s")
    rss=$(value "$log/torch-$threads" "$impl.peak_rss_mb")
    sg=$([ "$threads" = 1 ] && echo "$sgemm1" || echo "$sgemm2")
    latency="—"  # one utterance needs no padding: measured with the per-utterance implementation
    if [ "$impl" = packed ] && [ -n "$(value "$log/torch-$threads" packed.latency_audio_ms)" ]; then
      latency=$(printf '%.0f / %.0f / %.0f' "$(value "$log/torch-$threads" packed.latency_audio_visual_ms)" \
        "$(value "$log/torch-$threads" packed.latency_audio_ms)" "$(value "$log/torch-$threads" packed.latency_video_ms)")
    fi
    awk -v n="PyTorch $impl, $threads thread(s)" -v m="$median" -v mi="$min" -v g="$gflop" -v sg="$sg" -v rss="$rss" \
      -v lat="$latency" \
      'BEGIN { printf "| %s | %.2f | %.2f | %.1f | %.0f %% | — | %s | %s |\n", n, m, mi, g / m, 100 * g / m / sg, rss, lat }'
  done
done
echo
echo "machine sgemm (medians between timed iterations): $sgemm1 GFLOP/s (1 thread), $sgemm2 GFLOP/s (2 threads)," \
  "$sgemm_ranks GFLOP/s per rank with 2 ranks; useful work $gflop GFLOP per iteration"
grep -h "^allreduce" "$log/swift-2x1" | sed 's/^/mpirun -np 2: /' || true
threads_median=$(pooled "$log/swift-1x2" iterations_s | median_of)
ranks_median=$(pooled "$log/swift-2x1" iterations_s | median_of)
awk -v r="$ranks_median" -v t="$threads_median" -v n="$rounds" \
  'BEGIN { printf "mpirun -np 2 × 1 thread against 1 process × 2 threads: %+.1f %% (pooled medians of %d rounds; + = ranks slower)\n", 100 * (r / t - 1), n }'
