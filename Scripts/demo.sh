#!/usr/bin/env bash
# The main job on a built-in default, on a fresh machine: set up, build (release), make a
# small synthetic CREMA-D-shaped corpus (the real CREMA-D label file, reduced feature dims),
# train the small model with two MPI ranks, evaluate on the test split and print the table
# (F1-macro / F1-micro of the AV, audio-only and video-only heads next to chance).
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh

work=${VAVL_DEMO_DIR:-/tmp/vavl-demo}
utterances=${VAVL_DEMO_UTTERANCES:-2000}
epochs=${VAVL_DEMO_EPOCHS:-8}

Scripts/setup.sh
echo "== building (release)"
swift build -c release --product vavl
vavl="$(swift build -c release --show-bin-path)/vavl"

rm -rf "$work" && mkdir -p "$work"
echo "== synthetic CREMA-D-shaped corpus: $utterances utterances, 64-d audio, 48-d video, 20 % audio-only, 10 % video-only"
"$vavl" corpus synth --preset crema-d --output "$work/crema-d.h5" --dims 64,48 --utterances "$utterances" \
  --audio-only-fraction 0.2 --video-only-fraction 0.1 --seed 1
"$vavl" corpus inspect "$work/crema-d.h5"

echo "== training with 2 MPI ranks (small model, $epochs epochs, global batch 32)"
"${mpirun_cmd[@]}" -np 2 "$vavl" train --corpus "$work/crema-d.h5" --out "$work/run" --model small \
  --epochs "$epochs" --batch-size 32 --lr 5e-4 --threads 1 --plain --log-every 10

echo "== evaluation of the best development checkpoint on the test split"
"${mpirun_cmd[@]}" -np 2 "$vavl" evaluate --checkpoint "$work/run/checkpoint-best.h5" --corpus "$work/crema-d.h5" \
  --split test --json "$work/test-scores.json"
echo "(scores also in $work/test-scores.json; checkpoints and metrics.jsonl in $work/run)"
