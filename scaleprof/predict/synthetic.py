"""Synthetic nets for calibration and for held-out evaluation: MLPs, plain CNNs and attention blocks at
sizes the zoo does not have, as ``scaleprof.predict.synthetic:NAME`` specs (each takes ``width`` and
``resolution``, the knobs calibration redraws, and sets ``default_input``).

Calibration (predict.calibrate.DEFAULT_MODELS) uses ``mlp``, ``cnn``, ``attention`` and the prior nets
(random layers over the configuration space, ``PRIOR``); the latency-prediction report holds out the
others (``transformer``, ``convmixer``, ``wide_mlp``), which are built from other layers and shapes, so
that no calibration sample came from them.
"""

from __future__ import annotations

import math
import random

import torch.nn.functional as F
from torch import nn


def _c(base: int, width: float, multiple: int = 8) -> int:
    return max(multiple, int(round(base * width / multiple)) * multiple)


class _Attention(nn.Module):
    """Self-attention written out: qkv projection, SDPA, output projection (a ViT/BERT block's core)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class _Tokens(nn.Module):
    def __init__(self, blocks, dim: int):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        return self.head(self.norm(self.blocks(x)).mean(1))


def mlp(width: float = 1.0, resolution: int = 64) -> nn.Module:
    """Calibration: 4 linear layers with ReLU on a flat input of resolution·16 features."""
    c = _c(512, width)
    m = nn.Sequential(nn.Linear(resolution * 16, c), nn.ReLU(), nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c // 2),
                      nn.ReLU(), nn.Linear(c // 2, 10))
    m.default_input = (1, resolution * 16)
    return m


def cnn(width: float = 1.0, resolution: int = 96) -> nn.Module:
    """Calibration: a plain VGG-like CNN, conv3x3 + BN + ReLU, max-pool between stages."""
    layers, cin = [], 3
    for i, base in enumerate((32, 64, 128, 256)):
        c = _c(base, width)
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if i < 3:
            layers.append(nn.MaxPool2d(2))
        cin = c
    m = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))
    m.default_input = (1, 3, resolution, resolution)
    return m


def attention(width: float = 1.0, resolution: int = 128) -> nn.Module:
    """Calibration: 4 pre-norm attention blocks on ``resolution`` tokens of dim 192·width, 3 heads."""
    d = _c(192, width, 24)
    m = _Tokens([_Block(d, 3, 4 * d) for _ in range(4)], d)
    m.default_input = (1, resolution, d)
    return m


def transformer(width: float = 1.0, resolution: int = 196) -> nn.Module:
    """Held out: torch's own nn.TransformerEncoder (its MultiheadAttention, not SDPA written out), 6 layers
    of dim 256·width, 8 heads, on ``resolution`` tokens."""
    d = _c(256, width, 32)
    layer = nn.TransformerEncoderLayer(d, 8, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
    m = nn.Sequential(nn.TransformerEncoder(layer, 6, enable_nested_tensor=False), nn.LayerNorm(d))
    m.default_input = (1, resolution, d)
    return m


class _Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def convmixer(width: float = 1.0, resolution: int = 160) -> nn.Module:
    """Held out: ConvMixer (Trockman & Kolter 2022): patch embedding, then depthwise 9x9 + GELU + BN
    (residual) and pointwise + GELU + BN, 6 times, at dim 256·width."""
    d = _c(256, width)
    blocks = [nn.Sequential(_Residual(nn.Sequential(nn.Conv2d(d, d, 9, groups=d, padding=4), nn.GELU(),
                                                    nn.BatchNorm2d(d))),
                            nn.Conv2d(d, d, 1), nn.GELU(), nn.BatchNorm2d(d)) for _ in range(6)]
    m = nn.Sequential(nn.Conv2d(3, d, 8, stride=8), nn.GELU(), nn.BatchNorm2d(d), *blocks,
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(d, 10))
    m.default_input = (1, 3, resolution, resolution)
    return m


def wide_mlp(width: float = 1.0, resolution: int = 32) -> nn.Module:
    """Held out: a wide MLP with SiLU and LayerNorm on a (resolution·96)-feature input."""
    c = _c(1536, width)
    m = nn.Sequential(nn.Linear(resolution * 96, c), nn.LayerNorm(c), nn.SiLU(), nn.Linear(c, c), nn.SiLU(),
                      nn.Linear(c, 100))
    m.default_input = (1, resolution * 96)
    return m


# --- prior nets: random layers over the configuration space (nn-Meter's prior sampling) --------------------
#
# The zoo's calibration models reach only the sizes they have; a held-out net with wider layers or larger
# maps (a VGG's 3x3 convs at 224x224, a ViT-B's 768-wide linears) is predicted by extrapolating the fit. These
# nets draw each layer's kind, kernel, channels and activation at random (a fixed seed: the same nets on every
# machine), log-uniformly over the ranges real networks use, so the calibration samples cover that space
# whatever model is asked about later. They are not derived from any held-out model.

_ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.ReLU6)


def _log_uniform(rng, lo: float, hi: float, multiple: int) -> int:
    return max(multiple, int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))) / multiple)) * multiple)


PRIOR_LAYER_MACS = 2e9    # a drawn layer's cap at width 1 and 224 px (fewer output channels past it)


def _prior_conv(rng, cin: int, stage: int, side: int, width: float, stride: int) -> tuple[list[nn.Module], int]:
    """One random conv layer at stage ``stage`` (channels 16-128 × 2^stage, log-uniform) on a ``side``-pixel
    map: standard (3, 5 or 7), pointwise, depthwise (3, 5, 7 or 9) or grouped 3x3, with BN and a random
    activation."""
    kind = rng.choices(("standard", "pointwise", "depthwise", "grouped"), weights=(35, 30, 20, 15))[0]
    if kind == "depthwise" and stride == 1:
        cout, k, groups = cin, rng.choice((3, 5, 7, 9)), cin
    else:
        cout = _log_uniform(rng, 16 * 2 ** stage, 128 * 2 ** stage, 8)
        k = 1 if kind == "pointwise" and stride == 1 else rng.choice((3, 3, 5, 7)) if kind == "standard" else 3
        g = rng.choice((4, 8, 32)) if kind == "grouped" else 1
        while cout > 8 and (side // stride) ** 2 * cin * cout * k * k / g > PRIOR_LAYER_MACS:
            cout = max(8, cout // 16 * 8)
        groups = g if cin % g == 0 and cout % g == 0 else 1
        cout = _c(cout, width)
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout), rng.choice(_ACTIVATIONS)()]
    return layers, cout


def _prior_cnn(seed: int, width: float, resolution: int, stem_stride: int) -> nn.Module:
    """Four stages of three random layers; the first at the input's size / ``stem_stride`` (1: full-size
    maps, as VGGs and segmentation nets run), each next one at half the size."""
    rng = random.Random(seed)
    cin = _c(_log_uniform(rng, 16, 64, 8), width)
    layers = [nn.Conv2d(3, cin, 3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(cin), nn.ReLU()]
    side = 224 // stem_stride    # the cap's reference sizes; the layers themselves take any resolution
    for stage in range(4):
        for i in range(3):
            down = stage > 0 and i == 0
            if down and rng.random() < 0.5:   # a pooling between stages, else a strided conv
                layers.append(rng.choice((nn.MaxPool2d(2), nn.AvgPool2d(2))))
                down, side = False, side // 2
            block, cin = _prior_conv(rng, cin, stage, side, width, 2 if down else 1)
            side //= 2 if down else 1
            layers += block
    m = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))
    m.default_input = (1, 3, resolution, resolution)
    return m


def prior_cnn_a(width: float = 1.0, resolution: int = 224) -> nn.Module:
    """Calibration: a conv net of random layers (seed 1), full-size maps first: 224x224 down to 28x28."""
    return _prior_cnn(1, width, resolution, stem_stride=1)


def prior_cnn_b(width: float = 1.0, resolution: int = 224) -> nn.Module:
    """Calibration: another conv net of random layers (seed 2), after a strided stem: 112x112 to 14x14."""
    return _prior_cnn(2, width, resolution, stem_stride=2)


def prior_cnn_c(width: float = 1.0, resolution: int = 224) -> nn.Module:
    """Calibration: a third draw (seed 4), after a strided stem."""
    return _prior_cnn(4, width, resolution, stem_stride=2)


def prior_tokens(width: float = 1.0, resolution: int = 196) -> nn.Module:
    """Calibration: pre-norm attention blocks of random widths (256 to 1024, heads of 64, MLP ratio 2 to 4,
    seed 3) on ``resolution`` tokens, a linear between blocks of different widths, and two wide linears
    on the pooled token (matrix-vector products with up to 100 MB of weights: memory-bound)."""
    rng = random.Random(3)
    mods, d0 = [], None
    dims = [_c(_log_uniform(rng, 256, 1024, 64), width, 64) for _ in range(4)]
    for d in dims:
        if d0 is not None and d0 != d:
            mods.append(nn.Linear(d0, d))
        mods.append(_Block(d, d // 64, d * rng.choice((2, 3, 4))))
        d0 = d
    wide = _c(_log_uniform(rng, 2048, 6144, 256), width, 256)
    m = nn.Sequential(*mods, _MeanTokens(), nn.Linear(d0, wide), nn.ReLU(), nn.Linear(wide, wide), nn.GELU(),
                      nn.Linear(wide, 1000))
    m.default_input = (1, resolution, dims[0])
    return m


class _MeanTokens(nn.Module):
    def forward(self, x):
        return x.mean(1)


PRIOR = ("prior_cnn_a", "prior_cnn_b", "prior_cnn_c", "prior_tokens")
CALIBRATION = ("mlp", "cnn", "attention", *PRIOR)
HELD_OUT = ("transformer", "convmixer", "wide_mlp")


def spec(name: str) -> str:
    return f"{__name__}:{name}"
