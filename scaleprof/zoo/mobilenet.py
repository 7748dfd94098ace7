"""MobileNetV1 (Howard et al. 2017), MobileNetV2 (Sandler et al. 2018) and MobileNetV3 (Howard et al. 2019).

V2 and V3 follow torchvision exactly at width 1.0; V1 follows the paper's Table 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..errors import ScaleprofError
from .blocks import SqueezeExcitation, conv_bn_act, init_cnn
from .rounding import (
    check_multiplier,
    check_resolution,
    make_divisible,
    round_channels,
    round_repeats,
    truncate_channels,
)

# --- MobileNetV1 --------------------------------------------------------------------------------------------

# (output channels, stride of the first block, blocks); each block is a depthwise 3x3 then a pointwise 1x1.
# Paper Table 1: 64 | 128 s2, 128 | 256 s2, 256 | 512 s2, 5 x 512 | 1024 s2, 1024.
V1_STEM = 32
V1_STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 6), (1024, 2, 2))


def _dw_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        conv_bn_act(cin, cin, 3, stride, groups=cin),   # depthwise
        conv_bn_act(cin, cout, 1),                     # pointwise
    )


class MobileNetV1(nn.Module):
    def __init__(self, width: float, depth: float, num_classes: int, dropout: float):
        super().__init__()
        c = truncate_channels(V1_STEM, width)
        layers: list[nn.Module] = [conv_bn_act(3, c, 3, 2)]
        for cout, stride, blocks in V1_STAGES:
            cout = truncate_channels(cout, width)
            for i in range(round_repeats(blocks, depth)):
                layers.append(_dw_separable(c, cout, stride if i == 0 else 1))
                c = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mobilenet_v1(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, num_classes: int = 1000,
                 dropout: float = 0.001) -> MobileNetV1:
    """MobileNetV1: a 3x3 stem and 13 depthwise-separable blocks (paper Table 1).

    Knobs:
      width       the paper's alpha: every channel count c becomes ``int(c * width)`` (stem 32 included);
                  MACs scale about as width^2, params about as width^2 (the classifier as width).
      depth       each stage of equal-width blocks (1, 2, 2, 6, 2 blocks) repeats ``ceil(n * depth)``
                  times; not in the paper, 1.0 is Table 1.
      resolution  the paper's rho times 224: the input side (MACs scale as its square; no weight changes).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="mobilenet_v1")
    return MobileNetV1(width, depth, num_classes, dropout)


# --- MobileNetV2 --------------------------------------------------------------------------------------------

# (expansion t, output channels c, blocks n, stride s) of the paper's Table 2.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))
V2_STEM = 32
V2_HEAD = 1280


