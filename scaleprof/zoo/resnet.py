"""ResNet (He et al. 2015) and ResNeXt (Xie et al. 2016) as torchvision builds them, plus a deformable
ResNet (Dai et al. 2017, Zhu et al. 2018: DCNv2).

Default is v1.5 (stride on the bottleneck's 3x3, torchvision's); ``variant="v1"`` puts it on the first 1x1 as
in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ScaleprofError
from .rounding import check_multiplier, check_resolution, round_channels, round_repeats

# block type and blocks per stage; each stage's planes are STAGE_PLANES, strides STAGE_STRIDES.
RESNET_LAYERS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
STEM = 64
STAGE_PLANES = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
VARIANTS = ("v1.5", "v1")


def _deform_conv(cin: int, cout: int, stride: int, groups: int) -> nn.Module:
    from ..layers import DeformConv2dPack  # here: importing it registers the scaleprof:: custom ops

    return DeformConv2dPack(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False, modulated=True)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None, **_):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None, *, groups: int = 1,
                 width_per_group: int = 64, variant: str = "v1.5", deformable: bool = False):
        super().__init__()
        inner = int(planes * (width_per_group / 64.0)) * groups
        s1, s3 = (stride, 1) if variant == "v1" else (1, stride)
        self.conv1 = nn.Conv2d(cin, inner, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        if deformable:
            self.conv2 = _deform_conv(inner, inner, s3, groups)
        else:
            self.conv2 = nn.Conv2d(inner, inner, 3, s3, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block: str, layers, *, width: float = 1.0, depth: float = 1.0, groups: int = 1,
                 width_per_group: int = 64, variant: str = "v1.5", deformable=(False,) * 4,
                 num_classes: int | None = 1000, zero_init_residual: bool = False):
        super().__init__()
        cls = BasicBlock if block == "basic" else Bottleneck
        stem = round_channels(STEM, width)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = stem
        self.stage_channels: list[int] = []
        for i, (planes, stride, n) in enumerate(zip(STAGE_PLANES, STAGE_STRIDES, layers, strict=True)):
            planes = round_channels(planes, width)
            out = planes * cls.expansion
            blocks = []
            for j in range(round_repeats(n, depth)):
                down = None
                s = stride if j == 0 else 1
                if s != 1 or c != out:
                    down = nn.Sequential(nn.Conv2d(c, out, 1, s, bias=False), nn.BatchNorm2d(out))
                extra = {} if cls is BasicBlock else dict(groups=groups, width_per_group=width_per_group,
                                                          variant=variant, deformable=deformable[i])
                blocks.append(cls(c, planes, s, down, **extra))
                c = out
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.stage_channels.append(c)
        self.num_features = c
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                last = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else getattr(m, "bn2", None)
                if isinstance(m, (Bottleneck, BasicBlock)) and last is not None:
                    nn.init.zeros_(last.weight)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the four stages (strides 4, 8, 16, 32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)[-1]
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _check_resnet_args(block: str, layers, groups: int, width_per_group: int, variant: str) -> tuple:
    if block not in ("basic", "bottleneck"):
        raise ScaleprofError(f"resnet block {block!r} unknown; known: basic, bottleneck")
    try:
        layers = tuple(int(n) for n in layers)
    except (TypeError, ValueError):
        raise ScaleprofError(f"resnet layers must be four block counts, got {layers!r}") from None
    if len(layers) != 4 or min(layers) < 1:
        raise ScaleprofError(f"resnet layers must be four positive block counts, got {layers!r}")
    if variant not in VARIANTS:
        raise ScaleprofError(f"resnet variant {variant!r} unknown; known: {', '.join(VARIANTS)}")
    if block == "basic" and (groups != 1 or width_per_group != 64):
        raise ScaleprofError("resnet basic blocks take only groups=1 and width_per_group=64")
    return layers


def resnet(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, block: str = "bottleneck",
           layers=(3, 4, 6, 3), groups: int = 1, width_per_group: int = 64, variant: str = "v1.5",
           num_classes: int = 1000, zero_init_residual: bool = False) -> ResNet:
    """ResNet / ResNeXt (torchvision's, exact at width = depth = 1).

    Knobs:
      width       the stem (64) and each stage's planes (64, 128, 256, 512) become
                  ``make_divisible(c * width, 8)``; bottleneck outputs are 4x planes, the inner width
                  ``int(planes * width_per_group / 64) * groups``.
      depth       each stage repeats ``ceil(n * depth)`` blocks (``layers``, e.g. 3, 4, 6, 3 for ResNet-50).
      resolution  the input side (no weight changes).
    ``variant="v1"`` strides the first 1x1 of a bottleneck (the paper), "v1.5" the 3x3 (torchvision).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="resnet")
    layers = _check_resnet_args(block, layers, groups, width_per_group, variant)
    return ResNet(block, layers, width=width, depth=depth, groups=groups, width_per_group=width_per_group,
                  variant=variant, num_classes=num_classes, zero_init_residual=zero_init_residual)


def deform_resnet(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, layers=(3, 4, 6, 3),
                  variant: str = "v1.5", num_classes: int = 1000) -> ResNet:
    """Deformable ResNet (DCNv2): a bottleneck ResNet whose 3x3 convs in the last three stages (conv3_x to
    conv5_x) are modulated deformable convs, each with its zero-initialised offset/mask conv
    (``scaleprof.layers.DeformConv2dPack``: 3 * 9 output channels, 3x3, same stride).

    Knobs: as :func:`resnet` (width rounds stem and planes to multiples of 8; depth repeats
    ``ceil(n * depth)`` blocks per stage; resolution is the input side).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="deform_resnet")
    layers = _check_resnet_args("bottleneck", layers, 1, 64, variant)
    return ResNet("bottleneck", layers, width=width, depth=depth, variant=variant,
                  deformable=(False, True, True, True), num_classes=num_classes)
