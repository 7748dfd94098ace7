"""Building blocks shared by the zoo's families (what torchvision.ops.misc provides, without torchvision)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_act(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, *,
                padding: int | None = None, dilation: int = 1, norm=nn.BatchNorm2d, act=nn.ReLU,
                bias: bool | None = None) -> nn.Sequential:
    """Conv2d -> norm -> activation, "same" padding for odd kernels, bias only without a norm
    (torchvision's Conv2dNormActivation)."""
    if padding is None:
        padding = (kernel - 1) // 2 * dilation
    if bias is None:
        bias = norm is None
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups,
                                         bias=bias)]
    if norm is not None:
        layers.append(norm(cout))
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gating: pool -> 1x1 conv (squeeze) -> act -> 1x1 conv -> gate -> scale the input."""

    def __init__(self, channels: int, squeeze: int, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = act()
        self.scale_activation = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


class StochasticDepth(nn.Module):
    """Drop a residual branch per sample with probability ``p`` while training (Huang et al. 2016);
    the identity at inference."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * keep.bernoulli_(survival).div_(survival)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def init_cnn(model: nn.Module, *, linear_std: float | None = 0.01) -> None:
    """torchvision's CNN initialisation: Kaiming-normal convs (fan_out), unit norms, small normal linears."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
