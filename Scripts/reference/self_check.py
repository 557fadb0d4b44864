"""Self-checks of the reference implementation (run before trusting the fixtures).

  .venv-reference/bin/python Scripts/reference/self_check.py

1. relshift (pad/reshape trick) equals DESIGN's index formula.
2. The attention equals a naive loop over (h, i, j) written straight from DESIGN §2.3.
3. Every layer's autograd backward passes torch.autograd.gradcheck in float64
   (input and parameters), on ragged batches with a length-1 utterance.
4. BatchNorm (train) matches torch.nn.BatchNorm1d on the concatenated valid frames,
   output and running statistics; with one frame it updates with variance 0.
5. Per-utterance independence: in eval mode an utterance's outputs (layers and the
   model's representation and predictions) are the same alone, batched with others of
   other lengths, and in another batch order.
6. Losses: gradcheck of CE / CCC / L1; a tie in a label row gives the first index.
7. torch Adam (foreach off, grads set to None outside a phase) equals DESIGN §3's formula
   with one step count per parameter.
8. Parameter count at the paper config = 54,371,218 (DESIGN §8).
Exits non-zero on the first failure.
"""

from __future__ import annotations

import math
import os
import sys
import time

import torch
import torch.nn as nn
from torch.func import functional_call

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vavl_reference as ref  # noqa: E402
import make_fixtures as mf  # noqa: E402

torch.set_default_dtype(torch.float64)
failures = 0


def report(name, ok, detail=""):
    global failures
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}")
    if not ok:
        failures += 1


def maxdiff(a, b):
    return float((a.detach() - b.detach()).abs().max()) if a.numel() else 0.0


# MARK: - 1, 2: relshift and attention


def check_relshift():
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for t in (1, 2, 3, 5, 8, 13):
        s = torch.randn(3, t, t, generator=g)
        worst = max(worst, maxdiff(ref.relshift(s), ref.relshift_by_index(s)))
    report("relshift == DESIGN index formula (T = 1,2,3,5,8,13)", worst == 0.0, f"max diff {worst}")


def naive_mhsa(m: ref.RelPositionMHSA, x, offsets):
    """Straight from DESIGN §2.3 with explicit loops; float64."""
    D, H, Dh = m.dim, m.heads, m.head_dim
    y = m.norm(x)
    q, k, v = m.query(y), m.key(y), m.value(y)
    out_rows = []
    for s, e in ref.segments(offsets):
        t = e - s
        pe = ref.positional_encoding(t, D).double()
        p = m.pos(pe)
        ctx = torch.zeros(t, D)
        for h in range(H):
            sl = slice(h * Dh, (h + 1) * Dh)
            C = torch.zeros(t, t)
            S = torch.zeros(t, t)
            for i in range(t):
                for j in range(t):
                    C[i, j] = ((q[s + i, sl] + m.u_bias[h]) * k[s + j, sl]).sum()
                    S[i, j] = ((q[s + i, sl] + m.v_bias[h]) * p[j, sl]).sum()
            P = torch.zeros(t, t)
            for i in range(t):
                for j in range(t):
                    f = (i + 1) * t + j
                    r, c = f // (t + 1), f % (t + 1)
                    P[i, j] = 0.0 if c == 0 else S[r, c - 1]
            A = torch.softmax((C + P) / math.sqrt(D), dim=1)
            ctx[:, sl] = A @ v[s:e, sl]
        out_rows.append(ctx)
    return m.out(torch.cat(out_rows))


def check_attention_naive():
    torch.manual_seed(2)
    g = torch.Generator().manual_seed(2)
    m = ref.RelPositionMHSA(16, 2)
    mf.randomize_(m, g)
    m = m.double().eval()
    offsets = ref.offsets_from_lengths([6, 1, 11, 3])
    x = torch.randn(21, 16, generator=g)
    d = maxdiff(m(x, offsets), naive_mhsa(m, x, offsets))
    report("MHSA == naive loops from DESIGN §2.3", d < 1e-12, f"max diff {d:.2e}")


