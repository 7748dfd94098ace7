"""Getting a model and its inputs ready to time: load, copy, cast, move, batch.

A user's module is never changed: it is deep-copied before it is cast, moved or put in eval/train mode.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ScaleprofError
from ..spec import InputSpec, default_inputs, load_model, parse_dtype, parse_input


def resolve_inputs(spec, model: nn.Module, inputs, dtype=None, knobs: dict | None = None) -> list[InputSpec]:
    """Input specs from the caller, else the zoo model's own default; an error when neither exists."""
    if isinstance(inputs, (str, torch.Tensor, InputSpec)):
        inputs = [inputs]
    elif isinstance(inputs, (tuple, torch.Size)) and inputs and all(isinstance(d, int) for d in inputs):
        inputs = [tuple(inputs)]  # one shape, not a list of them
    if inputs:
        out = []
        for x in inputs:
            if isinstance(x, torch.Tensor):
                out.append(InputSpec(tuple(x.shape), x.dtype))
            elif isinstance(x, InputSpec):
                out.append(x)
            else:
                # float inputs follow the model's dtype; integer inputs (token ids) keep theirs
                out.append(parse_input(x))
        return out
    found = default_inputs(spec if isinstance(spec, str) else model, model, **(knobs or {}))
    if not found:
        raise ScaleprofError("no input shape known for this model: pass --input, e.g. --input 1x3x224x224")
    return list(found)


def with_batch(specs: Sequence[InputSpec], batch_size: int | None) -> list[InputSpec]:
    """Replace the leading (batch) dimension of every input."""
    if batch_size is None:
        return list(specs)
    if batch_size < 1:
        raise ScaleprofError(f"batch size must be positive, got {batch_size}")
    return [InputSpec((batch_size,) + tuple(s.shape[1:]), s.dtype) for s in specs]


def make_inputs(specs: Sequence[InputSpec], device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for s in specs:
        if s.dtype.is_floating_point:
            out.append(torch.randn(s.shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype))
        else:
            out.append(s.make("cpu").to(device))
    return out


def load(spec, knobs: dict | None = None) -> nn.Module:
    """A module the caller may change: built from a spec, or a deep copy of the user's module."""
    if isinstance(spec, nn.Module):
        try:
            return copy.deepcopy(spec)
        except Exception as exc:
            raise ScaleprofError(f"cannot copy the model to benchmark it: {type(exc).__name__}: {exc}") from exc
    return load_model(spec, device="cpu", **(knobs or {}))


def place(model: nn.Module, device: torch.device, dtype: torch.dtype | str | None) -> nn.Module:
    dt = parse_dtype(dtype)
    if not dt.is_floating_point:
        raise ScaleprofError(f"--dtype must be a floating type for benchmarking, got {dtype!r}")
    return model.to(device=device, dtype=dt)


def spec_label(spec) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__
