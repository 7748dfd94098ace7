"""Deformable convolution for users: a torchvision-compatible function and the modules built on it."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import init
from torch.nn.modules.utils import _pair

from ..errors import ScaleprofError
from .deform_op import register

DEFORM_CONV2D, DEFORM_CONV2D_BACKWARD = register()


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """Deformable convolution v1 (``mask=None``) or v2, with torchvision.ops.deform_conv2d's arguments.

    input N x Cin x H x W; offset N x 2*G*kh*kw x Hout x Wout, (dy, dx) per kernel position per offset group G;
    weight Cout x Cin/groups x kh x kw; mask N x G*kh*kw x Hout x Wout. groups = Cin / weight.shape[1] and
    G = offset.shape[1] / (2*kh*kw), as torchvision infers them.
    """
    if input.dim() != 4 or weight.dim() != 4 or offset.dim() != 4:
        raise ScaleprofError(
            f"deform_conv2d: input, weight and offset must be 4-d, got {tuple(input.shape)}, "
            f"{tuple(weight.shape)}, {tuple(offset.shape)}"
        )
    stride_h, stride_w = _pair(stride)
    pad_h, pad_w = _pair(padding)
    dil_h, dil_w = _pair(dilation)
    kh, kw = weight.shape[-2:]
    cin, cin_g = input.shape[1], weight.shape[1]
    if cin_g == 0 or cin % cin_g:
        raise ScaleprofError(f"deform_conv2d: {cin} input channels is not a multiple of weight's {cin_g}")
    groups = cin // cin_g
    offset_groups = offset.shape[1] // (2 * kh * kw)
    if offset_groups == 0 or offset.shape[1] != 2 * offset_groups * kh * kw:
        raise ScaleprofError(
            f"deform_conv2d: offset has {offset.shape[1]} channels, expected a positive multiple of 2*{kh}*{kw}"
        )
    use_mask = mask is not None
    if mask is None:
        mask = input.new_zeros(0)  # ignored by the op when use_mask is False
    if bias is None:
        bias = input.new_zeros(weight.shape[0])
    return DEFORM_CONV2D(
        input,
        weight,
        offset,
        mask,
        bias,
        stride_h,
        stride_w,
        pad_h,
        pad_w,
        dil_h,
        dil_w,
        groups,
        offset_groups,
        use_mask,
    )


class DeformConv2d(nn.Module):
    """torchvision.ops.DeformConv2d: the caller supplies offset (and mask for v2) to forward."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ScaleprofError(
                f"DeformConv2d: {in_channels} in and {out_channels} out channels must divide by {groups} groups"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups = groups
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory)
        )
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # nn.Conv2d's initialisation.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input, offset, mask=None):
        return deform_conv2d(
            input,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class DeformConv2dPack(DeformConv2d):
    """DCN block (v2 when ``modulated``, else v1) that predicts its own offsets with an ordinary conv.

    ``conv_offset`` (same kernel, stride, padding and dilation, groups 1) outputs 2*G*kh*kw offset channels in
    torchvision's layout, then G*kh*kw mask logits when modulated (mask = sigmoid(logits), as DCNv2/mmcv).
    It is zero-initialised, so at init all offsets are 0: the v1 block is exactly a conv with ``weight`` and
    ``bias``, and the v2 block is that conv with every sample weighted 0.5 (sigmoid(0)), as in the DCNv2 paper.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        offset_groups=1,
        bias=True,
        modulated=True,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            device=device,
            dtype=dtype,
        )
        if offset_groups <= 0 or in_channels % offset_groups:
            raise ScaleprofError(
                f"DeformConv2dPack: {in_channels} input channels must divide by {offset_groups} offset groups"
            )
        self.offset_groups, self.modulated = offset_groups, modulated
        k = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(
            in_channels,
            (3 if modulated else 2) * offset_groups * k,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            bias=True,
            device=device,
            dtype=dtype,
        )
        self.init_offset()

    def init_offset(self):
        init.zeros_(self.conv_offset.weight)
        init.zeros_(self.conv_offset.bias)

    def forward(self, input):
        out = self.conv_offset(input)
        n_off = 2 * self.offset_groups * self.kernel_size[0] * self.kernel_size[1]
        offset = out[:, :n_off]
        mask = torch.sigmoid(out[:, n_off:]) if self.modulated else None
        return super().forward(input, offset, mask)

    def extra_repr(self):
        return super().extra_repr() + f", offset_groups={self.offset_groups}, modulated={self.modulated}"
