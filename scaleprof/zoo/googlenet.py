"""GoogLeNet / Inception v1 (Szegedy et al. 2014, arXiv 1409.4842) as torchvision builds it.

Like torchvision (and unlike the paper) the "5x5" branch is a 3x3 conv, and every conv is followed by
batch-norm (eps 0.001).
"""

from __future__ import annotations

import torch
from torch import nn

from .rounding import check_multiplier, check_resolution, round_channels

# (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj) of the paper's Table 1; each input is the previous
# module's output (the sum of its four branches).
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int):
        super().__init__()
        self.out_channels = c1 + c3 + c5 + pool
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    def __init__(self, width: float, aux_logits: bool, num_classes: int, dropout: float):
        super().__init__()
        r = lambda c: round_channels(c, width)  # noqa: E731
        self.conv1 = BasicConv2d(3, r(64), 7, 2, 3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(r(64), r(64), 1)
        self.conv3 = BasicConv2d(r(64), r(192), 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        c = r(192)
        aux_in = {}
        for name, cfg in INCEPTION.items():
            block = Inception(c, *(r(v) for v in cfg))
            setattr(self, f"inception{name}", block)
            c = block.out_channels
            aux_in[name] = c
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.aux_logits = aux_logits
        if aux_logits:  # after 4a and 4d, used only in training
            self.aux1 = InceptionAux(aux_in["4a"], num_classes)
            self.aux2 = InceptionAux(aux_in["4d"], num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)

    def forward(self, x: torch.Tensor):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux_logits and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux_logits and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if aux1 is not None:
            return x, aux2, aux1
        return x


def googlenet(width: float = 1.0, resolution: int = 224, *, aux_logits: bool = False, num_classes: int = 1000,
              dropout: float = 0.2) -> GoogLeNet:
    """GoogLeNet (torchvision's, exact at width 1.0 without the auxiliary heads).

    Knobs:
      width       every conv's channels (stem 64, 64, 192 and each inception branch) become
                  ``make_divisible(c * width, 8)``.
      resolution  the input side (no weight changes).
    No depth knob: the nine inception modules are individually designed.
    ``aux_logits=True`` adds the two auxiliary classifiers (after 4a and 4d); they run only in training,
    where the model returns (logits, aux2, aux1).
    """
    width = check_multiplier("width", width)
    check_resolution(resolution, model="googlenet")
    return GoogLeNet(width, aux_logits, num_classes, dropout)
