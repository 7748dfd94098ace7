"""Xception (Chollet 2016, arXiv 1610.02357) as Keras builds it (``keras.applications.Xception``).

Keras reports 22,855,952 trainable parameters at 299x299; batch-norm's moving statistics are buffers here,
so the PyTorch parameter count is that number.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import init_cnn
from .rounding import check_multiplier, check_resolution, round_channels, round_repeats

STEM = (32, 64)                 # two plain 3x3 convs, "valid" padding, the first with stride 2
ENTRY = (128, 256, 728)         # entry-flow blocks: 2 separable convs, max-pool s2, 1x1 s2 shortcut
MIDDLE = (728, 8)               # middle flow: channels, blocks of 3 separable convs with identity shortcut
EXIT = (728, 1024)              # exit block: 2 separable convs, max-pool s2, 1x1 s2 shortcut to 1024
TAIL = (1536, 2048)             # two separable convs before the global pool


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, no bias (Keras SeparableConv2D, use_bias=False)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _sep_bn(cin: int, cout: int, pre_relu: bool) -> list[nn.Module]:
    return ([nn.ReLU()] if pre_relu else []) + [SeparableConv2d(cin, cout), nn.BatchNorm2d(cout, eps=1e-3)]


class XceptionBlock(nn.Module):
    """Separable convs (each with BN, ReLU before all but maybe the first) plus a shortcut: identity, or a
    1x1 stride-2 conv + BN when the block ends in a stride-2 max-pool."""

    def __init__(self, channels: list[int], *, downsample: bool, first_relu: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            layers += _sep_bn(cin, cout, pre_relu=first_relu or i > 0)
        if downsample:
            layers.append(nn.MaxPool2d(3, 2, padding=1))
            self.shortcut = nn.Sequential(nn.Conv2d(channels[0], channels[-1], 1, 2, bias=False),
                                          nn.BatchNorm2d(channels[-1], eps=1e-3))
        else:
            self.shortcut = nn.Identity()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Xception(nn.Module):
    def __init__(self, width: float, depth: float, num_classes: int):
        super().__init__()
        r = lambda c: round_channels(c, width)  # noqa: E731
        s1, s2 = r(STEM[0]), r(STEM[1])
        self.stem = nn.Sequential(
            nn.Conv2d(3, s1, 3, 2, bias=False), nn.BatchNorm2d(s1, eps=1e-3), nn.ReLU(),
            nn.Conv2d(s1, s2, 3, bias=False), nn.BatchNorm2d(s2, eps=1e-3), nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        c = s2
        for i, cout in enumerate(ENTRY):
            blocks.append(XceptionBlock([c, r(cout), r(cout)], downsample=True, first_relu=i > 0))
            c = r(cout)
        mid = r(MIDDLE[0])
        for _ in range(round_repeats(MIDDLE[1], depth)):
            blocks.append(XceptionBlock([c, mid, mid, mid], downsample=False))
            c = mid
        blocks.append(XceptionBlock([c, r(EXIT[0]), r(EXIT[1])], downsample=True))
        c = r(EXIT[1])
        self.blocks = nn.Sequential(*blocks)
        t1, t2 = r(TAIL[0]), r(TAIL[1])
        self.tail = nn.Sequential(SeparableConv2d(c, t1), nn.BatchNorm2d(t1, eps=1e-3), nn.ReLU(),
                                  SeparableConv2d(t1, t2), nn.BatchNorm2d(t2, eps=1e-3), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(t2, num_classes)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tail(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def xception(width: float = 1.0, depth: float = 1.0, resolution: int = 299, *,
             num_classes: int = 1000) -> Xception:
    """Xception: entry flow (stem + 3 downsampling blocks), middle flow (8 residual blocks of 3 separable
    convs at 728), exit flow (a downsampling block to 1024, separable convs to 1536 and 2048), pool, fc.

    Knobs:
      width       every channel count (32, 64, 128, 256, 728, 1024, 1536, 2048) becomes
                  ``make_divisible(c * width, 8)``.
      depth       the middle flow repeats ``ceil(8 * depth)`` blocks.
      resolution  the input side (299 in the paper; no weight changes).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, minimum=36, model="xception")
    return Xception(width, depth, num_classes)
