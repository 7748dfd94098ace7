"""`scale()`: grid-search EfficientNet's compound coefficients α, β, γ under a cost budget, then scale up.

1. Grid: every (α, β, γ) of the ranges (each ≥ 1); at φ the knobs are depth α^φ, width β^φ, resolution
   γ^φ times the base's (resolution rounded half up to an integer, see grid.scaled_resolution).
2. Cost: each candidate is built on meta tensors and named by its layer configuration (family.arch_hash);
   each architecture is counted once. A family whose layers are data (zoo.layout: efficientnet) is named
   from them first (Family.layout_key), so each module tree is built once, whatever the resolutions it
   is counted at. Two constraints are shown for every candidate: the paper's formula
   (α·β²·γ² within the tolerance of 2, or of the budget's ratio per unit of φ) and the real cost ratio of
   the built model to the base; ``constraint`` says which decides ``feasible`` (default: the real cost).
3. Objective: run on each feasible architecture once (see objectives.py), through the executor.
4. Rank, pick the best, and scale it up: the family at φ = 0..7 against 2^φ and the paper's B0-B7.

Every finished piece of work is appended to the results log at once; ``resume`` picks an interrupted
search up from its log. A failing candidate is recorded (status "failed", reason) and the search goes on.
"""

from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from contextlib import closing

from ..errors import ScaleprofError, one_line
from . import grid as gridmod
from .budget import (
    check_constraint,
    check_tolerance,
    formula_target,
    parse_budget,
    within,
)
from .evaluate import cost_group, count, objective_task
from .executors import check_executor, run_tasks, worker_threads
from .family import resolve_family
from .log import MemoryLog, ResultsLog
from .objectives import (
    check_proxy,
    latency_base,
    latency_metrics,
    parse_objectives,
    primary,
    remote_objectives,
    reward,
)
from .pareto import pareto_ranks
from .result import ScaleResult

DEFAULT_SWEEP = "0:7"
MAX_CANDIDATES = 20_000


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


def _ranges(fam, given: dict, notes: list[str]) -> dict[str, tuple[float, ...]]:
    out = {}
    for coef, knob in gridmod.KNOB_OF.items():
        value = given[coef]
        sym = gridmod.SYMBOL[coef]
        if fam.has(knob):
            out[coef] = gridmod.parse_range(gridmod.DEFAULT_RANGES[coef] if value is None else value, coef)
            continue
        if value is not None and gridmod.parse_range(value, coef) != (1.0,):
            raise ScaleprofError(f"--family {fam.label} has no {knob} knob, so it cannot scale {sym}: "
                                 f"leave --{coef} out (or give 1)")
        out[coef] = (1.0,)
        notes.append(f"{fam.label} has no {knob} knob: {sym} is fixed at 1")
    return out


