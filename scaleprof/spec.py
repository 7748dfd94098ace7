"""The model loader, above the zoo: what a model spec names, built once, with its inputs.

A spec is one of:
  - a zoo name (``efficientnet_b0``, or a family name with knobs),
  - ``package.module:callable`` or ``path/to/file.py:callable`` returning an ``nn.Module``,
  - ``torchvision:NAME`` / ``timm:NAME`` when those packages import,
  - ``hf:MODEL_TYPE`` / ``hf:path/config.json``: a transformers model from its config (hf.py).

``resolve_target`` is the one edge every verb and API function passes a model through: a module or a spec,
knobs, inputs, device and dtype become a ``Target`` once (input shapes and dtypes themselves: shapes.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ScaleprofError, one_line
from .meta_init import skip_init
from .shapes import InputSpec, as_input_list, input_spec, parse_device, parse_weight_dtype


@contextlib.contextmanager
def _on_device(device: torch.device | None):
    if device is None:
        yield
    else:
        with device:
            yield


def _import_file(path: Path):
    # a stable name (not hash(), which is salted per process): arch_hash names a module's class by it
    name = f"_scaleprof_user_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScaleprofError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_CALLABLES: dict[tuple, Any] = {}   # per process: what a spec names, resolved once (a file: per mtime)


def resolve_callable(spec: str, what: str = "model spec"):
    """The callable ``module:attr`` / ``file.py:attr`` / ``torchvision:NAME`` / ``timm:NAME`` names, cached
    per process, so that a user's file is executed once (again only after it changes). ``what`` names the
    option in the error when the object is not callable."""
    fn = _resolve_callable(spec)
    if not callable(fn):
        raise ScaleprofError(f"{what} {spec!r} names a {type(fn).__name__}, not a callable")
    return fn


def _resolve_callable(spec: str):
    head, _, attr = spec.rpartition(":")
    is_file = head.endswith(".py") or "/" in head
    key: tuple = (spec,)
    if is_file:
        path = Path(head)
        if not path.is_file():
            raise ScaleprofError(f"model spec {spec!r}: no such file {head!r}")
        key = (str(path.resolve()), path.stat().st_mtime_ns, attr)
    if key not in _CALLABLES:
        _CALLABLES[key] = _resolve_uncached(spec, head, attr, is_file)
    return _CALLABLES[key]


def _resolve_uncached(spec: str, head: str, attr: str, is_file: bool):
    if head in ("torchvision", "timm"):
        return _hub_callable(head, attr)
    try:
        module = _import_file(Path(head)) if is_file else importlib.import_module(head)
    except ScaleprofError:
        raise
    except Exception as exc:  # the user's module failed to import: say why in one line
        raise ScaleprofError(f"model spec {spec!r}: cannot import {head!r}: {one_line(exc)}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ScaleprofError(f"model spec {spec!r}: {head!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _hub_callable(lib: str, name: str):
    try:
        mod = importlib.import_module(lib if lib == "timm" else "torchvision.models")
    except Exception as exc:
        raise ScaleprofError(f"model spec '{lib}:{name}': {lib} does not import here ({type(exc).__name__})") from exc
    if lib == "timm":
        if name not in mod.list_models():
            raise ScaleprofError(f"model spec 'timm:{name}': timm has no model {name!r}")
        return lambda **kw: mod.create_model(name, pretrained=False, **kw)
    if name not in mod.list_models():
        raise ScaleprofError(f"model spec 'torchvision:{name}': torchvision has no model {name!r}")
    return lambda **kw: mod.get_model(name, weights=None, **kw)


def is_zoo_spec(spec: str) -> bool:
    return ":" not in spec


def spec_label(spec) -> str:
    """A spec's name in results and messages: the string itself, else the module's class name."""
    return spec if isinstance(spec, str) else type(spec).__name__


def load_model(spec, *, device: str | torch.device | None = None, **kwargs) -> nn.Module:
    """Build the model a spec names, on ``device`` (``meta`` builds it without allocating weights).

    ``spec``: a spec string, a callable returning an ``nn.Module``, or a module (returned as is). Zoo knobs
    (``width``, ``depth``, ``resolution``) and a user callable's keyword arguments pass through ``kwargs``; a
    knob a family lacks is an error, never silently ignored. On meta, weight initialisation is skipped
    (meta_init.skip_init: meta tensors hold no values).
    """
    if isinstance(spec, nn.Module):
        return spec
    dev = torch.device(device) if device is not None else None
    if callable(spec):
        fn, label = spec, f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', repr(spec))}"
    else:
        if not isinstance(spec, str) or not spec.strip():
            raise ScaleprofError(f"model spec must be a non-empty string or a callable, got {spec!r}")
        label = spec = spec.strip()
        if spec.startswith("hf:"):
            from . import hf  # transformers is optional: imported only for an hf: spec

            fn = functools.partial(hf.build, spec.removeprefix("hf:"))
        elif is_zoo_spec(spec):
            from . import zoo

            return zoo.build(spec, device=dev, **kwargs)
        else:
            fn = resolve_callable(spec)
    try:
        with _on_device(dev), skip_init(dev):
            model = fn(**kwargs)
    except ScaleprofError:
        raise
    except TypeError as exc:
        raise ScaleprofError(f"model spec {label!r}: bad arguments {kwargs}: {one_line(exc)}") from exc
    except Exception as exc:
        raise ScaleprofError(f"model spec {label!r}: building the model failed: {one_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise ScaleprofError(f"model spec {label!r} returned a {type(model).__name__}, not an nn.Module")
    return model


def model_inputs(model: nn.Module, inputs=None, dtype=None) -> list[InputSpec]:
    """The caller's inputs as InputSpecs, else the model's own ``default_input`` (the zoo stamps it on
    every model it builds, knobs applied); an error when neither exists. Float inputs take ``dtype``."""
    given = as_input_list(inputs)
    if given:
        return [input_spec(x, dtype) for x in given]
    shape = getattr(model, "default_input", None)
    if not shape:
        raise ScaleprofError("no input shape known for this model: pass --input, e.g. --input 1x3x224x224")
    if all(isinstance(d, int) for d in shape):
        return [input_spec(tuple(shape), dtype)]
    return [input_spec(x, dtype) for x in shape]  # several (named) inputs: hf: models stamp InputSpecs


@dataclass(frozen=True, eq=False)
class Target:
    """A model ready to count, time or check: resolved once from a module or a spec (``resolve_target``).

    ``inputs``: every input's shape and dtype; ``feeds``: what the forward is fed, the same InputSpecs, or the
    caller's own tensors where they gave tensors (their values matter on a real device). ``dtype``: None
    keeps the model's own. ``built``: scaleprof built the model from ``spec`` (with ``knobs``, in train mode
    when ``train``); False for a user's module, which is never changed.
    """

    model: nn.Module
    inputs: tuple[InputSpec, ...]
    device: torch.device
    dtype: torch.dtype | None
    label: str
    knobs: dict = field(default_factory=dict)
    built: bool = False
    spec: Any = None
    train: bool = False
    feeds: tuple = ()

    def materialize(self, device: str | torch.device = "cpu") -> nn.Module:
        """The same model with real weights on ``device``: a built model is built again there (or reused when
        it already lives there), in the same mode; a user's module is returned as it is."""
        dev = torch.device(device)
        if not self.built or self.device == dev:
            return self.model
        return load_model(self.spec, device=dev, **self.knobs).train(self.train)


