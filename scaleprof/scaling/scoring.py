"""Score and rank the candidates from the objectives' records (objectives.py says what each measures).

Cost alone scores every counted candidate by the cost objective. Otherwise a candidate's score comes from
its architecture's records: a failed objective fails the candidate, none run (outside the budget) skips
it; each objective puts its metrics on the row (``apply``); with an accuracy and a latency the score is
MnasNet's reward, else the leading objective's (``primary``). Ranking: feasible by score (ties: fewer
activations where the cost objective scores a ceiling budget, then α·β²·γ² nearest its target, then grid
order), then the rest by distance to the budget; Pareto fronts over (MACs, params, activations) and
latency ties among the feasible.
"""

from __future__ import annotations

import math

from .objectives import LatencyObjective, ScoreContext, primary, reward
from .pareto import pareto_ranks


def score(rows, objectives: list, records: dict, budget, options) -> None:
    """``records``: (arch, objective name) -> the objective's record; ``budget``: a BoundBudget;
    ``options``: the ObjectiveOptions."""
    lead = primary(objectives)
    extra = [o for o in objectives if o.where is not None]
    ctx = ScoreContext(budget, options, LatencyObjective.reward_target(records, budget, options))
    base_activations = budget.base["activations"]
    for r in rows:
        if r.status != "ok":
            continue
        r.activation_ratio = r.activations / base_activations if base_activations else None
        if not extra:
            r.score = lead.score(r, {}, ctx)
            continue
        metrics, failed = _metrics(r, extra, records)
        if failed:
            r.status, r.reason, r.feasible = "failed", failed, False
            continue
        if not metrics:
            r.status, r.reason = "skipped", "outside the budget: objective not run"
            continue
        r.metrics = metrics
        for o in extra:
            if o.name in metrics:
                o.apply(r, metrics[o.name])
                if hasattr(o, "judge"):   # an objective that decides feasibility (a latency budget)
                    o.judge(r, ctx)
        target = ctx.latency_target_ms
        if r.get("accuracy") is not None and r.latency_ms is not None and target:
            r.reward = reward(r.accuracy, r.latency_ms, target, options.latency.reward_w)
            r.latency_target_ms = target
            r.score = r.reward
        else:
            r.score = lead.score(r, metrics.get(lead.name, {}), ctx)
        if r.score is not None and not math.isfinite(float(r.score)):
            r.score = None


def _metrics(row, objectives, records) -> tuple[dict, str | None]:
    metrics, failed = {}, None
    for o in objectives:
        rec = records.get((row.arch, o.name))
        if rec is None:
            continue
        if rec.get("status") != "ok":
            failed = failed or f"{o.name}: {rec.get('reason')}"
        else:
            metrics[o.name] = rec.get("metrics") or {}
    return metrics, failed


def rank_key(budget, objectives: list):
    """The sort key of the ranking (see the module's text); its first element is 0 for a ranked row."""
    f_target = budget.formula_target
    # the cost objective under a ceiling scores the budget used; equal shares go to fewer activations
    by_activations = budget.ceiling and all(o.name == "cost" for o in objectives)

    def key(r):
        if r.feasible and r.status == "ok" and r.score is not None:
            tie = (r.get("activation_ratio") or 0.0) if by_activations else 0.0
            return (0, -float(r.score), tie, abs(r.formula_ratio / f_target - 1), r.index)
        if r.status in ("ok", "skipped"):
            return (1, _distance(r, budget), r.index)
        return (2, r.index)

    return key


def rank(rows, budget, objectives: list) -> list:
    """The rows sorted (see the module's text), with rank, pareto_rank, pareto and latency_tie set."""
    key = rank_key(budget, objectives)
    ranked = sorted(rows, key=key)
    feas = [r for r in ranked if key(r)[0] == 0]
    for i, r in enumerate(feas):
        r.rank = i + 1
    fronts = pareto_ranks([(r.macs, r.params, r.activations) for r in feas])
    for r, f in zip(feas, fronts, strict=True):
        r.pareto_rank = f
        r.pareto = f == 0
    lat = [r for r in feas if r.get("latency_ci95")]
    if lat:
        best = min(lat, key=lambda r: r.latency_ratio)
        lo, hi = best.latency_ci95
        for r in lat:
            a, b = r.latency_ci95
            r.latency_tie = r is not best and a <= hi and b >= lo
    return ranked


def _distance(r, budget) -> float:
    """How far an infeasible candidate is from the budget: in MACs, or in predicted ms for a latency one."""
    if budget.target_ms is not None:
        ms = r.extra.get("predicted_ms")
        return abs(math.log(ms / budget.target_ms)) if ms else math.inf
    return abs(math.log(r.macs / budget.target_macs)) if r.macs else math.inf
