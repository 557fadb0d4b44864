#!/usr/bin/env bash
# Training-step benchmark, Swift against PyTorch on the same machine, fp32 and bf16, printed as one table.
#
#   Scripts/bench.sh                       # paper config, batch 32, 2 rounds × 3 timed iterations
#   ITERATIONS=2 BATCH=16 Scripts/bench.sh # quicker
#   ROUNDS=3 Scripts/bench.sh              # more rounds of the Swift rows
#   PRECISIONS=fp32 Scripts/bench.sh       # Swift rows in fp32 only (default "fp32 bf16")
#   SKIP_TORCH=1 Scripts/bench.sh          # Swift rows only
#
# Rows: the Swift trainer as 1 process × 1 thread, 1 process × 2 threads and
# `mpirun -np 2` × 1 thread (global batch split over the ranks), each with
# `vavl bench --precision fp32` and `--precision bf16` (matrix products with bf16 operands,
# fp32 accumulation) for the precisions in PRECISIONS; PyTorch (CPU,
# Scripts/reference/bench_torch.py in .venv-reference, created by
# Scripts/reference/setup_venv.sh) with the padded batch-first implementation and the exact
# per-utterance one, with 1 and 2 threads, each in float32 (`--precision fp32`) and under
# `torch.autocast("cpu", dtype=torch.bfloat16)` (`--precision bf16`: forward passes and
# losses autocast, backward and Adam outside). The PyTorch rows always run in both
# precisions (PRECISIONS restricts the Swift rows only).
# Ratio = best PyTorch median with the same cores and the same precision ÷ this row's median
# (> 1: Swift is faster): a vavl fp32 row against the better of the two PyTorch fp32 rows, a
# vavl bf16 row against the better of the two PyTorch autocast-bf16 rows, same threads.
# GFLOP/s use the analytic count of useful FLOPs printed by `vavl bench` (valid frames only;
# formula in Sources/Training/Benchmark/StepBenchmark.swift), the same count in both precisions.
# "% of fp32 sgemm" divides by the machine's fp32 sgemm rate (2048², same threads) that
# `vavl bench` measures between its timed iterations (median, pooled over the fp32 and bf16
# runs of that configuration: both measure the same fp32 sgemm), so that it drifts with the
# machine; bf16 rows are divided by the same fp32 rate (so they may exceed 100 %).
# This VM's speed drifts by ~20 % over minutes, so the Swift rows run in ROUNDS rounds, the
# three configurations in turn within each round and each configuration in fp32 then bf16,
# and each row pools the iterations (and the sgemm measurements) of all its rounds: a slow
# spell then falls on every row alike.
# The last column is the inference latency of one utterance (150 audio, 90 video frames) by
# each head, as the paper reports it (§III-E), in the row's precision: Swift rows from
# `vavl bench` (median over the rounds), PyTorch from bench_torch.py's per-utterance model
# (one utterance needs no padding, so the padded rows show —).
# Above the table: the CPU model (lscpu) and whether it has amx_bf16 / avx512_bf16
# (/proc/cpuinfo flags); under it, the `precision:` line of one vavl bf16 run (the bf16 path used).
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh
iterations=${ITERATIONS:-3}
rounds=${ROUNDS:-2}
batch=${BATCH:-32}
read -r -a requested <<<"${PRECISIONS:-fp32 bf16}"
for precision in "${requested[@]}"; do
  case $precision in
    fp32 | bf16) ;;
    *) echo "PRECISIONS: unknown precision '$precision' (fp32, bf16)" >&2; exit 2 ;;
  esac
done
precisions=()  # the Swift rows' precisions, always fp32 before bf16, each once
for precision in fp32 bf16; do
  [[ " ${requested[*]} " == *" $precision "* ]] && precisions+=("$precision")
done
[ "${#precisions[@]}" -gt 0 ] || { echo "PRECISIONS is empty (fp32, bf16)" >&2; exit 2; }
has_precision() { [[ " ${precisions[*]} " == *" $1 "* ]]; }
torch_precisions=(fp32 bf16)  # always both: PRECISIONS restricts the Swift rows only
log=$(mktemp -d)

Scripts/setup.sh
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"

value() { { grep -m1 "^$2=" "$1" || true; } | cut -d= -f2; }

