"""Roofline: this machine's measured peaks, and each layer kind placed against them.

Peaks are measured, not looked up: a large square matmul's FLOP/s (2·n³ per call) and a large tensor
copy's bytes/s (read + write). A kind's arithmetic intensity is its FLOPs over its bytes (the counter's
least traffic); its achieved rate comes from attribution.py. The roof at intensity I is
min(peak FLOP/s, I · peak bytes/s); `efficiency` is achieved / roof.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ..shapes import dtype_name
from .timer import TimerConfig, block_timer_for, measure


@dataclass
class Peaks:
    device: str
    dtype: str
    gflops: float          # matmul
    gbps: float            # copy
    matmul_n: int
    copy_bytes: int

    @property
    def ridge(self) -> float:
        """Intensity (FLOP/byte) where the two roofs meet."""
        return self.gflops / self.gbps

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ridge"] = self.ridge
        return d


@dataclass
class RooflinePoint:
    kind: str
    intensity: float | None   # flops / byte
    gflops: float | None      # achieved
    roof_gflops: float | None
    efficiency: float | None
    bound: str | None         # memory | compute
    time_share: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Roofline:
    peaks: Peaks
    points: list[RooflinePoint] = field(default_factory=list)
    plot: str | None = None

    def to_dict(self) -> dict:
        return {"peaks": self.peaks.to_dict(), "points": [p.to_dict() for p in self.points], "plot": self.plot}


def measure_peaks(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, *,
                  matmul_n: int | None = None, copy_elems: int | None = None, max_time: float = 2.0,
                  block_timer=None) -> Peaks:
    device = torch.device(device)
    cuda = device.type == "cuda"
    n = matmul_n or (8192 if cuda else 2048)
    elems = copy_elems or ((1 << 28) if cuda else (1 << 25))
    cfg = TimerConfig(max_time=max_time, min_time=0.2, target_ci=0.02)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    bt = block_timer or block_timer_for(device)     # calibration passes its own clock (thread CPU time)
    with torch.inference_mode():
        mm = measure(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), cfg, block_timer=bt)
    del a, b, out
    src = torch.empty(elems, device=device, dtype=dtype).fill_(1.0)
    dst = torch.empty_like(src)
    with torch.inference_mode():
        cp = measure(lambda src=src, dst=dst: dst.copy_(src), cfg, block_timer=bt)
    nbytes = 2 * src.numel() * src.element_size()
    del src, dst
    return Peaks(device=str(device), dtype=dtype_name(dtype),
                 gflops=2.0 * n ** 3 / (mm.summary.median * 1e-3) / 1e9,
                 gbps=nbytes / (cp.summary.median * 1e-3) / 1e9, matmul_n=n, copy_bytes=nbytes)


def place(peaks: Peaks, kind_rows) -> list[RooflinePoint]:
    """One point per kind row (AttributionRow) that has counts and time."""
    points = []
    for r in kind_rows:
        if r.intensity is None or r.gflops is None:
            points.append(RooflinePoint(r.name, r.intensity, r.gflops, None, None, None, r.time_share))
            continue
        roof = min(peaks.gflops, r.intensity * peaks.gbps)
        points.append(RooflinePoint(kind=r.name, intensity=r.intensity, gflops=r.gflops, roof_gflops=roof,
                                    efficiency=r.gflops / roof if roof else None,
                                    bound="memory" if r.intensity < peaks.ridge else "compute",
                                    time_share=r.time_share))
    return points
