"""The measurement loop under a fake clock: deterministic timings, so the stopping rules can be checked."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from scaleprof.bench.timer import CpuBlockTimer, TimerConfig, calls_per_block, measure


class FakeClock:
    """A clock that moves only when told: by `tick` per read and by each fake call's duration."""

    def __init__(self, tick: float = 0.0):
        self.t = 0.0
        self.tick = tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def fake_fn(clock: FakeClock, durations):
    it = iter(durations)

    def fn():
        clock.t += next(it)

    return fn


def run(durations, cfg, tick=0.0):
    clock = FakeClock(tick)
    return measure(fake_fn(clock, durations), cfg, block_timer=CpuBlockTimer(clock), clock=clock), clock


def test_converges_once_ci_within_one_percent():
    rng = np.random.default_rng(0)
    durations = (1e-3 * (1 + 0.02 * rng.uniform(-1, 1, 100_000))).tolist()
    cfg = TimerConfig(max_time=1000.0, target_ci=0.01, min_samples=10, min_time=0.0)
    m, _ = run(durations, cfg)
    assert m.stop_reason == "converged"
    assert m.calls_per_block == 1  # the fake clock costs nothing to read
    xs = np.sort(np.asarray(m.samples_ms))
    n = xs.size
    assert n >= 10
    # the CI by hand: the widest symmetric pair of order statistics with binomial coverage >= 95%
    lo = max(i for i in range(n) if binom.cdf(i, n, 0.5) <= 0.025)
    med = np.median(xs)
    assert xs[lo] >= 0.99 * med and xs[n - 1 - lo] <= 1.01 * med
    assert m.summary.ci95 == (xs[lo], xs[n - 1 - lo])
    # uniform noise of ±2%: the CI reaches ±1% after a few dozen samples, long before the time limit
    assert m.elapsed_s < 1.0


def test_stops_at_time_limit_when_noise_is_high():
    rng = np.random.default_rng(1)
    durations = (1e-3 * rng.lognormal(0.0, 1.0, 100_000)).tolist()
    cfg = TimerConfig(max_time=2.0, target_ci=0.01, min_time=0.0)
    m, clock = run(durations, cfg)
    assert m.stop_reason == "max_time"
    assert m.elapsed_s >= 2.0
    assert m.elapsed_s < 2.0 + max(durations[: 10 * len(m.samples_ms) + 100])
    lo, hi = m.summary.ci95
    assert not (lo >= 0.99 * m.summary.median and hi <= 1.01 * m.summary.median)


def test_time_limit_leaves_at_least_six_samples():
    cfg = TimerConfig(max_time=2.0, min_time=0.0)
    m, _ = run([1.0] * 100, cfg)  # one second a call, two seconds allowed
    assert m.stop_reason in ("max_time", "converged")
    assert len(m.samples_ms) >= 6
    assert m.summary.ci95 is not None


def test_cold_call_is_timed_apart_and_warmup_absorbs_drift():
    # first call 50 ms, then 10 calls drifting from 5 ms down to 1 ms, then a steady 1 ms
    drift = np.linspace(5e-3, 1e-3, 10).tolist()
    durations = [50e-3] + drift + [1e-3] * 10_000
    cfg = TimerConfig(max_time=100.0, min_time=0.0, warmup_window=5, warmup_tol=0.02)
    m, _ = run(durations, cfg)
    assert m.cold_ms == pytest.approx(50.0)
    assert m.warmup_blocks >= 10 + 5  # the drift, then windows that agree
    assert max(m.samples_ms) == pytest.approx(1.0)
    assert m.summary.median == pytest.approx(1.0)


def test_calls_per_block_keep_overhead_under_budget():
    assert calls_per_block(1e-6, 1e-7, 1e-3) == 100
    assert calls_per_block(1e-3, 1e-7, 1e-3) == 1
    assert calls_per_block(1e-6, 0.0, 1e-3) == 1
    for call_s in (1e-7, 3e-6, 1e-5, 1e-4):
        k = calls_per_block(call_s, 5e-8, 1e-3)
        assert 5e-8 <= 1e-3 * k * call_s * (1 + 1e-9)
        assert k == 1 or 5e-8 > 1e-3 * (k - 1) * call_s


def test_blocks_sized_from_measured_clock_overhead():
    # each clock read costs 50 ns; a call costs 10 us: blocks must hold >= 5e-8 / (1e-3 * 1e-5) = 5 calls
    cfg = TimerConfig(max_time=0.5, min_time=0.0)
    m, _ = run([1e-5] * 1_000_000, cfg, tick=5e-8)
    assert m.calls_per_block == math.ceil(5e-8 / (1e-3 * 1e-5))
    # per-call samples carry the read cost divided over the block: (5 * 10 us + 50 ns) / 5
    assert m.summary.median == pytest.approx((5 * 1e-5 + 5e-8) / 5 * 1e3, rel=1e-6)


def test_progress_goes_to_stderr(capsys):
    rng = np.random.default_rng(3)
    durations = (1e-2 * rng.lognormal(0.0, 1.0, 10_000)).tolist()
    cfg = TimerConfig(max_time=6.0, min_time=0.0, progress=True, progress_every=2.0, label="fake")
    run(durations, cfg)
    out = capsys.readouterr()
    assert out.out == ""
    assert "fake:" in out.err and "samples" in out.err
