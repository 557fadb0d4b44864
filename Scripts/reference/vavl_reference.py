"""PyTorch reference of the VAVL model (docs/DESIGN.md §2) and Algorithm 1 (docs/DESIGN.md §3).

Ragged batches: a batch of B utterances is one packed matrix (N, C) whose rows are the
frames of all utterances one after the other, plus int64 offsets (B+1): utterance b owns
rows offsets[b] ..< offsets[b+1] (an empty range = the modality is missing). There is no
padding anywhere: position-wise layers (Linear, LayerNorm, pointwise Conv1d, GLU, Swish,
Dropout, BatchNorm's affine part) work on the packed matrix; temporal and depthwise
convolutions, attention (with its relshift) and mean pooling run per utterance over its
own frames; BatchNorm statistics are taken over all valid frames of the batch.

Legend of dimension letters used in the shape comments:
  N = frames of the packed batch, B = utterances, T = frames of one utterance,
  C = channels, D = model dim, H = heads, Dh = head dim, K = kernel size.

The module tree and attribute names are the canonical parameter names of DESIGN §6, so
`model.state_dict()` keys are exactly the checkpoint names (plus BatchNorm buffers).
Convolution weights are in PyTorch layout (out, in/groups, K); Linear weights (out, in).

Every module works in any floating dtype; the fixtures run it in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict
from typing import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


# MARK: - Ragged batch helpers


def segments(offsets) -> list[tuple[int, int]]:
    """(start, end) row ranges of the utterances described by `offsets` (B+1)."""
    o = [int(v) for v in (offsets.tolist() if torch.is_tensor(offsets) else offsets)]
    if len(o) < 1 or o[0] != 0 or any(b < a for a, b in zip(o, o[1:])):
        raise ValueError(f"offsets must start at 0 and be non-decreasing: {o}")
    return list(zip(o[:-1], o[1:]))


def offsets_from_lengths(lengths: Sequence[int]) -> torch.Tensor:
    """int64 offsets (B+1) of utterances with the given frame counts."""
    out = [0]
    for n in lengths:
        out.append(out[-1] + int(n))
    return torch.tensor(out, dtype=torch.int64)


def lengths_from_offsets(offsets) -> list[int]:
    return [e - s for s, e in segments(offsets)]


def mean_pool(x: torch.Tensor, offsets) -> torch.Tensor:
    """Mean over each utterance's frames. x (N, C) -> (B, C). Every utterance needs T > 0."""
    rows = []
    for s, e in segments(offsets):
        if e == s:
            raise ValueError("mean_pool: an utterance has no frames")
        rows.append(x[s:e].mean(dim=0))
    return torch.stack(rows)


# MARK: - Position-wise activations


def swish(x: torch.Tensor) -> torch.Tensor:
    """Swish(x) = x * sigmoid(x)."""
    return x * torch.sigmoid(x)


def glu(x: torch.Tensor) -> torch.Tensor:
    """GLU over channels: x (N, 2C) -> a * sigmoid(b) (N, C), a = first C channels."""
    a, b = x.chunk(2, dim=-1)
    return a * torch.sigmoid(b)


class Swish(nn.Module):
    def forward(self, x):
        return swish(x)


class GLU(nn.Module):
    def forward(self, x):
        return glu(x)


# MARK: - Convolutions


class TemporalConv1d(nn.Conv1d):
    """Conv1d over time, "same" zero padding per utterance, odd kernel.

    x (N, C_in) packed -> (N, C_out). weight (C_out, C_in/groups, K). Each utterance is
    convolved alone, padded with K//2 zeros on both sides, so no frame ever sees a frame
    of another utterance. Used for `proj` (no bias) and the depthwise conv (groups = C).
    """

    def __init__(self, in_channels, out_channels, kernel_size, groups=1, bias=False):
        if kernel_size % 2 != 1:
            raise ValueError("TemporalConv1d needs an odd kernel")
        super().__init__(in_channels, out_channels, kernel_size, groups=groups, bias=bias,
                         padding=kernel_size // 2)

    def forward(self, x, offsets):
        outs = []
        for s, e in segments(offsets):
            if e == s:
                continue
            u = x[s:e].t().unsqueeze(0)                     # (1, C_in, T)
            y = F.conv1d(u, self.weight, self.bias, padding=self.kernel_size[0] // 2,
                         groups=self.groups)                # (1, C_out, T)
            outs.append(y.squeeze(0).t())                   # (T, C_out)
        if not outs:
            return x.new_zeros((0, self.out_channels))
        return torch.cat(outs, dim=0)


class PointwiseConv1d(nn.Conv1d):
    """Conv1d with kernel 1 = a Linear on the packed matrix. weight (C_out, C_in, 1)."""

    def __init__(self, in_channels, out_channels, bias=True):
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x):
        return F.linear(x, self.weight[:, :, 0], self.bias)


