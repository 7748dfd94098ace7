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
    python:module:function   a user's scorer called with (model, candidate dict), returning a float
              (the score) or a dict with "score" and/or "accuracy" (and anything else, kept as metrics).

Objectives combine with "+" (``train+latency``). With an accuracy and a latency the score is MnasNet's
reward ACC · (LAT / T)^w (Tan et al. 2019), w = -0.07 by default and T the target latency (default: the
base's latency times the budget's cost ratio).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ScaleprofError
from .proxies import PROXIES

BUILTIN = ("cost", "latency", "train", "proxy")


def parse_objectives(text) -> tuple[str, ...]:
    """``"cost"``, ``"latency"``, ``"train+latency"``, ``"python:pkg.mod:fn"`` ... -> names, checked."""
    if not isinstance(text, str) or not text.strip():
        raise ScaleprofError(f"--objective must be one of {', '.join(BUILTIN)} or python:module:function, "
                             f"got {text!r}")
    names = []
    for part in text.split("+"):
        p = part.strip()
        if p.startswith("python:"):
            rest = p[len("python:"):]
            if ":" not in rest or not rest.rpartition(":")[2]:
                raise ScaleprofError(f"--objective {p!r}: expected python:module:function")
        elif p not in BUILTIN:
            raise ScaleprofError(f"--objective {p!r}: expected {', '.join(BUILTIN)} or python:module:function "
                                 "(several joined by +)")
        if p not in names:
            names.append(p)
    return tuple(names)


def remote_objectives(names) -> list[str]:
    """Objectives an executor runs per architecture (latency is timed in the main process, one at a time,
    so that parallel workers do not measure each other)."""
    return [n for n in names if n not in ("cost", "latency")]


def primary(names) -> str:
    """The objective whose number is the score when no reward applies."""
    for n in names:
        if n not in ("cost", "latency"):
            return n
    return "latency" if "latency" in names else "cost"


def run_objective(name: str, family, c: dict, options: dict) -> dict:
    if name == "train":
        from .training import train_candidate

        return train_candidate(family, c, options)
    if name == "proxy":
        return proxy_metrics(family, c, options)
    if name.startswith("python:"):
        return python_metrics(name[len("python:"):], family, c, options)
    raise ScaleprofError(f"objective {name!r} does not run in a worker")


def _seeded_model(family, c: dict, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return family.build(c["width"], c["depth"], c["resolution"], device="cpu")


def proxy_metrics(family, c: dict, options: dict) -> dict:
    from .proxies import all_proxies

    model = _seeded_model(family, c, int(options.get("seed", 0)))
    shape = family.input_shape(model, c["resolution"])
    out = all_proxies(model, shape, batch=int(options.get("proxy_batch", 8)), seed=int(options.get("seed", 0)))
    chosen = options.get("proxy", "naswot")
    if out.get(chosen) is None:
        raise ValueError(f"proxy {chosen} failed: {out.get(f'{chosen}_error', 'no value')}")
    out["experimental"] = True
    return out


def python_metrics(spec: str, family, c: dict, options: dict) -> dict:
    from ..spec import resolve_callable

    fn = resolve_callable(spec, "--objective python:")
    model = _seeded_model(family, c, int(options.get("seed", 0)))
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


def latency_base(family, options: dict) -> tuple[nn.Module, tuple[int, ...]]:
    """The base and its input shape, built once for every candidate's comparison (compare_models copies
    what it times)."""
    return _with_shape(family, {"key": "base", **family.base_knobs}, int(options.get("latency_batch", 1)))


def _with_shape(family, c: dict, batch: int) -> tuple[nn.Module, tuple[int, ...]]:
    m = _seeded_model(family, c, 0)
    shape = family.input_shape(m, c["resolution"])
    return m, (batch, *shape[1:])


def latency_metrics(family, base: tuple[nn.Module, tuple[int, ...]], c: dict, options: dict) -> dict:
    """Candidate against ``base`` (latency_base), interleaved (bench.compare.compare_models), each on its own
    resolution; ratio = candidate / base."""
    from ..bench.compare import compare_models

    base_model, base_shape = base
    cand, cand_shape = _with_shape(family, c, int(options.get("latency_batch", 1)))
    r = compare_models(base_model, cand, [base_shape], inputs_b=[cand_shape], device="cpu",
                       max_time=float(options.get("latency_time", 5.0)), seed=int(options.get("seed", 0)),
                       labels=("base", c.get("key", "candidate")), threads=options.get("threads"))
    return {"latency_ms": r.b.median_ms, "base_latency_ms": r.a.median_ms, "latency_ratio": r.ratio,
            "latency_ci95": [float(v) for v in r.ratio_ci95], "latency_verdict": r.verdict,
            "latency_p_value": r.p_value, "latency_rounds": r.rounds, "runtime": r.runtime}


def reward(accuracy: float, latency_ms: float, target_ms: float, w: float = -0.07) -> float:
    """MnasNet's soft latency-aware reward ACC · (LAT / T)^w."""
    if latency_ms <= 0 or target_ms <= 0:
        return float("nan")
    return accuracy * math.pow(latency_ms / target_ms, w)


def check_proxy(name: str) -> str:
    if name not in PROXIES:
        raise ScaleprofError(f"--proxy must be one of {', '.join(PROXIES)}, got {name!r}")
    return name
