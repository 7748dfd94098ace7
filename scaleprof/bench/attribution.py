"""Where the time goes: time per module and per layer kind, against each one's share of the work.

The model runs under ``torch.profiler`` with a ``record_function`` region around every module call; the
regions are opened and closed by forward pre/post hooks registered for the profiling run only and removed
afterwards (the user's module keeps no hook). Every profiled op's *self* time (CPU time on CPU, device time
on CUDA) goes to the innermost module region around it, and to a layer kind chosen from the counter's rows
for that module and the name of the top-level aten op it ran under (so a residual ``add`` inside a block
counts as elementwise, the block's convolution as its conv kind). Self times nest without double counting.

Joined with the counter's per-layer MACs, FLOPs and bytes (``scaleprof.profile``), each kind gets its
achieved GFLOP/s and GB/s and its share of time next to its share of MACs: the table where depthwise
convolutions show a few percent of the MACs and a large part of the time.

The profiler's own cost per op inflates small ops a little; shares, not absolute times, are the result,
and ``wall_ms`` (profiled run) is reported beside ``op_ms`` (sum of attributed op time).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..counting import kinds as K
from ..errors import one_line

_RANGE = "scaleprof::module::"

@dataclass
class AttributionRow:
    name: str                 # module path ("" is the root) or kind
    kind: str | None
    time_ms: float            # attributed op time per iteration
    time_share: float
    macs: int | None = None
    flops: int | None = None
    bytes: int | None = None
    macs_share: float | None = None
    gflops: float | None = None  # achieved: flops / time
    gbps: float | None = None    # achieved: bytes / time
    intensity: float | None = None  # flops / byte

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Attribution:
    by: str
    device: str
    iterations: int
    op_ms: float      # attributed op time per iteration
    wall_ms: float    # profiled wall time per iteration (op time + Python + profiler overhead)
    rows: list[AttributionRow]
    counted: bool     # whether the counter's MACs/bytes were joined
    note: str | None = None
    by_kind_rows: list[AttributionRow] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {"by": self.by, "device": self.device, "iterations": self.iterations, "op_ms": self.op_ms,
                "wall_ms": self.wall_ms, "counted": self.counted, "note": self.note,
                "rows": [r.to_dict() for r in self.rows]}

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.rows])


# --- profiling ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _fd2_silenced():
    """Send file descriptor 2 to /dev/null for a moment (C++ logging that Python's stderr cannot catch)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_ops(model: nn.Module, inputs: list[torch.Tensor], *, device: torch.device,
                iterations: int | None = None, target_s: float = 1.0) -> tuple[dict, int, float]:
    """{(module path, top-level op name): self ms summed over iterations}, iterations, wall ms per iteration."""
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        model(*inputs)  # warm
        sync()
        t0 = time.perf_counter()
        model(*inputs)
        sync()
        one = time.perf_counter() - t0
    n = iterations or int(min(50, max(3, target_s / max(one, 1e-6))))

    stack: list = []
    handles = []

    def pre_hook(name):
        def hook(_mod, _args):
            rf = record_function(_RANGE + name)
            rf.__enter__()
            stack.append(rf)
        return hook

    def post_hook(_mod, _args, _out):
        if stack:
            stack.pop().__exit__(None, None, None)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        for name, mod in model.named_modules():
            handles.append(mod.register_forward_pre_hook(pre_hook(name)))
            handles.append(mod.register_forward_hook(post_hook))
        prof = profile(activities=activities, record_shapes=False)
        with _fd2_silenced():  # kineto prints "USDT: ... profiler_start/stop" lines on fd 2
            prof.__enter__()
        try:
            with torch.inference_mode():
                t0 = time.perf_counter()
                for _ in range(n):
                    model(*inputs)
                sync()
                wall = (time.perf_counter() - t0) / n
        finally:
            with _fd2_silenced():
                prof.__exit__(None, None, None)
    finally:
        for h in handles:
            h.remove()
        while stack:  # a forward that raised leaves regions open
            stack.pop().__exit__(None, None, None)

    return self_ms_by_module_op(prof.events(), device_time=cuda), n, wall * 1000.0


def self_ms_by_module_op(events, *, device_time: bool) -> dict[tuple[str, str], float]:
    """{(module path, top-level op under that module's range): self ms}, from torch.profiler events.

    Self time is each op's own, children excluded, so nothing counts twice. On CUDA it is the device time
    of the kernels an op launched (`self_device_time_total`); the kernels' own events have no CPU parent
    and are skipped, their time having been counted on the op that launched them.
    """
    attr = "self_device_time_total" if device_time else "self_cpu_time_total"
    acc: dict[tuple[str, str], float] = defaultdict(float)
    for ev in events:
        if ev.name.startswith(_RANGE) or ev.name.startswith("ProfilerStep"):
            continue
        top, parent, module = ev, ev.cpu_parent, None
        while parent is not None:
            if parent.name.startswith(_RANGE):
                module = parent.name[len(_RANGE):]
                break
            top, parent = parent, parent.cpu_parent
        if module is None:
            continue  # outside the model's forward (or a device event: no CPU parent)
        t_us = getattr(ev, attr, 0.0) or 0.0
        if t_us:
            acc[(module, top.name)] += t_us / 1000.0
    return dict(acc)


# --- the counter's figures ---------------------------------------------------------------------------------

