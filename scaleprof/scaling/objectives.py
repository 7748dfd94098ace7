"""What a candidate is scored by.

    cost      MACs, params, activations (exact, from the meta-tensor count); Pareto front over the three;
              score = -(activations / base activations): among equal-MACs models, fewer activations run
              faster on memory-bound hardware (Dollár et al. 2021, "Fast and Accurate Model Scaling").
              Under a ceiling budget (``<=2x``) the score is the share of the budget used, MACs / target
              (the base, the cheapest, would otherwise always win), ties going to fewer activations.
    latency   each candidate against the base in shuffled interleaved rounds (scaleprof.bench.compare):
              the paired ratio candidate/base with its 95% bootstrap interval; score = -ratio; candidates
              whose interval overlaps the best one's are marked tied with it.
    train     short training on the user's data, several seeds: validation accuracy (mean, spread).
    proxy     zero-cost proxies synflow, grad_norm, NASWOT (EXPERIMENTAL); score = the one chosen by
              ``proxy`` (default naswot).
    predicted-latency   each candidate's latency predicted from its count (scaleprof.predict, a calibrated
              predictor: no weights, no timing; seconds for a whole grid); under a latency budget (``25ms``,
              ``<=25ms``) feasibility is judged on the predicted ms and the score is the MACs the budget buys
              (compound scaling's bet: more arithmetic, more accuracy), else the score is -predicted ms. The
              ``confirm`` best candidates are then timed here (bench's adaptive timer) to confirm:
              measured_ms and the prediction's error on each; under a latency budget those whose
              measurement breaks it drop behind those it confirms.
    python:module:function   a user's scorer called with (model, candidate dict), returning a float
              (the score) or a dict with "score" and/or "accuracy" (and anything else, kept as metrics).

Objectives combine with "+" (``train+latency``). With an accuracy and a latency the score is MnasNet's
reward ACC · (LAT / T)^w (Tan et al. 2019), w = -0.07 by default and T the target latency (default: the
base's latency times the budget's cost ratio).

Each objective is one class registered by name (``@register``): where it runs (``WORKER``: by the
executor, in parallel; ``MAIN``: in this process one candidate at a time, as latency must be timed; ``None``:
nothing to run, the count is its measure), ``check`` (at the start, so bad input fails before any work),
``setup`` (once in the running process before its candidates), ``run`` (one architecture -> its metrics),
``apply`` (its metrics onto the candidate row) and ``score`` (the row's score when it leads); optionally
``judge`` (feasibility from its metrics) and ``confirm`` (after ranking, on the ranked rows). Adding one:
a class with those attributes, decorated with ``@register`` (or ``prefix = "name:"`` for a family of names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..errors import ScaleprofError, one_line
from .candidate import ABSENT

WORKER, MAIN = "worker", "main"
REGISTRY: dict[str, type] = {}      # name -> class
PREFIXES: dict[str, type] = {}      # "python:" -> class (the rest of the name is its argument)


class Objective(Protocol):
    name: str
    where: str | None          # WORKER | MAIN | None (nothing to run)
    priority: int              # which leads when several are asked for: lowest first, then the order given
    main_note: str | None      # a note when it runs in this process whatever the executor

    def check(self, options) -> None: ...
    def setup(self, family, options, threads: int | None) -> object: ...
    def run(self, family, candidate: dict, options, state) -> dict: ...
    def apply(self, row, metrics: dict) -> None: ...
    def score(self, row, metrics: dict, ctx: ScoreContext) -> float | None: ...


@dataclass(frozen=True)
class ScoreContext:
    budget: object                     # budget.BoundBudget
    options: object                    # options.ObjectiveOptions
    latency_target_ms: float | None    # the reward's T


def register(cls: type) -> type:
    """Register an objective class by its ``name`` (or ``prefix``); a second of the same name is refused."""
    table, key = (PREFIXES, cls.prefix) if getattr(cls, "prefix", None) else (REGISTRY, cls.name)
    if key in table:
        raise ValueError(f"objective {key!r} is registered twice")
    table[key] = cls
    return cls


def make_objective(name: str) -> Objective:
    if name in REGISTRY:
        return REGISTRY[name]()
    for prefix, cls in PREFIXES.items():
        if name.startswith(prefix):
            return cls(name)
    raise ScaleprofError(f"unknown objective {name!r}")


def _names_hint() -> str:
    return ", ".join(REGISTRY) + "".join(f" or {p}module:function" for p in PREFIXES)


def parse_objectives(text) -> tuple[str, ...]:
    """``"cost"``, ``"latency"``, ``"train+latency"``, ``"python:pkg.mod:fn"`` ... -> names, checked."""
    if not isinstance(text, str) or not text.strip():
        raise ScaleprofError(f"--objective must be one of {_names_hint()}, got {text!r}")
    names = []
    for part in text.split("+"):
        p = part.strip()
        prefix = next((q for q in PREFIXES if p.startswith(q)), None)
        if prefix is not None:
            PREFIXES[prefix].check_name(p)
        elif p not in REGISTRY:
            raise ScaleprofError(f"--objective {p!r}: expected {_names_hint()} (several joined by +)")
        if p not in names:
            names.append(p)
    return tuple(names)


def primary(objectives: list) -> Objective:
    """The objective whose number is the score when no reward applies."""
    return min(objectives, key=lambda o: o.priority)


class _Objective:
    where: str | None = WORKER
    priority = 0
    main_note = None

    def check(self, options) -> None:
        pass

    def setup(self, family, options, threads):
        return None

    def run(self, family, candidate: dict, options, state) -> dict:
        raise ScaleprofError(f"objective {self.name!r} has nothing to run")

    def apply(self, row, metrics: dict) -> None:
        pass

    def score(self, row, metrics: dict, ctx: ScoreContext):
        return None


@register
class CostObjective(_Objective):
    """Exact MACs/params/activations from the count; nothing more to run."""

    name = "cost"
    where = None
    priority = 2

    def score(self, row, metrics, ctx):
        if ctx.budget.ceiling:
            return row.macs / ctx.budget.target_macs
        return -row.activation_ratio if row.activation_ratio is not None else None


@register
class LatencyObjective(_Objective):
    """Each candidate against the base, interleaved, timed here one at a time."""

    name = "latency"
    where = MAIN
    timed = True   # its results hold for one machine and thread count (search._timing_pins)
    priority = 1
    main_note = ("latency is timed in the main process, one candidate at a time, whatever the executor: "
                 "parallel workers would time each other")

    def setup(self, family, options, threads):
        try:   # built once (compare_models copies what it times)
            return {"base": _with_shape(family, {"key": "base", **family.base_knobs},
                                        int(options.latency.latency_batch)), "threads": threads}
        except Exception as exc:   # recorded against every candidate, as their own failures are
            return {"error": f"the base: {one_line(exc)}"}

    def run(self, family, candidate, options, state):
        if state is None:
            state = self.setup(family, options, None)
        if state.get("error"):
            raise ScaleprofError(state["error"])
        return latency_metrics(family, state["base"], candidate, options, state["threads"])

    def apply(self, row, metrics):
        row.latency_ms = metrics.get("latency_ms")
        row.latency_ratio = metrics.get("latency_ratio")
        row.latency_ci95 = metrics.get("latency_ci95")

    def score(self, row, metrics, ctx):
        return -row.latency_ratio if row.get("latency_ratio") is not None else None

    @staticmethod
    def reward_target(records: dict, budget, options) -> float | None:
        """The reward's T: the one given, else the base's median latency times the budget's cost ratio."""
        if options.latency.latency_target_ms is not None:
            return options.latency.latency_target_ms
        if budget.target_ms is not None:     # a latency budget is the target
            return budget.target_ms
        base_lat = [rec["metrics"]["base_latency_ms"] for (_, n), rec in records.items()
                    if n == "latency" and rec.get("status") == "ok"]
        if not base_lat:
            return None
        from ..bench.stats import median

        return median(base_lat) * budget.target_ratio


