"""The rounding rules that turn a width or depth multiplier into whole channels and blocks.

Named after the reference implementations they reproduce, so a family's docstring can say which rule it uses.
"""

from __future__ import annotations

import math

from ..errors import ScaleprofError


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``min_value``), adding one ``divisor`` when
    that lands more than 10% below ``value``.

    The rule of the TF EfficientNet/MobileNet code and torchvision's ``_make_divisible``:
    ``max(8, int(v + 4) // 8 * 8)``, plus 8 if more than 10% below ``v``.
    """
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Channels of a width-scaled layer: ``make_divisible(channels * width, divisor)``."""
    return make_divisible(channels * width, divisor)


def truncate_channels(channels: int, width: float) -> int:
    """Channels by the MobileNetV1 paper's rule: ``int(channels * width)`` (at least 1)."""
    return max(1, int(channels * width))


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks of a depth-scaled stage: ``ceil(repeats * depth)`` (at least 1).

    Plain float arithmetic as in the reference code, so e.g. ``ceil(3 * 1.1)`` is 4 exactly as released.
    """
    return max(1, int(math.ceil(repeats * depth)))


def round_heads(heads: int, width: float) -> int:
    """Attention heads of a width-scaled transformer (head size fixed): ``round(heads * width)``, at least 1."""
    return max(1, int(round(heads * width)))


def check_multiplier(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ScaleprofError(f"{name} must be a positive number, got {value!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise ScaleprofError(f"{name} must be a positive number, got {value!r}")
    return v


def check_resolution(value, *, minimum: int = 32, multiple: int = 1, model: str = "model") -> int:
    """A resolution as a positive int, at least ``minimum`` and a multiple of ``multiple``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ScaleprofError(f"resolution must be a whole number of pixels, got {value!r}")
    r = int(value)
    if r < minimum:
        raise ScaleprofError(f"resolution {r} is too small for {model}: at least {minimum}")
    if r % multiple:
        raise ScaleprofError(f"resolution {r} for {model} must be a multiple of {multiple}")
    return r