def check_positional_encoding():
    # float64 -> float32 once; compare with an independent float64 formula.
    t, D = 1200, 512
    pe = ref.positional_encoding(t, D)
    i = torch.arange(0, D, 2, dtype=torch.float64)
    pos = torch.arange(t, dtype=torch.float64)[:, None]
    div = torch.exp(i * (-math.log(10000.0) / D))
    ref64 = torch.zeros(t, D, dtype=torch.float64)
    ref64[:, 0::2] = torch.sin(pos * div)
    ref64[:, 1::2] = torch.cos(pos * div)
    d = maxdiff(pe.double(), ref64)
    report("PE (float64 rounded to float32) within float32 rounding at T = 1200",
           pe.dtype == torch.float32 and d < 1e-7, f"max diff {d:.2e}")


# MARK: - 3: gradcheck of every layer


def gradcheck_module(name, module, forward, x, offsets):
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in module.named_parameters())
    buffers = {n: b for n, b in module.named_buffers()}

    def f(xx, *ps):
        state = dict(zip(names, ps))
        state.update(buffers)
        return forward(lambda *a: functional_call(module, state, a), xx, offsets)

    xx = x.detach().clone().requires_grad_(True)
    # Full Jacobians for small layers; the blocks use gradcheck's fast mode (random
    # projections of the Jacobian), which keeps the whole run near a minute.
    count = sum(p.numel() for p in params)
    fast = count > 2500
    start = time.time()
    ok = torch.autograd.gradcheck(f, (xx, *params), eps=1e-6, atol=1e-6, rtol=1e-5,
                                  fast_mode=fast, raise_exception=False)
    report(f"gradcheck {name} ({count} parameters{', fast mode' if fast else ''})", ok,
           f"{time.time() - start:.1f} s")


