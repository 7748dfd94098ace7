"""Synthetic nets for calibration and for held-out evaluation: MLPs, plain CNNs and attention blocks at
sizes the zoo does not have, as ``scaleprof.predict.synthetic:NAME`` specs (each takes ``width`` and
``resolution``, the knobs calibration redraws, and sets ``default_input``).

Calibration (predict.calibrate.DEFAULT_MODELS) uses ``mlp``, ``cnn`` and ``attention``; the latency-
prediction report holds out the others (``transformer``, ``convmixer``, ``wide_mlp``), which are built from
other layers and shapes, so that no calibration sample came from them.
"""

from __future__ import annotations

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


CALIBRATION = ("mlp", "cnn", "attention")
HELD_OUT = ("transformer", "convmixer", "wide_mlp")


def spec(name: str) -> str:
    return f"{__name__}:{name}"
