"""A small image classifier to try scaleprof on: `scaleprof profile examples/cnn.py:build`.

`build(**kw)` returns the model; the keyword arguments are what `--arg key=value` passes. The model's
`default_input` attribute is the input scaleprof uses when no `--input` is given.
"""

from torch import nn


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    # depthwise-separable, as in MobileNet: a 3x3 depthwise conv, then a 1x1 pointwise one
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    default_input = (1, 3, 64, 64)

    def __init__(self, width: int = 32, depth: int = 3, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        blocks, c = [], width
        for i in range(depth):
            blocks.append(_block(c, 2 * c, stride=2 if i < 2 else 1))
            c *= 2
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def build(width: int = 32, depth: int = 3, num_classes: int = 10) -> nn.Module:
    return SmallCNN(width=width, depth=depth, num_classes=num_classes)
