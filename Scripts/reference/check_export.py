"""Load `vavl export`'s safetensors into the PyTorch module tree of DESIGN §6 and check that it
predicts what `vavl predict` predicted for the same .npy files.

  vavl export  --checkpoint RUN --safetensors model.safetensors
  vavl predict --checkpoint RUN --audio A/ --video V/ --output predictions.csv
  .venv-reference/bin/python Scripts/reference/check_export.py --safetensors model.safetensors \
      --audio A/ --video V/ --predictions predictions.csv

The .safetensors file alone is used: weights, the configuration (metadata) and the feature
normalisation (`normalization.*` tensors). `--checkpoint` reads the statistics from a
checkpoint instead, for files exported before they were included.

Exit status 0 when every prediction agrees to 1e-4; the largest difference is printed.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys

import h5py
import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vavl_reference as ref  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--safetensors", required=True)
    ap.add_argument("--checkpoint", help="read the normalisation statistics from this checkpoint instead")
    ap.add_argument("--audio")
    ap.add_argument("--video")
    ap.add_argument("--predictions", required=True, help="CSV written by vavl predict")
    args = ap.parse_args()

    with safe_open(args.safetensors, "pt") as f:
        stored = json.loads(f.metadata()["vavl_config"])
    fields = {f.name for f in dataclasses.fields(ref.VAVLConfig)}
    cfg = ref.VAVLConfig(**{k: v for k, v in stored.items() if k in fields})
    model = ref.build_model(cfg, 0)
    ref.load_safetensors(model, args.safetensors, strict=True)
    model = model.double().eval()

    if args.checkpoint:
        with h5py.File(args.checkpoint, "r") as h5:
            norm = {k: h5["normalization"][k][()] for k in h5["normalization"].keys()}
    else:
        with safe_open(args.safetensors, "np") as f:
            norm = {k[len("normalization."):]: f.get_tensor(k) for k in f.keys() if k.startswith("normalization.")}

    def features(folder, name, modality):
        if not folder:
            return None
        path = os.path.join(folder, name + ".npy") if os.path.isdir(folder) else folder
        if not os.path.exists(path):
            return None
        x = np.load(path).astype(np.float64)
        if f"{modality}_mean" in norm:
            x = (x - norm[f"{modality}_mean"]) / (norm[f"{modality}_std"] + 1e-6)
        return torch.from_numpy(x.astype(np.float32).astype(np.float64))

    worst = 0.0
    rows = list(csv.DictReader(open(args.predictions)))
    labels = [c for c in rows[0].keys() if c not in ("id", "head", "predicted")]
    for row in rows:
        a, v = features(args.audio, row["id"], "audio"), features(args.video, row["id"], "video")
        with torch.no_grad():
            ra = model.represent("audio", a, ref.offsets_from_lengths([a.shape[0]])) if a is not None else None
            rv = model.represent("video", v, ref.offsets_from_lengths([v.shape[0]])) if v is not None else None
            if ra is not None and rv is not None:
                out = model.head_av(torch.cat([ra, rv], dim=1))
            elif ra is not None:
                out = model.head_a(ra)
            else:
                out = model.head_v(rv)
        if cfg.task == "categorical":
            out = torch.softmax(out, dim=1)
        expected = out[0].numpy()
        got = np.array([float(row[c]) for c in labels])
        worst = max(worst, float(np.abs(expected - got).max()))
    print(f"{len(rows)} predictions, largest difference between Swift and PyTorch {worst:.2e}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