# MARK: - BatchNorm over the valid frames of a ragged batch


class RaggedBatchNorm1d(nn.Module):
    """BatchNorm1d over all valid frames of the packed batch. x (N, C) -> (N, C).

    Training: normalise with the batch mean and biased variance; update
    running = (1 - momentum) * running + momentum * stat with the unbiased variance
    (N/(N-1) * biased; with N = 1 the biased variance 0 is used, where PyTorch raises).
    Eval: normalise with the running statistics. Parameter and buffer names are
    PyTorch's (weight, bias, running_mean, running_var, num_batches_tracked).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.int64))

    def forward(self, x):
        if self.training:
            n = x.shape[0]
            if n == 0:
                raise ValueError("RaggedBatchNorm1d: no frames in training mode")
            mean = x.mean(dim=0)                                  # (C)
            var = ((x - mean) ** 2).mean(dim=0)                   # (C) biased
            with torch.no_grad():
                unbiased = var * (n / (n - 1)) if n > 1 else var
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.to(self.running_mean.dtype))
                self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
                self.num_batches_tracked.add_(1)
        else:
            mean = self.running_mean.to(x.dtype)
            var = self.running_var.to(x.dtype)
        xhat = (x - mean) / torch.sqrt(var + self.eps)
        return xhat * self.weight + self.bias


# MARK: - Relative positional encoding and attention


def positional_encoding(length: int, dim: int) -> torch.Tensor:
    """PE (length, dim) float32: PE[t,2i] = sin(t / 10000^(2i/dim)), PE[t,2i+1] = cos(..).

    Computed in float64 and rounded once to float32 (DESIGN §2.3).
    """
    t = torch.arange(length, dtype=torch.float64).unsqueeze(1)        # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)               # (D/2)
    angle = t / torch.pow(torch.tensor(10000.0, dtype=torch.float64), two_i / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe.to(torch.float32)


def relshift(scores: torch.Tensor) -> torch.Tensor:
    """Transformer-XL shift of (..., T, T) scores as in the released code.

    Pad one zero column on the left -> (..., T, T+1), view as (..., T+1, T), drop the
    first row, view as (..., T, T). Equivalently, with f = (i+1)*T + j,
    r = f div (T+1), c = f mod (T+1): out[i,j] = 0 if c == 0 else scores[r, c-1].
    """
    *lead, t, t2 = scores.shape
    assert t == t2
    padded = F.pad(scores, (1, 0))                              # (..., T, T+1)
    padded = padded.reshape(*lead, t + 1, t)                    # (..., T+1, T)
    return padded[..., 1:, :].reshape(*lead, t, t)              # (..., T, T)


def relshift_by_index(scores: torch.Tensor) -> torch.Tensor:
    """The DESIGN's index formula, element by element (slow; for self-checks)."""
    *lead, t, _ = scores.shape
    out = torch.zeros_like(scores)
    for i in range(t):
        for j in range(t):
            f = (i + 1) * t + j
            r, c = divmod(f, t + 1)
            if c != 0:
                out[..., i, j] = scores[..., r, c - 1]
    return out


