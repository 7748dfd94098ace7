"""Leave-one-family-out cross-validation of the per-op model on a calibrated predictor's own samples.

Each calibration family (a model and its redraws) is predicted from the other families' samples alone
(the per-op model and the whole-model overhead refitted without them) and compared with the
forward calibration timed beside that family's chains: a held-out test that needs no timing, which chose
the per-op model's form (predict/model.py, docs/prediction.md). A family whose op kinds no other family
has (deform_resnet50's deformable convs) is predicted by the roofline seeds and says so in its error.

    python -m scaleprof.dev.predictor_cv reports/latency-prediction/data/predictor.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

WITHIN = 0.10


def family(label: str) -> str:
    return label.split(" ", 1)[0]


def _knobs(label: str) -> dict:
    knobs = {}
    for kv in label.split(" ")[1:]:
        k, v = kv.split("=", 1)
        knobs[k] = int(v) if v.isdigit() else float(v)
    return knobs


def cross_validate(pred, progress: bool = False) -> dict:
    """Per calibration model (``pred.models``, labels like "resnet18 width=1.25"): its error predicted
    without its family's samples (the per-op model and the whole-model overhead both refitted on the other
    families); and the share within ±10%, mean and median |error|."""
    from ..predict import model as M
    from ..predict.calibrate import harvest_model
    from ..predict.predictor import Predictor

    if not any("source" in s for s in pred.samples):
        raise ValueError("the predictor's samples name no source model (calibrated before predictor_cv existed)")
    runs = {m["name"]: harvest_model(family(m["name"]), _knobs(m["name"]), pred.target).harvest
            for m in pred.models}
    rows = []
    for fam in sorted({family(m["name"]) for m in pred.models}):
        p = Predictor(target=pred.target, environment=pred.environment, gflops=pred.gflops, gbps=pred.gbps,
                      samples=[s for s in pred.samples if family(s.get("source", "")) != fam])
        p.fit()
        sums = {name: float(p.events_ms(h.events).sum()) for name, h in runs.items()}
        rest = [m for m in pred.models if family(m["name"]) != fam]
        p.overhead = M.fit_overhead(np.array([sums[m["name"]] for m in rest]),
                                    np.array([len(runs[m["name"]].events) for m in rest], dtype=float),
                                    np.array([runs[m["name"]].module_calls for m in rest], dtype=float),
                                    np.array([m["measured_ms"] for m in rest], dtype=float))
        for m in (m for m in pred.models if family(m["name"]) == fam):
            h = runs[m["name"]]
            ms = sums[m["name"]] + p.overhead.total(len(h.events), h.module_calls)
            rows.append({"model": m["name"], "family": fam, "measured_ms": m["measured_ms"], "predicted_ms": ms,
                         "error": ms / m["measured_ms"] - 1})
        if progress:
            print(f"predictor_cv: {fam}: done", file=sys.stderr, flush=True)
    e = np.abs([r["error"] for r in rows])
    return {"rows": rows, "n": len(rows), "within": float(np.mean(e <= WITHIN)) if len(e) else float("nan"),
            "mean_abs_error": float(e.mean()) if len(e) else float("nan"),
            "median_abs_error": float(np.median(e)) if len(e) else float("nan")}


def main(argv=None) -> int:
    from ..errors import ScaleprofError
    from ..predict.predictor import Predictor

    ap = argparse.ArgumentParser(prog="python -m scaleprof.dev.predictor_cv", description=__doc__.splitlines()[0])
    ap.add_argument("predictor", help="a predictor file (scaleprof calibrate --out FILE)")
    opts = ap.parse_args(argv)
    try:
        cv = cross_validate(Predictor.load(opts.predictor), progress=True)
    except (OSError, ValueError, ScaleprofError) as exc:
        print(f"predictor_cv: error: {exc}", file=sys.stderr)
        return 2
    for r in cv["rows"]:
        print(f"{r['model']:50s} {r['measured_ms']:9.2f} {r['predicted_ms']:9.2f} {100 * r['error']:+7.1f}%")
    print(f"{cv['n']} models: {100 * cv['within']:.0f}% within ±10%, mean |error| {100 * cv['mean_abs_error']:.1f}%, "
          f"median {100 * cv['median_abs_error']:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
