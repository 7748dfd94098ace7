"""Compound scaling (Tan & Le 2019): grid-search α (depth), β (width), γ (resolution) under a cost budget,
score the candidates (cost, latency, short training, zero-cost proxies or a user's scorer), then scale up.

    from scaleprof.scaling import scale
    r = scale("efficientnet", budget="2x")        # the paper's grid at φ = 1, exact costs on meta tensors
    r.best, r.to_dict(), r.to_dataframe(), r.phi_sweep

Modules: grid (ranges, candidates, compound knobs), budget, family (builders, architecture identity),
evaluate (the work units), objectives, proxies, training, executors (local, process pool, Ray),
log (JSONL results, resume), pareto, sweep (φ = 0..7), result, search (``scale``), selfbench;
options (the typed options ``scale`` is run with), candidate (a result's row), scoring (score and rank).
"""

from .result import ScaleResult

__all__ = ["ScaleResult", "run_search", "scale"]


def __getattr__(name):
    # the search (and torch with it) loads on first use: the CLI reads options' defaults without it
    if name in ("scale", "run_search"):
        from . import search as _search

        return getattr(_search, name)
    raise AttributeError(f"module 'scaleprof.scaling' has no attribute {name!r}")
