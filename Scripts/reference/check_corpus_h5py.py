#!/usr/bin/env python3
"""Check with h5py that a corpus written by `vavl corpus synth|import` follows DESIGN §5.

Usage:
    python check_corpus_h5py.py CORPUS.h5 [--summary INSPECT.json] [--full]

Checks the root attributes, the utterance strings (variable-length UTF-8), the labels, the
offsets and features of both modalities, that no utterance lacks both modalities, reads
frames by row range, and recomputes the train-split mean and population std per dimension
(float64) to compare with the stored /audio/train_mean etc. With --summary, the counts of
`vavl corpus inspect --json` must match what h5py sees. With --full every frame is checked
for NaN/Inf (otherwise the first, middle and last utterances). Exits 1 on any problem.
"""
import argparse
import json
import sys

import h5py
import numpy as np


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("--summary", help="JSON from `vavl corpus inspect --json`")
    parser.add_argument("--full", action="store_true", help="scan every frame for NaN/Inf")
    args = parser.parse_args()

    f = h5py.File(args.corpus, "r")
    attrs = f.attrs
    if text(attrs["format"]) != "vavl-corpus":
        fail(f"format is {attrs['format']!r}")
    if int(attrs["version"]) != 1:
        fail(f"version is {attrs['version']!r}")
    task = text(attrs["task"])
    if task not in ("categorical", "dimensional", "sentiment"):
        fail(f"task is {task!r}")
    label_names = [text(n) for n in attrs["label_names"]]
    fps = {"audio": float(attrs["audio_fps"]), "video": float(attrs["video_fps"])}
    if task != "categorical":
        lo, hi = [float(x) for x in attrs["label_range"]]
        if not lo < hi:
            fail(f"label_range {lo}, {hi}")

    # Strings as h5py writes them by default: variable-length UTF-8.
    for name in ("id", "speaker", "split"):
        dataset = f["utterances"][name]
        string_info = h5py.check_string_dtype(dataset.dtype)
        if string_info is None or string_info.length is not None or string_info.encoding != "utf-8":
            fail(f"/utterances/{name} is not variable-length UTF-8 (dtype {dataset.dtype})")
    ids = [text(s) for s in f["utterances/id"][:]]
    speakers = [text(s) for s in f["utterances/speaker"][:]]
    splits = np.array([text(s) for s in f["utterances/split"][:]])
    n = len(ids)
    if len(set(ids)) != n:
        fail("duplicate ids")
    if len(speakers) != n or len(splits) != n:
        fail("speaker or split count differs from the id count")
    if not set(splits) <= {"train", "dev", "test"}:
        fail(f"unknown splits {set(splits) - {'train', 'dev', 'test'}}")

    labels = f["labels"]
    if labels.dtype != np.float32 or labels.shape != (n, len(label_names)):
        fail(f"/labels is {labels.dtype} {labels.shape}, expected float32 {(n, len(label_names))}")
    if not np.isfinite(labels[:]).all():
        fail("NaN/Inf in /labels")

    has = {}
    for m in ("audio", "video"):
        offsets = f[m]["offsets"][:]
        features = f[m]["features"]
        if offsets.dtype != np.int64 or offsets.shape != (n + 1,):
            fail(f"/{m}/offsets is {offsets.dtype} {offsets.shape}")
        if features.dtype != np.float32 or features.ndim != 2:
            fail(f"/{m}/features is {features.dtype} {features.shape}")
        if offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != features.shape[0]:
            fail(f"/{m}/offsets are not 0 … rows, non-decreasing")
        has[m] = np.diff(offsets) > 0
        present = np.flatnonzero(has[m])
        check = present if args.full else present[[0, len(present) // 2, -1]] if len(present) else []
        for i in check:
            frames = features[offsets[i]:offsets[i + 1]]  # a row-range (hyperslab) read
            if frames.shape != (offsets[i + 1] - offsets[i], features.shape[1]) or not np.isfinite(frames).all():
                fail(f"utterance {ids[i]}: bad {m} frames")
        train = np.flatnonzero(has[m] & (splits == "train"))
        if "train_mean" in f[m]:
            total = 0
            s = np.zeros(features.shape[1])
            for i in train:
                s += features[offsets[i]:offsets[i + 1]].astype(np.float64).sum(0)
                total += offsets[i + 1] - offsets[i]
            mean = s / total
            m2 = np.zeros(features.shape[1])
            for i in train:
                m2 += ((features[offsets[i]:offsets[i + 1]].astype(np.float64) - mean) ** 2).sum(0)
            std = np.sqrt(m2 / total)
            if not (np.allclose(f[m]["train_mean"][:], mean, rtol=1e-6, atol=1e-9)
                    and np.allclose(f[m]["train_std"][:], std, rtol=1e-6, atol=1e-9)):
                fail(f"/{m}/train_mean or train_std differ from the recomputed statistics")
            print(f"{m}: stored train statistics match ({total} frames)")
        print(f"{m}: dim {features.shape[1]}, {features.shape[0]} frames, chunks {features.chunks}, "
              f"{has[m].sum()} utterances, {fps[m]:g} fps")
    neither = ~(has["audio"] | has["video"])
    if neither.any():
        fail(f"utterance {ids[int(np.flatnonzero(neither)[0])]} has neither modality")

    if args.summary:
        summary = json.load(open(args.summary))
        if summary["utterances"] != n or summary["label_names"] != label_names or summary["task"] != task:
            fail("inspect summary: utterances, labels or task differ")
        for entry in summary["splits"]:
            rows = splits == entry["split"]
            both = int((rows & has["audio"] & has["video"]).sum())
            audio_only = int((rows & has["audio"] & ~has["video"]).sum())
            video_only = int((rows & ~has["audio"] & has["video"]).sum())
            if (entry["utterances"], entry["audio_and_video"], entry["audio_only"], entry["video_only"]) != \
                    (int(rows.sum()), both, audio_only, video_only):
                fail(f"inspect summary: counts of split {entry['split']} differ")
        for entry in summary["frames"]:
            if entry["total"] != int(f[entry["modality"]]["features"].shape[0]):
                fail(f"inspect summary: {entry['modality']} frame total differs")
        print("inspect summary matches")
    print(f"OK {args.corpus}: {task}, {n} utterances, labels {label_names}")


if __name__ == "__main__":
    main()
