"""Every aten op a forward runs, one event per call, from a single count on meta tensors.

The counter's recorder already sees each op with its arguments and costs it; `Harvester` is that recorder
with two additions: each op call (views and uncounted ops too: they cost framework time even when they
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

from ..counting import kinds as K
from ..counting.formulas import op_key
from ..counting.profile import _collect, _make_inputs, _run, _stand_ins
from ..counting.recorder import Recorder
from ..counting.result import ProfileResult

# Shape features of an op (the residual model's space): log1p of each.
FEATURES = ("macs", "bytes", "out_numel", "in_numel", "in_channels", "in_last")


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


class Harvester(Recorder):
    """The counter's recorder, also keeping every forward op call as an event (see the module docstring)."""

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor]):
        super().__init__(model, params)
        self.events: list[OpEvent] = []
        self.module_calls = 0
        self._current: tuple | None = None
        self._event: OpEvent | None = None

    def _pre_hook(self, module, args):
        self.module_calls += 1
        return super()._pre_hook(module, args)

    def on_op(self, func, args, kwargs, out) -> None:
        if not self.active or self.suppress:
            return super().on_op(func, args, kwargs, out)
        self._current, self._event = (func, args, kwargs), None
        super().on_op(func, args, kwargs, out)
        if self._event is None and op_key(func) not in _SCRATCH_OPS:
            # a view or an uncounted op: framework time, no arithmetic
            self._new_event(self.stack[-1][0], K.OTHER, 0, 0, 0, out if isinstance(out, torch.Tensor) else None,
                            [a for a in args if isinstance(a, torch.Tensor)][:1])
        self._current = None

    def record(self, key, costs, args, kwargs, out, *, read_bytes=None) -> None:
        if self._current is None:   # a function costed as a whole (attention): its own event
            self._current, self._event = (_function_of(key), args, kwargs), None
            super().record(key, costs, args, kwargs, out, read_bytes=read_bytes)
            self._current = None
            return
        super().record(key, costs, args, kwargs, out, read_bytes=read_bytes)

    def _add(self, table, rkey, module_type, kind, opname, cost, acts, extra, ins, primary) -> None:
        super()._add(table, rkey, module_type, kind, opname, cost, acts, extra, ins, primary)
        if table is not self.rows or self._current is None or self.phase != "forward":
            return
        if self._event is None:
            self._new_event(rkey[1], kind, int(cost.macs), int(cost.flops), int(extra["bytes"]), primary, ins)
        else:  # a fused op spanning kinds (MHA fast path): one call, its MACs summed
            self._event.macs += int(cost.macs)
            self._event.flops += int(cost.flops)

    def _new_event(self, module, kind, macs, flops, nbytes, primary, ins) -> None:
        func, args, kwargs = self._current
        real = _REAL_PATH.get(op_key(func)) if hasattr(func, "overloadpacket") else None
        if real is not None:
            func, n = real()
            args = args[:n]
        in_numel, in_ch, in_last = _shape_info(ins)
        self._event = OpEvent(func, args, kwargs, signature(func, args, kwargs), module, kind, macs, flops, nbytes,
                              primary.numel() if isinstance(primary, torch.Tensor) else 0, in_numel, in_ch, in_last)
        self.events.append(self._event)


def _function_of(key: str):
    import torch.nn.functional as F

    return getattr(F, key[2:]) if key.startswith("F.") else key


def harvest(model: nn.Module, inputs, *, name: str | None = None, dtype=None) -> Harvest:
    """Run ``model`` once on meta tensors (no weights) under the harvester: its op events and its count."""
    dev = torch.device("meta")
    dt = dtype
    params, buffers = _stand_ins(model, dev, dt, False)
    from ..shapes import as_input_list, input_spec

    inputs = [x if isinstance(x, torch.Tensor) else input_spec(x) for x in as_input_list(inputs)]
    args, labels = _make_inputs(tuple(inputs), dev, dt), [str(s) for s in inputs]
    rec = Harvester(model, params if params is not None else dict(model.named_parameters()))
    _run(rec, model, params, buffers, args, None, False)
    prof = _collect(model, rec, name or type(model).__name__, labels, dev, dt, dev, [])
    return Harvest(rec.events, rec.module_calls, prof)