configurations=(1x1 1x2 2x1)
describe() {
  case $1 in
    1x1) echo "1 process × 1 thread" ;;
    1x2) echo "1 process × 2 threads" ;;
    2x1) echo "mpirun -np 2 × 1 thread" ;;
  esac
}
swift_bench() {  # configuration precision
  local arguments=(bench --model paper --batch-size "$batch" --iterations "$iterations" --precision "$2")
  case $1 in
    1x1) "$vavl" "${arguments[@]}" --threads 1 ;;
    1x2) "$vavl" "${arguments[@]}" --threads 2 ;;
    2x1) "${mpirun_cmd[@]}" -np 2 "$vavl" "${arguments[@]}" --threads 1 ;;
  esac
}

for round in $(seq "$rounds"); do
  for configuration in "${configurations[@]}"; do
    for precision in "${precisions[@]}"; do
      echo "== Swift $precision: $(describe "$configuration") (round $round of $rounds)"
      swift_bench "$configuration" "$precision" | tee -a "$log/swift-$configuration-$precision"
    done
  done
done

if [ -z "${SKIP_TORCH:-}" ]; then
  Scripts/reference/setup_venv.sh >/dev/null
  for threads in 1 2; do
    for precision in "${torch_precisions[@]}"; do
      echo "== PyTorch $precision: $threads thread(s)"
      .venv-reference/bin/python Scripts/reference/bench_torch.py --threads "$threads" --iterations "$iterations" \
        --batch "$batch" --precision "$precision" --no-check | tee "$log/torch-$threads-$precision"
    done
  done
fi

# Pooled over the rounds (and files): every value of `key=v1,v2,…` lines, one per line.
pooled() {  # key file…
  local key=$1; shift
  { cat "$@" | grep "^$key=" || true; } | cut -d= -f2 | tr ',' '\n'
}
median_of() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# The same analytic count in every precision.
gflop=$(grep -m1 "^useful work" "$log/swift-1x1-${precisions[0]}" | sed 's/useful work: \([0-9.]*\) GFLOP.*/\1/')
# fp32 sgemm reference per configuration, pooled over its runs in every precision (a bf16 run
# measures the same fp32 sgemm between its timed iterations).
sgemm_of() { pooled sgemm_gflops "${precisions[@]/#/$log/swift-$1-}" | median_of; }
sgemm1=$(sgemm_of 1x1)
sgemm2=$(sgemm_of 1x2)
# Both ranks measured sgemm at the same time: the 2-rank reference is twice the per-rank rate.
sgemm_ranks=$(sgemm_of 2x1)
best_torch() {  # best (lowest) PyTorch median with $1 threads in precision $2
  local file="$log/torch-$1-$2"
  [ -f "$file" ] || { echo ""; return; }
  printf '%s\n%s\n' "$(value "$file" padded.median_s)" "$(value "$file" packed.median_s)" | sed '/^$/d' | sort -g | head -1
}
# Inference latency of one utterance (150 audio, 90 video frames) per head, median over rounds.
swift_latency() {
  local head values=()
  for head in audio_visual audio video; do
    values+=("$({ grep "^inference latency $head:" "$1" || true; } | sed 's/.*: \([0-9.]*\) ms.*/\1/' | median_of)")
  done
  if [ -n "${values[0]}" ]; then printf '%.0f / %.0f / %.0f' "${values[@]}"; else echo "—"; fi
}
row() {  # name precision file cores sgemm
  local median min rss torch ratio
  median=$(pooled iterations_s "$3" | median_of); min=$(pooled iterations_s "$3" | sort -g | head -1)
  rss=$({ grep "^peak RSS" "$3" || true; } | sed 's/.*: \([0-9]*\) MiB/\1/' | sort -g | tail -1)
  torch=$(best_torch "$4" "$2")
  ratio=$([ -n "$torch" ] && awk -v t="$torch" -v s="$median" 'BEGIN { printf "%.2f", t / s }' || echo "n/a")
  awk -v n="$1" -v p="$2" -v m="$median" -v mi="$min" -v g="$gflop" -v sg="$5" -v r="$ratio" -v rss="$rss" \
    -v lat="$(swift_latency "$3")" \
    'BEGIN { printf "| %s | %s | %.2f | %.2f | %.1f | %.0f %% | %s | %s | %s |\n", n, p, m, mi, g / m, 100 * g / m / sg, r, rss, lat }'
}

