"""Writes the parity fixtures of Tests/CoreTests/Fixtures/ (see README.md beside this file).

Everything is computed in float64 from float32 values (inputs and parameters are drawn
in float32 and upcast, so they are exactly representable) and stored rounded to float32
(int64 for offsets, step counts and num_batches_tracked). Deterministic: every case draws
from its own generator seeded from the case name.

  .venv-reference/bin/python Scripts/reference/make_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import h5py
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vavl_reference as ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "Tests", "CoreTests", "Fixtures")
FORMAT_VERSION = 1
LAYER_LENGTHS = [6, 1, 11, 3]

# Datasets with at least this many elements are stored chunked with shuffle + gzip.
# HDF5 decompresses transparently on read (libhdf5's built-in deflate filter).
COMPRESS_MIN_ELEMENTS = 256
# File format objects of HDF5 1.10 (compact groups, small object headers): readable by
# the Debian libhdf5 (1.10.x) the Swift tests link, and about 25% smaller than h5py's
# default 'earliest' layout for thousands of small datasets. Newer formats would not be.
LIBVER = ("v110", "v110")


# MARK: - Writing helpers


def f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy()


def put(group: h5py.Group, name: str, value) -> None:
    """Store a tensor: floating -> float32, integer -> int64; 0-d stays a scalar dataset."""
    if torch.is_tensor(value):
        value = value.detach().cpu()
        arr = value.numpy().astype(np.int64) if not value.is_floating_point() else f32(value)
    else:
        arr = np.asarray(value)
    if arr.ndim > 0 and arr.size >= COMPRESS_MIN_ELEMENTS:
        group.create_dataset(name, data=arr, compression="gzip", compression_opts=9, shuffle=True)
    else:
        group.create_dataset(name, data=arr)


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def randn32(gen: torch.Generator, *shape, scale=1.0) -> torch.Tensor:
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).to(torch.float32)


def uniform32(gen: torch.Generator, lo, hi, *shape) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo).to(torch.float32)


def owner_of(module: nn.Module, name: str) -> nn.Module:
    prefix = name.rsplit(".", 1)[0] if "." in name else ""
    return module.get_submodule(prefix) if prefix else module


@torch.no_grad()
def randomize_(module: nn.Module, gen: torch.Generator) -> None:
    """Random non-default float32 values for every parameter and BatchNorm buffer:
    norm weights 1 + 0.1 N(0,1), biases 0.1 N(0,1), u/v biases 0.5 N(0,1), other weights
    N(0,1)/sqrt(fan_in); running_mean 0.1 N(0,1), running_var U(0.5, 1.5), 3 batches seen."""
    for name, p in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        owner = owner_of(module, name)
        if leaf == "weight" and isinstance(owner, (nn.LayerNorm, ref.RaggedBatchNorm1d)):
            v = 1.0 + randn32(gen, *p.shape, scale=0.1)
        elif leaf == "bias":
            v = randn32(gen, *p.shape, scale=0.1)
        elif leaf in ("u_bias", "v_bias"):
            v = randn32(gen, *p.shape, scale=0.5)
        else:
            fan_in = p[0].numel()
            v = randn32(gen, *p.shape, scale=1.0 / np.sqrt(fan_in))
        p.copy_(v)
    for name, b in module.named_buffers():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "running_mean":
            b.copy_(randn32(gen, *b.shape, scale=0.1))
        elif leaf == "running_var":
            b.copy_(uniform32(gen, 0.5, 1.5, *b.shape))
        elif leaf == "num_batches_tracked":
            b.fill_(3)


# MARK: - Layer cases


def layer_cases():
    """(name, config, builder, c_in, forward(module, x, offsets), lengths, mode)."""
    pw = lambda m, x, o: m(x)  # noqa: E731  position-wise: offsets unused
    rg = lambda m, x, o: m(x, o)  # noqa: E731  ragged
    cases = [
        ("linear", {"in": 8, "out": 6, "bias": True}, lambda: nn.Linear(8, 6), 8, pw),
        ("layer_norm", {"channels": 10, "eps": 1e-5}, lambda: nn.LayerNorm(10, eps=1e-5), 10, pw),
        ("temporal_conv", {"in": 8, "out": 5, "kernel": 5, "bias": False, "padding": "same"},
         lambda: ref.TemporalConv1d(8, 5, 5, bias=False), 8, rg),
        ("pointwise_conv", {"in": 6, "out": 10, "kernel": 1, "bias": True},
         lambda: ref.PointwiseConv1d(6, 10, bias=True), 6, pw),
        ("depthwise_conv", {"channels": 6, "kernel": 7, "groups": 6, "bias": False, "padding": "same"},
         lambda: ref.TemporalConv1d(6, 6, 7, groups=6, bias=False), 6, rg),
        ("depthwise_conv_k31", {"channels": 6, "kernel": 31, "groups": 6, "bias": False, "padding": "same"},
         lambda: ref.TemporalConv1d(6, 6, 31, groups=6, bias=False), 6, rg),
        ("glu", {"in": 12, "out": 6}, lambda: ref.GLU(), 12, pw),
        ("swish", {"channels": 8}, lambda: ref.Swish(), 8, pw),
        ("relu", {"channels": 8}, lambda: nn.ReLU(), 8, pw),
        ("batch_norm_train", {"channels": 6, "eps": 1e-5, "momentum": 0.1, "mode": "train"},
         lambda: ref.RaggedBatchNorm1d(6, 1e-5, 0.1), 6, pw),
        ("batch_norm_eval", {"channels": 6, "eps": 1e-5, "momentum": 0.1, "mode": "eval"},
         lambda: ref.RaggedBatchNorm1d(6, 1e-5, 0.1), 6, pw),
        ("mhsa", {"dim": 16, "heads": 2, "eps": 1e-5, "attn_dropout": 0.0, "dropout": 0.0},
         lambda: ref.RelPositionMHSA(16, 2, 0.0, 0.0, 1e-5), 16, rg),
        ("feed_forward", {"dim": 16, "expansion": 4, "eps": 1e-5, "dropout": 0.0},
         lambda: ref.FeedForward(16, 4, 0.0, 1e-5), 16, pw),
        ("conv_module", {"dim": 16, "kernel": 7, "eps": 1e-5, "bn_eps": 1e-5, "bn_momentum": 0.1,
                         "dropout": 0.0, "mode": "train"},
         lambda: ref.ConvModule(16, 7, 0.0, 1e-5, 1e-5, 0.1), 16, rg),
    ]
    block_cfg = {"dim": 16, "heads": 2, "kernel": 7, "expansion": 4, "eps": 1e-5, "bn_eps": 1e-5,
                 "bn_momentum": 0.1, "ff_dropout": 0.0, "attn_dropout": 0.0, "mhsa_dropout": 0.0,
                 "conv_dropout": 0.0}
    block = lambda: ref.ConformerBlock(16, 2, 7, 4, 0.0, 0.0, 0.0, 0.0, 1e-5, 1e-5, 0.1)  # noqa: E731
    cases += [
        ("conformer_block", {**block_cfg, "mode": "train"}, block, 16, rg),
        ("conformer_block_eval", {**block_cfg, "mode": "eval"}, block, 16, rg),
        ("conformer_encoder", {"in": 10, **block_cfg, "blocks": 2, "input_dropout": 0.0, "mode": "train"},
         lambda: ref.ConformerEncoder(10, 16, 2, 2, 7, 4, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-5, 1e-5, 0.1), 10, rg),
        ("mean_pool", {"channels": 8}, lambda: nn.Identity(), 8, lambda m, x, o: ref.mean_pool(x, o)),
    ]
    return cases


def write_layer_case(h5: h5py.File, name, config, builder, c_in, forward, lengths=LAYER_LENGTHS):
    gen = torch.Generator().manual_seed(seed_of(name))
    torch.manual_seed(seed_of(name))
    module = builder()
    randomize_(module, gen)
    module = module.double()
    mode = config.get("mode", "train")
    module.train(mode == "train")
    offsets = ref.offsets_from_lengths(lengths)
    n = int(offsets[-1])
    x32 = randn32(gen, n, c_in)
    before = {k: v.clone() for k, v in module.named_buffers()}

    x = x32.double().requires_grad_(True)
    out = forward(module, x, offsets)
    g32 = randn32(gen, *out.shape)
    (out * g32.double()).sum().backward()

    grp = h5.create_group(name)
    grp.attrs["config"] = json.dumps(config, sort_keys=True)
    put(grp, "offsets", offsets)
    put(grp, "input", x32)
    put(grp, "grad_output", g32)
    put(grp, "output", out)
    put(grp, "grad_input", x.grad)
    params, grads = grp.create_group("params"), grp.create_group("grads")
    for pname, p in module.named_parameters():
        put(params, pname, p)
        put(grads, pname, p.grad)
    if before:
        bb, ba = grp.create_group("buffers_before"), grp.create_group("buffers_after")
        for bname, b in module.named_buffers():
            put(bb, bname, before[bname])
            put(ba, bname, b)
    return {"output": tuple(out.shape), "params": sum(p.numel() for p in module.parameters())}


def write_layers(path: str) -> None:
    with h5py.File(path, "w", libver=LIBVER) as h5:
        h5.attrs["format"] = "vavl-layer-fixtures"
        h5.attrs["version"] = FORMAT_VERSION
        h5.attrs["generator"] = f"Scripts/reference/make_fixtures.py (torch {torch.__version__})"
        for name, config, builder, c_in, forward in layer_cases():
            info = write_layer_case(h5, name, config, builder, c_in, forward)
            print(f"  {name:22s} output {str(info['output']):10s} params {info['params']}")


# MARK: - Model cases (3 Algorithm-1 iterations)

MODEL_TASKS = [
    ("model_categorical.h5", "categorical", 6, 2.0),
    ("model_dimensional.h5", "dimensional", 3, 1.0),
    ("model_sentiment.h5", "sentiment", 1, 1.0),
]
AUDIO_LENGTHS = [9, 4, 1, 0, 13, 6]   # paired, audio-only, paired, video-only, audio-only, paired
VIDEO_LENGTHS = [5, 0, 3, 8, 0, 1]
TIE_ROW = 2                           # categorical: labels row with two equal maxima
ITERATIONS = 3


def small_config(task: str, out_dim: int, alpha: float) -> ref.VAVLConfig:
    return ref.VAVLConfig(
        d_a=24, d_v=20, proj_dim=12, k_proj=5, dim=32, heads=2, blocks_a=1, blocks_v=1,
        blocks_s=1, ff_expansion=2, conv_kernel=7, head_hidden1=32, head_hidden2=16,
        out_dim=out_dim, task=task, soft_label=False, alpha=alpha, residual=True, av_head=True,
        input_dropout=0.0, ff_dropout=0.0, attn_dropout=0.0, mhsa_dropout=0.0,
        conv_dropout=0.0, head_dropout=0.0, ln_eps=1e-5, bn_eps=1e-5, bn_momentum=0.1,
        lr=1e-3, betas=[0.95, 0.999], adam_eps=1e-8, weight_decay=1e-3,
        phase_order=["acoustic", "visual", "audio_visual"])


def make_labels(gen: torch.Generator, task: str, b: int, k: int) -> torch.Tensor:
    if task == "categorical":
        # Distributions of 8 annotators' votes (exact in float32); one row has a tie
        # between two maxima (its hard label is the first); every other row has one maximum.
        rows = []
        for i in range(b):
            if i == TIE_ROW:
                counts = torch.tensor([1, 3, 0, 3, 1, 0][:k], dtype=torch.float32)
            else:
                while True:
                    counts = torch.bincount(torch.randint(0, k, (8,), generator=gen), minlength=k).float()
                    top = counts.max()
                    if int((counts == top).sum()) == 1:
                        break
            rows.append(counts / counts.sum())
        return torch.stack(rows).to(torch.float32)
    if task == "dimensional":
        return uniform32(gen, 0.0, 1.0, b, k)
    if task == "sentiment":
        return uniform32(gen, -3.0, 3.0, b, k)
    raise ValueError(task)


def write_state(grp: h5py.Group, model: ref.VAVL, optimizer=None, moments: bool = True) -> None:
    """Parameters and buffers; with an optimizer, its step counts and (when `moments`) m and v.
    Moments are written for the last iteration only, to keep the fixtures small."""
    params = grp.create_group("params")
    for name, p in model.named_parameters():
        put(params, name, p)
    buffers = grp.create_group("buffers")
    for name, b in model.named_buffers():
        put(buffers, name, b)
    if optimizer is None:
        return
    m, v, step = grp.create_group("adam_m"), grp.create_group("adam_v"), grp.create_group("adam_step")
    for name, p in model.named_parameters():
        st = optimizer.state.get(p, {})
        if not st:
            continue
        if moments:
            put(m, name, st["exp_avg"])
            put(v, name, st["exp_avg_sq"])
        put(step, name, torch.tensor(int(st["step"]), dtype=torch.int64))


def write_predictions(grp: h5py.Group, model: ref.VAVL, batch: ref.Batch) -> None:
    preds = grp.create_group("predictions")
    for key, value in ref.predict(model, batch).items():
        put(preds, key, value)


def write_model(path: str, task: str, out_dim: int, alpha: float) -> dict:
    cfg = small_config(task, out_dim, alpha)
    seed = seed_of(task)
    model = ref.build_model(cfg, seed)          # float32, DESIGN §2.3 initialisation
    gen = torch.Generator().manual_seed(seed + 1)
    audio = randn32(gen, sum(AUDIO_LENGTHS), cfg.d_a)
    video = randn32(gen, sum(VIDEO_LENGTHS), cfg.d_v)
    labels = make_labels(gen, task, len(AUDIO_LENGTHS), out_dim)
    batch32 = ref.Batch(audio, ref.offsets_from_lengths(AUDIO_LENGTHS),
                        video, ref.offsets_from_lengths(VIDEO_LENGTHS), labels)
    batch = ref.Batch(audio.double(), batch32.audio_offsets, video.double(),
                      batch32.video_offsets, labels.double())
    config = {**cfg.to_dict(), "seed": seed}

    with h5py.File(path, "w", libver=LIBVER) as h5:
        h5.attrs["format"] = "vavl-model-fixture"
        h5.attrs["version"] = FORMAT_VERSION
        h5.attrs["config"] = json.dumps(config, sort_keys=True)
        h5.attrs["generator"] = f"Scripts/reference/make_fixtures.py (torch {torch.__version__})"
        b = h5.create_group("batch")
        put(b, "audio_offsets", batch32.audio_offsets)
        put(b, "video_offsets", batch32.video_offsets)
        put(b, "audio", audio)
        put(b, "video", video)
        put(b, "labels", labels)

        init = h5.create_group("init")
        write_state(init, model)
        model = model.double()
        write_predictions(init, model, batch)
        optimizer = ref.make_optimizer(model)
        history = []
        for it in range(1, ITERATIONS + 1):
            losses = ref.algorithm1_iteration(model, optimizer, batch)
            grp = h5.create_group(f"iteration_{it}")
            for phase in ("acoustic", "visual", "audio_visual"):
                grp.attrs[f"loss_{phase}"] = np.float64(losses[phase])
            write_state(grp, model, optimizer, moments=it == ITERATIONS)
            write_predictions(grp, model, batch)
            history.append(losses)
    return {"params": sum(p.numel() for p in model.parameters()), "losses": history}


# MARK: - Main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)

    path = os.path.join(args.out, "layers.h5")
    print(f"layers.h5: lengths {LAYER_LENGTHS}")
    write_layers(path)
    files = [path]
    for fname, task, out_dim, alpha in MODEL_TASKS:
        path = os.path.join(args.out, fname)
        info = write_model(path, task, out_dim, alpha)
        print(f"{fname}: task {task}, {info['params']} parameters, audio {AUDIO_LENGTHS}, video {VIDEO_LENGTHS}")
        for i, losses in enumerate(info["losses"], 1):
            print("  iteration %d: %s" % (i, "  ".join(f"{k} {v:.6f}" for k, v in losses.items())))
        files.append(path)
    total = 0
    print("files:")
    for f in files:
        size = os.path.getsize(f)
        total += size
        print(f"  {os.path.relpath(f, REPO)}  {size / 1024:.1f} KiB")
    print(f"  total {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
