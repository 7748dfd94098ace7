"""Counting an EfficientNet block by block: each cost unit (stem, MBConv, head, pool + classifier) is counted
once per (configuration, input) and the model's totals are the sums over its chain of units.

Exact, not an estimate: the units' forwards chained are the model's forward (zoo.efficientnet.cost_units),
no op runs outside them, every op is costed from its own shapes, and every parameter lies in one unit only
(checked here), so summing the units' macs, flops, params and activations gives the whole-model profile.
tests/test_scaling.py checks this against ``scaleprof.profile`` of the whole model over the default grid.
Across a grid the same block at the same input recurs often; a model that does not qualify is counted whole.
"""

from __future__ import annotations

import torch
from torch import nn

FIELDS = ("macs", "flops", "params", "activations")

# per process: (unit key, input shape, strides, dtype) -> (its totals, its output's shape, strides, dtype)
_UNITS: dict[tuple, tuple[dict, tuple]] = {}
_MAX_UNITS = 100_000


def units_of(model: nn.Module) -> list[tuple[nn.Module, bytes]] | None:
    """The model's cost units, each with its key (``module_text``, see ``unit_text``); None where the model
    must be counted whole: anything but the zoo's EfficientNet class, a hook on a container whose forward
    the units skip, or a parameter shared between units (it would be counted once per unit)."""
    from ..zoo.efficientnet import EfficientNet, cost_units

    if type(model) is not EfficientNet:
        return None
    feats = model.features
    containers = [model, feats, *feats[1:-1]]
    if type(feats) is not nn.Sequential or any(type(s) is not nn.Sequential for s in feats[1:-1]):
        return None
    if any(c._forward_hooks or c._forward_pre_hooks for c in containers):
        return None
    units = cost_units(model)
    owned = [id(p) for u in units for p in u.parameters()]
    if len(owned) != len(set(owned)) or set(owned) != {id(p) for p in model.parameters()}:
        return None
    return [(u, unit_text(u)) for u in units]


def unit_text(unit: nn.Module) -> bytes:
    """``module_text`` of the unit, less the drop rate of each StochasticDepth in eval mode: there it returns
    its input before reading ``p`` (no op runs), so MBConvs differing only in their rate cost the same.
    In training the rate stays in the key."""
    from ..zoo.blocks import StochasticDepth
    from .family import module_text

    text = module_text(unit)
    for name, m in unit.named_modules():
        if name and isinstance(m, StochasticDepth) and not m.training:
            line = b"\n" + name.encode() + module_text(m)      # its own line, named as in the unit
            if text.count(line) == 1:
                text = text.replace(line, b"\n" + name.encode() + b"|StochasticDepth in eval: the identity\n")
    return text


def count_units(units: list[tuple[nn.Module, bytes]], input_shape) -> dict | None:
    """Totals (FIELDS) of the chain of units on ``input_shape``, each unit counted once per process and
    input; None if a unit does not count on meta (then the whole model is counted as before)."""
    from ..shapes import parse_input

    x = parse_input(tuple(input_shape)).make("meta")      # the input profile() makes for the whole model
    inp = (tuple(x.shape), x.stride(), x.dtype)
    acc = dict.fromkeys(FIELDS, 0)
    for unit, text in units:
        key = (text, *inp)
        hit = _UNITS.get(key)
        if hit is None:
            hit = _count_unit(unit, inp)
            if hit is None:
                return None
            if len(_UNITS) >= _MAX_UNITS:
                _UNITS.clear()
            _UNITS[key] = hit
        totals, inp = hit
        for f in FIELDS:
            acc[f] += totals[f]
    return acc


def _count_unit(unit: nn.Module, inp) -> tuple[dict, tuple] | None:
    from ..counting import profile

    shape, stride, dtype = inp
    out = []
    # the output's layout feeds the next unit; a hook reads it without running the unit a second time
    hook = unit.register_forward_hook(lambda m, args, y: out.append(y))
    try:
        res = profile(unit, [torch.empty_strided(shape, stride, dtype=dtype, device="meta")],
                      device="meta", quiet=True)
    except Exception:   # the whole-model count gives the error (or the cpu fallback) as before
        return None
    finally:
        hook.remove()
    if res.counted_on != "meta" or len(out) != 1 or not isinstance(out[0], torch.Tensor):
        return None
    y = out[0]
    return {f: getattr(res.totals, f) for f in FIELDS}, (tuple(y.shape), y.stride(), y.dtype)