def _take_accuracy(row, m: dict) -> None:
    if row.accuracy is ABSENT and m.get("accuracy") is not None:      # the first objective's wins
        row.accuracy, row.accuracy_std = m.get("accuracy"), m.get("accuracy_std")


@register
class TrainObjective(_Objective):
    """A short training run per seed on the user's data: validation accuracy."""

    name = "train"

    def check(self, options):
        from .training import check_data

        check_data(options.train.data)

    def run(self, family, candidate, options, state):
        from .training import train_candidate

        return train_candidate(family, candidate, options.train)

    def apply(self, row, metrics):
        _take_accuracy(row, metrics)

    def score(self, row, metrics, ctx):
        return metrics.get("accuracy")


@register
class ProxyObjective(_Objective):
    """Zero-cost proxies of the untrained candidate (EXPERIMENTAL)."""

    name = "proxy"

    def run(self, family, candidate, options, state):
        return proxy_metrics(family, candidate, options)

    def apply(self, row, metrics):
        row.proxies = {k: metrics.get(k) for k in ("synflow", "grad_norm", "naswot")}

    def score(self, row, metrics, ctx):
        return metrics.get(ctx.options.proxy.proxy)


@register
class PredictedLatencyObjective(_Objective):
    """Latency predicted from the count (scaleprof.predict), then the best few timed to confirm."""

    name = "predicted-latency"
    priority = 1

    def check(self, options):
        from .predicted import check_predictor

        check_predictor(options.predicted)

    def run(self, family, candidate, options, state):
        from .predicted import predicted_metrics

        return predicted_metrics(family, candidate, options.predicted)

    def apply(self, row, metrics):
        row.extra["predicted_ms"] = metrics.get("predicted_ms")

    def judge(self, row, ctx):
        ms = row.extra.get("predicted_ms")
        if ctx.budget.target_ms is None or ms is None:
            return
        row.budget_ok = ctx.budget.budget.meets_ms(ms)
        row.feasible = {"cost": row.budget_ok, "formula": row.formula_ok,
                        "both": row.budget_ok and row.formula_ok}[ctx.budget.constraint]

    def score(self, row, metrics, ctx):
        ms = row.extra.get("predicted_ms")
        if ms is None:
            return None
        return float(row.macs) if ctx.budget.target_ms is not None else -ms

    def confirm(self, family, rows, options, threads, budget, prog):
        from .predicted import confirm_best

        return confirm_best(family, rows, options.predicted, threads, budget, prog)


