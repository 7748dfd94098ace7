"""`scale()`: grid-search EfficientNet's compound coefficients α, β, γ under a cost budget, then scale up.

1. Grid: every (α, β, γ) of the ranges (each ≥ 1); at φ the knobs are depth α^φ, width β^φ, resolution
   γ^φ times the base's (resolution rounded half up to an integer, see grid.scaled_resolution).
2. Cost: each candidate is built on meta tensors and named by its layer configuration (family.arch_hash);
   each architecture is counted once. A family whose layers are data (zoo.layout: efficientnet) is named
   from them first (Family.layout_key), so each module tree is built once, whatever the resolutions it
   is counted at. Two constraints are shown for every candidate: the paper's formula
   (α·β²·γ² within the tolerance of 2, or of the budget's ratio per unit of φ) and the real cost ratio of
   the built model to the base; ``constraint`` says which decides ``feasible`` (default: the real cost).
3. Objective: run on each feasible architecture once (see objectives.py), through the executor (or in this
   process, one at a time, for an objective that must be timed alone).
4. Score and rank (scoring.py), pick the best, and scale it up: the family at φ = 0..7 against 2^φ and the paper's B0-B7.

Every finished piece of work is appended to the results log at once; ``resume`` picks an interrupted
search up from its log. A failing candidate is recorded (status "failed", reason) and the search goes on.

``scale(family, **kw)`` is the convenient call (keyword arguments routed to the typed options of
options.py); ``run_search(ScaleOptions)`` runs the same pipeline from the options themselves.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections import OrderedDict
from contextlib import closing

from ..errors import ScaleprofError, one_line
from . import grid as gridmod
from .budget import BoundBudget
from .candidate import CandidateRow
from .evaluate import cost_group, count, objective_task
from .executors import run_tasks
from .family import resolve_family
from .log import MemoryLog, ResultsLog
from .objectives import MAIN
from .options import ScaleOptions
from .result import ScaleResult
from .scoring import rank, rank_key, score
from .stream import Keeper


class Progress:
    """One line on stderr at most every ``every`` seconds, and at the end of each stage."""

    def __init__(self, enabled: bool, every: float = 1.0):
        self.enabled, self.every = enabled, every
        self.t0 = self.last = time.perf_counter()

    def say(self, text: str, force: bool = False) -> None:
        now = time.perf_counter()
        if self.enabled and (force or now - self.last >= self.every):
            self.last = now
            print(f"scale: {text} [{now - self.t0:.1f} s]", file=sys.stderr, flush=True)


def scale(family=None, *, progress: bool = True, **kw) -> ScaleResult:
    """Grid-search α (depth), β (width), γ (resolution) of ``family`` at ``phi`` under ``budget``.

    Keyword arguments are the fields of options.py's options, defaults there: alpha, beta, gamma, phi,
    family_kwargs, base_resolution, resolution_multiple, sweep, sweep_from (GridOptions); budget, tolerance,
    constraint (BudgetOptions); executor, jobs, address, threads (ExecutorOptions); log, resume (LogOptions);
    objective; data, steps, seeds, batch_size, lr, optimizer, image_size (TrainOptions); latency_time,
    latency_batch, latency_target_ms, reward_w (LatencyOptions); proxy, proxy_batch (ProxyOptions).

    Ranges: ``"START:STOP:STEP"`` (both ends included), a number, a comma list or a sequence; None: the
    defaults around the paper's (α 1.0:1.4:0.05, β 1.0:1.25:0.05, γ 1.0:1.3:0.05; they hold 1.2, 1.1, 1.15).
    ``budget``: ``"2x"`` (ratio to the base's MACs; None = 2^φ x), ``"0.8G"`` MACs, ``"<=2x"`` a ceiling;
    ``tolerance`` is relative (0.05: ±5%) and applies to the real cost and to α·β²·γ² alike.
    ``objective``: cost | latency | train | proxy | python:module:function, several joined by "+".
    ``executor``: local (default with jobs=1) | process (default with jobs>1) | ray.
    ``sweep``: the φ values of the scale-up (default 0..7; None: none), with ``sweep_from``'s coefficients:
    "best" (default), "paper" (1.2, 1.1, 1.15) or an (α, β, γ) triple / "A,B,G" text.
    ``threads``: torch threads for training, proxies and latency (default: torch's own in process, the
    cores shared out among process/Ray workers). On a busy machine 1 can be much faster for small models.
    Raises ScaleprofError (one line) for bad input and for a budget no candidate meets (naming the cheapest).
    """
    if family is not None:
        kw["family"] = family
    return run_search(ScaleOptions.from_kwargs(**kw), progress=progress)


def run_search(options: ScaleOptions, progress: bool = True) -> ScaleResult:
    """The pipeline: family and grid, the base, costs, feasibility, objectives, scores and ranks, scale-up."""
    t_start = time.perf_counter()
    g, ex = options.grid, options.executor
    objectives = options.objectives.objectives()
    notes = ex.notes()
    fam = resolve_family(g.family, g.family_kwargs, g.base_resolution)
    ranges = g.ranges(fam, notes)
    n_grid = math.prod(len(v) for v in ranges.values())
    # a grid larger than a result holds streams past (cost alone: the other objectives need every row)
    streamed = n_grid > g.keep_candidates and all(o.where is None and not hasattr(o, "confirm") for o in objectives)
    grid_args = ((ranges["alpha"], ranges["beta"], ranges["gamma"]),
                 {"phi": g.phi, "base_knobs": fam.base_knobs, "resolution_multiple": g.resolution_multiple})
    candidates = None if streamed else gridmod.build_grid(*grid_args[0], **grid_args[1])
    prog = Progress(progress)
    base = _count_base(fam)
    bound = BoundBudget.bind(options.budget, g.phi, base)
    if bound.target_ms is not None and not any(hasattr(o, "judge") for o in objectives):
        raise ScaleprofError(f"--budget {bound.budget.spec} is a latency: it needs --objective predicted-latency "
                             "(which judges candidates on their predicted ms)")
    config = {"family": fam.to_config(), "phi": g.phi, "alpha": list(ranges["alpha"]),
              "beta": list(ranges["beta"]), "gamma": list(ranges["gamma"]),
              "resolution_multiple": g.resolution_multiple, "options": options.objectives.to_config(),
              **_timing_pins(objectives, ex)}
    log = options.log.log
    rlog = ResultsLog(log, config, options.log.resume) if log else MemoryLog()
    timing: dict[str, float] = {}
    if streamed:
        return _run_streamed(fam, options, bound, objectives, rlog, prog, gridmod.iter_grid(*grid_args[0], **grid_args[1]),
                             n_grid, ranges, notes, t_start)
    try:
        if rlog.resumed:
            prog.say(f"resuming {log}: {rlog.resumed} of {len(candidates)} candidates already counted", True)
        t0 = time.perf_counter()
        costed = _cost_stage(fam, candidates, rlog, ex, prog)
        timing["cost_s"], timing["costed"] = time.perf_counter() - t0, costed
        rows = _rows(candidates, rlog.costs, bound)
        bound.check_feasible(rows)
        t0 = time.perf_counter()
        for obj in sorted(objectives, key=lambda o: o.where == MAIN):      # parallel work first
            if obj.where is not None:
                _objective_stage(obj, fam, rows, rlog, options, prog, notes)
        timing["objective_s"] = time.perf_counter() - t0
    finally:
        rlog.close()

    score(rows, objectives, rlog.objectives, bound, options.objectives)
    bound.check_feasible_ms(rows)
    rows = rank(rows, bound, objectives)
    for obj in objectives:      # an objective confirming its best candidates (predicted-latency times them)
        if hasattr(obj, "confirm"):
            rows = obj.confirm(fam, rows, options.objectives, options.executor.threads, bound, prog)
    best = next((r for r in rows if r.rank == 1), None)
    t0 = time.perf_counter()
    sweep_rows = _sweep(fam, g, best, base, prog)
    timing["sweep_s"] = time.perf_counter() - t0
    timing["total_s"] = time.perf_counter() - t_start
    return _result(fam, options, bound, rows, sweep_rows, ranges, timing, notes, rlog.resumed, _counts(rows, bound, objectives))


STREAM_CHUNK = 10_000    # candidates costed, scored and folded into the Keeper at a time


def _run_streamed(fam, options, bound, objectives, rlog, prog, grid, n_grid, ranges, notes, t_start) -> ScaleResult:
    """run_search for a grid over ``keep_candidates`` (cost objective): chunk by chunk, each costed, scored
    and folded into a Keeper, its records then dropped; see stream.py for what is kept."""
    keeper = Keeper(options.grid.keep_candidates, rank_key(bound, objectives), bound)
    timing: dict[str, float] = {"cost_s": 0.0, "costed": 0, "objective_s": 0.0}
    archs: set = set()
    try:
        if rlog.resumed:
            prog.say(f"resuming {rlog.path}: {rlog.resumed} of {n_grid} candidates already counted", True)
        while chunk := list(itertools.islice(grid, STREAM_CHUNK)):
            t0 = time.perf_counter()
            timing["costed"] += _cost_stage(fam, chunk, rlog, options.executor, prog, total=n_grid,
                                            offset=keeper.total, archs=archs)
            timing["cost_s"] += time.perf_counter() - t0
            rows = _rows(chunk, rlog.costs, bound)
            score(rows, objectives, rlog.objectives, bound, options.objectives)
            for row in rows:
                keeper.add(row)
            for c in chunk:      # folded in: the records stay in the log, not in memory
                rlog.costs.pop(c.key, None)
    finally:
        rlog.close()
    bound.check_feasible(keeper.for_checks())
    rows = keeper.ranked()
    best = next((r for r in rows if r.rank == 1), None)
    t0 = time.perf_counter()
    sweep_rows = _sweep(fam, options.grid, best, bound.base, prog)
    timing["sweep_s"] = time.perf_counter() - t0
    timing["total_s"] = time.perf_counter() - t_start
    return _result(fam, options, bound, rows, sweep_rows, ranges, timing, notes, rlog.resumed, keeper.counts())


def _timing_pins(objectives, ex) -> dict:
    """A search that times its candidates pins, in its log's header, the thread count and the environment
    fingerprint its times were taken with: resuming on another machine or thread count would mix
    measurements, so RunLog refuses it (as bench does). Searches that only count keep their header."""
    if not any(getattr(o, "timed", False) for o in objectives):
        return {}
    from ..bench.env import environment, torch_threads

    with torch_threads(ex.threads):
        return {"threads": ex.threads, "environment": environment()["fingerprint"]}


# --- steps -----------------------------------------------------------------------------------------------------

def _cost_stage(fam, candidates, rlog, ex, prog, total: int | None = None, offset: int = 0,
                archs: set | None = None) -> int:
    """Count every candidate not in the log yet (each architecture once); returns how many were counted.
    ``total``/``offset``/``archs``: the grid's size, the candidates and architectures before these (a
    streamed grid's), for the progress line."""
    todo = [c for c in candidates if c.key not in rlog.costs]
    tasks = cost_tasks(fam, todo, ex.worker_threads)
    done = offset + len(candidates) - len(todo)
    total = len(candidates) if total is None else total
    archs = set() if archs is None else archs
    archs.update(r["arch"] for r in rlog.costs.values() if r.get("arch"))
    while tasks:
        retry = []
        with closing(run_tasks(cost_group, tasks, executor=ex.executor, jobs=ex.jobs,
                               address=ex.address)) as results:
            for i, ok, value in results:
                group = tasks[i]["candidates"]
                if not ok and len(group) > 1:
                    # the worker died with the whole group: rerun its candidates one by one to find which
                    retry += [{**tasks[i], "candidates": [c]} for c in group]
                    continue
                recs = value if ok else [{**c, "arch": None, "status": "failed", "reason": value} for c in group]
                for rec in recs:
                    rlog.cost(rec)
                    if rec.get("arch"):
                        archs.add(rec["arch"])
                done += len(recs)
                prog.say(f"cost {done}/{total} candidates, {len(archs)} architectures", done == total)
        tasks = retry
    return len(todo)


def _objective_stage(obj, fam, rows, rlog, options, prog, notes) -> None:
    """Run ``obj`` on every feasible architecture not in the log yet: through the executor, or (``MAIN``)
    here one at a time with its setup done once."""
    feasible: OrderedDict = OrderedDict()
    keys_of: dict[str, list[str]] = {}
    for r in rows:
        if r.feasible and r.arch not in feasible:
            feasible[r.arch] = r
        if r.arch:
            keys_of.setdefault(r.arch, []).append(r.key)
    todo = [rep for arch, rep in feasible.items() if (arch, obj.name) not in rlog.objectives]
    n_done = len(feasible) - len(todo)
    ex = options.executor
    here = obj.where == MAIN
    if here and todo and ex.executor != "local" and obj.main_note:
        notes.append(obj.main_note)
    # in this process: the user's threads (None: torch's own); in workers: cores shared out
    threads = ex.threads if here else ex.worker_threads
    state = obj.setup(fam, options.objectives, threads) if here and todo else None
    tasks = [{"family": fam, "candidate": rep.identity(), "objective": obj.name, "options": options.objectives,
              "threads": None if here else threads, "state": state} for rep in todo]
    runner = {"executor": "local"} if here else {"executor": ex.executor, "jobs": ex.jobs, "address": ex.address}
    with closing(run_tasks(objective_task, tasks, **runner)) as results:
        for i, ok, value in results:
            rep = todo[i]
            rec = value if ok else {"objective": obj.name, "arch": rep.arch, "status": "failed", "reason": value,
                                    "metrics": {}}
            rec.update(arch=rep.arch, keys=keys_of[rep.arch])
            rlog.objective(rec)
            n_done += 1
            prog.say(f"{obj.name} {n_done}/{len(feasible)} architectures", here or n_done == len(feasible))


def cost_tasks(fam, candidates, threads) -> list[dict]:
    """The cost tasks (``evaluate.cost_group``), so that an architecture is built and counted in one worker:
    one task per ``fam.layout_key`` (a module tree, at all its resolutions) where the family has layouts,
    otherwise one per (β, γ), whose α values share a worker so that their repeats collapse there."""
    groups: OrderedDict = OrderedDict()
    for c in candidates:
        key = fam.layout_key(c.width, c.depth, c.resolution)
        groups.setdefault(("beta_gamma", c.beta, c.gamma) if key is None else key, []).append(c.to_dict())
    # the key goes with its group: count() need not work it out again for each candidate
    return [{"family": fam, "candidates": g, "threads": threads, "layout_key": k if isinstance(k, str) else None}
            for k, g in groups.items()]


def _count_base(fam) -> dict:
    try:
        return {**fam.base_knobs, **count(fam)}
    except ScaleprofError:
        raise
    except Exception as exc:
        raise ScaleprofError(f"--family {fam.label}: cannot build and count its base: {one_line(exc)}") from exc


def _rows(candidates, costs: dict, bound: BoundBudget) -> list[CandidateRow]:
    rows, first_of = [], {}
    for c in candidates:
        rec = costs[c.key]
        ok = rec.get("status") == "ok"
        formula_ok, budget_ok, feasible = bound.judge(c.formula_ratio, rec["macs"] if ok else None)
        row = CandidateRow(
            key=c.key, index=c.index, alpha=c.alpha, beta=c.beta, gamma=c.gamma, width=c.width, depth=c.depth,
            resolution=c.resolution, macs=rec.get("macs") if ok else None,
            params=rec.get("params") if ok else None, activations=rec.get("activations") if ok else None,
            flops=rec.get("flops") if ok else None, cost_ratio=rec["macs"] / bound.base_macs if ok else None,
            formula_ratio=c.formula_ratio, formula_ok=formula_ok, budget_ok=budget_ok, feasible=feasible,
            status=rec.get("status", "failed"), reason=rec.get("reason"), arch=rec.get("arch"),
            input=rec.get("input"))
        if ok:
            if row.arch in first_of:
                row.duplicate_of = first_of[row.arch]
            else:
                first_of[row.arch] = c.key
        rows.append(row)
    return rows


def _sweep(fam, g, best, base, prog) -> list[dict]:
    abc = g.sweep_coefficients()
    if abc is None and best is not None:
        abc = (best.alpha, best.beta, best.gamma)
    if abc is None or not g.sweep_phis:
        return []
    from .sweep import phi_sweep

    return phi_sweep(fam, abc, g.sweep_phis, base, g.resolution_multiple, prog)


def _counts(rows, bound, objectives) -> dict:
    """What the table says of every candidate (stream.Keeper.counts for a streamed grid)."""
    key = rank_key(bound, objectives)
    archs = {r.arch for r in rows if r.arch}
    return {"candidates_total": len(rows), "candidates_failed": sum(r.status == "failed" for r in rows),
            "feasible_total": sum(bool(r.feasible) for r in rows),
            "feasible_architectures": len({r.arch for r in rows if r.feasible and key(r)[0] == 0}),
            "architectures": len(archs), "duplicates": sum(1 for r in rows if r.duplicate_of)}


def _result(fam, options, bound, rows, sweep_rows, ranges, timing, notes, resumed, counts) -> ScaleResult:
    timing["candidates_per_s"] = (timing["costed"] / timing["cost_s"]) if timing["cost_s"] > 0 and \
        timing["costed"] else None
    for k in ("cost_s", "objective_s", "sweep_s", "total_s"):
        timing[k] = round(timing[k], 3)
    dicts = [r.to_dict() for r in rows]
    best_d = next((d for d in dicts if d["rank"] == 1), None)         # the same dict as its candidate
    log = options.log.log
    return ScaleResult(
        family=fam.label, phi=options.grid.phi, budget=bound.to_dict(), candidates=dicts, best=best_d,
        phi_sweep=sweep_rows, duplicates=counts["duplicates"], architectures=counts["architectures"],
        candidates_total=counts["candidates_total"], candidates_kept=len(dicts),
        candidates_failed=counts["candidates_failed"], feasible_total=counts["feasible_total"],
        feasible_architectures=counts["feasible_architectures"],
        objective="+".join(options.objectives.names), objective_words=options.objectives.words(),
        constraint=bound.constraint,
        formula_target=bound.formula_target, base=bound.base, grid={k: list(v) for k, v in ranges.items()},
        timing=timing, executor=options.executor.executor, notes=notes, resumed=resumed,
        log=str(log) if log else None)
