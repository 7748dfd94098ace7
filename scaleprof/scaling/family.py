"""The family a search scales: a zoo family (its base model), a named zoo model as the base, or a user's
``module:callable`` / ``file.py:callable`` taking ``width``, ``depth``, ``resolution`` keywords.

``arch_hash`` names an architecture by what was built, so candidates whose knobs differ but whose models
are the same (``ceil(3 · 1.05) == ceil(3 · 1.2)``) are evaluated once.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .. import zoo
from ..errors import ScaleprofError
from ..spec import load_model, resolve_callable
from ..zoo import registry
from ..zoo.registry import KNOBS

_DEFAULT_BASE = {"width": 1.0, "depth": 1.0, "resolution": 224}


@dataclass(frozen=True)
class Family:
    spec: Any                         # zoo name, "module:callable" text, or a callable
    label: str
    zoo_name: str | None
    base_knobs: dict                  # the base's width/depth/resolution; None for a knob the family lacks
    kwargs: dict = field(default_factory=dict)
    arguments: tuple = ()             # other keyword arguments the builder takes ("**" when it takes any)

    def builder(self):
        return resolve_callable(self.spec, "--family") if isinstance(self.spec, str) else self.spec

    def has(self, knob: str) -> bool:
        return self.base_knobs.get(knob) is not None

    def accepts(self, argument: str) -> bool:
        return argument in self.arguments or "**" in self.arguments

    def _knobs(self, width, depth, resolution) -> dict:
        return {k: v for k, v in zip(KNOBS, (width, depth, resolution), strict=True) if v is not None and self.has(k)}

    def build(self, width=None, depth=None, resolution=None, *, device="meta", **extra) -> nn.Module:
        """The family at these knobs (None keeps the base's), on ``device`` (meta allocates nothing and skips
        weight initialisation: zoo.build and spec.load_model do that)."""
        knobs = self._knobs(width, depth, resolution)
        args = {**self.kwargs, **extra}
        if self.zoo_name is not None:
            return zoo.build(self.zoo_name, device=device, **knobs, **args)
        return load_model(self.builder(), device=device, **knobs, **args).eval()

    def layout_key(self, width=None, depth=None, resolution=None) -> str | None:
        """The module tree at these knobs named without building, from the zoo family's layout (zoo.layout);
        None for a user's callable, a zoo family without a layout, or arguments the build would reject
        (those are built and named by ``arch_hash`` alone). Equal keys build equal module trees, so equal
        ``arch_hash`` at equal input shapes.

        The layout's repr, not the layout: ``0 == 0.0`` but Dropout(0) and Dropout(0.0) hash apart.
        """
        lay = self.layout(width, depth, resolution)
        return None if lay is None else f"{zoo.family_of(self.zoo_name)}|{lay!r}"

    def layout(self, width=None, depth=None, resolution=None):
        """The zoo family's layout object at these knobs (see ``layout_key``), or None."""
        if self.zoo_name is None:
            return None
        try:
            return zoo.layout(self.zoo_name, **self._knobs(width, depth, resolution), **self.kwargs)
        except Exception:
            return None

    def input_shape(self, model: nn.Module, resolution: int | None) -> tuple[int, ...]:
        """(1, 3, R, R) at the candidate's resolution (the model's own default input, resized, if it has one)."""
        own = getattr(model, "default_input", None)
        if resolution is None:
            if own is None:
                raise ScaleprofError(f"--family {self.label}: no input shape known (no resolution knob and "
                                     "no default_input on the model)")
            return tuple(int(d) for d in own)
        if own is not None and len(own) >= 3:
            return tuple(int(d) for d in own[:-2]) + (int(resolution), int(resolution))
        return (1, 3, int(resolution), int(resolution))

    def to_config(self) -> dict:
        return {"family": self.label, "kwargs": {k: repr(v) for k, v in sorted(self.kwargs.items())},
                "base": dict(self.base_knobs)}