class RelPositionMHSA(nn.Module):
    """LayerNorm -> relative-position multi-head self-attention -> Dropout (DESIGN §2.3).

    x (N, D) packed -> (N, D). Per utterance of T frames, with q, k, v, p (T, H, Dh):
      C[h,i,j] = (q[i,h] + u_bias[h]) . k[j,h]
      S[h,i,j] = (q[i,h] + v_bias[h]) . p[j,h],  p = pos(PE[0..T-1])
      A = softmax_j((C + relshift(S)) / sqrt(D))      (D = model dim, not Dh)
      context[i,h] = sum_j A[h,i,j] v[j,h];  output = out(context)
    """

    def __init__(self, dim, heads, attn_dropout=0.0, dropout=0.0, eps=1e-5):
        super().__init__()
        if dim % heads != 0:
            raise ValueError("dim must be a multiple of heads")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.pos = nn.Linear(dim, dim, bias=False)
        self.u_bias = nn.Parameter(torch.zeros(heads, self.head_dim))
        self.v_bias = nn.Parameter(torch.zeros(heads, self.head_dim))
        self.out = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, offsets):
        segs = segments(offsets)
        H, Dh, D = self.heads, self.head_dim, self.dim
        y = self.norm(x)                                            # (N, D)
        q, k, v = self.query(y), self.key(y), self.value(y)         # (N, D) each
        t_max = max((e - s for s, e in segs), default=0)
        pe = positional_encoding(t_max, D).to(x.dtype)              # (Tmax, D)
        p_all = self.pos(pe)                                        # (Tmax, D); rows of pos(PE_T) = first T rows
        scale = 1.0 / math.sqrt(D)
        contexts = []
        for s, e in segs:
            t = e - s
            if t == 0:
                continue
            qh = q[s:e].reshape(t, H, Dh)
            kh = k[s:e].reshape(t, H, Dh)
            vh = v[s:e].reshape(t, H, Dh)
            ph = p_all[:t].reshape(t, H, Dh)
            content = torch.einsum("ihd,jhd->hij", qh + self.u_bias, kh)       # (H, T, T)
            position = torch.einsum("ihd,jhd->hij", qh + self.v_bias, ph)      # (H, T, T)
            attn = torch.softmax((content + relshift(position)) * scale, dim=-1)
            attn = self.attn_dropout(attn)
            ctx = torch.einsum("hij,jhd->ihd", attn, vh).reshape(t, D)        # (T, D)
            contexts.append(ctx)
        ctx = torch.cat(contexts, dim=0) if contexts else x.new_zeros((0, D))
        return self.dropout(self.out(ctx))


# MARK: - Conformer modules


class FeedForward(nn.Module):
    """LayerNorm -> Linear(D -> eD) -> Swish -> Dropout -> Linear(eD -> D) -> Dropout."""

    def __init__(self, dim, expansion=4, dropout=0.0, eps=1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.linear1 = nn.Linear(dim, dim * expansion)
        self.dropout1 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim * expansion, dim)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x, offsets=None):
        return self.dropout2(self.linear2(self.dropout1(swish(self.linear1(self.norm(x))))))


