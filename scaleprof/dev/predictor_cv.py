"""Leave-one-family-out cross-validation of the per-op model on a calibrated predictor's own samples.

Each calibration family (a model and its redraws) is predicted from the other families' samples alone
(the per-op model and the whole-model overhead refitted without them) and compared with the
forward calibration timed beside that family's chains: a held-out test that needs no timing, which chose
the per-op model's form (predict/model.py, docs/prediction.md). A family whose op kinds no other family
has (deform_resnet50's deformable convs) falls back to its kind family's fit, and its error says so.

    python -m scaleprof.dev.predictor_cv reports/latency-prediction/data/predictor.json
"""

from __future__ import annotations

import argparse
import sys


def cross_validate(pred, progress: bool = False) -> dict:
    """predict.crossval's, on a predictor file's own calibration models (each harvested again from its
    label, like "resnet18 width=1.25")."""
    from ..predict.calibrate import harvest_model, parse_label
    from ..predict.crossval import cross_validate as run

    if not any("source" in s for s in pred.samples):
        raise ValueError("the predictor's samples name no source model (calibrated before predictor_cv existed)")
    runs = {}
    for m in pred.models:
        name, knobs = parse_label(m["name"])
        runs[m["name"]] = harvest_model(name, knobs, pred.target).harvest
        if progress:
            print(f"predictor_cv: harvested {m['name']}", file=sys.stderr, flush=True)
    return run(pred, runs, {m["name"]: m["measured_ms"] for m in pred.models})


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
