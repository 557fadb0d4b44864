#!/usr/bin/env bash
# Does bf16 mixed precision train as well as fp32? Trains the demo corpus (the synthetic
# CREMA-D-shaped one of Scripts/demo.sh) with the small model in both precisions over five
# seeds, scores every run's best development checkpoint on the development and the test
# split, and compares the precisions per head and metric with the project's paired t-test
# (`vavl experiment compare`). The README's mixed-precision table comes from this script.
#
#   Scripts/precision-quality.sh                 # 5 seeds, 8 epochs, 2 threads, one process
#   SEEDS=1,2,3 EPOCHS=4 Scripts/precision-quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-1,2,3,4,5}
epochs=${EPOCHS:-8}
utterances=${UTTERANCES:-2000}
work=${WORK:-/tmp/vavl-precision}

Scripts/setup.sh
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"
mkdir -p "$work"
[ -f "$work/corpus.h5" ] || "$vavl" corpus synth --preset crema-d --output "$work/corpus.h5" --dims 64,48 \
  --utterances "$utterances" --audio-only-fraction 0.2 --video-only-fraction 0.1 --seed 1 >/dev/null
"$vavl" info | tail -3

for precision in fp32 bf16; do
  echo "== $precision: seeds $seeds"
  "$vavl" experiment repeat --corpus "$work/corpus.h5" --out "$work/$precision" --model small --epochs "$epochs" \
    --batch-size 32 --lr 5e-4 --threads 2 --seeds "$seeds" --precision "$precision" >/dev/null
  for run in "$work/$precision"/seed-*/; do
    "$vavl" evaluate --checkpoint "$run/checkpoint-best.h5" --corpus "$work/corpus.h5" --split dev \
      --json "$run/dev-scores.json" >/dev/null
  done
done

# The development scores as a result set of the same shape as repeat.json, so the same
# `compare` (and its t-test) reads them.
for precision in fp32 bf16; do
  python3 Scripts/lib/repeat_on_split.py "$work/$precision/repeat.json" dev dev-scores.json
done

for split in dev test; do
  suffix=$([ "$split" = dev ] && echo "-dev" || true)
  echo
  echo "== $split split: fp32 (A) against bf16 (B), paired over seeds $seeds"
  "$vavl" experiment compare "$work/fp32/repeat$suffix.json" "$work/bf16/repeat$suffix.json" --json "$work/compare-$split.json"
done
