"""Non-dominated sorting: which candidates no other beats on every metric at once."""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b everywhere and better somewhere (all metrics minimized)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """0 for the front, 1 for the front once the first is removed, and so on (all metrics minimized).

    Equal points share a rank. Quadratic per front: fine for the few hundred candidates of a grid.
    """
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    level = 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)}
        for i in front:
            ranks[i] = level
        left -= front
        level += 1
    return ranks
