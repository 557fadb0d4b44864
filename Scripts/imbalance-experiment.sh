#!/usr/bin/env bash
# The paper's conclusion notes unstable training when modalities are highly imbalanced.
# This trains the small model on a synthetic CREMA-D-shaped corpus where 80 % of the
# utterances have one modality only (40 % audio-only, 40 % video-only), once with the
# `natural` sampler and once with `balanced` (equal shares of paired, audio-only and
# video-only utterances per global batch), and prints the variance of the per-iteration
# phase losses and the final development scores of both.
#
#   Scripts/imbalance-experiment.sh            # 2 ranks, 4 epochs
#   EPOCHS=8 RANKS=1 Scripts/imbalance-experiment.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh
epochs=${EPOCHS:-4}
ranks=${RANKS:-2}
work=${WORK:-/tmp/vavl-imbalance}

Scripts/setup.sh
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"
rm -rf "$work" && mkdir -p "$work"
"$vavl" corpus synth --preset crema-d --output "$work/corpus.h5" --dims 64,48 --utterances 1500 \
  --audio-only-fraction 0.4 --video-only-fraction 0.4 --seed 7 >/dev/null

for sampler in natural balanced; do
  echo "== $sampler sampler"
  "${mpirun_cmd[@]}" -np "$ranks" "$vavl" train --corpus "$work/corpus.h5" --out "$work/$sampler" --model small \
    --epochs "$epochs" --batch-size 32 --lr 5e-4 --threads 1 --sampler "$sampler" --shares 0.34,0.33,0.33 \
    --plain --log-every 1000 | grep -E "^(epoch [0-9]+ done|  dev|balanced)" || true
done

python3 - "$work" <<'PY'
import json, statistics, sys
work = sys.argv[1]
print()
print("| sampler | phase | loss variance (all iterations) | loss variance (last epoch) | dev F1-macro (last epoch) |")
print("|---|---|---|---|---|")
for sampler in ("natural", "balanced"):
    rows = [json.loads(line) for line in open(f"{work}/{sampler}/metrics.jsonl")]
    iterations = [r for r in rows if r["type"] == "iteration"]
    epochs = [r for r in rows if r["type"] == "epoch"]
    last_epoch = max(r["epoch"] for r in iterations)
    for phase, head in (("acoustic", "dev_audio"), ("visual", "dev_video"), ("audio_visual", "dev_audio_visual")):
        values = [r[f"loss_{phase}"] for r in iterations if f"loss_{phase}" in r]
        last = [r[f"loss_{phase}"] for r in iterations if f"loss_{phase}" in r and r["epoch"] == last_epoch]
        f1 = epochs[-1].get(head, {}).get("f1_macro", float("nan"))
        variance = statistics.pvariance(values) if len(values) > 1 else float("nan")
        variance_last = statistics.pvariance(last) if len(last) > 1 else float("nan")
        print(f"| {sampler} | {phase} | {variance:.4f} | {variance_last:.4f} | {f1:.4f} |")
PY
