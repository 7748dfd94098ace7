"""What a zoo build would cost, estimated before building, and the limits it must stay under.

A knob can ask for anything (``--depth 1e9`` is a billion blocks, ``--width 1e5`` a conv with 10^20 weights):
the builder would run until the machine gives out. So each build first scales the family's base (built once
per process on meta, with the caller's other arguments) by the knobs: blocks grow with depth, parameters
with width² · depth; and refuses, in one line saying what it would need, above

    MAX_MODULES        modules in the tree (Python objects, on meta too)
    MAX_PARAMS         parameters on meta (no memory, but counts past this are no real model)
    memory             on a real device, the parameters' bytes against the device's memory
    MAX_RESOLUTION     input pixels per side

The estimate is the scaling rule the families follow (round_repeats / round_channels on stage tables), so it
is close above the base and exact at it; rounding adds at most one block per stage and one divisor of
channels per layer, which the limits, far above any published model, leave room for.
"""

from __future__ import annotations

import functools
import math
import os

import torch

from ..errors import ScaleprofError
from ..meta_init import skip_init

MAX_MODULES = 100_000          # resnet152 has ~520, a 7B decoder ~300
MAX_PARAMS = 10**12            # 1,000× the largest zoo model at its published size
MAX_RESOLUTION = 8192          # 15× EfficientNet-L2's 800


@functools.lru_cache(maxsize=64)
def _base(builder, frozen: tuple) -> tuple[int, int]:
    """(modules, parameters) of the family's base with these arguments, built on meta."""
    with torch.device("meta"), skip_init("meta"):
        model = builder(**dict(frozen))
    return sum(1 for _ in model.modules()), sum(p.numel() for p in model.parameters())


def _freeze(v):
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _memory(device) -> int | None:
    """Bytes a real device can hold (None: unknown)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "meta":
        return None
    try:
        if dev.type == "cuda":
            return torch.cuda.get_device_properties(dev.index or 0).total_memory
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, RuntimeError, AssertionError):
        return None


def _ratio(args: dict, base: dict, knob: str) -> float:
    v, b = args.get(knob), base.get(knob)
    if v is None or b is None:
        return 1.0
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ScaleprofError(f"{knob} must be a positive number, got {args.get(knob)!r}")
    return v / float(b)


def _as_named(args: dict, base: dict) -> bool:
    """The build is the named model's own (any resolution): every other argument as the registry gives it."""
    return {k: v for k, v in args.items() if k != "resolution"} == {k: v for k, v in base.items() if k != "resolution"}


def check_build(name: str, builder, args: dict, base: dict, device=None) -> None:
    """Refuse (one line) a build of ``builder(**args)`` that would pass a limit; ``base``: the named model's
    own knobs, the size the estimate scales from."""
    res = args.get("resolution")
    if isinstance(res, (int, float)) and not isinstance(res, bool) and res > MAX_RESOLUTION:
        raise ScaleprofError(f"{name}: resolution {res:g} is above the limit of {MAX_RESOLUTION:,} pixels")
    width, depth = _ratio(args, base, "width"), _ratio(args, base, "depth")
    if str(device) == "meta" and _as_named(args, base):
        return   # the named model itself on meta: its own size, far under the limits (no second build to learn it)
    others = {k: v for k, v in args.items() if k not in ("width", "depth", "resolution")}
    try:
        modules, params = _base(builder, _freeze({**base, **others}))
    except Exception:   # bad or unhashable arguments: the builder itself says what is wrong with them
        return
    knob = f"depth {args['depth']:g}" if depth > 1 else f"width {args.get('width', 1):g}" if width > 1 else \
        "its arguments"
    est_modules = modules * max(depth, 1.0)
    if est_modules > MAX_MODULES:
        raise ScaleprofError(f"{name}: {knob} would build about {est_modules:.2g} modules (> {MAX_MODULES:,})")
    est_params = params * width ** 2 * max(depth, 1.0)
    if est_params > MAX_PARAMS:
        raise ScaleprofError(f"{name}: {knob} would build about {est_params:.2g} parameters (> {MAX_PARAMS:.0e})")
    memory = _memory(device)
    need = est_params * torch.get_default_dtype().itemsize
    if memory is not None and need > memory:
        raise ScaleprofError(f"{name}: {knob} would need about {need / 2**30:,.1f} GiB for its parameters on "
                             f"{device or 'cpu'}; the device has {memory / 2**30:,.1f} GiB (count it on meta)")
