"""Input shapes, dtypes, devices and keyword arguments, as every verb takes them.

A leaf of the package: it imports torch and errors only, so that any layer (the counter, bench, the zoo) can
read an ``--input`` or a ``--dtype`` without pulling in the model loader (spec.py) above the zoo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from .errors import ScaleprofError

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


def parse_weight_dtype(name: str | torch.dtype | None, default: torch.dtype = torch.float32) -> torch.dtype:
    """``parse_dtype`` for a model's weights (``--dtype``): floating types only; integer and bool tensors
    are inputs (``--input 1x128:int64``), never weights."""
    dt = parse_dtype(name, default)
    if not dt.is_floating_point:
        raise ScaleprofError(f"--dtype {dtype_name(dt)} is not a floating type: weights are float32, float16, "
                             "bfloat16 or float64 (integer inputs: --input 1x128:int64)")
    return dt


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
    """One model input: a shape and a dtype (``1x3x224x224`` or ``1x128:int64``); ``name`` set for a named
    input (``input_ids=1x128:int64``), which the forward is fed as a keyword argument."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    name: str | None = None

    def __str__(self) -> str:
        s = "x".join(map(str, self.shape))
        s = s if self.dtype == torch.float32 else f"{s}:{dtype_name(self.dtype)}"
        return f"{self.name}={s}" if self.name else s

    def make(self, device: torch.device | str = "meta") -> torch.Tensor:
        if self.dtype.is_floating_point:
            if torch.device(device).type == "meta":   # no values to draw; randn's meta kernel is a Python ref
                return torch.empty(self.shape, dtype=self.dtype, device=device)
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
    name, eq, raw = str(text).strip().rpartition("=")
    if eq and not name.isidentifier():
        raise ScaleprofError(f"malformed --input {text!r}: a named input is NAME=SHAPE, e.g. input_ids=1x128:int64")
    shape_text, _, dt = raw.strip().lower().partition(":")
    if not _SHAPE_RE.match(shape_text):
        raise ScaleprofError(
            f"malformed --input {text!r}: expected sizes joined by 'x', e.g. 1x3x224x224 or 1x128:int64")
    shape = tuple(int(d) for d in shape_text.split("x"))
    if any(d <= 0 for d in shape):
        raise ScaleprofError(f"malformed --input {text!r}: every size must be positive")
    return InputSpec(shape, parse_dtype(dt or dtype), name or None)


def as_input_list(inputs) -> list:
    """One input (a tensor, a spec string, an InputSpec or a shape tuple) or a list of them, as a list."""
    if inputs is None:
        return []
    if isinstance(inputs, (torch.Tensor, InputSpec, str)):
        return [inputs]
    if isinstance(inputs, (tuple, torch.Size)) and inputs and all(isinstance(d, int) for d in inputs):
        return [tuple(inputs)]  # one shape, not a list of them
    return list(inputs)


def input_spec(x, dtype: str | torch.dtype | None = None) -> InputSpec:
    """One input as an InputSpec: a tensor's own shape and dtype, else ``parse_input``. Float inputs take
    ``dtype`` when one is given (an explicit ``:float32`` suffix keeps its own); integer inputs keep theirs."""
    if isinstance(x, torch.Tensor):
        dt = parse_dtype(dtype) if dtype is not None and x.is_floating_point() else x.dtype
        return InputSpec(tuple(x.shape), dt)
    return parse_input(x, dtype)


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
