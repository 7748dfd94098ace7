"""Op micro-benchmarks: one layer configuration at a time, on the same tensor or at equal MACs.

- ``activations``: ReLU, ReLU6, SiLU, Hardswish, Sigmoid, GELU (erf and tanh) on one tensor. All read and
  write the tensor once, so achieved GB/s shows which activations cost more than the memory traffic.
- ``convs``: standard 3×3, pointwise 1×1, grouped 3×3 (16 channels a group) and depthwise 3×3 chosen to
  do *the same MACs* (n·h·w·36,864 per output pixel set; depthwise at 4× the side); what differs is
  arithmetic intensity, and with it the time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..counting import profile
from ..errors import ScaleprofError
from ..shapes import dtype_name, parse_device
from .timer import TimerConfig, block_timer_for, measure

SUITES = ("activations", "convs")


@dataclass
class MicroRow:
    name: str
    config: str
    median_ms: float
    ci95_ms: list[float] | None
    samples: int
    macs: int | None
    bytes: int
    gmacs_per_s: float | None
    gbps: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MicroResult:
    suite: str
    device: str
    dtype: str
    rows: list[MicroRow]

    def to_dict(self) -> dict:
        return {"suite": self.suite, "device": self.device, "dtype": self.dtype,
                "rows": [r.to_dict() for r in self.rows]}

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.rows])


def _activations():
    return [("relu", nn.ReLU()), ("relu6", nn.ReLU6()), ("silu", nn.SiLU()), ("hardswish", nn.Hardswish()),
            ("sigmoid", nn.Sigmoid()), ("gelu", nn.GELU()), ("gelu_tanh", nn.GELU(approximate="tanh"))]


def _counted(mod: nn.Module, shape, dtype: torch.dtype):
    """The counter's totals for `mod` on one input of `shape` (on meta tensors: nothing is computed); bytes are
    its least traffic, inputs and weights read once and outputs written once."""
    return profile(mod, [shape], device="meta", dtype=dtype, quiet=True).totals


def conv_configs(side: int = 28, batch: int = 1, dtype: torch.dtype = torch.float32):
    """(name, module, input shape, MACs, bytes) at equal MACs: batch·side²·36,864."""
    s = side
    cfgs = [
        ("standard 3x3", nn.Conv2d(64, 64, 3, padding=1, bias=False), (batch, 64, s, s)),
        ("pointwise 1x1", nn.Conv2d(192, 192, 1, bias=False), (batch, 192, s, s)),
        ("grouped 3x3 g16", nn.Conv2d(256, 256, 3, padding=1, groups=16, bias=False), (batch, 256, s, s)),
        ("depthwise 3x3", nn.Conv2d(256, 256, 3, padding=1, groups=256, bias=False), (batch, 256, 4 * s, 4 * s)),
    ]
    out = []
    for name, conv, shape in cfgs:
        counted = _counted(conv, shape, dtype)
        out.append((name, conv, shape, counted.macs, counted.bytes))
    return out


def run_micro(suite: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              max_time: float = 2.0, target_ci: float = 0.01, shape=(8, 64, 56, 56), side: int = 28,
              batch: int = 1, progress: bool = False) -> MicroResult:
    if suite not in SUITES:
        raise ScaleprofError(f"unknown micro-benchmark {suite!r}; use one of {', '.join(SUITES)}")
    device = parse_device(device)
    if device.type == "meta":
        raise ScaleprofError("micro-benchmarks need a device that runs: cpu or cuda")
    bt = block_timer_for(device)
    rows = []
    with torch.inference_mode():
        if suite == "activations":
            x = torch.randn(shape, device=device, dtype=dtype)
            for name, mod in _activations():
                cfg = TimerConfig(max_time=max_time, target_ci=target_ci, min_time=0.2, progress=progress, label=name)
                m = measure(lambda mod=mod: mod(x), cfg, block_timer=bt)
                rows.append(_row(name, "x".join(map(str, shape)), m, None, _counted(mod, shape, dtype).bytes))
        else:
            for name, conv, shp, macs, nbytes in conv_configs(side, batch, dtype):
                conv = conv.to(device=device, dtype=dtype).eval()
                x = torch.randn(shp, device=device, dtype=dtype)
                cfg = TimerConfig(max_time=max_time, target_ci=target_ci, min_time=0.2, progress=progress, label=name)
                m = measure(lambda conv=conv, x=x: conv(x), cfg, block_timer=bt)
                cfg_s = f"{shp[1]}->{conv.out_channels} k{conv.kernel_size[0]} g{conv.groups} @ {shp[2]}x{shp[3]}"
                rows.append(_row(name, cfg_s, m, macs, nbytes))
    return MicroResult(suite=suite, device=str(device), dtype=dtype_name(dtype), rows=rows)


def _row(name, config, m, macs, nbytes) -> MicroRow:
    med = m.summary.median
    return MicroRow(name=name, config=config, median_ms=med, ci95_ms=list(m.summary.ci95) if m.summary.ci95 else None,
                    samples=m.summary.n, macs=macs, bytes=nbytes,
                    gmacs_per_s=(macs / (med * 1e-3) / 1e9) if macs else None, gbps=nbytes / (med * 1e-3) / 1e9)
