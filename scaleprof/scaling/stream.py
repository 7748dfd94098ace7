"""A grid too large to hold (more candidates than ``keep_candidates``, up to options.max_candidates): what a
search keeps of it while its candidates stream past, chunk by chunk, in grid order.

Kept, so that the result and its table are those of the whole grid: the first ``keep`` rows of the ranking
(scoring.rank_key: the same rows, in the same order, with the same ranks, as ranking every candidate), the
Pareto front over (MACs, params, activations) of all feasible candidates, the paper's point, and the rows
``BoundBudget.check_feasible`` names when nothing is feasible (the first, cheapest, dearest and nearest).
Counted over all: candidates, failures, feasible ones, and per architecture its first candidate and how many
share it (a kept row's ``same_arch``). Memory grows with the distinct architectures (as the count cache's
does), not with the candidates. Only the cost objective streams: the others run on every feasible
architecture, and keep every row.
"""

from __future__ import annotations

import math

from .grid import PAPER_POINT
from .pareto import dominates


def _point(r) -> tuple:
    return (r.macs, r.params, r.activations)


class Keeper:
    def __init__(self, keep: int, key, budget):
        self.keep, self.key, self.budget = keep, key, budget
        self.kept: list = []              # at most 2 * keep between trims; the first `keep` by key after
        self.front: list = []             # feasible rows no feasible row dominates
        self.arch_first: dict[str, str] = {}
        self.arch_count: dict[str, int] = {}
        self.feasible_archs: set[str] = set()
        self.extremes: dict[str, object] = {}
        self.paper = None
        self.total = self.failed = self.feasible = 0

    def add(self, row) -> None:
        """One scored row, in grid order."""
        self.total += 1
        if row.status == "failed":
            self.failed += 1
        if row.ok:
            if row.arch in self.arch_first:
                row.duplicate_of = self.arch_first[row.arch]
            else:
                self.arch_first[row.arch] = row.key
            self.arch_count[row.arch] = self.arch_count.get(row.arch, 0) + 1
            self._extremes(row)
        if row.feasible:
            self.feasible += 1
            self.feasible_archs.add(row.arch)
            self._front(row)
        if (row.alpha, row.beta, row.gamma) == PAPER_POINT:
            self.paper = row
        self.extremes.setdefault("first", (0, row))
        self.kept.append(row)
        if len(self.kept) >= 2 * self.keep:
            self._trim()

    def _extremes(self, row) -> None:
        """The first row (in grid order) of least and most MACs, and nearest the formula's and MACs' target."""
        b = self.budget
        keys = {"cheapest": row.macs, "dearest": -row.macs,
                "near_formula": abs(row.formula_ratio / b.formula_target - 1),
                "near_macs": abs(math.log(row.macs / b.target_macs)) if row.macs and b.target_macs else math.inf}
        for name, k in keys.items():
            held = self.extremes.get(name)
            if held is None or k < held[0]:
                self.extremes[name] = (k, row)

    def _front(self, row) -> None:
        p = _point(row)
        if any(dominates(_point(f), p) for f in self.front):
            return
        self.front = [f for f in self.front if not dominates(p, _point(f))] + [row]

    def _trim(self) -> None:
        self.kept.sort(key=self.key)
        del self.kept[self.keep:]

    def ranked(self) -> list:
        """The kept rows in rank order (the first ``keep``, then the front's and the paper's point not among
        them), with rank, pareto and same_arch set; pareto_rank only on the front (0): behind it, fronts need
        every candidate."""
        self._trim()
        kept = {id(r) for r in self.kept}   # the ranking's first rows: their ranks are the whole grid's
        seen = set(kept)
        extra = [r for r in [*self.front, self.paper] if r is not None and id(r) not in seen and not seen.add(id(r))]
        rows = sorted(self.kept + extra, key=self.key)
        front = {id(r) for r in self.front}
        rank = 0
        for r in rows:
            if self.key(r)[0] == 0:
                rank += 1
                r.rank = rank if id(r) in kept else None   # behind the kept rows: rank unknown
                r.pareto = id(r) in front
                if r.pareto:
                    r.pareto_rank = 0
            if r.ok:
                r.extra["same_arch"] = self.arch_count[r.arch]
        return rows

    def for_checks(self) -> list:
        """Rows for BoundBudget.check_feasible: the ones it names (each the first of its kind in grid order),
        in grid order, then the kept ones."""
        named = {id(row): row for _, row in self.extremes.values()}
        return sorted(named.values(), key=lambda r: r.index) + self.kept

    def counts(self) -> dict:
        return {"candidates_total": self.total, "candidates_failed": self.failed, "feasible_total": self.feasible,
                "feasible_architectures": len(self.feasible_archs), "architectures": len(self.arch_count),
                "duplicates": sum(n - 1 for n in self.arch_count.values())}
