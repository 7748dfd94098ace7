"""EfficientNet (Tan & Le 2019, arXiv 1905.11946) as torchvision builds it, B0 to B7 exact, plus B8 and L2.

The architecture is the B0 stage table below; the compound coefficients act on it through the rounding
helpers of :mod:`.rounding`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .blocks import SqueezeExcitation, StochasticDepth, conv_bn_act
from .rounding import check_multiplier, check_resolution, make_divisible, round_channels, round_repeats


@dataclass(frozen=True)
class MBStage:
    """One stage of inverted-residual blocks; the first block takes the stride and the channel change."""

    expand: int
    kernel: int
    stride: int
    cin: int
    cout: int
    repeats: int


# B0 (paper Table 1): stem conv3x3 s2 32, these stages, head conv1x1 4 * 320 = 1280, pool, dropout, fc.
B0_STAGES = (
    MBStage(1, 3, 1, 32, 16, 1),
    MBStage(6, 3, 2, 16, 24, 2),
    MBStage(6, 5, 2, 24, 40, 2),
    MBStage(6, 3, 2, 40, 80, 3),
    MBStage(6, 5, 1, 80, 112, 3),
    MBStage(6, 5, 2, 112, 192, 4),
    MBStage(6, 3, 1, 192, 320, 1),
)

# Released coefficients: (width, depth, resolution, dropout). Hand-rounded, not exact powers of phi.
COEFFICIENTS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
    "b8": (2.2, 3.6, 672, 0.5),
    "l2": (4.3, 5.3, 800, 0.5),
}


def se_width(block_in: int) -> int:
    """Squeeze-excitation width: a quarter of the block's (scaled) input channels, at least 1."""
    return max(1, int(block_in * 0.25))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> squeeze-excitation -> 1x1 project (+ skip)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, drop: float, norm):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        hidden = make_divisible(cin * expand, 8)
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(conv_bn_act(cin, hidden, 1, norm=norm, act=nn.SiLU))
        layers += [
            conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, norm=norm, act=nn.SiLU),
            SqueezeExcitation(hidden, se_width(cin), act=nn.SiLU),
            conv_bn_act(hidden, cout, 1, norm=norm, act=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        if self.use_res_connect:
            y = self.stochastic_depth(y) + x
        return y


@dataclass(frozen=True)
class EfficientNetLayout:
    """Everything an EfficientNet build depends on, as data: the model is built from this alone, so equal
    layouts build equal models (the scaling search names architectures by it without building)."""

    stages: tuple[MBStage, ...]      # rounded: scaled channels, ceil'd repeats
    stem: int
    head: int
    dropout: float
    stochastic_depth: float
    num_classes: int
    bn_eps: float
    bn_momentum: float


def efficientnet_layout(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, dropout: float = 0.2,
                        stochastic_depth: float = 0.2, num_classes: int = 1000, bn_eps: float = 1e-3,
                        bn_momentum: float = 0.01, stages=B0_STAGES) -> EfficientNetLayout:
    """The rounded stage table, stem and head widths and the other build settings at these knobs, without
    building; ``efficientnet`` takes the same arguments and builds exactly this. The resolution is checked,
    not kept: no layer depends on it (it is only the input the model is run at)."""
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="efficientnet")
    scaled = tuple(MBStage(s.expand, s.kernel, s.stride, round_channels(s.cin, width), round_channels(s.cout, width),
                           round_repeats(s.repeats, depth)) for s in stages)
    return EfficientNetLayout(scaled, scaled[0].cin, 4 * scaled[-1].cout, dropout, stochastic_depth, num_classes,
                              bn_eps, bn_momentum)


