"""Leave-one-family-out cross-validation of the per-op model on calibration samples: no timing.

Each calibration family (a model and its redraws: runs whose label starts with the same name) is
predicted from the other families' samples alone, the per-op model and the whole-model overhead both
refitted without it, against the forward calibration timed beside that family's chains. It judged the
per-op model's form (model.py), the latency report states it (dev/predictor_cv.py), and calibration uses it
to choose which families to redraw further (calibrate.py: the adaptive step).
"""

from __future__ import annotations

import numpy as np

from . import model as M

WITHIN = 0.10


def family(label: str) -> str:
    return label.split(" ", 1)[0]


def cross_validate(pred, runs: dict, measured: dict[str, float]) -> dict:
    """``pred``: a Predictor whose samples name their ``source`` run; ``runs``: label -> Harvest;
    ``measured``: label -> the forward's ms. Per run its error predicted without its family's samples,
    and over all: the share within ±10%, the mean and median |error|."""
    from .predictor import Predictor

    labels = [k for k in measured if measured[k] and k in runs]
    rows = []
    for fam in sorted({family(k) for k in labels}):
        p = Predictor(target=pred.target, environment=pred.environment, gflops=pred.gflops, gbps=pred.gbps,
                      samples=[s for s in pred.samples if family(s.get("source", "")) != fam])
        p.fit()
        sums = {k: float(p.events_ms(runs[k].events).sum()) for k in labels}
        rest = [k for k in labels if family(k) != fam]
        if rest:
            p.overhead = M.fit_overhead(np.array([sums[k] for k in rest]),
                                        np.array([len(runs[k].events) for k in rest], dtype=float),
                                        np.array([runs[k].module_calls for k in rest], dtype=float),
                                        np.array([measured[k] for k in rest], dtype=float))
        for k in (k for k in labels if family(k) == fam):
            ms = sums[k] + p.overhead.total(len(runs[k].events), runs[k].module_calls)
            rows.append({"model": k, "family": fam, "measured_ms": measured[k], "predicted_ms": ms,
                         "error": ms / measured[k] - 1})
    e = np.abs([r["error"] for r in rows])
    return {"rows": rows, "n": len(rows), "within": float(np.mean(e <= WITHIN)) if len(e) else float("nan"),
            "mean_abs_error": float(e.mean()) if len(e) else float("nan"),
            "median_abs_error": float(np.median(e)) if len(e) else float("nan")}


def worst_families(cv: dict, n: int) -> list[str]:
    """The ``n`` families with the largest mean |error| under cross-validation, worst first."""
    by: dict[str, list[float]] = {}
    for r in cv["rows"]:
        by.setdefault(r["family"], []).append(abs(r["error"]))
    return sorted(by, key=lambda f: (-float(np.mean(by[f])), f))[:n]
