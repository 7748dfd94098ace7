"""Model specs, input shapes, dtypes and devices, as every verb takes them.

A spec is one of:
  - a zoo name (``efficientnet_b0``, or a family name with knobs),
  - ``package.module:callable`` or ``path/to/file.py:callable`` returning an ``nn.Module``,
  - ``torchvision:NAME`` / ``timm:NAME`` when those packages import.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ScaleprofError, one_line
from .meta_init import skip_init

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "fp64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "bool": torch.bool,
}


def parse_dtype(name: str | torch.dtype | None, default: torch.dtype = torch.float32) -> torch.dtype:
    if name is None:
        return default
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[str(name).lower().removeprefix("torch.")]
    except KeyError:
        raise ScaleprofError(f"unknown dtype {name!r}; known: {', '.join(sorted(_DTYPES))}") from None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def parse_device(name: str | torch.device | None) -> torch.device:
    if name is None:
        return torch.device("meta")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ScaleprofError(f"unknown device {name!r}; use meta, cpu or cuda") from None
    if dev.type not in ("meta", "cpu", "cuda"):
        raise ScaleprofError(f"unsupported device {name!r}; use meta, cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ScaleprofError("device cuda requested but CUDA is not available on this machine")
    return dev


@dataclass(frozen=True)
class InputSpec:
    """One model input: a shape and a dtype (``1x3x224x224`` or ``1x128:int64``)."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32

    def __str__(self) -> str:
        s = "x".join(map(str, self.shape))
        return s if self.dtype == torch.float32 else f"{s}:{dtype_name(self.dtype)}"

    def make(self, device: torch.device | str = "meta") -> torch.Tensor:
        if self.dtype.is_floating_point:
            return torch.randn(self.shape, dtype=self.dtype, device=device)
        if self.dtype == torch.bool:
            return torch.ones(self.shape, dtype=self.dtype, device=device)
        # integer inputs are token ids: small values stay valid for any embedding table
        return torch.zeros(self.shape, dtype=self.dtype, device=device)


_SHAPE_RE = re.compile(r"^\d+(x\d+)*$")


def parse_input(text: str | InputSpec | tuple | list, dtype: str | torch.dtype | None = None) -> InputSpec:
    if isinstance(text, InputSpec):
        return text
    if isinstance(text, (tuple, list, torch.Size)):
        if not text or not all(isinstance(d, int) and d > 0 for d in text):
            raise ScaleprofError(f"malformed input shape {tuple(text)!r}: positive integers expected")
        return InputSpec(tuple(text), parse_dtype(dtype))
    raw = str(text).strip().lower()
    shape_text, _, dt = raw.partition(":")
    if not _SHAPE_RE.match(shape_text):
        raise ScaleprofError(
            f"malformed --input {text!r}: expected sizes joined by 'x', e.g. 1x3x224x224 or 1x128:int64")
    shape = tuple(int(d) for d in shape_text.split("x"))
    if any(d <= 0 for d in shape):
        raise ScaleprofError(f"malformed --input {text!r}: every size must be positive")
    return InputSpec(shape, parse_dtype(dt or dtype))


def as_input_list(inputs) -> list:
    """One input (a tensor, a spec string, an InputSpec or a shape tuple) or a list of them, as a list."""
    if inputs is None:
        return []
    if isinstance(inputs, (torch.Tensor, InputSpec, str)):
        return [inputs]
    if isinstance(inputs, (tuple, torch.Size)) and inputs and all(isinstance(d, int) for d in inputs):
        return [tuple(inputs)]  # one shape, not a list of them
    return list(inputs)


def resolve_inputs(spec, model: nn.Module, inputs, knobs: dict | None = None) -> list[InputSpec]:
    """Input specs from the caller, else the zoo model's own default; an error when neither exists.
    Float inputs follow the model's dtype when it runs; integer inputs (token ids) keep theirs."""
    given = as_input_list(inputs)
    if given:
        return [InputSpec(tuple(x.shape), x.dtype) if isinstance(x, torch.Tensor) else parse_input(x)
                for x in given]
    found = default_inputs(spec if isinstance(spec, str) else model, model, **(knobs or {}))
    if not found:
        raise ScaleprofError("no input shape known for this model: pass --input, e.g. --input 1x3x224x224")
    return list(found)


def parse_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """``--arg key=value`` pairs; values are read as Python literals where they parse."""
    import ast

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ScaleprofError(f"malformed --arg {pair!r}: expected key=value")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


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
        if is_zoo_spec(spec):
            from . import zoo

            return zoo.build(spec, device=dev, **kwargs)
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


def default_inputs(spec: str | nn.Module, model: nn.Module | None = None, **knobs) -> list[InputSpec] | None:
    """The input a zoo model expects (its own resolution after knobs); None when unknown."""
    if isinstance(spec, str) and is_zoo_spec(spec.strip()):
        from . import zoo

        return [InputSpec(tuple(zoo.default_input(spec.strip(), **knobs)))]
    shape = getattr(model, "default_input", None) if model is not None else None
    return [InputSpec(tuple(shape))] if shape else None
