"""Formulas for quantized (int8) models, counted as their float model: MACs from the packed weights' shapes,
parameters from the packed weights (they are not nn.Parameters), bytes at their sizes (int8 weights, 4-byte
bias: float32 as packed, int32 in the kernel). The quantize/dequantize steps are data movement.

Packed weights are torchbind objects that hold no storage the recorder can see: a formula names them in
``Cost.packed`` (an id, the parameter count, the bytes read) and the recorder counts each one's parameters once.
"""

from __future__ import annotations

import torch

from . import kinds as K
from .elementwise import ACTIVATION_COST
from .formulas import Args, Cost, _numel, conv_macs, max_pool_cost, register


def _packed_read(w: torch.Tensor, b: torch.Tensor | None) -> tuple[int, int]:
    """Parameters and bytes of unpacked weights: int8 weights, a 4-byte bias."""
    params = w.numel() + (b.numel() if b is not None else 0)
    return params, w.numel() * w.element_size() + (b.numel() * 4 if b is not None else 0)


def _conv(a: Args, out, *, relu: bool) -> Cost:
    x = a["qx"]
    packed = a.get("weight", a.get("packed_weight"))
    w, b = packed.unpack()
    groups, dilation = int(packed.groups()), [int(d) for d in packed.dilation()]
    transposed = bool(packed.transpose())
    macs = conv_macs(x.shape, w.shape, out.shape, transposed)
    kind = K.conv_kind(in_channels=int(x.shape[1]), groups=groups, kernel=[int(k) for k in w.shape[2:]],
                       dilation=dilation, transposed=transposed)
    flops = 2 * macs + (_numel(out) if b is not None else 0)
    params, nbytes = _packed_read(w, b)
    costs = Cost(macs, flops, kind, packed=(packed, params, nbytes),
                 info={"groups": groups, "quantized": True})
    if relu:
        return [costs, Cost(0, ACTIVATION_COST["relu"] * _numel(out), K.ACTIVATION, activations=0)]
    return costs


@register("quantized::conv1d", "quantized::conv2d", "quantized::conv3d")
def quantized_conv_cost(a: Args, out):
    return _conv(a, out, relu=False)


@register("quantized::conv1d_relu", "quantized::conv2d_relu", "quantized::conv3d_relu")
def quantized_conv_relu_cost(a: Args, out):
    return _conv(a, out, relu=True)


def _linear(a: Args, out, *, relu: bool) -> Cost | list[Cost]:
    x, packed = a["X"], a["W_prepack"]
    w, b = torch.ops.quantized.linear_unpack(packed)
    k, n = int(w.shape[1]), int(w.shape[0])
    rows = _numel(x) // k
    macs = rows * k * n
    params, nbytes = _packed_read(w, b)
    cost = Cost(macs, 2 * macs + (rows * n if b is not None else 0), K.LINEAR, packed=(packed, params, nbytes),
                info={"quantized": True})
    if relu:
        return [cost, Cost(0, ACTIVATION_COST["relu"] * rows * n, K.ACTIVATION, activations=0)]
    return cost


@register("quantized::linear", "quantized::linear_dynamic")
def quantized_linear_cost(a: Args, out):
    return _linear(a, out, relu=False)


@register("quantized::linear_relu", "quantized::linear_relu_dynamic")
def quantized_linear_relu_cost(a: Args, out):
    return _linear(a, out, relu=True)


@register("quantized::add", "quantized::mul")
def quantized_binary_cost(a: Args, out):
    return Cost(0, _numel(out), K.ELEMENTWISE, activations=0)


@register("quantized::add_relu", "quantized::mul_relu")
def quantized_binary_relu_cost(a: Args, out):
    return [Cost(0, _numel(out), K.ELEMENTWISE, activations=0),
            Cost(0, ACTIVATION_COST["relu"] * _numel(out), K.ACTIVATION, activations=0)]


register("quantized_max_pool1d", "quantized_max_pool2d", "quantized_max_pool3d")(max_pool_cost)
