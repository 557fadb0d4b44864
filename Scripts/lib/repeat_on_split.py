"""Rewrites an `experiment repeat` result (repeat.json, scored on its split) as the same
result scored on another split, from per-run score files that `vavl evaluate --json` wrote
into each run folder, so that `vavl experiment compare` (and its tests) can read it.

    python3 Scripts/lib/repeat_on_split.py RESULT/repeat.json dev dev-scores.json

writes RESULT/repeat-dev.json. Used by Scripts/precision-quality.sh and
Scripts/imbalance-experiment.sh.
"""
import json
import math
import os
import sys


def main():
    path, split, scores_name = sys.argv[1:4]
    result = json.load(open(path))
    for run in result["runs"]:
        scores = json.load(open(os.path.join(run["directory"], scores_name)))
        run["heads"] = scores["heads"]
        run["split"] = split
    summary = {}
    for head in {h for run in result["runs"] for h in run["heads"]}:
        summary[head] = {}
        for metric in result["runs"][0]["heads"].get(head, {}).get("metrics", {}):
            values = [run["heads"][head]["metrics"][metric] for run in result["runs"] if head in run["heads"]]
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
            summary[head][metric] = {"mean": mean, "std": std, "values": values}
    result["summary"] = summary
    result["split"] = split
    out = os.path.join(os.path.dirname(path), f"repeat-{split}.json")
    json.dump(result, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
