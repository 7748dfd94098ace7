"""Getting a model and its inputs ready to time: cast, move, batch.

A user's module is never changed: callers deep-copy it before `place` casts and moves it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ScaleprofError
from ..shapes import InputSpec, parse_dtype


def with_batch(specs: Sequence[InputSpec], batch_size: int | None) -> list[InputSpec]:
    """Replace the leading (batch) dimension of every input."""
    if batch_size is None:
        return list(specs)
    if batch_size < 1:
        raise ScaleprofError(f"batch size must be positive, got {batch_size}")
    return [InputSpec((batch_size,) + tuple(s.shape[1:]), s.dtype, s.name) for s in specs]


def make_inputs(specs: Sequence[InputSpec], device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for s in specs:
        if s.dtype.is_floating_point:
            out.append(torch.randn(s.shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype))
        else:
            out.append(s.make("cpu").to(device))
    return out


def place(model: nn.Module, device: torch.device, dtype: torch.dtype | str | None) -> nn.Module:
    dt = parse_dtype(dtype)
    if not dt.is_floating_point:
        raise ScaleprofError(f"--dtype must be a floating type for benchmarking, got {dtype!r}")
    return model.to(device=device, dtype=dt)
