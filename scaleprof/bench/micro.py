"""Op micro-benchmarks: one layer configuration at a time, on the same tensor or at equal MACs.

- ``activations``: ReLU, ReLU6, SiLU, Hardswish, Sigmoid, GELU (erf and tanh) on one tensor. All read and
  write the tensor once, so achieved GB/s shows which activations cost more than the memory traffic.
- ``convs``: standard 3×3, pointwise 1×1, grouped 3×3 (16 channels a group) and depthwise 3×3 chosen to
  do *the same MACs* (n·h·w·36,864 per output pixel set; depthwise at 4× the side); what differs is
  arithmetic intensity, and with it the time.

The ops of a suite are measured together, as compare measures two models (`compare.interleaved_rounds`):
each warmed up in lockstep until all timings settle, then shuffled interleaved rounds, one block of each op
a round, so that neither warm-up (the first op measured once paid it: ReLU looked cheap beside SiLU) nor
drift of the machine favours one. The rounds stop when every op's 95% CI is within ±`target_ci`, or at
`max_time` seconds for the whole suite (no cap). A row whose CI half-width is over `WIDE_CI` of its median
is flagged ``wide_ci``: too noisy to read a ratio from.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..counting import profile
from ..errors import ScaleprofError
from ..shapes import dtype_name, parse_device
from . import stats
from .compare import interleaved_rounds
from .options import DEFAULT_MAX_TIME
from .timer import MIN_SAMPLES_AT_LIMIT, TimerConfig

SUITES = ("activations", "convs")
WIDE_CI = 0.10  # CI half-width over this fraction of the median: flagged


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
    wide_ci: bool = False  # the 95% CI's half-width is over WIDE_CI of the median (or there is no CI)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MicroResult:
    suite: str
    device: str
    dtype: str
    rows: list[MicroRow]
    rounds: int = 0
    stop_reason: str = ""
    max_time: float = DEFAULT_MAX_TIME

    def to_dict(self) -> dict:
        return {"suite": self.suite, "device": self.device, "dtype": self.dtype,
                "rows": [r.to_dict() for r in self.rows], "rounds": self.rounds, "stop_reason": self.stop_reason,
                "max_time": self.max_time, "wide_ci_threshold": WIDE_CI}

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


class _EveryMedianStop:
    """The micro-benchmarks' stop rule for `interleaved_rounds`: "converged" once every op's median CI is
    within ±target_ci (after min_samples rounds and min_time, checked every ~5% more rounds), "max_time" at
    the limit."""

    def __init__(self, cfg: TimerConfig, t_start: float):
        self.cfg, self.t_start = cfg, t_start
        self.next_check = cfg.min_samples

    def __call__(self, rounds: list, now: float) -> str | None:
        n, cfg = len(rounds), self.cfg
        if n >= self.next_check and now - self.t_start >= min(cfg.min_time, 0.5 * cfg.max_time):
            self.next_check = n + max(2, n // 20)
            ops = zip(*rounds, strict=True)
            if all(stats.ci_within(stats.median_ci(xs), stats.median(xs), cfg.target_ci) for xs in ops):
                return "converged"
        if n >= cfg.max_samples:
            return "max_samples"
        if now - self.t_start >= cfg.max_time and n >= MIN_SAMPLES_AT_LIMIT:
            return "max_time"
        return None


def run_micro(suite: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              max_time: float = DEFAULT_MAX_TIME, target_ci: float = 0.01, shape=(8, 64, 56, 56), side: int = 28,
              batch: int = 1, progress: bool = False, seed: int = 0, clock=time.perf_counter) -> MicroResult:
    """Every op of `suite` measured in shuffled interleaved rounds for at most `max_time` seconds in all."""
    if suite not in SUITES:
        raise ScaleprofError(f"unknown micro-benchmark {suite!r}; use one of {', '.join(SUITES)}")
    if max_time <= 0:
        raise ScaleprofError(f"--max-time must be positive, got {max_time}")
    device = parse_device(device)
    if device.type == "meta":
        raise ScaleprofError("micro-benchmarks need a device that runs: cpu or cuda")
    subjects = []  # (name, config, call, macs, bytes)
    if suite == "activations":
        x = torch.randn(shape, device=device, dtype=dtype)
        for name, mod in _activations():
            subjects.append((name, "x".join(map(str, shape)), lambda mod=mod: mod(x), None,
                             _counted(mod, shape, dtype).bytes))
    else:
        for name, conv, shp, macs, nbytes in conv_configs(side, batch, dtype):
            conv = conv.to(device=device, dtype=dtype).eval()
            xc = torch.randn(shp, device=device, dtype=dtype)
            cfg_s = f"{shp[1]}->{conv.out_channels} k{conv.kernel_size[0]} g{conv.groups} @ {shp[2]}x{shp[3]}"
            subjects.append((name, cfg_s, lambda conv=conv, xc=xc: conv(xc), macs, nbytes))
    cfg = TimerConfig(max_time=max_time, target_ci=target_ci, min_time=0.2, progress=progress, label=suite)

    def report(rounds, elapsed, done=None):
        if done is None:
            print(f"  micro {suite}: {len(rounds)} rounds of {len(subjects)} ops, {elapsed:.1f}/{max_time:g} s",
                  file=sys.stderr, flush=True)

    with torch.inference_mode():
        samples, _, _, reason = interleaved_rounds([s[2] for s in subjects], device, cfg, clock=clock, seed=seed,
                                                   stop=lambda t_start: _EveryMedianStop(cfg, t_start),
                                                   report=report)
    rows = [_row(name, config, xs, macs, nbytes) for (name, config, _, macs, nbytes), xs in zip(subjects, samples,
                                                                                               strict=True)]
    return MicroResult(suite=suite, device=str(device), dtype=dtype_name(dtype), rows=rows,
                       rounds=len(samples[0]), stop_reason=reason, max_time=max_time)


def _row(name, config, samples_ms, macs, nbytes) -> MicroRow:
    summary = stats.summarize(samples_ms)
    med = summary.median
    half = stats.ci_halfwidth_rel(med, summary.ci95)
    return MicroRow(name=name, config=config, median_ms=med, ci95_ms=list(summary.ci95) if summary.ci95 else None,
                    samples=summary.n, macs=macs, bytes=nbytes,
                    gmacs_per_s=(macs / (med * 1e-3) / 1e9) if macs else None, gbps=nbytes / (med * 1e-3) / 1e9,
                    wide_ci=half is None or half > WIDE_CI)
