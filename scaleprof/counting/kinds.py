"""Layer kinds: every counted op gets exactly one, by the rules of the design (docs/counting.md).

Every rule that answers "which kind is this?" lives here: for a convolution's geometry (``conv_kind``), for a
torch.nn layer (``module_kind``, and ``module_hint`` for the element-wise ops such a layer runs) and for a
profiled op's name (``op_class``, the timing attribution's coarse classes).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

CONV_DEFORMABLE = "conv.deformable"
CONV_TRANSPOSED = "conv.transposed"
CONV_DEPTHWISE = "conv.depthwise"
CONV_POINTWISE = "conv.pointwise"
CONV_GROUPED = "conv.grouped"
CONV_DILATED = "conv.dilated"
CONV_STANDARD = "conv.standard"
LINEAR = "linear"
MATMUL = "matmul"
ATTENTION = "attention"
NORM = "norm"
ACTIVATION = "activation"
POOLING = "pooling"
ELEMENTWISE = "elementwise"
OTHER = "other"

CONV_KINDS = (CONV_DEFORMABLE, CONV_TRANSPOSED, CONV_DEPTHWISE, CONV_POINTWISE, CONV_GROUPED, CONV_DILATED,
              CONV_STANDARD)
ALL_KINDS = CONV_KINDS + (LINEAR, MATMUL, ATTENTION, NORM, ACTIVATION, POOLING, ELEMENTWISE, OTHER)

# Kinds whose outputs count as "activations" (Dollár et al. 2021: conv and linear outputs).
ACTIVATION_WRITING_KINDS = frozenset(CONV_KINDS + (LINEAR,))


def conv_kind(*, in_channels: int, groups: int, kernel: Sequence[int], dilation: Sequence[int],
              transposed: bool = False, deformable: bool = False) -> str:
    """The first kind that applies, in the design's order."""
    if deformable:
        return CONV_DEFORMABLE
    if transposed:
        return CONV_TRANSPOSED
    if groups == in_channels and in_channels > 1:
        return CONV_DEPTHWISE
    if all(k == 1 for k in kernel) and groups == 1:
        return CONV_POINTWISE
    if groups > 1:
        return CONV_GROUPED
    if any(d > 1 for d in dilation):
        return CONV_DILATED
    return CONV_STANDARD


# torch.nn's own layers by the module that defines them: the kind of the element-wise ops they run
# (AdaptiveAvgPool2d(1) runs as a mean; some norms decompose on some devices).
_NN_MODULE_KINDS = {
    "torch.nn.modules.pooling": POOLING,
    "torch.nn.modules.batchnorm": NORM,
    "torch.nn.modules.normalization": NORM,
    "torch.nn.modules.instancenorm": NORM,
    "torch.nn.modules.activation": ACTIVATION,
}


def module_conv_kind(mod: nn.modules.conv._ConvNd) -> str:
    """``conv_kind`` of a torch.nn convolution, from its hyperparameters."""
    return conv_kind(in_channels=mod.in_channels, groups=mod.groups, kernel=tuple(mod.kernel_size),
                     dilation=tuple(mod.dilation), transposed=mod.transposed)


def module_kind(mod: nn.Module) -> str | None:
    """The kind a torch.nn layer stands for (a convolution's by its hyperparameters), None for any other
    module (a block, a model, a layer of another library)."""
    if isinstance(mod, nn.modules.conv._ConvNd):
        return module_conv_kind(mod)
    if isinstance(mod, nn.Linear):
        return LINEAR
    if isinstance(mod, nn.MultiheadAttention):
        return ATTENTION
    return _NN_MODULE_KINDS.get(type(mod).__module__)


def module_hint(mod: nn.Module) -> str | None:
    """The kind an element-wise op takes inside ``mod``: norm, activation or pooling when ``mod`` is such a
    torch.nn layer (never attention: MultiheadAttention's element-wise ops stay element-wise)."""
    kind = module_kind(mod)
    return kind if kind in (NORM, ACTIVATION, POOLING) else None


# Coarse classes of top-level aten ops by name fragments, checked in order: the timing attribution's
# kinds for ops the counter's rows do not name.
_OP_CLASSES = (
    ("attention", ("scaled_dot_product", "_flash_attention", "_efficient_attention", "multi_head_attention")),
    ("conv", ("conv", "deform")),
    ("linear", ("linear", "addmm")),
    ("matmul", ("matmul", "bmm", "baddbmm", "einsum", "::mm", "dot")),
    ("norm", ("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "native_norm")),
    ("activation", ("relu", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "elu", "mish",
                    "hardtanh", "softplus", "leaky", "prelu", "threshold", "clamp", "glu", "softmax")),
    ("pooling", ("pool", "mean")),
    ("elementwise", ("::add", "::sub", "::mul", "::div", "::rsub", "::neg", "::exp", "::sqrt", "::pow",
                     "::where", "::maximum", "::minimum", "::cat", "::stack")),
)


def op_class(op_name: str) -> str:
    """The coarse class of a profiled op by its name (``aten::conv2d``: conv); "other" when none fits."""
    name = op_name.lower()
    for cls, frags in _OP_CLASSES:
        if any(f in name for f in frags):
            return cls
    return OTHER


def kind_order(kind: str) -> int:
    """Stable display order: the design's list, unknown kinds last."""
    try:
        return ALL_KINDS.index(kind)
    except ValueError:
        return len(ALL_KINDS)
