"""Layer kinds: every counted op gets exactly one, by the rules of the design (docs/counting.md)."""

from __future__ import annotations

from collections.abc import Sequence

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


def kind_order(kind: str) -> int:
    """Stable display order: the design's list, unknown kinds last."""
    try:
        return ALL_KINDS.index(kind)
    except ValueError:
        return len(ALL_KINDS)
