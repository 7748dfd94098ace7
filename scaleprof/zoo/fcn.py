"""A fully convolutional segmentation net (Long et al. 2015, FCN-8s) on a ResNet-18 encoder.

The decoder upsamples with transposed convolutions initialised to bilinear interpolation, as FCN does:
two stride-2 4x4 ones (full, class to class) fusing the stride-16 and stride-8 skips, then one grouped
stride-8 16x16 one (a per-class bilinear upsampler) back to the input size.
"""

from __future__ import annotations

import torch
from torch import nn

from .resnet import ResNet
from .rounding import check_multiplier, check_resolution


def bilinear_kernel(size: int) -> torch.Tensor:
    """The size x size kernel with which a transposed conv of stride ~size/2 interpolates bilinearly."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    filt = 1 - (og - center).abs() / factor
    return filt[:, None] * filt[None, :]


def _init_bilinear(conv: nn.ConvTranspose2d) -> None:
    k = bilinear_kernel(conv.kernel_size[0]).to(conv.weight.device)
    with torch.no_grad():
        conv.weight.zero_()
        if conv.groups == conv.in_channels:            # one filter per channel
            conv.weight.copy_(k.expand_as(conv.weight))
        else:                                          # channel i to channel i only
            for i in range(min(conv.in_channels, conv.out_channels)):
                conv.weight[i, i].copy_(k)


class FCN(nn.Module):
    def __init__(self, width: float, depth: float, num_classes: int, layers):
        super().__init__()
        self.backbone = ResNet("basic", layers, width=width, depth=depth, num_classes=None)
        c8, c16, c32 = self.backbone.stage_channels[1:]
        nc = num_classes
        self.score8 = nn.Conv2d(c8, nc, 1)
        self.score16 = nn.Conv2d(c16, nc, 1)
        self.score32 = nn.Conv2d(c32, nc, 1)
        self.up32 = nn.ConvTranspose2d(nc, nc, 4, stride=2, padding=1, bias=False)
        self.up16 = nn.ConvTranspose2d(nc, nc, 4, stride=2, padding=1, bias=False)
        self.up8 = nn.ConvTranspose2d(nc, nc, 16, stride=8, padding=4, groups=nc, bias=False)
        for m in (self.up32, self.up16, self.up8):
            _init_bilinear(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        _, f8, f16, f32 = self.backbone.forward_features(x)
        s16 = self.score16(f16)
        y = self.up32(self.score32(f32))[..., : s16.shape[-2], : s16.shape[-1]] + s16
        s8 = self.score8(f8)
        y = self.up16(y)[..., : s8.shape[-2], : s8.shape[-1]] + s8
        # each stride-2 stage rounds up, so the upsampled map covers the input: crop it, as FCN does
        return self.up8(y)[..., :h, :w]


def fcn(width: float = 1.0, depth: float = 1.0, resolution: int = 224, *, num_classes: int = 21,
        layers=(2, 2, 2, 2)) -> FCN:
    """FCN-8s-style segmentation on a ResNet (basic blocks, ``layers``: ResNet-18 by default); output
    ``num_classes`` x H x W logits.

    Knobs:
      width       the encoder's stem and stage planes become ``make_divisible(c * width, 8)`` (as resnet);
                  the decoder works at ``num_classes`` channels and does not scale.
      depth       each encoder stage repeats ``ceil(n * depth)`` blocks.
      resolution  the input side (no weight changes; any size, the output is cropped to it).
    """
    width = check_multiplier("width", width)
    depth = check_multiplier("depth", depth)
    check_resolution(resolution, model="fcn")
    from .resnet import _check_resnet_args

    layers = _check_resnet_args("basic", layers, 1, 64, "v1.5")
    return FCN(width, depth, num_classes, layers)
