"""The measurement loop: cold start, warm-up until timings settle, blocks of calls, adaptive stop.

- The first call is timed on its own (`cold_ms`): it pays for lazy initialisation, allocator growth,
  oneDNN primitive creation or torch.compile's compilation, none of which is steady-state latency.
- Warm-up runs blocks until the median of the last `warmup_window` blocks is within `warmup_tol` of the
  median of the `warmup_window` before them (timings stopped drifting), or until the warm-up cap.
- Calls are grouped in blocks of `k` so that the cost of reading the clock is under `overhead_budget`
  (0.1%) of a block; each sample is one block's time / k, in milliseconds. For a model taking more than
  ~0.1 ms a block is one call, so samples are single-call latencies.
- On CUDA a block is timed with CUDA events; the device is synchronised before the start event is
  recorded and after the end event, so the synchronisation is outside the timed region.
- Measurement stops when the 95% distribution-free CI of the median lies within ±`target_ci` of the
  median (after `min_samples` and `min_time`), or when `max_time` seconds (warm-up included, cold start not) have passed;
  the time limit still leaves at least 6 samples, the fewest that give a 95% CI.

- CPU timings are of glibc malloc's steady state (`env.steady_allocator`, set before the first one).

The clock and the block timer are parameters, so the stopping rules are tested with a fake clock.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import stats
from .env import steady_allocator

Clock = Callable[[], float]

# The time limit never leaves fewer samples than this (the smallest n with a 95% median CI).
MIN_SAMPLES_AT_LIMIT = stats.MEDIAN_CI_MIN_SAMPLES


@dataclass
class TimerConfig:
    max_time: float = 10.0          # seconds for warm-up + measurement
    target_ci: float = 0.01         # stop when the 95% CI of the median is within ±target_ci of it
    min_samples: int = 10           # never stop on the CI rule before this many samples ...
    min_time: float = 1.0           # ... or before this many seconds of measuring (at most max_time / 2),
                                    # so a short transient regime cannot pass for the steady state
    max_samples: int = 100_000
    warmup_window: int = 5          # blocks per warm-up window
    warmup_tol: float = 0.02        # windows' medians this close = settled
    warmup_max_frac: float = 0.3    # warm-up cap as a fraction of max_time
    overhead_budget: float = 0.001  # clock overhead / block time
    progress: bool = False          # a line on stderr every `progress_every` seconds
    progress_every: float = 2.0
    label: str = ""


@dataclass
class Measurement:
    """What one measurement produced. Times in ms; `samples_ms` are per-call times, one per block."""

    samples_ms: list[float]
    cold_ms: float
    calls_per_block: int
    warmup_blocks: int
    warmup_ms: float
    stop_reason: str  # converged | max_time | max_samples
    elapsed_s: float
    summary: stats.Summary = field(repr=False)

    def details(self) -> dict:
        return {"stop_reason": self.stop_reason, "calls_per_block": self.calls_per_block,
                "warmup_blocks": self.warmup_blocks, "warmup_ms": self.warmup_ms,
                "elapsed_s": self.elapsed_s, "cv": self.summary.cv}


class CpuBlockTimer:
    """Wall-clock blocks: `clock` read before and after k calls."""

    def __init__(self, clock: Clock = time.perf_counter):
        self.clock = clock

    def overhead_s(self, reps: int = 200) -> float:
        """Median cost of one pair of clock reads (what a block pays on top of its calls)."""
        c = self.clock
        diffs = []
        for _ in range(reps):
            t0 = c()
            t1 = c()
            diffs.append(t1 - t0)
        diffs.sort()
        return max(diffs[len(diffs) // 2], 0.0)

    def time_block(self, fn: Callable[[], object], k: int) -> float:
        c = self.clock
        t0 = c()
        for _ in range(k):
            fn()
        return c() - t0


class CudaBlockTimer:
    """CUDA events around a block; synchronisation happens outside the two events."""

    # Event timestamps have a resolution of about half a microsecond.
    EVENT_RESOLUTION_S = 0.5e-6

    def __init__(self, device=None):
        import torch

        self.torch = torch
        self.device = device
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def overhead_s(self, reps: int = 0) -> float:
        return self.EVENT_RESOLUTION_S

    def time_block(self, fn: Callable[[], object], k: int) -> float:
        cuda = self.torch.cuda
        # The events go on the model's device's stream: a bare record() uses the *current* device's,
        # which is not the model's on cuda:1.
        stream = cuda.current_stream(self.device)
        cuda.synchronize(self.device)
        self.start.record(stream)
        for _ in range(k):
            fn()
        self.end.record(stream)
        self.end.synchronize()
        return self.start.elapsed_time(self.end) / 1000.0


def block_timer_for(device) -> CpuBlockTimer | CudaBlockTimer:
    dev = str(device)
    return CudaBlockTimer(device) if dev.startswith("cuda") else CpuBlockTimer()


def calls_per_block(call_s: float, overhead_s: float, budget: float) -> int:
    """Fewest calls per block that keep the timer's overhead under `budget` of the block."""
    if overhead_s <= 0:
        return 1
    return min(1_000_000, max(1, math.ceil(overhead_s / (budget * max(call_s, 1e-12)))))