class InvertedResidualV2(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(cin, hidden, 1, act=nn.ReLU6))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, width: float, depth: float, num_classes: int, dropout: float):
        super().__init__()
        c = round_channels(V2_STEM, width)
        head = round_channels(V2_HEAD, max(1.0, width))
        layers: list[nn.Module] = [conv_bn_act(3, c, 3, 2, act=nn.ReLU6)]
        for t, cout, n, s in V2_STAGES:
            cout = round_channels(cout, width)
            for i in range(round_repeats(n, depth)):
                layers.append(InvertedResidualV2(c, cout, s if i == 0 else 1, t))
                c = cout
        layers.append(conv_bn_act(c, head, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head, num_classes))
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mobilenet_v2(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, num_classes: int = 1000,
                 dropout: float = 0.2) -> MobileNetV2:
    """MobileNetV2 (torchvision's, exact at width 1.0).

    Knobs:
      width       every channel count c (stem 32, each stage's output) becomes ``make_divisible(c * width, 8)``;
                  the 1280 head only grows (``make_divisible(1280 * max(1, width), 8)``); expansions are
                  ``round(block input * t)``.
      depth       each stage repeats ``ceil(n * depth)`` blocks (1, 2, 3, 4, 3, 3, 1 at 1.0).
      resolution  the input side (no weight changes).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="mobilenet_v2")
    return MobileNetV2(width, depth, num_classes, dropout)


# --- MobileNetV3 --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class V3Block:
    cin: int
    kernel: int
    expanded: int
    cout: int
    se: bool
    act: str      # "RE" ReLU or "HS" hard-swish
    stride: int


V3_LARGE = (
    V3Block(16, 3, 16, 16, False, "RE", 1),
    V3Block(16, 3, 64, 24, False, "RE", 2),
    V3Block(24, 3, 72, 24, False, "RE", 1),
    V3Block(24, 5, 72, 40, True, "RE", 2),
    V3Block(40, 5, 120, 40, True, "RE", 1),
    V3Block(40, 5, 120, 40, True, "RE", 1),
    V3Block(40, 3, 240, 80, False, "HS", 2),
    V3Block(80, 3, 200, 80, False, "HS", 1),
    V3Block(80, 3, 184, 80, False, "HS", 1),
    V3Block(80, 3, 184, 80, False, "HS", 1),
    V3Block(80, 3, 480, 112, True, "HS", 1),
    V3Block(112, 3, 672, 112, True, "HS", 1),
    V3Block(112, 5, 672, 160, True, "HS", 2),
    V3Block(160, 5, 960, 160, True, "HS", 1),
    V3Block(160, 5, 960, 160, True, "HS", 1),
)
V3_SMALL = (
    V3Block(16, 3, 16, 16, True, "RE", 2),
    V3Block(16, 3, 72, 24, False, "RE", 2),
    V3Block(24, 3, 88, 24, False, "RE", 1),
    V3Block(24, 5, 96, 40, True, "HS", 2),
    V3Block(40, 5, 240, 40, True, "HS", 1),
    V3Block(40, 5, 240, 40, True, "HS", 1),
    V3Block(40, 5, 120, 48, True, "HS", 1),
    V3Block(48, 5, 144, 48, True, "HS", 1),
    V3Block(48, 5, 288, 96, True, "HS", 2),
    V3Block(96, 5, 576, 96, True, "HS", 1),
    V3Block(96, 5, 576, 96, True, "HS", 1),
)
V3_CONFIGS = {"large": (V3_LARGE, 1280), "small": (V3_SMALL, 1024)}
_ACTS = {"RE": nn.ReLU, "HS": nn.Hardswish}


class InvertedResidualV3(nn.Module):
    def __init__(self, b: V3Block, norm):
        super().__init__()
        act = _ACTS[b.act]
        self.use_res_connect = b.stride == 1 and b.cin == b.cout
        layers: list[nn.Module] = []
        if b.expanded != b.cin:
            layers.append(conv_bn_act(b.cin, b.expanded, 1, norm=norm, act=act))
        layers.append(conv_bn_act(b.expanded, b.expanded, b.kernel, b.stride, groups=b.expanded, norm=norm,
                                  act=act))
        if b.se:
            layers.append(SqueezeExcitation(b.expanded, make_divisible(b.expanded // 4, 8), gate=nn.Hardsigmoid))
        layers.append(conv_bn_act(b.expanded, b.cout, 1, norm=norm, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.use_res_connect else y


class MobileNetV3(nn.Module):
    def __init__(self, blocks, last_channel: int, width: float, num_classes: int, dropout: float):
        super().__init__()
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        blocks = [V3Block(round_channels(b.cin, width), b.kernel, round_channels(b.expanded, width),
                          round_channels(b.cout, width), b.se, b.act, b.stride) for b in blocks]
        layers: list[nn.Module] = [conv_bn_act(3, blocks[0].cin, 3, 2, norm=norm, act=nn.Hardswish)]
        layers += [InvertedResidualV3(b, norm) for b in blocks]
        c = blocks[-1].cout
        layers.append(conv_bn_act(c, 6 * c, 1, norm=norm, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = round_channels(last_channel, width)
        self.classifier = nn.Sequential(nn.Linear(6 * c, last), nn.Hardswish(), nn.Dropout(dropout),
                                        nn.Linear(last, num_classes))
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mobilenet_v3(width: float = 1.0, resolution: int = 224, *, config: str = "large", num_classes: int = 1000,
                 dropout: float = 0.2) -> MobileNetV3:
    """MobileNetV3 Large or Small (torchvision's, exact at width 1.0).

    Knobs:
      width       every block's input, expanded and output channels become ``make_divisible(c * width, 8)``,
                  as does the classifier's hidden 1280 (1024 small); the last conv is 6x the last block.
      resolution  the input side (no weight changes).
    No depth knob: the blocks are hand-designed one by one, not repeated stages.
    """
    width = check_multiplier("width", width)
    check_resolution(resolution, model="mobilenet_v3")
    if config not in V3_CONFIGS:
        raise ScaleprofError(f"mobilenet_v3 config {config!r} unknown; known: {', '.join(V3_CONFIGS)}")
    blocks, last = V3_CONFIGS[config]
    return MobileNetV3(blocks, last, width, num_classes, dropout)
