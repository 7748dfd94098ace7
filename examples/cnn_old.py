"""The previous version of examples/cnn.py, for the gate and for compare:

    scaleprof check examples/cnn.py:build --against examples/cnn_old.py:build
    scaleprof compare examples/cnn_old.py:build examples/cnn.py:build

Same stages, channels and input, but plain 3x3 convolutions where cnn.py has depthwise-separable blocks:
about 7x the MACs (29.2 M against 4.2 M), so the new version should not be slower (the gate passes, exit 0).
"""

from torch import nn


class OldCNN(nn.Module):
    default_input = (1, 3, 64, 64)

    def __init__(self, width: int = 32, depth: int = 3, num_classes: int = 10):
        super().__init__()
        layers, c = [nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()], width
        for i in range(depth):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2 if i < 2 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(2 * c), nn.ReLU()]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def build(width: int = 32, depth: int = 3, num_classes: int = 10) -> nn.Module:
    return OldCNN(width=width, depth=depth, num_classes=num_classes)
