"""Layers that torch lacks. Importing this package registers the ``scaleprof::`` custom ops."""

from .deform_conv import (
    DEFORM_CONV2D,
    DEFORM_CONV2D_BACKWARD,
    DeformConv2d,
    DeformConv2dPack,
    deform_conv2d,
)

# The op overloads a dispatch-level counter gives formulas to (schemas are torchvision's deform_conv2d and
# _deform_conv2d_backward).
DEFORM_OPS = (DEFORM_CONV2D, DEFORM_CONV2D_BACKWARD)

__all__ = [
    "DEFORM_CONV2D",
    "DEFORM_CONV2D_BACKWARD",
    "DEFORM_OPS",
    "DeformConv2d",
    "DeformConv2dPack",
    "deform_conv2d",
]
