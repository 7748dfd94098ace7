"""ConvNeXt (Liu et al. 2022, arXiv 2201.03545) as torchvision builds it."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ..errors import ScaleprofError
from .blocks import LayerNorm2d, Permute, StochasticDepth
from .rounding import check_multiplier, check_resolution, round_channels, round_repeats

# (channels, blocks) per stage; a LayerNorm + 2x2 stride-2 conv joins consecutive stages.
CONVNEXT_STAGES = {
    "tiny": ((96, 3), (192, 3), (384, 9), (768, 3)),
    "small": ((96, 3), (192, 3), (384, 27), (768, 3)),
    "base": ((128, 3), (256, 3), (512, 27), (1024, 3)),
}
STOCHASTIC_DEPTH = {"tiny": 0.1, "small": 0.4, "base": 0.5}


class CNBlock(nn.Module):
    """7x7 depthwise conv -> LayerNorm -> Linear 4x -> GELU -> Linear, layer scale, stochastic depth."""

    def __init__(self, dim: int, layer_scale: float, drop: float):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.stochastic_depth(self.layer_scale * self.block(x))


class ConvNeXt(nn.Module):
    def __init__(self, stages, width: float, depth: float, stochastic_depth: float, num_classes: int):
        super().__init__()
        norm = partial(LayerNorm2d, eps=1e-6)
        stages = [(round_channels(c, width), round_repeats(n, depth)) for c, n in stages]
        c0 = stages[0][0]
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, c0, 4, 4), norm(c0))]
        total = sum(n for _, n in stages)
        block_id = 0
        for i, (c, n) in enumerate(stages):
            blocks = []
            for _ in range(n):
                blocks.append(CNBlock(c, 1e-6, stochastic_depth * block_id / max(1.0, total - 1.0)))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            if i + 1 < len(stages):
                layers.append(nn.Sequential(norm(c), nn.Conv2d(c, stages[i + 1][0], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = stages[-1][0]
        self.classifier = nn.Sequential(norm(last), nn.Flatten(1), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def convnext(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, size: str = "tiny",
             stochastic_depth: float | None = None, num_classes: int = 1000) -> ConvNeXt:
    """ConvNeXt (torchvision's, exact at width = depth = 1): a 4x4 stride-4 patchify stem, four stages of
    ConvNeXt blocks joined by 2x2 stride-2 downsampling convs, LayerNorm, fc.

    Knobs:
      width       each stage's channels (96, 192, 384, 768 for tiny) become ``make_divisible(c * width, 8)``;
                  the block MLP is 4x its stage.
      depth       each stage repeats ``ceil(n * depth)`` blocks (3, 3, 9, 3 for tiny).
      resolution  the input side (no weight changes).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="convnext")
    if size not in CONVNEXT_STAGES:
        raise ScaleprofError(f"convnext size {size!r} unknown; known: {', '.join(CONVNEXT_STAGES)}")
    sd = STOCHASTIC_DEPTH[size] if stochastic_depth is None else stochastic_depth
    return ConvNeXt(CONVNEXT_STAGES[size], width, depth, sd, num_classes)
