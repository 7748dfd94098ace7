"""An op event replayed on real tensors: the same op, argument structure, shapes, strides and dtypes.

This is what makes calibration cover every kind without a hand-written sampler per kind: whatever aten op
a zoo model runs (each conv kind with its real shapes, linear, matmul, attention, norms, activations,
pooling, element-wise, copies and views) is timed in isolation on the target device. Floating tensors
hold values in [0.5, 1.5) (positive, so variances and logs stay finite; no denormals), integer tensors
zeros (valid indices), booleans True. A meta tensor passed twice is one real tensor twice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _real(t: torch.Tensor, device: torch.device, made: dict[int, torch.Tensor]) -> torch.Tensor:
    key = id(t)
    if key not in made:
        x = torch.empty_strided(tuple(t.shape), tuple(t.stride()), dtype=t.dtype, device=device)
        if x.is_floating_point() or x.is_complex():
            x.uniform_(0.5, 1.5)
        elif x.dtype == torch.bool:
            x.fill_(True)
        else:
            x.zero_()
        made[key] = x
    return made[key]


def _convert(x, device: torch.device, made: dict):
    if isinstance(x, torch.Tensor):
        return _real(x, device, made)
    if isinstance(x, torch.device):
        return device
    if isinstance(x, (list, tuple)):
        return type(x)(_convert(v, device, made) for v in x)
    if isinstance(x, dict):
        return {k: _convert(v, device, made) for k, v in x.items()}
    return x


def replayable(event, device: torch.device | str = "cpu") -> Callable[[], object]:
    """A no-argument callable running the event's op on fresh real tensors on ``device``."""
    dev = torch.device(device)
    made: dict[int, torch.Tensor] = {}
    args = _convert(event.args, dev, made)
    kwargs = _convert(event.kwargs, dev, made)
    func = event.func
    return lambda: func(*args, **kwargs)
