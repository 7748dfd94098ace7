"""The CPU fallback's memory guard: estimate what counting on real tensors allocates, and refuse (one line
naming what is needed and what is available) before allocating it, instead of exhausting the machine."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ScaleprofError
from ..shapes import InputSpec

# the forward's own activations and the allocator's overhead come on top of the stand-ins: ask for half again
MARGIN = 1.5
MEMINFO = Path("/proc/meminfo")


def available_bytes(meminfo: str | None = None) -> int | None:
    """MemAvailable of /proc/meminfo (what can be allocated without swapping), None where it cannot be read."""
    try:
        text = meminfo if meminfo is not None else MEMINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            return int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    return None


def _size(shape, dtype: torch.dtype) -> int:
    return int(torch.Size(shape).numel()) * dtype.itemsize


def _target_dtype(t: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if dtype is not None and t.is_floating_point() else t.dtype


def stand_in_bytes(model: nn.Module, device: torch.device, dtype: torch.dtype | None, feeds) -> dict[str, int]:
    """Bytes the stand-ins for a run on ``device`` allocate, by part: parameters that are not already there at
    the dtype (a meta-built model's all are), every buffer (they are copied), and the inputs."""
    params = sum(_size(p.shape, _target_dtype(p, dtype)) for p in model.parameters()
                 if p.device != device or _target_dtype(p, dtype) != p.dtype)
    buffers = sum(_size(b.shape, _target_dtype(b, dtype)) for b in model.buffers())
    inputs = 0
    for x in feeds:
        if isinstance(x, InputSpec):
            inputs += _size(x.shape, x.dtype)
        elif isinstance(x, torch.Tensor) and (x.device != device or _target_dtype(x, dtype) != x.dtype):
            inputs += _size(x.shape, _target_dtype(x, dtype))
    return {"parameters": params, "buffers": buffers, "inputs": inputs}


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def guard(model: nn.Module, device: torch.device, dtype: torch.dtype | None, feeds, *, why: str,
          available: int | None = None) -> None:
    """Raise ScaleprofError when counting on ``device`` (cpu) would need more memory than is available."""
    if device.type != "cpu":
        return
    parts = stand_in_bytes(model, device, dtype, feeds)
    needed = int(MARGIN * sum(parts.values()))
    free = available if available is not None else available_bytes()
    if free is None or needed <= free:
        return
    detail = ", ".join(f"{k} {_gib(v)}" for k, v in parts.items() if v)
    raise ScaleprofError(f"{why}: counting on cpu needs about {_gib(needed)} ({detail}, x{MARGIN:g} margin) but "
                         f"{_gib(free)} is available; refusing to allocate it (count a smaller input or size, "
                         "or make the forward run on meta tensors)")
