"""The predicted-latency objective's work (objectives.PredictedLatencyObjective): each candidate's latency
predicted from its count on meta tensors (scaleprof.predict: no weights, no timing), and the best few
timed afterwards to confirm (latency-aware compound scaling: search by prediction, confirm by measurement).
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import one_line


def _resolved(opts):
    """(predictor, target, notices) for these options: the file given (its own target, threads overridden
    by ``predict_threads``), else the one calibrated for this environment (the roofline alone if none)."""
    from ..predict import Predictor, make_target
    from ..predict.predictor import resolve

    if opts.predictor:
        target = Predictor.load(opts.predictor).target
        if opts.predict_threads is not None:
            target = replace(target, threads=int(opts.predict_threads))
    else:
        target = make_target(threads=opts.predict_threads)
    pred, notices = resolve(opts.predictor, target, force=opts.predictor_force)
    return pred, target, notices


def check_predictor(opts) -> None:
    """A missing, corrupt or foreign predictor fails before any work (one line)."""
    _resolved(opts)


def predicted_metrics(family, c: dict, opts) -> dict:
    from ..predict import predict_harvest
    from ..predict.harvest import harvest
    from ..shapes import InputSpec, parse_dtype

    pred, target, notices = _resolved(opts)
    model = family.build(c["width"], c["depth"], c["resolution"], device="meta").eval()
    shape = family.input_shape(model, c["resolution"])
    dt = parse_dtype(target.dtype)
    spec = InputSpec((target.batch, *shape[1:]), dt)
    r = predict_harvest(pred, harvest(model, [spec], dtype=dt), [str(spec)], notices)
    return {"predicted_ms": r.predicted_ms, "calibrated": pred.calibrated, "fingerprint": pred.fingerprint,
            "target": target.label()}


def measure_ms(family, c: dict, target, max_time: float) -> float:
    """The candidate's measured median ms on the predictor's target (seeded weights; the calibration's clock)."""
    import torch

    from ..predict.calibrate import time_module
    from ..shapes import parse_dtype
    from .options import SEED

    torch.manual_seed(SEED)
    model = family.build(c["width"], c["depth"], c["resolution"], device=target.device).eval()
    shape = family.input_shape(model, c["resolution"])
    dt = parse_dtype(target.dtype)
    x = torch.randn((target.batch, *shape[1:]), device=target.device, dtype=dt)
    return time_module(model.to(dtype=dt), [x], target, max_time)


def confirm_best(family, rows, opts, threads, budget, prog) -> list:
    """Time the ``opts.confirm`` best-ranked candidates: measured_ms and predicted_error (predicted /
    measured - 1) on each; under a latency budget, measured_meets_budget, and those the measurement
    confirms are ranked ahead of those it does not (their order kept). Returns the rows, re-ranked."""
    top = [r for r in rows if r.rank is not None][: int(opts.confirm)]
    if not top:
        return rows
    _, target, _ = _resolved(opts)
    for i, r in enumerate(top):
        try:
            ms = measure_ms(family, r.identity(), target, float(opts.confirm_time))
        except Exception as exc:   # recorded, as a candidate's failures are
            r.extra["confirm_failed"] = one_line(exc)
            continue
        r.extra["measured_ms"] = ms
        r.extra["predicted_error"] = r.extra["predicted_ms"] / ms - 1.0 if ms > 0 else None
        if budget.target_ms is not None:
            r.extra["measured_meets_budget"] = budget.budget.meets_ms(ms)
        prog.say(f"confirm {i + 1}/{len(top)}: predicted {r.extra['predicted_ms']:.2f} ms, measured {ms:.2f} ms",
                 True)
    if budget.target_ms is None:
        return rows
    order = sorted(top, key=lambda r: not r.extra.get("measured_meets_budget", False))
    slots = [rows.index(r) for r in top]
    for slot, r, rank in zip(slots, order, sorted(r.rank for r in top), strict=True):
        rows[slot] = r
        r.rank = rank
    return rows