def resolve_target(model_or_spec, inputs=None, *, knobs: dict | None = None, device=None, dtype=None,
                   train: bool = False) -> Target:
    """A module or a spec, knobs, inputs, device and dtype, as a Target, once.

    A spec is built on ``device`` (default meta: no weights allocated) with ``knobs`` and put in train mode
    when ``train``, else eval; a user's module is taken as it is (its mode too), and knobs for it are an
    error. ``inputs`` None: the model's own default input; an empty sequence: no positional inputs (a
    forward fed by keyword arguments only). A Target passes through unchanged (nothing else may be given).
    """
    if isinstance(model_or_spec, Target):
        if inputs is not None or knobs or device is not None or dtype is not None:
            raise ScaleprofError("a resolved Target carries its own inputs, knobs, device and dtype")
        return model_or_spec
    dev = parse_device(device)
    dt = parse_weight_dtype(dtype) if dtype is not None else None
    knobs = dict(knobs or {})
    if isinstance(model_or_spec, nn.Module):
        if knobs:
            raise ScaleprofError(f"knobs {sorted(knobs)} apply to a model spec, not to a module "
                                 f"({type(model_or_spec).__name__}): build it with them instead")
        model, built, label = model_or_spec, False, type(model_or_spec).__name__
    else:
        model, built = load_model(model_or_spec, device=dev, **knobs).train(train), True
        label = model_or_spec.strip() if isinstance(model_or_spec, str) else type(model).__name__
    given = as_input_list(inputs)
    if inputs is not None and not given:
        specs, feeds = [], []
    else:
        specs = model_inputs(model, inputs, dt)
        feeds = [x if isinstance(x, torch.Tensor) else s for x, s in zip(given, specs, strict=True)] \
            if given else specs
    return Target(model=model, inputs=tuple(specs), device=dev, dtype=dt, label=label, knobs=knobs, built=built,
                  spec=model_or_spec if built else None, train=train, feeds=tuple(feeds))