class _WrongSwish(torch.autograd.Function):
    """Swish with a deliberately wrong backward (sigmoid' dropped)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ref.swish(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x)


def check_gradcheck_can_fail():
    x = torch.randn(5, 3, requires_grad=True)
    caught = not torch.autograd.gradcheck(_WrongSwish.apply, (x,), raise_exception=False)
    report("gradcheck catches a deliberately wrong backward", caught)


def check_gradcheck():
    lengths = [3, 1, 4]
    offsets = ref.offsets_from_lengths(lengths)
    for name, config, builder, c_in, forward in mf.layer_cases():
        torch.manual_seed(3)
        g = torch.Generator().manual_seed(mf.seed_of(name))
        module = builder()
        mf.randomize_(module, g)
        module = module.double()
        module.train(config.get("mode", "train") == "train")
        x = torch.randn(sum(lengths), c_in, generator=g)
        gradcheck_module(name, module, forward, x, offsets)


# MARK: - 4: BatchNorm


def check_batchnorm():
    g = torch.Generator().manual_seed(4)
    ours = ref.RaggedBatchNorm1d(6).double()
    mf.randomize_(ours, g)
    ours = ours.double()
    theirs = nn.BatchNorm1d(6, eps=1e-5, momentum=0.1).double()
    theirs.load_state_dict(ours.state_dict())
    ours.train(), theirs.train()
    offsets = ref.offsets_from_lengths([6, 1, 11, 3])
    x = torch.randn(21, 6, generator=g)
    worst = 0.0
    for _ in range(3):   # three forwards: running stats compound
        worst = max(worst, maxdiff(ours(x), theirs(x)))
        x = x * 1.3 + 0.2
    for key in ("running_mean", "running_var"):
        worst = max(worst, maxdiff(getattr(ours, key), getattr(theirs, key)))
    same_count = int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)
    report("BatchNorm train == nn.BatchNorm1d on concatenated frames (3 steps)",
           worst < 1e-13 and same_count, f"max diff {worst:.2e}")
    ours.eval(), theirs.eval()
    d = maxdiff(ours(x), theirs(x))
    report("BatchNorm eval == nn.BatchNorm1d", d < 1e-13, f"max diff {d:.2e}")
    # One frame: torch raises; we update with the biased variance 0.
    one = ref.RaggedBatchNorm1d(3).double().train()
    one(torch.tensor([[1.0, 2.0, 3.0]]))
    ok = torch.allclose(one.running_var, torch.full((3,), 0.9)) and \
        torch.allclose(one.running_mean, torch.tensor([0.1, 0.2, 0.3]))
    report("BatchNorm one frame: running_var <- 0.9 * var + 0.1 * 0", ok)


# MARK: - 5: per-utterance independence


def check_independence():
    torch.manual_seed(5)
    g = torch.Generator().manual_seed(5)
    lengths = [6, 1, 11, 3]
    offsets = ref.offsets_from_lengths(lengths)
    segs = ref.segments(offsets)
    worst_layers = 0.0
    for name, config, builder, c_in, forward in mf.layer_cases():
        if name == "mean_pool":
            continue
        module = builder()
        mf.randomize_(module, g)
        module = module.double().eval()
        x = torch.randn(21, c_in, generator=g)
        with torch.no_grad():
            whole = forward(module, x, offsets)
            for s, e in segs:
                alone = forward(module, x[s:e], ref.offsets_from_lengths([e - s]))
                worst_layers = max(worst_layers, maxdiff(whole[s:e], alone))
    report("eval layers: each utterance alone == in the batch", worst_layers < 1e-12,
           f"max diff {worst_layers:.2e}")

    cfg = mf.small_config("categorical", 6, 2.0)
    model = ref.build_model(cfg, 6).double().eval()
    la, lv = mf.AUDIO_LENGTHS, mf.VIDEO_LENGTHS
    audio = torch.randn(sum(la), cfg.d_a, generator=g)
    video = torch.randn(sum(lv), cfg.d_v, generator=g)
    batch = ref.Batch(audio, ref.offsets_from_lengths(la), video, ref.offsets_from_lengths(lv),
                      torch.rand(6, 6, generator=g))
    full = ref.predict(model, batch)
    worst = 0.0
    for b in range(6):
        sub = sub_batch(batch, [b])
        alone = ref.predict(model, sub)
        for key, rows in alone.items():
            idx = {"audio": batch.with_modality("audio"), "video": batch.with_modality("video"),
                   "audio_visual": batch.paired()}[key].index(b)
            worst = max(worst, maxdiff(full[key][idx:idx + 1], rows))
    perm = [5, 3, 0, 4, 2, 1]
    permuted = ref.predict(model, sub_batch(batch, perm))
    for key, rows in permuted.items():
        order = {"audio": batch.with_modality("audio"), "video": batch.with_modality("video"),
                 "audio_visual": batch.paired()}[key]
        sub_order = [b for b in perm if b in order]
        for r, b in enumerate(sub_order):
            worst = max(worst, maxdiff(full[key][order.index(b)], rows[r]))
    report("eval model: predictions alone == batched == permuted batch", worst < 1e-12,
           f"max diff {worst:.2e}")


def sub_batch(batch: ref.Batch, utts):
    parts_a, parts_v, la, lv = [], [], [], []
    sa, sv = ref.segments(batch.audio_offsets), ref.segments(batch.video_offsets)
    for b in utts:
        parts_a.append(batch.audio[sa[b][0]:sa[b][1]])
        parts_v.append(batch.video[sv[b][0]:sv[b][1]])
        la.append(sa[b][1] - sa[b][0])
        lv.append(sv[b][1] - sv[b][0])
    return ref.Batch(torch.cat(parts_a), ref.offsets_from_lengths(la), torch.cat(parts_v),
                     ref.offsets_from_lengths(lv), batch.labels[utts])


# MARK: - 6: losses


def check_losses():
    g = torch.Generator().manual_seed(6)
    y = torch.tensor([[0.125, 0.375, 0.0, 0.375, 0.125, 0.0], [0.5, 0.0, 0.0, 0.0, 0.0, 0.5]])
    report("hard label of a tie is the first maximal index",
           ref.hard_labels(y).tolist() == [1, 0])
    for task, k, label in (("categorical", 4, torch.softmax(torch.randn(5, 4, generator=g), 1)),
                           ("dimensional", 3, torch.rand(5, 3, generator=g)),
                           ("sentiment", 1, torch.rand(5, 1, generator=g) * 6 - 3)):
        pred = torch.randn(5, k, generator=g, requires_grad=True)
        ok = torch.autograd.gradcheck(lambda p: ref.prediction_loss(task, p, label), (pred,),
                                      raise_exception=False)
        report(f"gradcheck loss {task}", ok)
    soft = torch.softmax(torch.randn(5, 4, generator=g), 1)
    pred = torch.randn(5, 4, generator=g, requires_grad=True)
    ok = torch.autograd.gradcheck(lambda p: ref.prediction_loss("categorical", p, soft, True),
                                  (pred,), raise_exception=False)
    report("gradcheck loss categorical soft-label", ok)
    # CCC value against a direct centred formula.
    p, t = torch.randn(7, 3, generator=g), torch.rand(7, 3, generator=g)
    mp, mt = p.mean(0), t.mean(0)
    ccc = 2 * ((p - mp) * (t - mt)).mean(0) / (p.var(0, unbiased=False) + t.var(0, unbiased=False) + (mp - mt) ** 2)
    d = abs(float(ref.ccc_loss(p, t) - (1 - ccc).sum()))
    report("CCC loss == centred population formula", d < 1e-13, f"diff {d:.2e}")
    ok = float(ref.ccc_loss(p[:1], t[:1])) == 3.0
    report("CCC loss with N = 1 is K (CCC = 0)", ok)


# MARK: - 7: Adam


def check_adam():
    torch.manual_seed(7)
    cfg = mf.small_config("sentiment", 1, 1.0)
    model = ref.build_model(cfg, 7).double()
    g = torch.Generator().manual_seed(7)
    la, lv = mf.AUDIO_LENGTHS, mf.VIDEO_LENGTHS
    batch = ref.Batch(torch.randn(sum(la), cfg.d_a, generator=g), ref.offsets_from_lengths(la),
                      torch.randn(sum(lv), cfg.d_v, generator=g), ref.offsets_from_lengths(lv),
                      torch.rand(6, 1, generator=g))
    opt = ref.make_optimizer(model)
    # Shadow Adam straight from DESIGN §3, fed the same gradients phase by phase.
    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    shadow = {n: p.detach().clone() for n, p in params.items()}
    m = {n: torch.zeros_like(p) for n, p in shadow.items()}
    v = {n: torch.zeros_like(p) for n, p in shadow.items()}
    step = {n: 0 for n in names}
    lr, (b1, b2), eps, wd = cfg.lr, cfg.betas, cfg.adam_eps, cfg.weight_decay
    orig_step = opt.step

    def step_and_shadow():
        for n in names:
            grad = params[n].grad
            if grad is None:
                continue
            gg = grad + wd * shadow[n]
            step[n] += 1
            m[n] = b1 * m[n] + (1 - b1) * gg
            v[n] = b2 * v[n] + (1 - b2) * gg * gg
            t = step[n]
            shadow[n] = shadow[n] - (lr / (1 - b1 ** t)) * m[n] / (v[n].sqrt() / math.sqrt(1 - b2 ** t) + eps)
        orig_step()

    opt.step = step_and_shadow
    for _ in range(2):
        ref.algorithm1_iteration(model, opt, batch)
    worst = max(maxdiff(params[n].detach(), shadow[n]) for n in names)
    steps_ok = all(int(opt.state[params[n]]["step"]) == step[n] for n in names)
    shared_two = all(step[n] == 4 for n in names if n.startswith("shared."))
    av_one = all(step[n] == 2 for n in names if n.startswith("head_av."))
    report("torch Adam == DESIGN §3 formula, per-parameter steps (θ_s 2/iteration, head_av 1)",
           worst < 1e-15 and steps_ok and shared_two and av_one, f"max diff {worst:.2e}")
    # The AV phase leaves BatchNorm running stats alone and changes head_av only.
    before = {n: b.clone() for n, b in model.named_buffers()}
    pbefore = {n: p.detach().clone() for n, p in model.named_parameters()}
    ref.audio_visual_phase(model, opt, batch)
    same_buf = all(torch.equal(before[n], b) for n, b in model.named_buffers())
    changed = {n for n, p in model.named_parameters() if not torch.equal(pbefore[n], p.detach())}
    report("AV phase changes head_av only and no BatchNorm buffer",
           same_buf and changed == {n for n in names if n.startswith("head_av.")})


# MARK: - 8: parameter count


def check_param_count():
    with torch.device("meta"):
        model = ref.VAVL(ref.VAVLConfig())
    n = sum(p.numel() for p in model.parameters())
    report("parameter count at the paper config == 54,371,218", n == 54_371_218, f"{n:,}")
    names = list(dict(model.named_parameters()))
    expected = ["acoustic.proj.weight", "acoustic.encoder.input_projection.weight",
                "acoustic.encoder.blocks.0.ff1.norm.weight", "acoustic.encoder.blocks.2.mhsa.u_bias",
                "acoustic.encoder.blocks.0.mhsa.pos.weight", "acoustic.encoder.blocks.0.conv.depthwise.weight",
                "acoustic.encoder.blocks.0.conv.batchnorm.weight", "shared.encoder.blocks.1.ff2.linear2.bias",
                "shared.norm.weight", "head_av.out.bias", "recon_v.fc1.weight", "visual.proj.weight"]
    missing = [e for e in expected if e not in names]
    report("canonical names present (DESIGN §6)", not missing, f"missing {missing}" if missing else "")


# MARK: - 9: float32 replay of the stored fixtures


def _scaled(a, b):
    """(max |a - b|, max |a - b| / max |b|)."""
    d = float((a - b).abs().max()) if b.numel() else 0.0
    scale = float(b.abs().max()) if b.numel() else 0.0
    return d, d / scale if scale > 0 else d


def check_fixture_replay(folder=mf.DEFAULT_OUT):
    """Reads the committed fixtures the way a float32 implementation would, replays them
    with this reference in float32 and prints the largest differences: what tolerance a
    correct float32 implementation can expect (mhsa key.bias excluded, see README)."""
    import h5py
    import numpy as np
    torch.set_default_dtype(torch.float32)
    path = os.path.join(folder, "layers.h5")
    if not os.path.exists(path):
        report("fixture replay", False, f"{path} missing: run make_fixtures.py first")
        return
    t = lambda d: torch.from_numpy(np.asarray(d[()]))  # noqa: E731
    worst_layer = 0.0
    with h5py.File(path) as h5:
        for name, config, builder, c_in, forward in mf.layer_cases():
            g = h5[name]
            torch.manual_seed(0)
            module = builder().float()
            state = {k: t(v) for k, v in g["params"].items()}
            if "buffers_before" in g:
                state.update({k: t(v) for k, v in g["buffers_before"].items()})
            module.load_state_dict(state, strict=True)
            module.train(json_mode(g) == "train")
            x = t(g["input"]).requires_grad_(True)
            out = forward(module, x, t(g["offsets"]))
            (out * t(g["grad_output"])).sum().backward()
            rows = [("output", out, t(g["output"])), ("grad_input", x.grad, t(g["grad_input"]))]
            rows += [(f"grads/{n}", p.grad, t(g["grads"][n])) for n, p in module.named_parameters()
                     if not n.endswith("key.bias")]
            if "buffers_after" in g:
                rows += [(f"buffers_after/{n}", b.double(), t(g["buffers_after"][n]).double())
                         for n, b in module.named_buffers()]
            rel = max(_scaled(a.detach().float(), b.float())[1] if a.is_floating_point()
                      else float((a != b).any()) for _, a, b in rows)
            worst_layer = max(worst_layer, rel)
    report("layers.h5 replayed in float32: max |diff| / max |ref| per tensor", worst_layer < 1e-5,
           f"{worst_layer:.1e}")

    for fname, task, out_dim, alpha in mf.MODEL_TASKS:
        with h5py.File(os.path.join(folder, fname)) as h5:
            cfg = mf.small_config(task, out_dim, alpha)
            model = ref.VAVL(cfg)
            state = {k: t(v) for k, v in h5["init/params"].items()}
            state.update({k: t(v) for k, v in h5["init/buffers"].items()})
            model.load_state_dict(state, strict=True)
            b = h5["batch"]
            batch = ref.Batch(t(b["audio"]), t(b["audio_offsets"]), t(b["video"]),
                              t(b["video_offsets"]), t(b["labels"]))
            opt = ref.make_optimizer(model)
            w = {"params_abs": 0.0, "m_rel": 0.0, "v_rel": 0.0, "pred_rel": 0.0, "loss_rel": 0.0,
                 "buffers_rel": 0.0}
            steps_ok = True
            for it in (1, 2, 3):
                losses = ref.algorithm1_iteration(model, opt, batch)
                g = h5[f"iteration_{it}"]
                for n, p in model.named_parameters():
                    if n.endswith("key.bias"):
                        continue
                    st = opt.state[p]
                    w["params_abs"] = max(w["params_abs"], _scaled(p.detach(), t(g["params"][n]))[0])
                    w["m_rel"] = max(w["m_rel"], _scaled(st["exp_avg"], t(g["adam_m"][n]))[1])
                    w["v_rel"] = max(w["v_rel"], _scaled(st["exp_avg_sq"], t(g["adam_v"][n]))[1])
                    steps_ok &= int(st["step"]) == int(g["adam_step"][n][()])
                for n, buf in model.named_buffers():
                    if buf.is_floating_point():
                        w["buffers_rel"] = max(w["buffers_rel"], _scaled(buf, t(g["buffers"][n]))[1])
                    else:
                        steps_ok &= int(buf) == int(g["buffers"][n][()])
                for k, v in ref.predict(model, batch).items():
                    w["pred_rel"] = max(w["pred_rel"], _scaled(v, t(g["predictions"][k]))[1])
                for k, v in losses.items():
                    ref_loss = float(g.attrs[f"loss_{k}"])
                    w["loss_rel"] = max(w["loss_rel"], abs(v - ref_loss) / abs(ref_loss))
            ok = steps_ok and w["params_abs"] < 0.25 * cfg.lr and w["pred_rel"] < 1e-5 and \
                w["loss_rel"] < 1e-5 and w["m_rel"] < 1e-3 and w["v_rel"] < 1e-3
            report(f"{fname} replayed in float32 (3 iterations)", ok,
                   "  ".join(f"{k} {v:.1e}" for k, v in w.items()))
    torch.set_default_dtype(torch.float64)


def json_mode(group):
    import json
    return json.loads(group.attrs["config"]).get("mode", "train")


def main():
    torch.set_default_dtype(torch.float64)
    check_relshift()
    check_attention_naive()
    check_positional_encoding()
    check_batchnorm()
    check_independence()
    check_losses()
    check_adam()
    check_param_count()
    check_gradcheck_can_fail()
    check_gradcheck()
    if "--no-replay" not in sys.argv:
        check_fixture_replay()
    print(f"{failures} failed" if failures else "all self-checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
