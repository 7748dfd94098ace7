"""The reference model zoo: architectures from the papers, built in scaleprof, each with its knobs.

    list_models()                    every named model
    families()                       the scalable family names (each is also a spec: its base model)
    build(name, device=, width=, depth=, resolution=, **kwargs) -> nn.Module (eval mode, on ``device``)
    layout(name, width=, depth=, resolution=, **kwargs)   the architecture as data, without building (or None)
    default_input(name, **knobs)     (1, 3, R, R) at the resolution knob or the model's own
    family_of(name), knobs_of(name), knob_names(name), published(name)

The `zoo` verb's table with counted params and MACs is scaleprof.catalog (it needs the counter).

Architectures are data (stage tables in each family module); the width/depth knobs act on them through the
named rounding helpers of :mod:`scaleprof.zoo.rounding`; each family builder's docstring says how.
"""

from __future__ import annotations

from torch import nn

from .published import FIGURES, Figure, best_figure, figures
from .registry import FAMILIES, MODELS, resolve
from .registry import build as _build
from .registry import default_input as _default_input
from .registry import layout as _layout

__all__ = ["list_models", "families", "build", "layout", "default_input", "family_of", "knobs_of", "knob_label",
           "knob_names", "published", "published_rows", "describe", "FIGURES", "Figure"]


def list_models() -> list[str]:
    """Every named model, in the zoo's order."""
    return list(MODELS)


def families() -> list[str]:
    """The family names; each is a spec building the family's base model, scaled by the knobs it has."""
    return list(FAMILIES)


def build(name: str, *, device=None, width: float | None = None, depth: float | None = None,
          resolution: int | None = None, **kwargs) -> nn.Module:
    """Build a named model or a family's base model, in eval mode, on ``device`` (``"meta"`` allocates
    nothing). Knobs replace the named model's coefficients; other keyword arguments go to the family
    builder (e.g. ``num_classes``). The model carries ``default_input`` (1, 3, R, R).

    Raises ScaleprofError for an unknown name, a knob the family lacks or an unknown argument.
    """
    return _build(name, device=device, width=width, depth=depth, resolution=resolution, **kwargs)


def layout(name: str, *, width: float | None = None, depth: float | None = None, resolution: int | None = None,
           **kwargs):
    """What ``build`` with these arguments would build, as hashable data and without building: for a family
    whose architecture is data (efficientnet: ``efficientnet_layout``, the rounded stage table and the other
    settings), else None. Equal layouts build equal module trees (efficientnet's leaves the resolution out:
    it builds no layer, it is only the input). Raises ScaleprofError as ``build`` does for a bad name, knob
    or argument.
    """
    return _layout(name, width=width, depth=depth, resolution=resolution, **kwargs)


def default_input(name: str, **knobs) -> tuple[int, int, int, int]:
    """The input shape (1, 3, R, R): R the ``resolution`` knob if given, else the model's own."""
    return _default_input(name, **knobs)


def family_of(name: str) -> str:
    return resolve(name).family


def knobs_of(name: str) -> dict:
    """The named model's coefficients {width, depth, resolution}; None for a knob its family lacks."""
    entry = resolve(name)
    have = FAMILIES[entry.family].knobs
    return {k: v if k in have else None for k, v in entry.coefficients().items()}


def knob_label(name: str, knobs: dict | None = None) -> str:
    """A zoo model as people name it in a table's header: the name itself, or with knobs given, the family
    and every knob it runs with (``efficientnet width 1.1 depth 1.2 resolution 260``; the named model's own
    coefficients fill the knobs not given)."""
    given = {k: v for k, v in (knobs or {}).items() if k in ("width", "depth", "resolution") and v is not None}
    if not given:
        return name
    merged = {**knobs_of(name), **given}
    return " ".join([family_of(name), *(f"{k} {v:g}" for k, v in merged.items() if v is not None)])


def knob_names(name: str) -> tuple[str, ...]:
    """The knobs a model's family takes, e.g. ("width", "resolution") for mobilenet_v3."""
    return FAMILIES[resolve(name).family].knobs


def describe(name: str) -> str:
    """The family builder's docstring: what each knob does."""
    return FAMILIES[resolve(name).family].builder.__doc__ or ""


def published(name: str) -> dict | None:
    """The published figures for the named model as built by default (params, macs with absolute
    tolerances ``params_tol``/``macs_tol``, source), the most exact source first; None if none."""
    entry = resolve(name)
    f = best_figure(entry.name, entry.resolution)
    return None if f is None else f.to_dict()


def published_rows(name: str | None = None) -> list[dict]:
    """Every published row (or one model's), including those at other knobs (``overrides``)."""
    return [f.to_dict() for f in figures(None if name is None else resolve(name).name)]
