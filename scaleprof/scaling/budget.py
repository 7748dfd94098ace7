"""The budget a candidate must meet: a cost ratio to the base (``2x``) or absolute MACs (``0.8G``).

Tolerances are relative: ``--tolerance 0.05`` accepts a real cost within 5% of the target (2x ± 0.1) and an
α·β²·γ² within 5% of its target (2 ± 0.1, so the paper's 1.9203 passes). A leading ``<=`` makes the budget
a ceiling (anything up to target·(1 + tolerance)) instead of a band. A budget in milliseconds (``25ms``,
``<=25ms``) is a latency budget: every counted candidate goes on to the objectives, and the
predicted-latency objective judges it on its predicted ms (``meets_ms``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import ScaleprofError

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_RE = re.compile(r"^\s*(<=)?\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ms|[xkmgt]?)\s*$", re.IGNORECASE)
CONSTRAINTS = ("cost", "formula", "both")


@dataclass(frozen=True)
class Budget:
    spec: str
    kind: str              # "relative" (ratio to the base's MACs), "absolute" (MACs) or "latency" (ms)
    value: float           # the ratio, MACs, or ms
    tolerance: float
    ceiling: bool = False  # "<=": only an upper bound

    @property
    def latency(self) -> bool:
        return self.kind == "latency"

    def target_macs(self, base_macs: int) -> float | None:
        """None for a latency budget (no MACs target)."""
        if self.latency:
            return None
        return self.value * base_macs if self.kind == "relative" else self.value

    def target_ratio(self, base_macs: int) -> float | None:
        if self.latency:
            return None
        return self.value if self.kind == "relative" else self.value / base_macs

    def meets(self, macs: int, base_macs: int) -> bool:
        """A latency budget is not judged on MACs: every counted candidate goes on (see meets_ms)."""
        return True if self.latency else within(macs / self.target_macs(base_macs), self.tolerance, self.ceiling)

    def meets_ms(self, ms: float) -> bool:
        return within(ms / self.value, self.tolerance, self.ceiling)

    def describe(self, base_macs: int | None = None) -> str:
        head = "<= " if self.ceiling else ""
        tol = f" +{self.tolerance:.0%}" if self.ceiling else f" ±{self.tolerance:.0%}"
        if self.latency:
            return f"{head}{self.value:g} ms predicted{tol}"
        if self.kind == "relative":
            s = f"{head}{self.value:g}x the base"
            if base_macs:
                s += f" ({self.value * base_macs / 1e9:.3f} GMACs)"
        else:
            s = f"{head}{self.value / 1e9:.4g} GMACs"
            if base_macs:
                s += f" ({self.value / base_macs:.2f}x the base)"
        return s + tol

    def to_dict(self, base_macs: int | None = None) -> dict:
        d = {"spec": self.spec, "kind": self.kind, "value": self.value, "tolerance": self.tolerance,
             "ceiling": self.ceiling}
        if self.latency:
            d["target_ms"] = self.value
            if base_macs:
                d["base_macs"] = base_macs
        elif base_macs:
            d["target_macs"] = round(self.target_macs(base_macs))
            d["target_ratio"] = self.target_ratio(base_macs)
            d["base_macs"] = base_macs
        return d


def within(ratio: float, tolerance: float, ceiling: bool = False) -> bool:
    """Is ``ratio`` (value / target) within the relative tolerance? (a ceiling: only from above)"""
    eps = 1e-12   # 2.1 / 2 - 1 must count as 0.05
    if ceiling:
        return ratio <= 1.0 + tolerance + eps
    return abs(ratio - 1.0) <= tolerance + eps


def check_tolerance(tolerance) -> float:
    try:
        t = float(tolerance)
    except (TypeError, ValueError):
        raise ScaleprofError(f"--tolerance must be a number, got {tolerance!r}") from None
    if not (math.isfinite(t) and 0 <= t < 1):
        raise ScaleprofError(f"--tolerance is relative (0.05 = ±5%): 0 <= tolerance < 1, got {tolerance!r}")
    return t


def parse_budget(spec, tolerance: float, phi: float = 1.0) -> Budget:
    """``"2x"`` (ratio to the base), ``"0.8G"``/``"800M"``/``"8e8"`` (MACs), optionally ``"<=2x"``.

    None means the paper's doubling per unit of φ: ``2^φ x``.
    """
    tol = check_tolerance(tolerance)
    if spec is None:
        spec = f"{2 ** phi:g}x"
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = repr(spec)
    m = _RE.match(str(spec))
    if not m:
        raise ScaleprofError(f"--budget {spec!r}: expected a ratio like 2x, MACs like 0.8G, 800M or 8e8, or "
                             "a latency like 25ms (optionally with a leading <=)")
    ceiling, number, unit = bool(m.group(1)), float(m.group(2)), m.group(3).lower()
    if not (math.isfinite(number) and number > 0):
        raise ScaleprofError(f"--budget {spec!r} must be positive")
    if unit == "x":
        return Budget(str(spec).strip(), "relative", number, tol, ceiling)
    if unit == "ms":
        return Budget(str(spec).strip(), "latency", number, tol, ceiling)
    if not unit and number < 1000:
        raise ScaleprofError(f"--budget {spec!r}: a bare number is MACs; did you mean {number:g}x (a ratio)?")
    return Budget(str(spec).strip(), "absolute", number * _UNITS[unit], tol, ceiling)


def formula_target(budget: Budget, base_macs: int, phi: float) -> float:
    """What α·β²·γ² should be: the budget's ratio per unit of φ (2 for the default 2^φ x; 2, the paper's,
    for a latency budget, which names no cost ratio)."""
    if budget.latency:
        return 2.0
    return budget.target_ratio(base_macs) ** (1.0 / phi)


def check_constraint(constraint: str) -> str:
    if constraint not in CONSTRAINTS:
        raise ScaleprofError(f"--constraint must be one of {', '.join(CONSTRAINTS)}, got {constraint!r}")
    return constraint


def _abc(r) -> str:
    return f"α={r.alpha:g} β={r.beta:g} γ={r.gamma:g}"


@dataclass(frozen=True)
class BoundBudget:
    """The budget bound to φ and the base's count: what each candidate is judged against."""

    budget: Budget
    base: dict             # the base's knobs and count (macs, params, activations, ...)
    phi: float
    constraint: str        # what decides feasible: cost | formula | both

    @classmethod
    def bind(cls, options, phi: float, base: dict) -> BoundBudget:
        """``options``: a BudgetOptions (budget, tolerance, constraint)."""
        return cls(parse_budget(options.budget, options.tolerance, phi), base, phi, options.constraint)

    @property
    def tolerance(self) -> float:
        return self.budget.tolerance

    @property
    def ceiling(self) -> bool:
        return self.budget.ceiling

    @property
    def base_macs(self) -> int:
        return self.base["macs"]

    @property
    def target_macs(self) -> float:
        return self.budget.target_macs(self.base_macs)

    @property
    def target_ratio(self) -> float:
        return self.budget.target_ratio(self.base_macs)

    @property
    def formula_target(self) -> float:
        return formula_target(self.budget, self.base_macs, self.phi)

    def judge(self, formula_ratio: float, macs: int | None) -> tuple[bool, bool, bool]:
        """(formula_ok, budget_ok, feasible) of a candidate; ``macs`` None: it was not counted."""
        formula_ok = within(formula_ratio / self.formula_target, self.tolerance, self.ceiling)
        budget_ok = macs is not None and self.budget.meets(macs, self.base_macs)
        feasible = macs is not None and {"cost": budget_ok, "formula": formula_ok,
                                         "both": budget_ok and formula_ok}[self.constraint]
        return formula_ok, budget_ok, feasible

    def to_dict(self) -> dict:
        d = self.budget.to_dict(self.base_macs)
        d["describe"] = self.budget.describe(self.base_macs)
        return d

    @property
    def target_ms(self) -> float | None:
        return self.budget.value if self.budget.latency else None

    def check_feasible_ms(self, rows) -> None:
        """A latency budget, once candidates are predicted: raise (one line, naming the nearest) when none
        meets it."""
        if not self.budget.latency or any(r.feasible for r in rows):
            return
        pred = [r for r in rows if r.status == "ok" and r.extra.get("predicted_ms") is not None]
        if not pred:
            raise ScaleprofError(f"no candidate could be predicted against the budget {self.budget.describe()}")
        fast = min(pred, key=lambda r: r.extra["predicted_ms"])
        slow = max(pred, key=lambda r: r.extra["predicted_ms"])
        raise ScaleprofError(f"no candidate meets the budget {self.budget.describe()}: predicted from "
                             f"{fast.extra['predicted_ms']:.2f} ms ({_abc(fast)}) to {slow.extra['predicted_ms']:.2f} "
                             f"ms ({_abc(slow)}); widen --tolerance or the ranges")

    def check_feasible(self, rows) -> None:
        """Raise (one line, naming the nearest candidates) when no candidate is feasible."""
        ok = [r for r in rows if r.status == "ok"]
        if not ok:
            first = rows[0] if rows else None
            raise ScaleprofError("every candidate failed" + (f"; {_abc(first)}: {first.reason}" if first else ""))
        if any(r.feasible for r in rows):
            return
        cheap = min(ok, key=lambda r: r.macs)
        dear = max(ok, key=lambda r: r.macs)
        span = (f"the cheapest is {_abc(cheap)} at {cheap.macs / 1e9:.4f} GMACs ({cheap.cost_ratio:.3f}x), "
                f"the dearest {_abc(dear)} at {dear.macs / 1e9:.4f} GMACs ({dear.cost_ratio:.3f}x)")
        f_target, tol = self.formula_target, self.tolerance
        if self.constraint == "formula" or self.budget.latency:
            near = min(ok, key=lambda r: abs(r.formula_ratio / f_target - 1))
            raise ScaleprofError(f"no candidate has α·β²·γ² within {tol:.0%} of {f_target:.4g}: the nearest is "
                                 f"{_abc(near)} with {near.formula_ratio:.4f}; widen the ranges or --tolerance")
        both = " with α·β²·γ² also in range" if self.constraint == "both" else ""
        near = min(ok, key=lambda r: abs(math.log(r.macs / self.target_macs)))
        raise ScaleprofError(f"no candidate meets the budget {self.budget.describe(self.base_macs)}{both}: {span}; "
                             f"the nearest is {_abc(near)} at {near.cost_ratio:.3f}x (widen --tolerance or refine "
                             "the ranges)")