def _settled(xs: list[float], w: int, tol: float) -> bool:
    if len(xs) < 2 * w:
        return False
    last = stats.median(xs[-w:])
    prev = stats.median(xs[-2 * w:-w])
    return abs(last - prev) <= tol * prev


def warm_up(timed: Sequence[Callable[[int], float]], cfg: TimerConfig, *, clock: Clock, t_start: float,
            overhead_s: float = 0.0) -> tuple[list[list[float]], list[int]]:
    """Warm-up shared by every measuring loop: `timed[i](k)` runs k calls of subject i and returns the
    seconds per call. Rounds run every subject once, until each one's timings settle (`_settled`) or the
    warm-up cap (a fraction of max_time since `t_start`). Blocks grow so that `overhead_s` (the timer's
    own cost; 0 keeps one call a block) stays under the budget. Returns the per-call times of every
    subject's warm-up blocks and the calls per block each should be measured with."""
    warm: list[list[float]] = [[] for _ in timed]
    ks = [1] * len(timed)
    w = cfg.warmup_window
    while True:
        for i, run in enumerate(timed):
            warm[i].append(run(ks[i]))
            ks[i] = max(ks[i], calls_per_block(stats.median(warm[i][-w:]), overhead_s, cfg.overhead_budget))
        if (all(_settled(xs, w, cfg.warmup_tol) for xs in warm)
                or clock() - t_start >= cfg.max_time * cfg.warmup_max_frac):
            break
    return warm, [calls_per_block(stats.median(xs[-w:]), overhead_s, cfg.overhead_budget) for xs in warm]


def stop_reason(cfg: TimerConfig, samples: list[float], now: float, t_start: float, t_meas: float, *,
                check_ci: bool = True) -> str | None:
    """The adaptive stop every measuring loop shares: "converged" once the 95% CI of the median is within
    the target (after min_samples and a minimum time), else "max_samples", else "max_time" at the limit."""
    n = len(samples)
    if (check_ci and n >= cfg.min_samples and now - t_meas >= min(cfg.min_time, 0.5 * cfg.max_time)
            and stats.ci_within(stats.median_ci(samples), stats.median(samples), cfg.target_ci)):
        return "converged"
    if n >= cfg.max_samples:
        return "max_samples"
    if now - t_start >= cfg.max_time and n >= MIN_SAMPLES_AT_LIMIT:
        return "max_time"
    return None


