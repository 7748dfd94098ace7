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
    rows, ops = [], {}
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
        ops[fam] = _op_error(p, [s for s in pred.samples if family(s.get("source", "")) == fam])
    e = np.abs([r["error"] for r in rows])
    return {"rows": rows, "n": len(rows), "within": float(np.mean(e <= WITHIN)) if len(e) else float("nan"),
            "mean_abs_error": float(e.mean()) if len(e) else float("nan"),
            "median_abs_error": float(np.median(e)) if len(e) else float("nan"), "op_error": ops}


def _op_error(p, samples: list[dict]) -> float:
    """A family's op samples predicted by ``p`` (fitted without them): the time-weighted mean |log error|,
    over the samples of groups the other families measured (a kind only this family has, a deformable
    conv, is not a gap its redraws fill for anyone else)."""
    from .harvest import FEATURES

    ok = [s for s in samples if s.get("ms") and s["group"] in p.groups]
    if not ok:
        return 0.0
    feats = np.asarray([s["features"] for s in ok], dtype=float).reshape(len(ok), len(FEATURES))
    got = p.op_ms([s["group"] for s in ok], [s["macs"] for s in ok], [s["bytes"] for s in ok], feats)
    t = np.asarray([s["ms"] for s in ok], dtype=float)
    return float((t * np.abs(np.log(np.maximum(got, 1e-9) / t))).sum() / t.sum())


def worst_families(cv: dict, n: int) -> list[str]:
    """The ``n`` families whose ops the other families' samples predict worst (``op_error``: time-weighted
    over the op configurations, so a tiny model's overhead-bound error does not pick it), worst first."""
    ops = cv.get("op_error", {})
    return sorted(ops, key=lambda f: (-ops[f], f))[:n]