echo
cpu_model=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1 || true)
[ -n "$cpu_model" ] || cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1 || true)
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true)
has_flag() { case " $cpu_flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
echo "CPU: ${cpu_model:-unknown}; amx_bf16: $(has_flag amx_bf16), avx512_bf16: $(has_flag avx512_bf16) (/proc/cpuinfo flags)"
echo
echo "| row | precision | median s | min s | GFLOP/s | % of fp32 sgemm | ratio vs best PyTorch, same precision and cores | peak RSS MiB | inference ms per utterance: AV / audio / video |"
echo "|---|---|---|---|---|---|---|---|---|"
for configuration in "${configurations[@]}"; do
  case $configuration in
    1x1) cores=1; sgemm=$sgemm1 ;;
    1x2) cores=2; sgemm=$sgemm2 ;;
    2x1) cores=2; sgemm=$(awk -v s="$sgemm_ranks" 'BEGIN { print 2 * s }') ;;
  esac
  for precision in "${precisions[@]}"; do
    row "Swift $(describe "$configuration")" "$precision" "$log/swift-$configuration-$precision" "$cores" "$sgemm"
  done
done
for threads in 1 2; do
  for precision in "${torch_precisions[@]}"; do
    file="$log/torch-$threads-$precision"
    [ -f "$file" ] || continue
    label=$([ "$precision" = bf16 ] && echo "bf16 (autocast)" || echo fp32)
    for impl in padded packed; do
      median=$(value "$file" "$impl.median_s"); min=$(value "$file" "$impl.min_s")
      rss=$(value "$file" "$impl.peak_rss_mb")
      sg=$([ "$threads" = 1 ] && echo "$sgemm1" || echo "$sgemm2")
      name=$([ "$impl" = packed ] && echo "PyTorch per-utterance (exact)" || echo "PyTorch padded + masks")
      latency="—"  # one utterance needs no padding: measured with the per-utterance implementation
      if [ "$impl" = packed ] && [ -n "$(value "$file" packed.latency_audio_ms)" ]; then
        latency=$(printf '%.0f / %.0f / %.0f' "$(value "$file" packed.latency_audio_visual_ms)" \
          "$(value "$file" packed.latency_audio_ms)" "$(value "$file" packed.latency_video_ms)")
      fi
      awk -v n="$name, $threads thread(s)" -v p="$label" -v m="$median" -v mi="$min" -v g="$gflop" -v sg="$sg" \
        -v rss="$rss" -v lat="$latency" \
        'BEGIN { printf "| %s | %s | %.2f | %.2f | %.1f | %.0f %% | — | %s | %s |\n", n, p, m, mi, g / m, 100 * g / m / sg, rss, lat }'
    done
  done
done
echo
if has_precision bf16; then  # the bf16 path `vavl bench` used (names the CPU too)
  for configuration in "${configurations[@]}"; do
    line=$(grep -m1 "^precision: " "$log/swift-$configuration-bf16" || true)
    if [ -n "$line" ]; then echo "vavl bf16, $(describe "$configuration"): $line"; break; fi
  done
fi
echo "machine fp32 sgemm (medians between timed iterations, runs of every precision pooled): $sgemm1 GFLOP/s (1 thread)," \
  "$sgemm2 GFLOP/s (2 threads), $sgemm_ranks GFLOP/s per rank with 2 ranks; useful work $gflop GFLOP per iteration"
for precision in "${precisions[@]}"; do
  grep -h "^allreduce" "$log/swift-2x1-$precision" | sed "s/^/mpirun -np 2, $precision: /" || true
done
for precision in "${precisions[@]}"; do
  threads_median=$(pooled iterations_s "$log/swift-1x2-$precision" | median_of)
  ranks_median=$(pooled iterations_s "$log/swift-2x1-$precision" | median_of)
  awk -v r="$ranks_median" -v t="$threads_median" -v n="$rounds" -v p="$precision" \
    'BEGIN { printf "%s: mpirun -np 2 × 1 thread against 1 process × 2 threads: %+.1f %% (pooled medians of %d rounds; + = ranks slower)\n", p, 100 * (r / t - 1), n }'
done
if has_precision fp32 && has_precision bf16; then
  for configuration in "${configurations[@]}"; do
    fp32_median=$(pooled iterations_s "$log/swift-$configuration-fp32" | median_of)
    bf16_median=$(pooled iterations_s "$log/swift-$configuration-bf16" | median_of)
    awk -v f="$fp32_median" -v b="$bf16_median" -v c="$(describe "$configuration")" -v n="$rounds" \
      'BEGIN { printf "vavl bf16 against fp32, %s: %.2f× (fp32 median ÷ bf16 median, pooled over %d rounds; > 1: bf16 faster)\n", c, f / b, n }'
  done
fi