def block_args(layout: EfficientNetLayout) -> list[list[tuple[int, int, int, int, int, float]]]:
    """Per stage, each MBConv's (cin, cout, kernel, stride, expand, drop) as EfficientNet builds it (the
    scaling search assembles a layout's blocks from these without building the model)."""
    total = sum(s.repeats for s in layout.stages)
    out, block_id = [], 0
    for s in layout.stages:
        stage = []
        for i in range(s.repeats):
            # the drop probability grows linearly with the block index: 0 for the first block
            drop = layout.stochastic_depth * block_id / total
            cin, stride = (s.cin, s.stride) if i == 0 else (s.cout, 1)
            stage.append((cin, s.cout, s.kernel, stride, s.expand, drop))
            block_id += 1
        out.append(stage)
    return out


def norm_of(layout: EfficientNetLayout):
    return partial(nn.BatchNorm2d, eps=layout.bn_eps, momentum=layout.bn_momentum)


def stem_of(layout: EfficientNetLayout) -> nn.Sequential:
    return conv_bn_act(3, layout.stem, 3, 2, norm=norm_of(layout), act=nn.SiLU)


def head_of(layout: EfficientNetLayout) -> nn.Sequential:
    return conv_bn_act(layout.stages[-1].cout, layout.head, 1, norm=norm_of(layout), act=nn.SiLU)


def classifier_of(layout: EfficientNetLayout) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(layout.dropout), nn.Linear(layout.head, layout.num_classes))


class EfficientNet(nn.Module):
    def __init__(self, layout: EfficientNetLayout):
        super().__init__()
        norm = norm_of(layout)
        layers: list[nn.Module] = [stem_of(layout)]
        for stage in block_args(layout):
            layers.append(nn.Sequential(*(MBConv(*args, norm) for args in stage)))
        layers.append(head_of(layout))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier_of(layout)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / m.out_features ** 0.5
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pool_classify(self.avgpool, self.classifier, self.features(x))


def _pool_classify(avgpool: nn.Module, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """EfficientNet.forward after ``features`` (shared with PoolClassifier, so the two cannot drift)."""
    return classifier(torch.flatten(avgpool(x), 1))


class PoolClassifier(nn.Module):
    """A model's own avgpool and classifier with the forward's flatten between them: the last cost unit."""

    def __init__(self, avgpool: nn.Module, classifier: nn.Module):
        super().__init__()
        self.avgpool = avgpool
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pool_classify(self.avgpool, self.classifier, x)


def cost_units(model: EfficientNet) -> list[nn.Module]:
    """The model's forward as a chain of modules, each run on the previous one's output: the stem, every
    MBConv, the head conv, then PoolClassifier. Together they hold every module of the model once.
    Only for an ``EfficientNet`` itself (a subclass may run another forward)."""
    if type(model) is not EfficientNet:
        raise TypeError(f"cost_units needs an EfficientNet, got {type(model).__name__}")
    f = model.features
    return [f[0], *(block for stage in f[1:-1] for block in stage), f[-1],
            PoolClassifier(model.avgpool, model.classifier)]


def efficientnet(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, dropout: float = 0.2,
                 stochastic_depth: float = 0.2, num_classes: int = 1000, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.01, stages=B0_STAGES) -> EfficientNet:
    """EfficientNet from the B0 stage table and compound coefficients.

    Knobs:
      width       every channel count (stem 32, each stage's output, hence each expansion) becomes
                  ``make_divisible(c * width, 8)``; the head conv is 4x the scaled last stage (1280 at B0);
                  the SE width is ``max(1, int(block input * 0.25))`` of the scaled input.
      depth       each stage repeats ``ceil(repeats * depth)`` blocks (B0: 1,2,2,3,3,4,1 = 16 blocks).
      resolution  the input side; it changes no weights, only the default input (at least 32).
    Swish activations, BN eps 1e-3 / momentum 0.01 (TF's 0.99), stochastic depth ``stochastic_depth``
    (0.2) decayed linearly over blocks and active only in training, dropout before the classifier.
    """
    return EfficientNet(efficientnet_layout(width, depth, resolution, dropout=dropout,
                                            stochastic_depth=stochastic_depth, num_classes=num_classes,
                                            bn_eps=bn_eps, bn_momentum=bn_momentum, stages=stages))
