"""VGG (Simonyan & Zisserman 2014, arXiv 1409.1556), configurations A, B, D, E as torchvision builds them."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import init_cnn
from .rounding import check_multiplier, check_resolution, round_channels, round_repeats

# Five stages of 3x3 convs (padding 1) each closed by a 2x2 max-pool; channels per stage, convs per stage.
STAGE_CHANNELS = (64, 128, 256, 512, 512)
VGG_CONVS = {
    "vgg11": (1, 1, 2, 2, 2),   # A
    "vgg13": (2, 2, 2, 2, 2),   # B
    "vgg16": (2, 2, 3, 3, 3),   # D
    "vgg19": (2, 2, 4, 4, 4),   # E
}
HIDDEN = 4096


class VGG(nn.Module):
    def __init__(self, convs, width: float, depth: float, batch_norm: bool, dropout: float, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for channels, n in zip(STAGE_CHANNELS, convs, strict=True):
            channels = round_channels(channels, width)
            for _ in range(round_repeats(n, depth)):
                layers.append(nn.Conv2d(c, channels, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(channels))
                layers.append(nn.ReLU())
                c = channels
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c * 7 * 7, HIDDEN), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(HIDDEN, num_classes),
        )
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, convs=VGG_CONVS["vgg16"],
        batch_norm: bool = False, dropout: float = 0.5, num_classes: int = 1000) -> VGG:
    """VGG: five stages of 3x3 convs and max-pools, adaptive 7x7 pool, three fully connected layers.

    Knobs:
      width       each stage's channels (64, 128, 256, 512, 512) become ``make_divisible(c * width, 8)``;
                  the 4096-wide classifier keeps its width (its input grows with the last stage).
      depth       each stage repeats ``ceil(n * depth)`` convs (``convs``: 2, 2, 3, 3, 3 for VGG-16).
      resolution  the input side; convolution MACs scale with its square, the classifier's do not (the
                  adaptive pool always gives 7x7).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="vgg")
    return VGG(tuple(int(n) for n in convs), width, depth, batch_norm, dropout, num_classes)