def resolve_family(family, kwargs: dict | None = None, base_resolution: int | None = None) -> Family:
    """A Family from a zoo name, a ``module:callable`` spec or a callable; ScaleprofError if it cannot scale."""
    kwargs = dict(kwargs or {})
    if isinstance(family, str) and ":" not in family.strip():
        name = family.strip()
        base = zoo.knobs_of(name)              # ScaleprofError for an unknown name
        # an argument the builder lacks fails in zoo.build (registry.settings) when the base is counted
        fam_obj = Family(name, name, name, base, kwargs, registry.FAMILIES[zoo.family_of(name)].arguments)
    else:
        if isinstance(family, str):
            spec = family.strip()
            fn = resolve_callable(spec, "--family")
            label = spec
        elif callable(family):
            spec = fn = family
            label = f"{getattr(family, '__module__', '?')}:{getattr(family, '__qualname__', repr(family))}"
        else:
            raise ScaleprofError(f"--family must be a zoo family or module:callable, got {family!r}")
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            raise ScaleprofError(f"--family {label}: cannot read the callable's signature") from None
        any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        base = {}
        for k in KNOBS:
            if k in params:
                d = params[k].default
                base[k] = _DEFAULT_BASE[k] if d is inspect.Parameter.empty or d is None else d
            else:
                base[k] = _DEFAULT_BASE[k] if any_kw else None
        args = tuple(k for k, p in params.items() if k not in KNOBS
                     and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) + (("**",) if any_kw else ())
        fam_obj = Family(spec, label, None, base, kwargs, args)
    if base_resolution is not None:
        if not fam_obj.has("resolution"):
            raise ScaleprofError(f"--family {fam_obj.label} has no resolution knob; drop --base-resolution")
        if int(base_resolution) != base_resolution or base_resolution < 1:
            raise ScaleprofError(f"--base-resolution must be a positive whole number, got {base_resolution!r}")
        fam_obj = Family(fam_obj.spec, fam_obj.label, fam_obj.zoo_name,
                         {**fam_obj.base_knobs, "resolution": int(base_resolution)}, fam_obj.kwargs,
                         fam_obj.arguments)
    if not any(fam_obj.has(k) for k in KNOBS):
        raise ScaleprofError(f"--family {fam_obj.label} cannot scale: it takes none of width, depth, resolution")
    return fam_obj


# --- architecture identity ------------------------------------------------------------------------------------

_SIMPLE = (bool, int, float, str, type(None))
_NOT_SIMPLE = object()


def _canonical(v, depth: int = 0):
    """A plain, ordered form of a scalar or a (nested) list, tuple or dict of scalars; _NOT_SIMPLE otherwise."""
    if isinstance(v, _SIMPLE):
        return v
    if depth > 8:
        return _NOT_SIMPLE
    if isinstance(v, (list, tuple)):
        items = [_canonical(x, depth + 1) for x in v]
        return _NOT_SIMPLE if any(x is _NOT_SIMPLE for x in items) else (type(v).__name__, tuple(items))
    if isinstance(v, dict):
        items = [(_canonical(k, depth + 1), _canonical(x, depth + 1)) for k, x in v.items()]
        if any(k is _NOT_SIMPLE or x is _NOT_SIMPLE for k, x in items):
            return _NOT_SIMPLE
        return ("dict", tuple(sorted(items, key=repr)))
    return _NOT_SIMPLE


def arch_hash(model: nn.Module, input_shape) -> str:
    """A digest of the built layer configuration and the input shape.

    Per module: its path, class, ``extra_repr()`` (conv geometry: channels, kernel, stride, padding, groups),
    its public scalar attributes and (nested) lists, tuples and dicts of scalars (e.g. a block's residual
    flag, a dropout rate, a list of dims) and the shapes of its own parameters and buffers. Equal digests mean the same layers on the same input; a builder that keeps a
    knob as a float attribute only makes the digest stricter (fewer merges), never wrong.
    """
    return arch_digest(module_text(model), input_shape)


def module_text(model: nn.Module) -> bytes:
    """The module tree's part of ``arch_hash``: one line per module (see there)."""
    lines = []
    for name, m in model.named_modules():
        attrs = sorted((k, c) for k, c in ((k, _canonical(v)) for k, v in vars(m).items()
                                           if not k.startswith("_") and k != "default_input")
                       if c is not _NOT_SIMPLE)
        params = [(n, tuple(p.shape), str(p.dtype)) for n, p in m.named_parameters(recurse=False)]
        buffers = [(n, tuple(b.shape), str(b.dtype)) for n, b in m.named_buffers(recurse=False)]
        lines.append(f"{name}|{type(m).__module__}.{type(m).__qualname__}|{m.extra_repr()}|{attrs}|{params}|"
                     f"{buffers}\n")
    return "".join(lines).encode()


def arch_digest(text: bytes, input_shape) -> str:
    """``arch_hash`` from a model's ``module_text`` (one model counted at several input shapes)."""
    return hashlib.sha256(repr(tuple(int(d) for d in input_shape)).encode() + text).hexdigest()[:16]