def scale(family="efficientnet", alpha=None, beta=None, gamma=None, phi=1, budget=None, tolerance=0.05,
          objective: str = "cost", executor: str | None = None, jobs: int = 1, log=None, resume: bool = False, *,
          constraint: str = "cost", address: str | None = None, family_kwargs: dict | None = None,
          base_resolution: int | None = None, resolution_multiple: int = 1, sweep=DEFAULT_SWEEP,
          data=None, steps: int = 20, seeds=(0, 1, 2), batch_size: int = 16, lr: float = 1e-3,
          optimizer: str = "adam", image_size: int | None = None, latency_time: float = 5.0,
          latency_batch: int = 1, latency_target_ms: float | None = None, reward_w: float = -0.07,
          proxy: str = "naswot", proxy_batch: int = 8, sweep_from="best", threads: int | None = None,
          progress: bool = True) -> ScaleResult:
    """Grid-search α (depth), β (width), γ (resolution) of ``family`` at ``phi`` under ``budget``.

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
    t_start = time.perf_counter()
    phi = gridmod.check_phi(phi)
    tol = check_tolerance(tolerance)
    constraint = check_constraint(constraint)
    names = parse_objectives(objective)
    check_proxy(proxy)
    executor = check_executor(executor, jobs)
    if resume and not log:
        raise ScaleprofError("--resume needs --log FILE (the log of the search to continue)")
    if isinstance(resolution_multiple, bool) or not isinstance(resolution_multiple, int) or resolution_multiple < 1:
        raise ScaleprofError(f"--resolution-multiple must be a whole number >= 1, got {resolution_multiple!r}")
    if "latency" in names and not (isinstance(latency_time, (int, float)) and latency_time > 0):
        raise ScaleprofError(f"--latency-time must be positive, got {latency_time!r}")
    if "train" in names:
        from .training import check_data

        data = check_data(data)
        if int(steps) < 1 or not list(seeds):
            raise ScaleprofError("--steps must be >= 1 and --seeds non-empty")
    for n in names:
        if n.startswith("python:"):
            from ..spec import resolve_callable

            resolve_callable(n[len("python:"):], "--objective python:")   # a bad scorer fails now, not per worker
    notes: list[str] = []
    if executor == "local" and jobs > 1:
        notes.append(f"--jobs {jobs} is ignored by the local executor; use --executor process or ray")
    fam = resolve_family(family, family_kwargs, base_resolution)
    ranges = _ranges(fam, {"alpha": alpha, "beta": beta, "gamma": gamma}, notes)
    sweep_phis = gridmod.parse_phis(sweep)
    sweep_abc = _sweep_from(sweep_from)
    n_grid = math.prod(len(v) for v in ranges.values())
    if n_grid > MAX_CANDIDATES:
        raise ScaleprofError(f"{n_grid} candidates; at most {MAX_CANDIDATES}: use coarser steps")
    candidates = gridmod.build_grid(ranges["alpha"], ranges["beta"], ranges["gamma"], phi=phi,
                                    base_knobs=fam.base_knobs, resolution_multiple=resolution_multiple)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ScaleprofError(f"--threads must be a whole number >= 1, got {threads!r}")
    latency_threads = threads          # latency runs in this process: the user's value (None: torch's own)
    if threads is None and executor != "local":
        threads = worker_threads(jobs)
    bud = parse_budget(budget, tol, phi)
    prog = Progress(progress)

    base = _count_base(fam)
    f_target = formula_target(bud, base["macs"], phi)
    options = {"data": data, "steps": int(steps), "seeds": [int(s) for s in seeds], "batch_size": int(batch_size),
               "lr": float(lr), "optimizer": optimizer, "image_size": image_size, "latency_time": float(latency_time),
               "latency_batch": int(latency_batch), "proxy": proxy, "proxy_batch": int(proxy_batch), "seed": 0}
    config = {"family": fam.to_config(), "phi": phi, "alpha": list(ranges["alpha"]), "beta": list(ranges["beta"]),
              "gamma": list(ranges["gamma"]), "resolution_multiple": resolution_multiple, "options": options}
    rlog = ResultsLog(log, config, resume) if log else MemoryLog()
    timing: dict[str, float] = {}
    try:
        if rlog.resumed:
            prog.say(f"resuming {log}: {rlog.resumed} of {len(candidates)} candidates already counted", True)
        # --- cost ---------------------------------------------------------------------------------------
        t0 = time.perf_counter()
        todo = [c for c in candidates if c.key not in rlog.costs]
        tasks = cost_tasks(fam, todo, threads)
        done = len(candidates) - len(todo)
        archs = {r["arch"] for r in rlog.costs.values() if r.get("arch")}
        while tasks:
            retry = []
            with closing(run_tasks(cost_group, tasks, executor=executor, jobs=jobs, address=address)) as results:
                for i, ok, value in results:
                    group = tasks[i]["candidates"]
                    if not ok and len(group) > 1:
                        # the worker died with the whole group: rerun its candidates one by one to find which
                        retry += [{**tasks[i], "candidates": [c]} for c in group]
                        continue
                    recs = value if ok else [{**c, "arch": None, "status": "failed", "reason": value}
                                             for c in group]
                    for rec in recs:
                        rlog.cost(rec)
                        if rec.get("arch"):
                            archs.add(rec["arch"])
                    done += len(recs)
                    prog.say(f"cost {done}/{len(candidates)} candidates, {len(archs)} architectures",
                             done == len(candidates))
            tasks = retry
        timing["cost_s"] = time.perf_counter() - t0
        timing["costed"] = len(todo)
        rows = _rows(candidates, rlog.costs, base, bud, f_target, tol, constraint)
        _check_feasible(rows, bud, base, constraint, f_target, tol)

        # --- objectives ---------------------------------------------------------------------------------
        t0 = time.perf_counter()
        feasible_archs: OrderedDict = OrderedDict()
        for r in rows:
            if r["feasible"] and r["arch"] not in feasible_archs:
                feasible_archs[r["arch"]] = r
        keys_of: dict[str, list[str]] = {}
        for r in rows:
            if r.get("arch"):
                keys_of.setdefault(r["arch"], []).append(r["key"])
        for name in remote_objectives(names):
            todo_a = [rep for arch, rep in feasible_archs.items() if (arch, name) not in rlog.objectives]
            tasks = [{"family": fam, "candidate": _cand(rep), "objective": name, "options": options,
                      "threads": threads} for rep in todo_a]
            n_done = len(feasible_archs) - len(todo_a)
            with closing(run_tasks(objective_task, tasks, executor=executor, jobs=jobs, address=address)) as results:
                for i, ok, value in results:
                    rep = todo_a[i]
                    rec = value if ok else {"objective": name, "arch": rep["arch"], "status": "failed",
                                            "reason": value, "metrics": {}}
                    rec.update(arch=rep["arch"], keys=keys_of[rep["arch"]])
                    rlog.objective(rec)
                    n_done += 1
                    prog.say(f"{name} {n_done}/{len(feasible_archs)} architectures",
                             n_done == len(feasible_archs))
        if "latency" in names:
            todo_a = [rep for arch, rep in feasible_archs.items() if (arch, "latency") not in rlog.objectives]
            n_done = len(feasible_archs) - len(todo_a)
            if executor != "local" and todo_a:
                notes.append("latency is timed in the main process, one candidate at a time, whatever the "
                             "executor: parallel workers would time each other")
            lat_opts = {**options, "threads": latency_threads}
            base_model = base_error = None
            if todo_a:
                try:   # built once (compare_models copies what it times)
                    base_model = latency_base(fam, lat_opts)
                except Exception as exc:   # recorded against every candidate, as their own failures are
                    base_error = f"the base: {one_line(exc)}"
            for rep in todo_a:
                try:
                    if base_error:
                        raise ScaleprofError(base_error)
                    rec = {"status": "ok", "reason": None,
                           "metrics": latency_metrics(fam, base_model, _cand(rep), lat_opts)}
                except Exception as exc:
                    rec = {"status": "failed", "reason": one_line(exc), "metrics": {}}
                rec.update(objective="latency", arch=rep["arch"], keys=keys_of[rep["arch"]])
                rlog.objective(rec)
                n_done += 1
                prog.say(f"latency {n_done}/{len(feasible_archs)} architectures", True)
        timing["objective_s"] = time.perf_counter() - t0
    finally:
        rlog.close()

    _score(rows, names, rlog.objectives, base, bud, latency_target_ms, reward_w, proxy)
    rows = _rank(rows, bud, base, f_target, names)
    best = next((r for r in rows if r.get("rank") == 1), None)

    t0 = time.perf_counter()
    sweep_rows = []
    if sweep_abc is None and best is not None:
        sweep_abc = (best["alpha"], best["beta"], best["gamma"])
    if sweep_abc is not None and sweep_phis:
        from .sweep import phi_sweep

        sweep_rows = phi_sweep(fam, sweep_abc, sweep_phis, base, resolution_multiple, prog)
    timing["sweep_s"] = time.perf_counter() - t0
    timing["total_s"] = time.perf_counter() - t_start
    timing["candidates_per_s"] = (timing["costed"] / timing["cost_s"]) if timing["cost_s"] > 0 and \
        timing["costed"] else None
    for k in ("cost_s", "objective_s", "sweep_s", "total_s"):
        timing[k] = round(timing[k], 3)
    archs = {r["arch"] for r in rows if r.get("arch")}
    budget_d = bud.to_dict(base["macs"])
    budget_d["describe"] = bud.describe(base["macs"])
    return ScaleResult(
        family=fam.label, phi=phi, budget=budget_d, candidates=rows, best=best, phi_sweep=sweep_rows,
        duplicates=sum(1 for r in rows if r.get("duplicate_of")), architectures=len(archs),
        objective="+".join(names), constraint=constraint, formula_target=f_target, base=base,
        grid={k: list(v) for k, v in ranges.items()}, timing=timing, executor=executor, notes=notes,
        resumed=rlog.resumed, log=str(log) if log else None)


# --- steps -----------------------------------------------------------------------------------------------------

def _sweep_from(value) -> tuple[float, float, float] | None:
    """None for the best candidate, else the (α, β, γ) the scale-up uses."""
    if value is None or value == "best":
        return None
    if value == "paper":
        return gridmod.PAPER_POINT
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        abc = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        abc = ()
    if len(abc) != 3 or any(not (math.isfinite(x) and x >= 1) for x in abc):
        raise ScaleprofError(f"--sweep-from must be best, paper or α,β,γ (each >= 1), got {value!r}")
    return abc


def cost_tasks(fam, candidates, threads) -> list[dict]:
    """The cost tasks (``evaluate.cost_group``), so that an architecture is built and counted in one worker:
    one task per ``fam.layout_key`` (a module tree, at all its resolutions) where the family has layouts,
    otherwise one per (β, γ), whose α values share a worker so that their repeats collapse there."""
    groups: OrderedDict = OrderedDict()
    for c in candidates:
        key = fam.layout_key(c.width, c.depth, c.resolution)
        groups.setdefault(("beta_gamma", c.beta, c.gamma) if key is None else key, []).append(c.to_dict())
    return [{"family": fam, "candidates": g, "threads": threads} for g in groups.values()]


def _count_base(fam) -> dict:
    try:
        return {**fam.base_knobs, **count(fam)}
    except ScaleprofError:
        raise
    except Exception as exc:
        raise ScaleprofError(f"--family {fam.label}: cannot build and count its base: {one_line(exc)}") from exc


def _cand(row: dict) -> dict:
    return {k: row[k] for k in ("key", "alpha", "beta", "gamma", "width", "depth", "resolution", "arch")}


def _rows(candidates, costs: dict, base: dict, bud, f_target: float, tol: float, constraint: str) -> list[dict]:
    rows, first_of = [], {}
    for c in candidates:
        rec = costs[c.key]
        ok = rec.get("status") == "ok"
        f = c.formula_ratio
        formula_ok = within(f / f_target, tol, bud.ceiling)
        budget_ok = ok and bud.meets(rec["macs"], base["macs"])
        feasible = ok and {"cost": budget_ok, "formula": formula_ok, "both": budget_ok and formula_ok}[constraint]
        row = {"key": c.key, "index": c.index, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma,
               "width": c.width, "depth": c.depth, "resolution": c.resolution,
               "macs": rec.get("macs") if ok else None, "params": rec.get("params") if ok else None,
               "activations": rec.get("activations") if ok else None, "flops": rec.get("flops") if ok else None,
               "cost_ratio": rec["macs"] / base["macs"] if ok else None, "formula_ratio": f,
               "formula_ok": formula_ok, "budget_ok": budget_ok, "feasible": feasible,
               "latency_ms": None, "score": None, "status": rec.get("status", "failed"),
               "reason": rec.get("reason"), "arch": rec.get("arch"), "input": rec.get("input"),
               "duplicate_of": None, "rank": None}
        if ok:
            if row["arch"] in first_of:
                row["duplicate_of"] = first_of[row["arch"]]
            else:
                first_of[row["arch"]] = c.key
        rows.append(row)
    return rows


def _abc(r) -> str:
    return f"α={r['alpha']:g} β={r['beta']:g} γ={r['gamma']:g}"


def _check_feasible(rows, bud, base, constraint, f_target, tol) -> None:
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        first = rows[0] if rows else None
        raise ScaleprofError("every candidate failed" + (f"; {_abc(first)}: {first['reason']}" if first else ""))
    if any(r["feasible"] for r in rows):
        return
    cheap = min(ok, key=lambda r: r["macs"])
    dear = max(ok, key=lambda r: r["macs"])
    span = (f"the cheapest is {_abc(cheap)} at {cheap['macs'] / 1e9:.4f} GMACs ({cheap['cost_ratio']:.3f}x), "
            f"the dearest {_abc(dear)} at {dear['macs'] / 1e9:.4f} GMACs ({dear['cost_ratio']:.3f}x)")
    if constraint == "formula":
        near = min(ok, key=lambda r: abs(r["formula_ratio"] / f_target - 1))
        raise ScaleprofError(f"no candidate has α·β²·γ² within {tol:.0%} of {f_target:.4g}: the nearest is "
                             f"{_abc(near)} with {near['formula_ratio']:.4f}; widen the ranges or --tolerance")
    both = " with α·β²·γ² also in range" if constraint == "both" else ""
    target = bud.target_macs(base["macs"])
    near = min(ok, key=lambda r: abs(math.log(r["macs"] / target)))
    raise ScaleprofError(f"no candidate meets the budget {bud.describe(base['macs'])}{both}: {span}; the nearest "
                         f"is {_abc(near)} at {near['cost_ratio']:.3f}x (widen --tolerance or refine the ranges)")


def _score(rows, names, objectives: dict, base, bud, latency_target_ms, w, proxy) -> None:
    """The cost objective alone: under a band budget, -(activation ratio) (among near-equal MACs, fewer
    activations); under a ceiling (``<=``), the share of the budget used, MACs / target (the cheapest
    candidate, the base, is feasible under any ceiling and must not win by its few activations)."""
    lead = primary(names)
    extra = [n for n in names if n != "cost"]
    base_lat = [rec["metrics"]["base_latency_ms"] for (_, n), rec in objectives.items()
                if n == "latency" and rec.get("status") == "ok"]
    target = latency_target_ms
    if target is None and base_lat:
        from ..bench.stats import median

        target = median(base_lat) * bud.target_ratio(base["macs"])
    target_macs = bud.target_macs(base["macs"])
    for r in rows:
        if r["status"] != "ok":
            continue
        r["activation_ratio"] = r["activations"] / base["activations"] if base["activations"] else None
        if not extra:
            if bud.ceiling:
                r["score"] = r["macs"] / target_macs
            else:
                r["score"] = -r["activation_ratio"] if r["activation_ratio"] is not None else None
            continue
        metrics, failed = {}, None
        for n in extra:
            rec = objectives.get((r["arch"], n))
            if rec is None:
                continue
            if rec.get("status") != "ok":
                failed = failed or f"{n}: {rec.get('reason')}"
            else:
                metrics[n] = rec.get("metrics") or {}
        if failed:
            r.update(status="failed", reason=failed, feasible=False)
            continue
        if not metrics:
            r.update(status="skipped", reason="outside the budget: objective not run")
            continue
        r["metrics"] = metrics
        lat = metrics.get("latency", {})
        if lat:
            r["latency_ms"] = lat.get("latency_ms")
            r["latency_ratio"] = lat.get("latency_ratio")
            r["latency_ci95"] = lat.get("latency_ci95")
        acc = acc_std = None
        for n in extra:
            m = metrics.get(n, {})
            if n == "train" or (n.startswith("python:") and m.get("accuracy") is not None):
                acc, acc_std = m.get("accuracy"), m.get("accuracy_std")
                break
        if acc is not None:
            r["accuracy"], r["accuracy_std"] = acc, acc_std
        if "proxy" in metrics:
            r["proxies"] = {k: metrics["proxy"].get(k) for k in ("synflow", "grad_norm", "naswot")}
        if acc is not None and r["latency_ms"] is not None and target:
            r["reward"] = reward(acc, r["latency_ms"], target, w)
            r["latency_target_ms"] = target
            r["score"] = r["reward"]
        elif lead == "latency":
            r["score"] = -r["latency_ratio"] if r.get("latency_ratio") is not None else None
        elif lead == "train":
            r["score"] = acc
        elif lead == "proxy":
            r["score"] = metrics["proxy"].get(proxy)
        elif lead.startswith("python:"):
            m = metrics.get(lead, {})
            r["score"] = m.get("score") if m.get("score") is not None else m.get("accuracy")
        if r["score"] is not None and not math.isfinite(float(r["score"])):
            r["score"] = None


def _rank(rows, bud, base, f_target, names) -> list[dict]:
    target = bud.target_macs(base["macs"])
    # the cost objective under a ceiling scores the budget used; equal shares go to fewer activations
    by_activations = bud.ceiling and all(n == "cost" for n in names)

    def key(r):
        if r["feasible"] and r["status"] == "ok" and r["score"] is not None:
            tie = (r.get("activation_ratio") or 0.0) if by_activations else 0.0
            return (0, -float(r["score"]), tie, abs(r["formula_ratio"] / f_target - 1), r["index"])
        if r["status"] in ("ok", "skipped"):
            return (1, abs(math.log(r["macs"] / target)) if r["macs"] else math.inf, r["index"])
        return (2, r["index"])

    ranked = sorted(rows, key=key)
    feas = [r for r in ranked if key(r)[0] == 0]
    for i, r in enumerate(feas):
        r["rank"] = i + 1
    fronts = pareto_ranks([(r["macs"], r["params"], r["activations"]) for r in feas])
    for r, f in zip(feas, fronts, strict=True):
        r["pareto_rank"] = f
        r["pareto"] = f == 0
    lat = [r for r in feas if r.get("latency_ci95")]
    if lat:
        best = min(lat, key=lambda r: r["latency_ratio"])
        lo, hi = best["latency_ci95"]
        for r in lat:
            a, b = r["latency_ci95"]
            r["latency_tie"] = r is not best and a <= hi and b >= lo
    return ranked