class ConvModule(nn.Module):
    """LayerNorm -> pointwise1 (D -> 2D) -> GLU -> depthwise (K, same) -> BatchNorm ->
    Swish -> pointwise2 (D -> D) -> Dropout."""

    def __init__(self, dim, kernel=31, dropout=0.0, eps=1e-5, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise1 = PointwiseConv1d(dim, 2 * dim, bias=True)
        self.depthwise = TemporalConv1d(dim, dim, kernel, groups=dim, bias=False)
        self.batchnorm = RaggedBatchNorm1d(dim, eps=bn_eps, momentum=bn_momentum)
        self.pointwise2 = PointwiseConv1d(dim, dim, bias=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, offsets):
        y = glu(self.pointwise1(self.norm(x)))                      # (N, D)
        y = self.batchnorm(self.depthwise(y, offsets))              # (N, D)
        return self.dropout(self.pointwise2(swish(y)))


class ConformerBlock(nn.Module):
    """Macaron block: x += 0.5 ff1(x); x += mhsa(x); x += conv(x); x += 0.5 ff2(x); norm."""

    def __init__(self, dim, heads, kernel=31, expansion=4, ff_dropout=0.0, attn_dropout=0.0,
                 mhsa_dropout=0.0, conv_dropout=0.0, eps=1e-5, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        self.ff1 = FeedForward(dim, expansion, ff_dropout, eps)
        self.mhsa = RelPositionMHSA(dim, heads, attn_dropout, mhsa_dropout, eps)
        self.conv = ConvModule(dim, kernel, conv_dropout, eps, bn_eps, bn_momentum)
        self.ff2 = FeedForward(dim, expansion, ff_dropout, eps)
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, offsets):
        x = x + 0.5 * self.ff1(x)
        x = x + self.mhsa(x, offsets)
        x = x + self.conv(x, offsets)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class ConformerEncoder(nn.Module):
    """input_projection Linear(d_in -> D) -> Dropout -> N Conformer blocks."""

    def __init__(self, d_in, dim, blocks, heads, kernel=31, expansion=4, input_dropout=0.0,
                 ff_dropout=0.0, attn_dropout=0.0, mhsa_dropout=0.0, conv_dropout=0.0,
                 eps=1e-5, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        self.input_projection = nn.Linear(d_in, dim)
        self.input_dropout = nn.Dropout(input_dropout)
        self.blocks = nn.ModuleList([
            ConformerBlock(dim, heads, kernel, expansion, ff_dropout, attn_dropout,
                           mhsa_dropout, conv_dropout, eps, bn_eps, bn_momentum)
            for _ in range(blocks)])

    def forward(self, x, offsets):
        x = self.input_dropout(self.input_projection(x))
        for block in self.blocks:
            x = block(x, offsets)
        return x


# MARK: - VAVL


@dataclass
class VAVLConfig:
    """Hyperparameters under the config key names of DESIGN §6."""
    d_a: int = 1024
    d_v: int = 1408
    proj_dim: int = 50
    k_proj: int = 5
    dim: int = 512
    heads: int = 8
    blocks_a: int = 3
    blocks_v: int = 3
    blocks_s: int = 2
    ff_expansion: int = 4
    conv_kernel: int = 31
    head_hidden1: int = 512
    head_hidden2: int = 256
    out_dim: int = 6
    task: str = "categorical"
    soft_label: bool = False
    alpha: float | None = None
    residual: bool = True
    av_head: bool = True
    input_dropout: float = 0.1
    ff_dropout: float = 0.1
    attn_dropout: float = 0.1
    mhsa_dropout: float = 0.1
    conv_dropout: float = 0.1
    head_dropout: float = 0.2
    ln_eps: float = 1e-5
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    lr: float = 5e-5
    betas: list = field(default_factory=lambda: [0.95, 0.999])
    adam_eps: float = 1e-8
    weight_decay: float = 5e-7
    phase_order: list = field(default_factory=lambda: ["acoustic", "visual", "audio_visual"])

    @property
    def alpha_value(self) -> float:
        if self.alpha is not None:
            return float(self.alpha)
        return 2.0 if self.task == "categorical" else 1.0

    def to_dict(self):
        return asdict(self)


class MLP(nn.Module):
    """fc1 (d_in -> h1) -> ReLU -> Dropout -> fc2 (h1 -> h2) -> out (h2 -> d_out)."""

    def __init__(self, d_in, d_out, hidden1=512, hidden2=256, dropout=0.2):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden1)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden1, hidden2)
        self.out = nn.Linear(hidden2, d_out)

    def forward(self, x):
        return self.out(self.fc2(self.dropout(torch.relu(self.fc1(x)))))


class Branch(nn.Module):
    """proj: temporal Conv1d d_m -> proj_dim (K = k_proj, no bias) -> Conformer encoder."""

    def __init__(self, d_in, cfg: VAVLConfig, blocks: int):
        super().__init__()
        self.proj = TemporalConv1d(d_in, cfg.proj_dim, cfg.k_proj, bias=False)
        self.encoder = ConformerEncoder(
            cfg.proj_dim, cfg.dim, blocks, cfg.heads, cfg.conv_kernel, cfg.ff_expansion,
            cfg.input_dropout, cfg.ff_dropout, cfg.attn_dropout, cfg.mhsa_dropout,
            cfg.conv_dropout, cfg.ln_eps, cfg.bn_eps, cfg.bn_momentum)

    def forward(self, x, offsets):
        return self.encoder(self.proj(x, offsets), offsets)


class Shared(nn.Module):
    """h = norm(encoder(x) + x) (residual) or norm(encoder(x)) (no-residual)."""

    def __init__(self, cfg: VAVLConfig):
        super().__init__()
        self.residual = cfg.residual
        self.encoder = ConformerEncoder(
            cfg.dim, cfg.dim, cfg.blocks_s, cfg.heads, cfg.conv_kernel, cfg.ff_expansion,
            cfg.input_dropout, cfg.ff_dropout, cfg.attn_dropout, cfg.mhsa_dropout,
            cfg.conv_dropout, cfg.ln_eps, cfg.bn_eps, cfg.bn_momentum)
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.ln_eps)

    def forward(self, x, offsets):
        y = self.encoder(x, offsets)
        return self.norm(y + x if self.residual else y)


