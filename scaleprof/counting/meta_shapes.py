"""Shape shortcuts for the meta kernels that dominate a meta-device forward.

torch's meta kernel for batch norm is a Python decomposition (~0.6 ms a call: two thirds of a ResNet-50
forward on meta), and unary activations go through Python refs too. Their outputs are fully determined by
the input (same shape, dtype and strides), so while counting on meta the recorder makes them directly.
Only dense inputs (contiguous or channels-last) take a shortcut; anything else runs torch's kernel.
tests/test_counting.py checks every shortcut against torch's own meta kernel.
"""

from __future__ import annotations

import torch

_UNARY = frozenset(f"aten::{n}" for n in (
    "relu", "relu6", "silu", "sigmoid", "tanh", "gelu", "hardswish", "hardsigmoid", "hardtanh", "leaky_relu",
    "elu", "mish", "softplus", "neg", "abs", "exp",
))

_BATCH_NORMS = frozenset({"aten::native_batch_norm", "aten::_native_batch_norm_legit_no_training"})


def _dense(t: torch.Tensor) -> bool:
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))


def _batch_norm(x: torch.Tensor):
    # saved mean and inverse std: one per channel, as torch's meta kernel makes them
    c = (int(x.shape[1]),)
    return torch.empty_like(x), x.new_empty(c), x.new_empty(c)


def _grouped_mm(args, kwargs):
    # torch's meta kernel for _grouped_mm takes bf16 only (its CUDA kernel's limit), so a float32 MoE model
    # could not be counted on meta; the output's shape rule is torch's own (_create_grouped_mm_output_tensor)
    a, b = args[0], args[1]
    offs = args[2] if len(args) > 2 else kwargs.get("offs")
    out_dtype = (args[4] if len(args) > 4 else kwargs.get("out_dtype")) or a.dtype
    if a.dim() == 2:
        size = [offs.size(0), a.size(0), b.size(1)] if b.dim() == 2 else [a.size(0), b.size(-1)]
    else:
        size = [a.size(1), b.size(1)] if b.dim() == 2 else [a.size(0), a.size(1), b.size(-1)]
    return torch.empty(size, dtype=out_dtype, device="meta")


def shortcut(key: str, func, args, kwargs):
    """The op's output made without running its meta kernel, or None to run the kernel."""
    if not args or not isinstance(args[0], torch.Tensor) or args[0].device.type != "meta":
        return None
    x = args[0]
    if key == "aten::_grouped_mm" and x.dtype not in (torch.bfloat16, torch.float16):
        return _grouped_mm(args, kwargs)   # any layout: the backward passes transposed operands
    if (key not in _UNARY and key not in _BATCH_NORMS) or not _dense(x):   # most ops: no shortcut, decided cheaply
        return None
    if key in _UNARY and x.is_floating_point() and all(not isinstance(a, torch.Tensor) for a in args[1:]) \
            and not kwargs:
        # in-place variants (relu_) return their input, like the real kernel
        return x if func.overloadpacket.__name__.endswith("_") else torch.empty_like(x)
    if key in _BATCH_NORMS and x.dim() >= 2 \
            and x.is_floating_point() and not kwargs:
        return _batch_norm(x)
    return None
