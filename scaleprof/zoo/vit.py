"""Vision Transformer (Dosovitskiy et al. 2020, arXiv 2010.11929) as torchvision builds it."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from .rounding import check_multiplier, check_resolution, round_heads, round_repeats

# (patch, layers, heads, head size, MLP ratio): heads x head size is the hidden width.
VIT_CONFIGS = {
    "vit_b_16": (16, 12, 12, 64, 4.0),
    "vit_tiny": (16, 12, 3, 64, 4.0),
}


class MLPBlock(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + MHA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout=attention_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, mlp, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + self.dropout(y)
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, seq: int, layers: int, dim: int, heads: int, mlp: int, dropout: float,
                 attention_dropout: float):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(dim, heads, mlp, dropout, attention_dropout))
            for i in range(layers)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int, patch: int, layers: int, heads: int, dim: int, mlp: int,
                 num_classes: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch, dim
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        seq = (image_size // patch) ** 2 + 1   # patches plus the class token
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = Encoder(seq, layers, dim, heads, mlp, dropout, attention_dropout)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(dim, num_classes)))
        fan_in = 3 * patch * patch
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)
        nn.init.zeros_(self.heads.head.weight)
        nn.init.zeros_(self.heads.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise ValueError(f"this ViT takes {self.image_size}x{self.image_size} inputs, got {h}x{w}; "
                             f"build it with resolution={h}")
        x = self.conv_proj(x).reshape(n, self.hidden_dim, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


def vit(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, patch_size: int = 16,
        layers: int = 12, heads: int = 12, head_dim: int = 64, mlp_ratio: float = 4.0, num_classes: int = 1000,
        dropout: float = 0.0, attention_dropout: float = 0.0) -> VisionTransformer:
    """ViT (torchvision's, exact for ViT-B/16 at width = depth = 1).

    Knobs:
      width       the number of heads becomes ``round(heads * width)`` at a fixed head size (64), so the
                  hidden width is heads x 64 and the MLP ``int(hidden * mlp_ratio)`` (ViT-Ti 3 heads,
                  S 6, B 12: width 2 turns Ti into S).
      depth       the encoder repeats ``ceil(layers * depth)`` blocks.
      resolution  the input side, a multiple of the patch size; it sets the sequence length
                  ((resolution / patch)^2 + 1) and so the position-embedding parameters; the model only
                  accepts that input size.
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    resolution = check_resolution(resolution, minimum=patch_size, multiple=patch_size, model="vit")
    h = round_heads(heads, width)
    dim = h * head_dim
    return VisionTransformer(resolution, patch_size, round_repeats(layers, depth), h, dim,
                             int(dim * mlp_ratio), num_classes, dropout, attention_dropout)