class VAVL(nn.Module):
    def __init__(self, cfg: VAVLConfig):
        super().__init__()
        self.cfg = cfg
        h1, h2, hd = cfg.head_hidden1, cfg.head_hidden2, cfg.head_dropout
        self.acoustic = Branch(cfg.d_a, cfg, cfg.blocks_a)
        self.visual = Branch(cfg.d_v, cfg, cfg.blocks_v)
        self.shared = Shared(cfg)
        self.head_a = MLP(cfg.dim, cfg.out_dim, h1, h2, hd)
        self.head_v = MLP(cfg.dim, cfg.out_dim, h1, h2, hd)
        if cfg.av_head:
            self.head_av = MLP(2 * cfg.dim, cfg.out_dim, h1, h2, hd)
        if cfg.alpha_value != 0:
            self.recon_a = MLP(cfg.dim, cfg.d_a, h1, h2, hd)
            self.recon_v = MLP(cfg.dim, cfg.d_v, h1, h2, hd)

    def branch(self, modality: str) -> Branch:
        return {"audio": self.acoustic, "video": self.visual}[modality]

    def represent(self, modality: str, x, offsets) -> torch.Tensor:
        """r (B, D): mean over frames of norm(shared(branch(x)) + branch(x))."""
        h = self.branch(modality)(x, offsets)
        return mean_pool(self.shared(h, offsets), offsets)


def init_spec_(model: nn.Module) -> None:
    """DESIGN §2.3 initialisation on top of PyTorch's defaults (applied at construction):
    Xavier-uniform weights and zero biases for every encoder `input_projection`, the FF
    linears and the MHSA projections (query, key, value, out, pos), Xavier-uniform
    u_bias / v_bias; everything else keeps PyTorch's default."""
    for module in model.modules():
        if isinstance(module, ConformerEncoder):
            linears = [module.input_projection]
        elif isinstance(module, FeedForward):
            linears = [module.linear1, module.linear2]
        elif isinstance(module, RelPositionMHSA):
            linears = [module.query, module.key, module.value, module.out, module.pos]
            nn.init.xavier_uniform_(module.u_bias)
            nn.init.xavier_uniform_(module.v_bias)
        else:
            continue
        for lin in linears:
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)


def build_model(cfg: VAVLConfig, seed: int) -> VAVL:
    torch.manual_seed(seed)
    model = VAVL(cfg)
    init_spec_(model)
    return model


# MARK: - Losses (DESIGN §3)


def hard_labels(labels: torch.Tensor) -> torch.Tensor:
    """First maximal index of each row (explicit, so ties are resolved as DESIGN says)."""
    rows = labels.tolist()
    return torch.tensor([max(range(len(r)), key=lambda k: (r[k], -k)) for r in rows],
                        dtype=torch.int64)


