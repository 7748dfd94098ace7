"""Every aten op a forward runs, one event per call, from a single count on meta tensors.

The counter's recorder already sees each op with its arguments and costs it; `Harvester` is its public
observer hook (counting.Observer, `profile(..., observer=)`): each op call (views and uncounted ops too: they cost framework time even when they
cost no arithmetic) becomes an `OpEvent` with its signature, its layer row and its shape features, and module
calls are counted (each costs Python time at batch 1). So `harvest()` is the count, plus a few µs per op.

An event keeps the op and its meta arguments, so calibration can replay it on real tensors (replay.py);
the signature (op name, argument shapes, strides, dtypes and scalars) is the key a measured sample is stored
and looked up by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..counting.formulas import op_key
from ..counting.profile import profile
from ..counting.recorder import Observer, OpCall
from ..counting.result import ProfileResult

# Features of an op (the residual model's space): log1p of each. The shape of the op; its channels'
# alignment (`channel_align`); and its context: the least traffic of the whole forward it runs in (what
# passes through the caches between two of its calls: a 512x512 GEMV took 0.035 ms in a 3.5 MB MLP's chain
# and 0.11 ms in larger nets' here).
FEATURES = ("macs", "bytes", "out_numel", "in_numel", "in_channels", "in_last", "context", "align")
ALIGN_MAX = 64


@dataclass
class OpEvent:
    func: Any                 # the OpOverload (or torch.nn.functional function) that ran
    args: tuple
    kwargs: dict
    sig: str
    module: str
    kind: str
    macs: int = 0
    flops: int = 0
    bytes: int = 0
    out_numel: int = 0
    in_numel: int = 0
    in_channels: int = 0
    in_last: int = 0
    context: int = 0          # the forward's least traffic, bytes (harvest() sets it)
    align: int = 0            # channel_align of its input and output, the smaller

    @property
    def group(self) -> str:
        return group_of(self.kind, self.sig)

    def features(self) -> list[float]:
        return [float(getattr(self, f)) for f in FEATURES]


def group_of(kind: str, sig: str) -> str:
    """The per-op model's group: the kind and the op (SiLU and ReLU are both activations but cost apart)."""
    return f"{kind}|{sig.split('(', 1)[0]}"


@dataclass
class Harvest:
    """One model's forward as op events, with the count the same run produced."""

    events: list[OpEvent]
    module_calls: int
    profile: ProfileResult
    extra: dict = field(default_factory=dict)

    def feature_matrix(self) -> np.ndarray:
        return np.array([e.features() for e in self.events], dtype=float).reshape(len(self.events), len(FEATURES))


def _sig_part(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"T{tuple(x.shape)}{tuple(x.stride())}{str(x.dtype)[6:]}"
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_sig_part(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ",".join(f"{k}={_sig_part(v)}" for k, v in x.items()) + "}"
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, torch.device):
        return "dev"          # replayed on the target device
    return repr(x)


def signature(func, args, kwargs) -> str:
    name = op_key(func) if hasattr(func, "overloadpacket") else f"F.{getattr(func, '__name__', str(func))}"
    overload = getattr(func, "_overloadname", "")
    head = f"{name}.{overload}" if overload else name
    return f"{head}({_sig_part(args)};{_sig_part(kwargs)})"


def channel_align(t) -> int:
    """The largest power of two, up to ALIGN_MAX, that divides a tensor's channels: dimension 1 of an
    N, C, ... map, the last of a matrix or a sequence (0: no tensor or no channels). Vector kernels work on
    whole blocks of 8 or 16 channels and take another path for a count off them: on this project's AVX-512
    CPU a 3x3 depthwise conv at 56x56 ran at 15 GMAC/s with 128 channels, 5-7 with 120 or 136, 12 with 112;
    sizes alone put those side by side."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0:
        return 0
    c = int(t.shape[1] if t.dim() >= 4 else t.shape[-1])
    return min(c & -c, ALIGN_MAX) if c > 0 else 0


def _shape_info(ins) -> tuple[int, int, int]:
    t = ins[0] if ins else None
    if t is None:
        return 0, 0, 0
    shape = t.shape
    return (math.prod(shape) if shape else 1, int(shape[1]) if len(shape) >= 2 else 0,
            int(shape[-1]) if len(shape) else 0)


# Allocations: the counter's own meta shortcuts make their outputs with these (a real run's kernels
# allocate inside the op), so they are not ops of the model.
_SCRATCH_OPS = frozenset({"aten::empty", "aten::new_empty", "aten::empty_like", "aten::empty_strided"})


# Composite ops whose decomposition on meta is not what a real device runs: F.max_pool2d reaches the
# dispatcher as max_pool2d_with_indices (the meta path), while CPU inference runs aten::max_pool2d, a
# different kernel (10x faster at batch 1). The event replays (and is keyed as) the op the device runs,
# with the leading arguments both share.
_REAL_PATH = {"aten::max_pool2d_with_indices": lambda: (torch.ops.aten.max_pool2d.default, 6)}


class Harvester(Observer):
    """The counter's public observer hook, keeping every forward op call as an event and counting module
    calls (see the module docstring)."""

    def __init__(self):
        self.start()

    def start(self) -> None:
        self.events: list[OpEvent] = []
        self.module_calls = 0

    def module(self, name: str, module: nn.Module) -> None:
        self.module_calls += 1

    def op(self, call: OpCall) -> None:
        func, args = call.func, call.args
        op = hasattr(func, "overloadpacket")
        if op and not call.counted and op_key(func) in _SCRATCH_OPS:
            return
        real = _REAL_PATH.get(op_key(func)) if op else None
        if real is not None:
            func, n = real()
            args = args[:n]
        outs = [call.out] if isinstance(call.out, torch.Tensor) else \
            [t for t in (call.out if isinstance(call.out, (list, tuple)) else ()) if isinstance(t, torch.Tensor)]
        primary = outs[0] if outs and (call.counted or isinstance(call.out, torch.Tensor)) else None
        in_numel, in_ch, in_last = _shape_info(call.inputs)
        aligns = [a for a in (channel_align(call.inputs[0] if call.inputs else None), channel_align(primary)) if a]
        self.events.append(OpEvent(func, args, call.kwargs, signature(func, args, call.kwargs), call.module,
                                   call.kind, call.macs, call.flops, call.bytes,
                                   primary.numel() if primary is not None else 0, in_numel, in_ch, in_last,
                                   align=min(aligns, default=0)))


def harvest(model: nn.Module, inputs, *, name: str | None = None, dtype=None) -> Harvest:
    """Count ``model`` once on meta tensors (no weights) with the harvester observing: its op events and
    its count."""
    obs = Harvester()
    prof = profile(model, inputs, device="meta", dtype=dtype, name=name or type(model).__name__, quiet=True,
                   observer=obs)
    traffic = sum(e.bytes for e in obs.events)
    for e in obs.events:
        e.context = traffic
    return Harvest(obs.events, obs.module_calls, prof)
