"""Time one Algorithm-1 iteration of VAVL in PyTorch at the paper config, two ways.

  padded  ordinary batch-first padding (B, T_max, C) with masks: key-masked attention,
          depthwise conv on zero-masked inputs, BatchNorm statistics over valid frames via
          the mask, masked mean pooling. The relshift gathers, per utterance, the entries
          DESIGN's formula takes for that utterance's own length T_b, so the result
          equals the per-utterance model (checked below); the plain Transformer-XL trick
          over T_max would not (its positions depend on T_max).
  packed  the exact per-utterance reference of vavl_reference.py (no padding anywhere).

Config: d_a 1024, d_v 1408, dim 512, 8 heads, 3+3+2 blocks, proj_dim 50, k_proj 5,
conv kernel 31, categorical 6 classes, dropout 0.1 (heads 0.2), float32, batch 32 all
paired, audio 100-200 frames, video 60-120 frames (seeded). An iteration = acoustic,
visual and audio-visual phases with their Adam steps (lr 5e-5, DESIGN defaults).

--precision bf16 runs every forward pass (each phase's forward and loss, and the
inference-latency forward) under torch.autocast("cpu", dtype=torch.bfloat16); the
backward runs outside autocast (as PyTorch recommends), parameters, gradients and Adam
stay float32. --precision fp32 (the default) uses no autocast.

Before timing, a float64 check at a small config (dropout 0) shows that the two
implementations give the same losses, parameter gradients, running statistics and
eval predictions (in float64 without autocast, whatever --precision). Output: key=value
lines. Each implementation runs in its own subprocess, so each peak RSS is its own.

  .venv-reference/bin/python Scripts/reference/bench_torch.py --threads 2 [--iterations 3] [--precision bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vavl_reference as ref  # noqa: E402


# MARK: - Padded implementation (uses the reference model's modules and parameters)


class Padded:
    """A padded view of one modality of a batch: x (B, T, C), mask (B, T), lengths,
    and the per-utterance relshift gather index (B, T*T) with its validity (B, T*T)."""

    def __init__(self, x: torch.Tensor, offsets):
        segs = ref.segments(offsets)
        self.lengths = [e - s for s, e in segs]
        b, t = len(segs), max(self.lengths)
        self.x = x.new_zeros((b, t, x.shape[1]))
        self.mask = torch.zeros(b, t, dtype=torch.bool)
        for i, (s, e) in enumerate(segs):
            self.x[i, : e - s] = x[s:e]
            self.mask[i, : e - s] = True
        self.maskf = self.mask.to(x.dtype).unsqueeze(-1)              # (B, T, 1)
        # relshift of DESIGN §2.3 for utterance length L: f = (i+1)L + j, r = f div (L+1),
        # c = f mod (L+1); P[i,j] = S[r, c-1] (c > 0), else 0. Rows/cols >= L: invalid.
        i = torch.arange(t).view(t, 1)
        j = torch.arange(t).view(1, t)
        idx, valid = [], []
        for n in self.lengths:
            f = (i + 1) * n + j
            r, c = f // (n + 1), f % (n + 1)
            ok = (c > 0) & (i < n) & (j < n)
            idx.append(torch.where(ok, r * t + (c - 1), torch.zeros_like(f)).reshape(-1))
            valid.append(ok.reshape(-1))
        self.rel_index = torch.stack(idx)                               # (B, T*T)
        self.rel_valid = torch.stack(valid).to(x.dtype)                 # (B, T*T)


def mhsa_padded(m: ref.RelPositionMHSA, x, pad: Padded):
    b, t, d = x.shape
    h, dh = m.heads, m.head_dim
    y = m.norm(x)
    q = m.query(y).view(b, t, h, dh).transpose(1, 2)                  # (B, H, T, Dh)
    k = m.key(y).view(b, t, h, dh).transpose(1, 2)
    v = m.value(y).view(b, t, h, dh).transpose(1, 2)
    p = m.pos(ref.positional_encoding(t, d).to(x.dtype)).view(t, h, dh).transpose(0, 1)  # (H, T, Dh)
    content = (q + m.u_bias.unsqueeze(1)) @ k.transpose(-1, -2)          # (B, H, T, T)
    position = (q + m.v_bias.unsqueeze(1)) @ p.transpose(-1, -2)         # (B, H, T, T)
    index = pad.rel_index.unsqueeze(1).expand(b, h, t * t)
    shifted = torch.gather(position.reshape(b, h, t * t), 2, index) * pad.rel_valid.unsqueeze(1)
    scores = (content + shifted.view(b, h, t, t)) / math.sqrt(d)
    scores = scores.masked_fill(~pad.mask.view(b, 1, 1, t), float("-inf"))
    attn = m.attn_dropout(torch.softmax(scores, dim=-1))
    ctx = (attn @ v).transpose(1, 2).reshape(b, t, d)
    return m.dropout(m.out(ctx))


def batchnorm_padded(bn: ref.RaggedBatchNorm1d, x, pad: Padded):
    if bn.training:
        n = int(pad.mask.sum())
        mean = (x * pad.maskf).sum((0, 1)) / n
        var = (((x - mean) * pad.maskf) ** 2).sum((0, 1)) / n
        with torch.no_grad():
            unbiased = var * (n / (n - 1)) if n > 1 else var
            bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * mean)
            bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * unbiased)
            bn.num_batches_tracked.add_(1)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def conv_module_padded(c: ref.ConvModule, x, pad: Padded):
    y = ref.glu(c.pointwise1(c.norm(x))) * pad.maskf                   # zero the padding
    w = c.depthwise.weight
    y = F.conv1d(y.transpose(1, 2), w, None, padding=w.shape[-1] // 2, groups=w.shape[0]).transpose(1, 2)
    y = batchnorm_padded(c.batchnorm, y, pad)
    return c.dropout(c.pointwise2(ref.swish(y)))


def encoder_padded(enc: ref.ConformerEncoder, x, pad: Padded):
    x = enc.input_dropout(enc.input_projection(x))
    for blk in enc.blocks:
        x = x + 0.5 * blk.ff1(x)
        x = x + mhsa_padded(blk.mhsa, x, pad)
        x = x + conv_module_padded(blk.conv, x, pad)
        x = x + 0.5 * blk.ff2(x)
        x = blk.norm(x)
    return x


def represent_padded(model: ref.VAVL, modality: str, pad: Padded):
    branch = model.branch(modality)
    w = branch.proj.weight
    h = F.conv1d(pad.x.transpose(1, 2), w, None, padding=w.shape[-1] // 2).transpose(1, 2)
    h = encoder_padded(branch.encoder, h, pad)
    y = encoder_padded(model.shared.encoder, h, pad)
    z = model.shared.norm(y + h if model.shared.residual else y)
    return (z * pad.maskf).sum(1) / pad.maskf.sum(1)                  # (B, D)


# MARK: - One Algorithm-1 iteration for either implementation


def forward_context(precision: str):
    """Where forward passes run: bf16 = CPU autocast to bfloat16 (matrix products and
    convolutions take bf16 operands, PyTorch's autocast op lists decide the rest); fp32 =
    no autocast."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Inputs:
    """Per modality, what the implementation consumes; all utterances are paired here."""

    def __init__(self, impl: str, audio, audio_offsets, video, video_offsets, labels):
        self.impl, self.labels = impl, labels
        self.means = {"audio": ref.mean_pool(audio, audio_offsets),
                      "video": ref.mean_pool(video, video_offsets)}
        if impl == "padded":
            self.data = {"audio": Padded(audio, audio_offsets), "video": Padded(video, video_offsets)}
        else:
            self.data = {"audio": (audio, audio_offsets), "video": (video, video_offsets)}

    def represent(self, model, modality):
        if self.impl == "padded":
            return represent_padded(model, modality, self.data[modality])
        return model.represent(modality, *self.data[modality])


def iteration(model: ref.VAVL, opt, inputs: Inputs, precision: str = "fp32") -> dict:
    cfg, losses = model.cfg, {}
    for phase in cfg.phase_order:
        opt.zero_grad(set_to_none=True)
        # Forward and loss under `precision`; backward (below) and Adam outside autocast.
        with forward_context(precision):
            if phase in ("acoustic", "visual"):
                modality = "audio" if phase == "acoustic" else "video"
                model.train()
                r = inputs.represent(model, modality)
                head = model.head_a if modality == "audio" else model.head_v
                recon = model.recon_a if modality == "audio" else model.recon_v
                loss = ref.prediction_loss(cfg.task, head(r), inputs.labels) + \
                    cfg.alpha_value * ref.reconstruction_loss(recon(r), inputs.means[modality])
            else:
                model.eval()
                model.head_av.train()
                with torch.no_grad():
                    r = torch.cat([inputs.represent(model, "audio"), inputs.represent(model, "video")], 1)
                loss = ref.prediction_loss(cfg.task, model.head_av(r), inputs.labels)
        loss.backward()
        opt.step()
        losses[phase] = float(loss.detach())
    return losses


# MARK: - Equivalence check (float64, small config, dropout 0)


def check_equivalence() -> float:
    torch.manual_seed(11)
    cfg = ref.VAVLConfig(d_a=24, d_v=20, proj_dim=12, k_proj=5, dim=32, heads=4, blocks_a=2,
                         blocks_v=1, blocks_s=2, ff_expansion=2, conv_kernel=31, head_hidden1=32,
                         head_hidden2=16, out_dim=6, input_dropout=0.0, ff_dropout=0.0,
                         attn_dropout=0.0, mhsa_dropout=0.0, conv_dropout=0.0, head_dropout=0.0,
                         lr=1e-3)
    g = torch.Generator().manual_seed(12)
    la, lv = [7, 1, 19, 4, 12], [3, 9, 1, 6, 2]
    audio = torch.randn(sum(la), cfg.d_a, generator=g, dtype=torch.float64)
    video = torch.randn(sum(lv), cfg.d_v, generator=g, dtype=torch.float64)
    labels = torch.softmax(torch.randn(5, 6, generator=g, dtype=torch.float64), 1)
    oa, ov = ref.offsets_from_lengths(la), ref.offsets_from_lengths(lv)
    results = []
    for impl in ("padded", "packed"):
        model = ref.build_model(cfg, 13).double()
        opt = ref.make_optimizer(model)
        inputs = Inputs(impl, audio, oa, video, ov, labels)
        losses = [iteration(model, opt, inputs) for _ in range(2)]
        model.eval()
        with torch.no_grad():
            r = torch.cat([inputs.represent(model, "audio"), inputs.represent(model, "video")], 1)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        results.append((losses, state, r))
    (l1, s1, r1), (l2, s2, r2) = results
    worst = max(abs(a[k] - b[k]) for a, b in zip(l1, l2) for k in a)
    worst = max(worst, max(float((s1[k].double() - s2[k].double()).abs().max()) for k in s1))
    return max(worst, float((r1 - r2).abs().max()))


# MARK: - Benchmark


def paper_inputs(impl: str, seed: int, batch: int):
    g = torch.Generator().manual_seed(seed)
    la = torch.randint(100, 201, (batch,), generator=g).tolist()
    lv = torch.randint(60, 121, (batch,), generator=g).tolist()
    audio = torch.randn(sum(la), 1024, generator=g)
    video = torch.randn(sum(lv), 1408, generator=g)
    labels = torch.softmax(torch.randn(batch, 6, generator=g), 1)
    return Inputs(impl, audio, ref.offsets_from_lengths(la), video, ref.offsets_from_lengths(lv),
                  labels), la, lv


def run_one(impl: str, args) -> None:
    torch.set_num_threads(args.threads)
    cfg = ref.VAVLConfig()                       # paper config: dropout 0.1, heads 0.2
    model = ref.build_model(cfg, args.seed)
    opt = ref.make_optimizer(model)
    inputs, la, lv = paper_inputs(impl, args.seed, args.batch)
    load_start = os.getloadavg()[0]
    for _ in range(args.warmup):
        iteration(model, opt, inputs, args.precision)
    times = []
    for _ in range(args.iterations):
        start = time.perf_counter()
        losses = iteration(model, opt, inputs, args.precision)
        times.append(time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"{impl}.median_s={statistics.median(times):.3f}")
    print(f"{impl}.min_s={min(times):.3f}")
    print(f"{impl}.peak_rss_mb={rss_mb:.0f}")
    print(f"{impl}.iterations={len(times)}")
    print(f"{impl}.precision={args.precision}")
    # 1-minute load average before and after: other processes on the machine inflate times.
    print(f"{impl}.loadavg_start={load_start:.2f}")
    print(f"{impl}.loadavg_end={os.getloadavg()[0]:.2f}")
    print(f"{impl}.loss_acoustic={losses['acoustic']:.6f}")
    if impl == "padded":
        frames = sum(max(la) for _ in la) + sum(max(lv) for _ in lv)
        print(f"{impl}.padded_frames={frames}")
    else:
        for head, ms in inference_latency(model, args.precision).items():
            print(f"{impl}.latency_{head}_ms={ms:.2f}")
    sys.stdout.flush()


@torch.no_grad()
def inference_latency(model: ref.VAVL, precision: str = "fp32", repetitions: int = 20) -> dict:
    """Median milliseconds of one utterance's eval-mode prediction by each head, at the
    frame counts `vavl bench` uses (150 audio, 90 video frames; a single utterance needs
    no padding, so this is the per-utterance implementation only). Each prediction runs
    under `precision` (bf16: autocast entered and left per prediction, as a caller would)."""
    model.eval()
    g = torch.Generator().manual_seed(3)
    audio, video = torch.randn(150, 1024, generator=g), torch.randn(90, 1408, generator=g)
    oa, ov = ref.offsets_from_lengths([150]), ref.offsets_from_lengths([90])
    heads = {
        "audio_visual": lambda: model.head_av(torch.cat([model.represent("audio", audio, oa),
                                                         model.represent("video", video, ov)], 1)),
        "audio": lambda: model.head_a(model.represent("audio", audio, oa)),
        "video": lambda: model.head_v(model.represent("video", video, ov)),
    }
    result = {}
    for head, predict in heads.items():
        times = []
        for repetition in range(repetitions + 1):         # the first one is untimed (warm-up)
            start = time.perf_counter()
            with forward_context(precision):
                predict()
            if repetition:
                times.append(time.perf_counter() - start)
        result[head] = 1000 * statistics.median(times)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    ap.add_argument("--iterations", type=int, default=3, help="timed iterations per implementation")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--impl", choices=["both", "padded", "packed"], default="both")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="fp32: no autocast; bf16: forward passes and losses under "
                         "torch.autocast('cpu', dtype=torch.bfloat16), backward and Adam outside")
    ap.add_argument("--no-check", action="store_true", help="skip the float64 equivalence check")
    args = ap.parse_args()

    if args.impl != "both":
        run_one(args.impl, args)
        return
    print(f"torch={torch.__version__}")
    print(f"threads={args.threads}")
    print(f"batch={args.batch}")
    print(f"config=paper (d_a 1024, d_v 1408, dim 512, heads 8, blocks 3+3+2, kernel 31, float32, dropout on)")
    print(f"precision={args.precision}" + (" (forward passes and losses under torch.autocast cpu bfloat16; "
                                           "backward outside autocast; float32 parameters and Adam)"
                                           if args.precision == "bf16" else " (no autocast)"))
    _, la, lv = paper_inputs("packed", args.seed, args.batch)
    print(f"audio_frames={sum(la)}")
    print(f"video_frames={sum(lv)}")
    if not args.no_check:
        diff = check_equivalence()
        print(f"check.padded_vs_packed_max_abs_diff={diff:.2e}")
        if diff > 1e-10:
            print("check=FAILED: padded and per-utterance implementations disagree", file=sys.stderr)
            sys.exit(1)
    for impl in ("padded", "packed"):
        cmd = [sys.executable, os.path.abspath(__file__), "--impl", impl, "--threads", str(args.threads),
               "--iterations", str(args.iterations), "--warmup", str(args.warmup),
               "--batch", str(args.batch), "--seed", str(args.seed), "--precision", args.precision]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        sys.stdout.write(out.stdout)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