def ccc_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_k (1 - CCC_k), CCC from population moments of float64 sufficient statistics."""
    n = pred.shape[0]
    p, t = pred.double(), y.double()
    if n < 2:
        return (p.sum() * 0.0) + float(pred.shape[1])
    mp, mt = p.sum(0) / n, t.sum(0) / n
    vp = (p * p).sum(0) / n - mp * mp
    vt = (t * t).sum(0) / n - mt * mt
    cov = (p * t).sum(0) / n - mp * mt
    ccc = 2.0 * cov / (vp + vt + (mp - mt) ** 2)
    return (1.0 - ccc).sum().to(pred.dtype)


def prediction_loss(task: str, pred, y, soft_label=False) -> torch.Tensor:
    n = pred.shape[0]
    if task == "categorical":
        logp = torch.log_softmax(pred, dim=-1)
        if soft_label:
            return -(y * logp).sum() / n
        c = hard_labels(y)
        return -logp[torch.arange(n), c].sum() / n
    if task == "dimensional":
        return ccc_loss(pred, y)
    if task == "sentiment":
        return (pred - y).abs().sum() / (n * pred.shape[1])
    raise ValueError(task)


def reconstruction_loss(rec, target) -> torch.Tensor:
    """sum_b sum_j (rec - target)^2 / (N * d_m)."""
    return ((rec - target) ** 2).sum() / rec.numel()


# MARK: - Algorithm 1 (DESIGN §3)


@dataclass
class Batch:
    """A ragged mixed batch; an empty range in audio/video offsets = modality missing."""
    audio: torch.Tensor          # (ΣT_a, d_a)
    audio_offsets: torch.Tensor  # (B+1) int64
    video: torch.Tensor          # (ΣT_v, d_v)
    video_offsets: torch.Tensor  # (B+1) int64
    labels: torch.Tensor         # (B, K)

    def lengths(self, modality):
        return lengths_from_offsets(self.audio_offsets if modality == "audio" else self.video_offsets)

    def select(self, modality, utterances):
        """Packed frames and offsets of the given utterances (batch order) for one modality."""
        x = self.audio if modality == "audio" else self.video
        segs = segments(self.audio_offsets if modality == "audio" else self.video_offsets)
        parts = [x[segs[b][0]:segs[b][1]] for b in utterances]
        return torch.cat(parts, dim=0), offsets_from_lengths([p.shape[0] for p in parts])

    def with_modality(self, modality):
        return [b for b, n in enumerate(self.lengths(modality)) if n > 0]

    def paired(self):
        la, lv = self.lengths("audio"), self.lengths("video")
        return [b for b in range(len(la)) if la[b] > 0 and lv[b] > 0]


def unimodal_phase(model: VAVL, optimizer, batch: Batch, modality: str) -> float:
    """Acoustic or visual phase: L = L_pred + alpha * MSE(recon, mean frames); one Adam step."""
    cfg = model.cfg
    utts = batch.with_modality(modality)
    if not utts:
        return float("nan")
    optimizer.zero_grad(set_to_none=True)
    model.train()
    x, offsets = batch.select(modality, utts)
    r = model.represent(modality, x, offsets)
    head = model.head_a if modality == "audio" else model.head_v
    loss = prediction_loss(cfg.task, head(r), batch.labels[utts], cfg.soft_label)
    if cfg.alpha_value != 0:
        recon = model.recon_a if modality == "audio" else model.recon_v
        target = mean_pool(x, offsets).detach()
        loss = loss + cfg.alpha_value * reconstruction_loss(recon(r), target)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def audio_visual_phase(model: VAVL, optimizer, batch: Batch) -> float:
    """Everything but head_av frozen and in eval mode; head_av in train mode; one step."""
    cfg = model.cfg
    utts = batch.paired()
    if not utts or not cfg.av_head:
        return float("nan")
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    model.head_av.train()
    with torch.no_grad():
        xa, oa = batch.select("audio", utts)
        xv, ov = batch.select("video", utts)
        r = torch.cat([model.represent("audio", xa, oa), model.represent("video", xv, ov)], dim=1)
    loss = prediction_loss(cfg.task, model.head_av(r), batch.labels[utts], cfg.soft_label)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def algorithm1_iteration(model: VAVL, optimizer, batch: Batch) -> dict:
    losses = {}
    for phase in model.cfg.phase_order:
        if phase == "acoustic":
            losses[phase] = unimodal_phase(model, optimizer, batch, "audio")
        elif phase == "visual":
            losses[phase] = unimodal_phase(model, optimizer, batch, "video")
        elif phase == "audio_visual":
            losses[phase] = audio_visual_phase(model, optimizer, batch)
        else:
            raise ValueError(phase)
    return losses


@torch.no_grad()
def predict(model: VAVL, batch: Batch) -> dict:
    """Eval-mode raw head outputs: audio (utterances with audio), video, audio_visual (paired)."""
    model.eval()
    out = {}
    ua, uv, up = batch.with_modality("audio"), batch.with_modality("video"), batch.paired()
    ra = model.represent("audio", *batch.select("audio", ua)) if ua else None
    rv = model.represent("video", *batch.select("video", uv)) if uv else None
    if ua:
        out["audio"] = model.head_a(ra)
    if uv:
        out["video"] = model.head_v(rv)
    if up and model.cfg.av_head:
        ia = [ua.index(b) for b in up]
        iv = [uv.index(b) for b in up]
        out["audio_visual"] = model.head_av(torch.cat([ra[ia], rv[iv]], dim=1))
    return out


def make_optimizer(model: VAVL):
    cfg = model.cfg
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas),
                            eps=cfg.adam_eps, weight_decay=cfg.weight_decay, foreach=False)


# MARK: - safetensors (DESIGN §6: an export with the canonical names loads here)


def load_safetensors(model: nn.Module, path: str, strict: bool = True) -> None:
    """Load parameters (and buffers, if present) saved under the canonical names."""
    from safetensors.torch import load_file
    state = {k: v for k, v in load_file(path).items() if not k.startswith("normalization.")}  # not module state
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    if strict and (missing or unexpected):
        raise KeyError(f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def save_safetensors(model: nn.Module, path: str) -> None:
    from safetensors.torch import save_file
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, path)