@register
class PythonObjective(_Objective):
    """A user's scorer ``python:module:function`` called with (model, candidate dict)."""

    prefix = "python:"

    def __init__(self, name: str):
        self.name = name
        self.spec = name[len(self.prefix):]

    @classmethod
    def check_name(cls, name: str) -> None:
        rest = name[len(cls.prefix):]
        if ":" not in rest or not rest.rpartition(":")[2]:
            raise ScaleprofError(f"--objective {name!r}: expected python:module:function")

    def check(self, options):
        from ..spec import resolve_callable

        resolve_callable(self.spec, "--objective python:")    # a bad scorer fails now, not per worker

    def run(self, family, candidate, options, state):
        return python_metrics(self.spec, family, candidate)

    def apply(self, row, metrics):
        _take_accuracy(row, metrics)

    def score(self, row, metrics, ctx):
        return metrics.get("score") if metrics.get("score") is not None else metrics.get("accuracy")


def _seeded_model(family, c: dict, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return family.build(c["width"], c["depth"], c["resolution"], device="cpu")


def proxy_metrics(family, c: dict, options) -> dict:
    from .options import SEED
    from .proxies import all_proxies

    model = _seeded_model(family, c, SEED)
    shape = family.input_shape(model, c["resolution"])
    out = all_proxies(model, shape, batch=int(options.proxy.proxy_batch), seed=SEED)
    chosen = options.proxy.proxy
    if out.get(chosen) is None:
        raise ValueError(f"proxy {chosen} failed: {out.get(f'{chosen}_error', 'no value')}")
    out["experimental"] = True
    return out


def python_metrics(spec: str, family, c: dict) -> dict:
    from ..spec import resolve_callable
    from .options import SEED

    fn = resolve_callable(spec, "--objective python:")
    model = _seeded_model(family, c, SEED)
    value = fn(model, dict(c))
    if isinstance(value, dict):
        out = dict(value)
        if out.get("score") is None and out.get("accuracy") is None:
            raise ValueError(f"scorer {spec} returned a dict without 'score' or 'accuracy'")
        return out
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"scorer {spec} returned {type(value).__name__}; expected a float or a dict") from None
    return {"score": v}


def _with_shape(family, c: dict, batch: int) -> tuple[nn.Module, tuple[int, ...]]:
    m = _seeded_model(family, c, 0)
    shape = family.input_shape(m, c["resolution"])
    return m, (batch, *shape[1:])


def latency_metrics(family, base: tuple[nn.Module, tuple[int, ...]], c: dict, options, threads) -> dict:
    """Candidate against ``base`` (the base model and its input), interleaved (bench.compare.compare_models),
    each on its own resolution; ratio = candidate / base."""
    from ..bench.compare import compare_models
    from .options import SEED

    lat = options.latency
    base_model, base_shape = base
    cand, cand_shape = _with_shape(family, c, int(lat.latency_batch))
    r = compare_models(base_model, cand, [base_shape], inputs_b=[cand_shape], device="cpu",
                       max_time=float(lat.latency_time), seed=SEED,
                       labels=("base", c.get("key", "candidate")), threads=threads)
    return {"latency_ms": r.b.median_ms, "base_latency_ms": r.a.median_ms, "latency_ratio": r.ratio,
            "latency_ci95": [float(v) for v in r.ratio_ci95], "latency_verdict": r.verdict,
            "latency_p_value": r.p_value, "latency_rounds": r.rounds, "runtime": r.runtime}


def reward(accuracy: float, latency_ms: float, target_ms: float, w: float) -> float:
    """MnasNet's soft latency-aware reward ACC · (LAT / T)^w."""
    if latency_ms <= 0 or target_ms <= 0:
        return float("nan")
    return accuracy * math.pow(latency_ms / target_ms, w)
