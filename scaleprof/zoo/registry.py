"""Named models and scalable families: what ``build`` accepts and how knobs reach a builder.

A family is a builder function whose keyword parameters are its knobs (``width``, ``depth``,
``resolution``: those it has) and its other arguments; a named model is a family plus fixed coefficients and
arguments. Knobs given to ``build`` replace the named model's coefficients.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import torch
from torch import nn

from ..errors import ScaleprofError
from ..meta_init import skip_init
from . import convnext, efficientnet, fcn, googlenet, mobilenet, resnet, vgg, vit, xception
from .bounds import check_build

KNOBS = ("width", "depth", "resolution")


@dataclass(frozen=True)
class Family:
    name: str
    builder: Callable[..., nn.Module]
    base: str                     # the named model a bare family spec builds
    # the builder's arguments -> the architecture as data, without building: equal layouts must build equal
    # models (same arch_hash); None for a family without one
    layout: Callable[..., object] | None = None

    @property
    def knobs(self) -> tuple[str, ...]:
        params = _parameters(self.builder)
        return tuple(k for k in KNOBS if k in params)

    @property
    def arguments(self) -> tuple[str, ...]:
        params = _parameters(self.builder)
        return tuple(k for k in params if k not in KNOBS)


@cache
def _parameters(builder) -> tuple[str, ...]:
    # read once per builder: the scaling search asks for every candidate's layout (16,926 in the fine grid)
    return tuple(inspect.signature(builder).parameters)


@dataclass(frozen=True)
class Named:
    name: str
    family: str
    width: float | None = 1.0
    depth: float | None = 1.0
    resolution: int = 224
    kwargs: dict = field(default_factory=dict)

    def coefficients(self) -> dict:
        return {"width": self.width, "depth": self.depth, "resolution": self.resolution}


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("efficientnet", efficientnet.efficientnet, "efficientnet_b0", efficientnet.efficientnet_layout),
    Family("mobilenet_v1", mobilenet.mobilenet_v1, "mobilenet_v1"),
    Family("mobilenet_v2", mobilenet.mobilenet_v2, "mobilenet_v2"),
    Family("mobilenet_v3", mobilenet.mobilenet_v3, "mobilenet_v3_large"),
    Family("resnet", resnet.resnet, "resnet50"),
    Family("vgg", vgg.vgg, "vgg16"),
    Family("googlenet", googlenet.googlenet, "googlenet"),
    Family("xception", xception.xception, "xception"),
    Family("convnext", convnext.convnext, "convnext_tiny"),
    Family("vit", vit.vit, "vit_b_16"),
    Family("deform_resnet", resnet.deform_resnet, "deform_resnet50"),
    Family("fcn", fcn.fcn, "fcn_resnet18"),
)}


def _named() -> dict[str, Named]:
    out: list[Named] = []
    for key, (w, d, r, drop) in efficientnet.COEFFICIENTS.items():
        out.append(Named(f"efficientnet_{key}", "efficientnet", w, d, r, {"dropout": drop}))
    for suffix, w in (("", 1.0), ("_075", 0.75), ("_050", 0.5), ("_025", 0.25)):
        out.append(Named(f"mobilenet_v1{suffix}", "mobilenet_v1", w))
    out.append(Named("mobilenet_v2", "mobilenet_v2"))
    out.append(Named("mobilenet_v3_large", "mobilenet_v3", depth=None, kwargs={"config": "large"}))
    out.append(Named("mobilenet_v3_small", "mobilenet_v3", depth=None, kwargs={"config": "small"}))
    for name, (block, layers) in resnet.RESNET_LAYERS.items():
        out.append(Named(name, "resnet", kwargs={"block": block, "layers": layers}))
    out.append(Named("resnext50_32x4d", "resnet",
                     kwargs={"block": "bottleneck", "layers": (3, 4, 6, 3), "groups": 32, "width_per_group": 4}))
    for name, convs in vgg.VGG_CONVS.items():
        out.append(Named(name, "vgg", kwargs={"convs": convs}))
    out.append(Named("googlenet", "googlenet", depth=None))
    out.append(Named("xception", "xception", resolution=299))
    out.append(Named("convnext_tiny", "convnext", kwargs={"size": "tiny"}))
    for name, (patch, layers, heads, head_dim, ratio) in vit.VIT_CONFIGS.items():
        out.append(Named(name, "vit", kwargs={"patch_size": patch, "layers": layers, "heads": heads,
                                              "head_dim": head_dim, "mlp_ratio": ratio}))
    out.append(Named("deform_resnet50", "deform_resnet"))
    out.append(Named("fcn_resnet18", "fcn", kwargs={"num_classes": 21}))
    return {n.name: n for n in out}


MODELS: dict[str, Named] = _named()


def closest_names(name: str, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to `n` zoo names most like `name` (difflib's ratio); ties keep the registry's order, so a typo of
    efficientnet_b0 suggests b0 before b8."""
    key = name.strip().lower()
    names = list(dict.fromkeys([*MODELS, *FAMILIES]))
    scored = [(difflib.SequenceMatcher(None, key, c).ratio(), -i, c) for i, c in enumerate(names)]
    return [c for r, _, c in sorted(scored, reverse=True)[:n] if r >= cutoff]


