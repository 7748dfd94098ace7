"""The gate's rules, as pure functions of numbers already counted or measured.

Cost: exact by default; a change beyond its limit fails either way: an increase is a *regression*, a
decrease is *changed* (the baseline no longer describes the model) unless ``allow_decrease``.
Latency: a regression when Mann-Whitney p < ``alpha`` *and* the slowdown ratio exceeds 1 + ``threshold``:
both a detectable and a material slowdown.
"""

from __future__ import annotations

from ..counting.kinds import kind_order
from ..counting.result import METRICS
from .baseline import UNITS
from .result import CheckRow
from .tolerances import limit_of

DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.002


def _row(metric: str, base: int, cur: int, limit: float, allow_decrease: bool, unit: str = "") -> CheckRow:
    change = None if base == 0 else (cur - base) / base
    exceeded = abs(cur - base) > limit * abs(base) if base else cur != base
    if not exceeded:
        verdict = "pass"
    elif cur > base:
        verdict = "regression"
    else:
        verdict = "pass" if allow_decrease else "changed"
    note = "new in this model" if base == 0 and cur else ("gone from this model" if cur == 0 and base else "")
    return CheckRow(metric, base, cur, change, limit, verdict, unit=unit, note=note)


def cost_rows(base_cost: dict, cur_cost: dict, tolerances: dict[str, float], allow_decrease: bool = False
              ) -> list[CheckRow]:
    rows = [_row(m, int(base_cost["totals"][m]), int(cur_cost["totals"][m]), limit_of(m, tolerances),
                 allow_decrease, UNITS[m]) for m in METRICS]
    kinds = sorted(set(base_cost["by_kind"]) | set(cur_cost["by_kind"]), key=lambda k: (kind_order(k), k))
    for kind in kinds:
        b, c = base_cost["by_kind"].get(kind, {}), cur_cost["by_kind"].get(kind, {})
        for m in METRICS:
            bv, cv = int(b.get(m, 0)), int(c.get(m, 0))
            if bv == 0 and cv == 0:
                continue
            metric = f"{m}[{kind}]"
            rows.append(_row(metric, bv, cv, limit_of(metric, tolerances), allow_decrease, UNITS[m]))
    return rows + uncounted_rows(base_cost.get("uncounted_ops", {}), cur_cost.get("uncounted_ops", {}))


def uncounted_rows(base: dict[str, int], cur: dict[str, int]) -> list[CheckRow]:
    """An op uncounted now that the baseline counted (or did not run) fails, whatever the tolerances: the
    totals no longer include its work, so they can no longer be compared. No tolerance applies; an op
    already uncounted in the baseline, or counted again now, passes."""
    rows = []
    for op in sorted(set(base) | set(cur)):
        b, c = int(base.get(op, 0)), int(cur.get(op, 0))
        new = c > 0 and b == 0
        note = ("newly uncounted (no formula): the totals leave its work out" if new
                else "uncounted in the baseline too" if c else "counted now")
        rows.append(CheckRow(f"uncounted[{op}]", b, c, None if b == 0 else (c - b) / b, 0.0,
                             "regression" if new else "pass", unit="calls", note=note))
    return rows


def module_notes(base_cost: dict, cur_cost: dict, limit: int = 5) -> list[str]:
    """Where a cost change sits: top-level modules whose MACs or params moved."""
    b, c = base_cost.get("by_module") or {}, cur_cost.get("by_module") or {}
    moved = []
    for name in sorted(set(b) | set(c)):
        bm, cm = b.get(name, {}), c.get(name, {})
        dm = cm.get("macs", 0) - bm.get("macs", 0)
        dp = cm.get("params", 0) - bm.get("params", 0)
        if dm or dp:
            state = " (new)" if name not in b else (" (gone)" if name not in c else "")
            moved.append((abs(dm) + abs(dp), f"module `{name}`{state}: MACs {dm:+,}, params {dp:+,}"))
    moved.sort(key=lambda t: -t[0])
    return [m for _, m in moved[:limit]]


def latency_row(base_ms: list[float], cur_ms: list[float], *, ratio: float | None = None, p: float | None = None,
                threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA, note: str = "") -> CheckRow:
    """Regression when p < alpha and the slowdown ratio exceeds 1 + threshold."""
    from ..bench import stats

    b, c = stats.median(base_ms), stats.median(cur_ms)
    if ratio is None:
        ratio = c / b
    if p is None:
        p = stats.mann_whitney_p(base_ms, cur_ms)
    slower = p < alpha and ratio > 1.0 + threshold
    return CheckRow("latency", b, c, ratio - 1.0, threshold, "regression" if slower else "pass", unit="ms",
                    p_value=p, note=note or f"regression when Mann-Whitney p < {alpha:g} and ratio > "
                                            f"{1 + threshold:.3g}")
