"""A model's ops replayed in the model's own order, each timed where it runs: calibration's op samples.

An op replayed alone, call after call, finds its weights and input in the core's caches and the branch
predictors trained on it; inside a model it does not (a whole forward passed since its weights were read).
Measured on this project's 2-core CPU, thread clock, batch 1: the isolated replays of MobileNet-V2's ops
summed to 0.65-0.70 of the whole model (EfficientNet-B0 0.71, MobileNet-V3-Large 0.62, ResNet-50 1.00),
evicting the core's L2 before every call moved that to 0.68, evicting L3 too overshot (1.74). Replayed
as a chain, every op of the forward in order on its own real tensors, each timed alone with the clock
and its fastest of the passes kept, they summed to 0.95-1.05 of the whole model over seven zoo models
(GoogLeNet 1.05-1.11), in about the time of a few forwards.

``chain_times`` returns each event's ms (None where the replay failed), and the model's own forward's
when given, timed between the passes; ``per_key`` the median over the positions a configuration holds in
the forward (a stage's repeated blocks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..bench.timer import CpuBlockTimer
from .harvest import OpEvent
from .replay import replayable

WARM_PASSES = 2
MIN_PASSES, MAX_PASSES = 5, 20
CHAIN_TIME_S = 1.5          # per chain, after warm-up: passes = this over one pass's time, within the bounds
FLOOR_MS = 1e-4             # a view costs a clock read's jitter: never 0 or negative


def chain_bytes(events: Sequence[OpEvent]) -> int:
    """What the chain's real tensors hold, at most: every event's own inputs and outputs (its least traffic)."""
    return int(sum(e.bytes for e in events))


def passes_for(pass_s: float, time_s: float = CHAIN_TIME_S) -> int:
    return int(min(MAX_PASSES, max(MIN_PASSES, math.ceil(time_s / max(pass_s, 1e-9)))))


def chain_times(events: Sequence[OpEvent], device, clock: Callable[[], float], *, time_s: float = CHAIN_TIME_S,
                whole: Callable[[], object] | None = None) -> tuple[list[float | None], float | None]:
    """Each event's fastest time (ms) over the passes, the events run in order on real tensors; with
    ``whole`` (the model's own forward), that forward run twice after every pass and the second timed,
    and its fastest (ms):
    the chain and the model it stands for measured in the same seconds, so that what the machine's other
    processes do to both is the same (on a shared machine a model timed minutes apart moves 10-30%)."""
    fns: list[Callable[[], object] | None] = []
    for e in events:
        try:
            fns.append(replayable(e, device))
        except Exception:      # an event that cannot be built is predicted by its group
            fns.append(None)
    pair = CpuBlockTimer(clock).overhead_s()     # one clock pair, taken off each op's time
    best = np.full(len(fns), np.inf)
    best_whole = math.inf
    n_passes = WARM_PASSES + MIN_PASSES
    p = 0
    while p < n_passes:
        t_pass = clock()
        for i, f in enumerate(fns):
            if f is None:
                continue
            t0 = clock()
            try:
                f()
            except Exception:
                fns[i] = None
                continue
            dt = clock() - t0
            if p >= WARM_PASSES and dt < best[i]:
                best[i] = dt
        pass_s = clock() - t_pass
        if whole is not None:
            # twice, the second timed: a forward right after a chain pass finds the chain's tensors in
            # the caches, not its own weights (here 5-15% slower than back to back, as a model runs)
            whole()
            t0 = clock()
            whole()
            if p >= WARM_PASSES:
                best_whole = min(best_whole, clock() - t0)
        if p == WARM_PASSES - 1:
            n_passes = WARM_PASSES + passes_for(pass_s * (3 if whole is not None else 1), time_s)
        p += 1
    ops = [None if f is None or not np.isfinite(b) else max((b - pair) * 1000.0, FLOOR_MS)
           for f, b in zip(fns, best, strict=True)]
    return ops, (best_whole * 1000.0 if math.isfinite(best_whole) else None)


def per_key(keys: Sequence[str], times: Sequence[float | None]) -> dict[str, float | None]:
    """The median over a configuration's positions (None when no position was timed)."""
    got: dict[str, list[float]] = {}
    for k, t in zip(keys, times, strict=True):
        got.setdefault(k, [])
        if t is not None:
            got[k].append(t)
    return {k: (float(np.median(v)) if v else None) for k, v in got.items()}