def _unknown(name) -> ScaleprofError:
    """One short line a person can read: the closest names, if any, and where the full list is."""
    close = closest_names(str(name))
    if close:
        hint = f"did you mean {', '.join(close[:-1]) + ' or ' if len(close) > 1 else ''}{close[-1]}?"
    else:
        hint = f"a zoo name such as {next(iter(MODELS))}, or module:callable;"
    return ScaleprofError(f"unknown zoo model {name!r}; {hint} `scaleprof zoo` lists all {len(MODELS)} models "
                          f"and {len(FAMILIES)} families")


def resolve(name: str) -> Named:
    """The named model a spec means: itself, or a family's base model."""
    if not isinstance(name, str):
        raise _unknown(name)
    key = name.strip()
    if key in MODELS:
        return MODELS[key]
    if key in FAMILIES:
        return MODELS[FAMILIES[key].base]
    raise _unknown(name)


def settings(name: str, knobs: dict, kwargs: dict) -> tuple[Family, dict]:
    """The family and the builder arguments for a spec: the named model's, then the caller's on top.

    Knobs set to None keep the named model's value; a knob or argument the family lacks is an error.
    """
    entry = resolve(name)
    family = FAMILIES[entry.family]
    given = {k: v for k, v in knobs.items() if v is not None}
    lacking = [k for k in given if k not in family.knobs]
    if lacking:
        raise ScaleprofError(f"{name} ({family.name}) has no knob {', '.join(lacking)}; "
                             f"its knobs: {', '.join(family.knobs)}")
    unknown = [k for k in kwargs if k not in family.arguments]
    if unknown:
        raise ScaleprofError(f"{name} ({family.name}) takes no argument {', '.join(unknown)}; "
                             f"its knobs: {', '.join(family.knobs)}; arguments: {', '.join(family.arguments)}")
    args = {k: v for k, v in entry.coefficients().items() if k in family.knobs}
    args.update(entry.kwargs)
    args.update(given)
    args.update(kwargs)
    return family, args


def build(name: str, *, device=None, width=None, depth=None, resolution=None, **kwargs) -> nn.Module:
    family, args = settings(name, {"width": width, "depth": depth, "resolution": resolution}, kwargs)
    entry = resolve(name)
    base = {k: v for k, v in entry.coefficients().items() if k in family.knobs}
    check_build(name, family.builder, args, {**base, **entry.kwargs}, device)   # estimated before building
    try:
        ctx = torch.device(device) if device is not None else contextlib.nullcontext()
        fast = skip_init(device)             # on meta: no weight initialisation (nothing to fill)
    except (RuntimeError, TypeError):
        raise ScaleprofError(f"unknown device {device!r}; use meta, cpu or cuda") from None
    try:
        with ctx, fast:
            model = family.builder(**args)
    except ScaleprofError:
        raise
    except (TypeError, ValueError) as exc:
        raise ScaleprofError(f"{name}: bad arguments {args}: {exc}".replace("\n", " ")) from exc
    model.eval()
    res = int(args["resolution"])            # every family has the resolution knob
    model.default_input = (1, 3, res, res)
    return model


def layout(name: str, *, width=None, depth=None, resolution=None, **kwargs):
    """The family's layout for these arguments (as ``build`` would pass them), or None if it has none."""
    family, args = settings(name, {"width": width, "depth": depth, "resolution": resolution}, kwargs)
    return None if family.layout is None else family.layout(**args)


def default_input(name: str, resolution=None, **knobs) -> tuple[int, int, int, int]:
    r = resolve(name).resolution if resolution is None else resolution
    return (1, 3, int(r), int(r))
