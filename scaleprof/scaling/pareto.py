"""Non-dominated sorting: which candidates no other beats on every metric at once."""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b everywhere and better somewhere (all metrics minimized)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """0 for the front, 1 for the front once the first is removed, and so on (all metrics minimized).

    Equal points share a rank, so each distinct point is ranked once (a grid repeats architectures: the fine
    grid's 16,926 candidates are 2,356 points); each front is found with ``dominates`` done on whole arrays,
    a block of rows at a time (memory stays bounded for a million candidates).
    """
    import numpy as np

    index: dict[tuple, int] = {}
    of = [index.setdefault(tuple(p), len(index)) for p in points]
    if not index:
        return []
    pts = np.asarray(list(index), dtype=float)       # exact: counts stay far below 2^53
    ranks = np.full(len(pts), -1)
    left = np.arange(len(pts))
    level = 0
    while left.size:
        q = pts[left]
        dominated = np.zeros(len(left), dtype=bool)
        step = max(1, _BLOCK // len(left))
        for start in range(0, len(left), step):
            a = q[start:start + step, None, :]       # the possible dominators, against every point left
            dominated |= ((a <= q[None]).all(-1) & (a < q[None]).any(-1)).any(0)
        ranks[left[~dominated]] = level
        left = left[dominated]
        level += 1
    return [int(ranks[i]) for i in of]


_BLOCK = 1 << 22      # pairs compared at once
