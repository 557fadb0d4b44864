#!/usr/bin/env bash
# What the balanced sampler buys when most training utterances have one modality only (the
# instability the paper's conclusion names), measured over seeds.
#
# Three imbalance levels — 60 %, 80 % and 90 % of the utterances unimodal, half audio-only and
# half video-only — each a synthetic CREMA-D-shaped corpus fixed per level (seed 7). On each,
# the small model trains with the `natural` sampler and with `balanced` (equal shares of
# paired, audio-only and video-only utterances per global batch) over the same five seeds
# (`vavl experiment repeat`, 2 ranks). Every run's selected checkpoint is scored on the
# development and the test split; per level, head and split `vavl experiment compare` gives
# mean ± std, the paired t-test on the means and the Brown–Forsythe test on the spread
# across seeds. The per-iteration loss variance per phase comes from each run's
# metrics.jsonl. About ten minutes on 2 cores; the README's imbalance table comes from it.
#
#   Scripts/imbalance-experiment.sh
#   SEEDS=1,2,3 LEVELS=80 EPOCHS=2 Scripts/imbalance-experiment.sh     # a quicker look
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/mpi.sh
seeds=${SEEDS:-1,2,3,4,5}
levels=${LEVELS:-60,80,90}
epochs=${EPOCHS:-4}
ranks=${RANKS:-2}
utterances=${UTTERANCES:-1200}
work=${WORK:-/tmp/vavl-imbalance}

Scripts/setup.sh
swift build -c release --product vavl >/dev/null
vavl="$(swift build -c release --show-bin-path)/vavl"
rm -rf "$work" && mkdir -p "$work"
"$vavl" info | tail -3
start=$(date +%s)

for level in ${levels//,/ }; do
  fraction=$(python3 -c "print($level / 200)")
  corpus="$work/level-$level/corpus.h5"
  mkdir -p "$work/level-$level"
  "$vavl" corpus synth --preset crema-d --output "$corpus" --dims 64,48 --utterances "$utterances" \
    --audio-only-fraction "$fraction" --video-only-fraction "$fraction" --seed 7 >/dev/null
  for sampler in natural balanced; do
    echo "== $level % unimodal, $sampler sampler, seeds $seeds"
    "${mpirun_cmd[@]}" -np "$ranks" "$vavl" experiment repeat --corpus "$corpus" --out "$work/level-$level/$sampler" \
      --model small --epochs "$epochs" --batch-size 32 --lr 5e-4 --threads 1 --sampler "$sampler" \
      --shares 0.34,0.33,0.33 --seeds "$seeds" --log-every 1000 >"$work/level-$level/$sampler.log"
    for run in "$work/level-$level/$sampler"/seed-*/; do
      "$vavl" evaluate --checkpoint "$run/checkpoint-best.h5" --corpus "$corpus" --split dev \
        --json "$run/dev-scores.json" >/dev/null 2>&1
    done
    python3 Scripts/lib/repeat_on_split.py "$work/level-$level/$sampler/repeat.json" dev dev-scores.json
  done
  for split in dev test; do
    suffix=$([ "$split" = dev ] && echo "-dev" || true)
    "$vavl" experiment compare "$work/level-$level/natural/repeat$suffix.json" "$work/level-$level/balanced/repeat$suffix.json" \
      --json "$work/level-$level/compare-$split.json" >"$work/level-$level/compare-$split.txt"
  done
done

python3 - "$work" "$levels" <<'PY'
import json, statistics, sys, glob, os
work, levels = sys.argv[1], sys.argv[2].split(",")
heads = (("audio_visual", "AV"), ("audio", "audio"), ("video", "video"))
lines = ["| unimodal | head | split | natural F1-macro | balanced F1-macro | Δ (bal − nat) | t-test p | std nat / bal | Brown–Forsythe p |",
         "|---|---|---|---|---|---|---|---|---|"]
for level in levels:
    for head, name in heads:
        for split in ("dev", "test"):
            rows = json.load(open(f"{work}/level-{level}/compare-{split}.json"))["rows"]
            row = next(r for r in rows if r["head"] == head and r["metric"] == "f1_macro")
            natural, balanced = row["a"], row["b"]
            ratio = natural["std"] / balanced["std"] if balanced["std"] > 0 else float("nan")
            spread = (row.get("spread_test") or {}).get("p")
            p = row["test"].get("p")
            lines.append(f"| {level} % | {name} | {split} | {natural['mean']:.3f} ± {natural['std']:.3f} | "
                         f"{balanced['mean']:.3f} ± {balanced['std']:.3f} | {-row['difference']:+.3f} | "
                         f"{p:.3g} | {ratio:.2f} | {spread:.3g} |" if p is not None and spread is not None else
                         f"| {level} % | {name} | {split} | … | … | … | – | – | – |")
lines += ["", "Per-iteration loss variance per phase (mean over seeds of each run's variance):", "",
          "| unimodal | phase | natural | balanced |", "|---|---|---|---|"]
for level in levels:
    for phase in ("acoustic", "visual", "audio_visual"):
        cells = []
        for sampler in ("natural", "balanced"):
            variances = []
            for metrics in sorted(glob.glob(f"{work}/level-{level}/{sampler}/seed-*/metrics.jsonl")):
                values = [r[f"loss_{phase}"] for r in map(json.loads, open(metrics))
                          if r["type"] == "iteration" and f"loss_{phase}" in r]
                if len(values) > 1:
                    variances.append(statistics.pvariance(values))
            cells.append(f"{statistics.mean(variances):.4f}" if variances else "–")
        lines.append(f"| {level} % | {phase} | {cells[0]} | {cells[1]} |")
text = "\n".join(lines)
print()
print(text)
open(os.path.join(work, "summary.md"), "w").write(text + "\n")
PY
echo
echo "imbalance experiment: $(( $(date +%s) - start )) s; tables in $work/summary.md, comparisons in $work/level-*/compare-*.txt"