class MedianStop:
    """The default stop rule of `sample_until_stop`: `stop_reason` on the samples so far, checking the CI
    (which sorts, O(n log n)) only after every ~2% more samples."""

    def __init__(self, cfg: TimerConfig, t_start: float, t_meas: float):
        self.cfg, self.t_start, self.t_meas = cfg, t_start, t_meas
        self.next_check = cfg.min_samples

    def __call__(self, samples: list, now: float) -> str | None:
        n = len(samples)
        check_ci = n >= self.next_check
        if check_ci:
            self.next_check = n + max(1, n // 50)
        return stop_reason(self.cfg, samples, now, self.t_start, self.t_meas, check_ci=check_ci)


StopRule = Callable[[list, float], "str | None"]
Report = Callable[..., None]


def sample_until_stop(take: Callable[[], object], cfg: TimerConfig, *, clock: Clock, t_start: float,
                      stop: Callable[[float], StopRule] | None = None,
                      report: Report | None = None) -> tuple[list, str]:
    """The measuring loop every timer shares: ``take()`` one sample at a time until the stop rule says stop
    (the run began at ``t_start``, warm-up included), with a progress line now and then.

    ``stop(t_meas)`` makes the rule for a loop whose measuring began at ``t_meas``: a callable
    ``(samples, now) -> reason or None``; default `MedianStop` (samples in ms). ``report(samples, elapsed,
    done=None)`` prints progress when ``cfg.progress``; default one line of median and CI, and a last one when
    the loop ends. Returns the samples and why it stopped."""
    samples: list = []
    t_meas = last_print = clock()
    rule = stop(t_meas) if stop is not None else MedianStop(cfg, t_start, t_meas)
    if report is None:
        def report(xs, elapsed, done=None):
            _progress(cfg, xs, elapsed, done=done)
    while True:
        samples.append(take())
        now = clock()
        reason = rule(samples, now)
        if reason:
            break
        if cfg.progress and now - last_print >= cfg.progress_every:
            last_print = now
            report(samples, now - t_start)
    if cfg.progress and now - t_start >= cfg.progress_every:
        report(samples, now - t_start, done=reason)
    return samples, reason


def measure(fn: Callable[[], object], config: TimerConfig | None = None, *,
            block_timer: CpuBlockTimer | CudaBlockTimer | None = None, clock: Clock | None = None,
            cold: bool = True) -> Measurement:
    """Time `fn()` (no arguments) by the rules in the module docstring.

    `clock` bounds the run (the time limit); `block_timer` times blocks. Both default to the wall clock;
    tests pass a fake clock to both.
    """
    cfg = config or TimerConfig()
    if cfg.max_time <= 0:
        raise ValueError("max_time must be positive")
    steady_allocator()
    if clock is None:
        clock = block_timer.clock if isinstance(block_timer, CpuBlockTimer) else time.perf_counter
    bt = block_timer or CpuBlockTimer(clock)
    overhead = bt.overhead_s()

    cold_ms = float("nan")
    if cold:
        cold_ms = bt.time_block(fn, 1) * 1000.0

    # Warm-up: per-call times of blocks; k grows as the estimate of a call's time firms up.
    t_start = clock()
    (warm,), (k,) = warm_up([lambda k: bt.time_block(fn, k) / k], cfg, clock=clock, t_start=t_start,
                            overhead_s=overhead)
    warmup_ms = (clock() - t_start) * 1000.0

    samples, reason = sample_until_stop(lambda: bt.time_block(fn, k) / k * 1000.0, cfg, clock=clock,
                                        t_start=t_start)
    elapsed = clock() - t_start
    return Measurement(samples_ms=samples, cold_ms=cold_ms, calls_per_block=k, warmup_blocks=len(warm),
                       warmup_ms=warmup_ms, stop_reason=reason, elapsed_s=elapsed,
                       summary=stats.summarize(samples))


def _progress(cfg: TimerConfig, samples: list[float], elapsed: float, done: str | None = None) -> None:
    med = stats.median(samples)
    half = stats.ci_halfwidth_rel(med, stats.median_ci(samples))
    width = f"±{100 * half:.2f}%" if half is not None else "n/a"
    tail = f" ({done})" if done else ""
    label = f"{cfg.label}: " if cfg.label else ""
    print(f"  {label}{len(samples)} samples, median {med:.4g} ms, 95% CI {width} "
          f"[target ±{100 * cfg.target_ci:g}%], {elapsed:.1f}/{cfg.max_time:g} s{tail}",
          file=sys.stderr, flush=True)