def counter_rows(model: nn.Module, inputs: list[torch.Tensor]):
    """(the counter's ProfileResult, None), counted on meta tensors (no arithmetic is repeated), or
    (None, reason) when it cannot count the model."""
    from ..counting import profile

    try:
        return profile(model, list(inputs), device="meta", quiet=True), None
    except Exception as exc:
        return None, f"counter failed: {one_line(exc)}"


def _conv_kind(mod: nn.Module | None) -> str:
    """A conv op's kind from the module running it (conv.standard under a module that is no convolution)."""
    kind = K.module_kind(mod) if mod is not None else None
    return kind if kind in K.CONV_KINDS else K.CONV_STANDARD


def _choose_kind(op: str, module_kinds: set[str], mod: nn.Module | None) -> str:
    cls = K.op_class(op)
    if cls == "conv":
        convs = sorted(k for k in module_kinds if k.startswith("conv."))
        if convs:
            return convs[0]
        return _conv_kind(mod)
    if cls in module_kinds:
        return cls
    if cls == "linear" and K.MATMUL in module_kinds:
        return K.MATMUL
    if cls == "matmul" and K.LINEAR in module_kinds:
        return K.LINEAR
    if cls == "other" and len(module_kinds) == 1:
        return next(iter(module_kinds))
    if cls == "other" and mod is not None:
        # free or unknown ops under a linear or conv layer belong to that layer's kind
        kind = K.module_kind(mod)
        if kind == K.LINEAR or kind in K.CONV_KINDS:
            return kind
    return cls


def attribute(model: nn.Module, inputs: list[torch.Tensor], *, device: torch.device | str = "cpu",
              by: str = "kind", level: int | None = None, iterations: int | None = None,
              target_s: float = 1.0) -> Attribution:
    """Time per kind (`by="kind"`) or per module (`by="module"`, leaf regions, or prefixes of `level` parts).

    The model runs in the mode it is in: pass it in eval mode (it is not changed, its hooks are removed)."""
    if by not in ("kind", "module"):
        raise ValueError(f"by must be 'kind' or 'module', got {by!r}")
    device = torch.device(device)
    counted, reason = counter_rows(model, inputs)
    acc, n, wall_ms = profile_ops(model, inputs, device=device, iterations=iterations, target_s=target_s)
    modules = dict(model.named_modules())

    # the kinds the counter saw under each module: what an op timed there is attributed to
    module_kinds: dict[str, set[str]] = defaultdict(set)
    for r in counted.layers if counted is not None else []:
        if r.kind:
            module_kinds[r.name].add(r.kind)

    kind_ms: dict[str, float] = defaultdict(float)
    module_ms: dict[str, float] = defaultdict(float)
    for (module, op), ms in acc.items():
        kind_ms[_choose_kind(op, module_kinds.get(module, set()), modules.get(module))] += ms / n
        module_ms[module] += ms / n
    op_ms = sum(kind_ms.values())

    by_kind = counted.by_kind() if counted is not None else {}
    total_macs = counted.totals.macs if counted is not None else None
    kind_rows = [_row(kind, kind, kind_ms.get(kind, 0.0), op_ms,
                      by_kind.get(kind, {}) if counted is not None else None, total_macs)
                 for kind in sorted(set(kind_ms) | set(by_kind), key=lambda k: (K.kind_order(k), k))]

    if by == "kind":
        out_rows = kind_rows
    else:
        by_module = counted.by_module(level) if counted is not None else {}
        groups_ms: dict[str, float] = defaultdict(float)
        groups_kinds: dict[str, set[str]] = defaultdict(set)
        for name, ms in module_ms.items():
            groups_ms[_prefix(name, level)] += ms
        for name, ks in module_kinds.items():
            groups_kinds[_prefix(name, level)] |= ks
        out_rows = []
        for g in sorted(set(groups_ms) | set(by_module), key=lambda s: (-groups_ms.get(s, 0.0), s)):
            ks = groups_kinds.get(g, set())
            kind = next(iter(ks)) if len(ks) == 1 else ("mixed" if ks else None)
            out_rows.append(_row(g, kind, groups_ms.get(g, 0.0), op_ms,
                                 by_module.get(g, {}) if counted is not None else None, total_macs))
    return Attribution(by=by, device=str(device), iterations=n, op_ms=op_ms, wall_ms=wall_ms, rows=out_rows,
                       counted=counted is not None, note=reason, by_kind_rows=kind_rows)


def _prefix(name: str, level: int | None) -> str:
    """A module path cut at `level` parts: the profiler's times grouped as `ProfileResult.by_module` groups counts."""
    if level is None or not name:
        return name
    return ".".join(name.split(".")[:level])


def _row(name, kind, ms, total_ms, counts, total_macs) -> AttributionRow:
    row = AttributionRow(name=name, kind=kind, time_ms=ms, time_share=(ms / total_ms if total_ms else 0.0))
    if counts is not None:
        row.macs = int(counts.get("macs", 0) or 0)
        row.flops = int(counts.get("flops", 0) or 0)
        row.bytes = int(counts.get("bytes", 0) or 0)
        row.macs_share = row.macs / total_macs if total_macs else None
        if ms > 0:
            row.gflops = row.flops / (ms * 1e-3) / 1e9
            row.gbps = row.bytes / (ms * 1e-3) / 1e9
        row.intensity = row.flops / row.bytes if row.bytes else None
    return row

