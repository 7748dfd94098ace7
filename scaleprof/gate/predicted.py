"""`check --predicted`: the gate on predicted latency, a deterministic figure for CI runners too noisy for
wall-clock gates.

The baseline keeps ``predicted`` {predicted_ms, by_kind {kind: ms}, predictor {fingerprint, digest, device,
runtime, dtype, threads}}. The same model and the same predictor predict the same ms anywhere, so the
check asks for the same predictor (its digest: target, peaks and fit) rather than the same machine: a
different one is an error naming the first field that differs, unless ``force``; a predictor calibrated
on another machine is used with a note (the figure is the predictor's, not this runner's latency).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScaleprofError
from .result import CheckRow


@dataclass(frozen=True)
class PredictedCheck:
    """check(predicted=...): which predictor, and whether another than the baseline's is accepted."""

    predictor: object = None       # a file or a Predictor; None: this environment's, else the roofline
    force: bool = False

    @classmethod
    def of(cls, value) -> PredictedCheck | None:
        """False/None: off; True: the defaults; a file: that predictor; a PredictedCheck as it is."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        return value if isinstance(value, cls) else cls(predictor=value)

PREDICTOR_FIELDS = ("fingerprint", "device", "runtime", "dtype", "threads", "digest")
DEFAULT_THREADS = 1     # the target when neither a predictor file nor a baseline names one


def _predict(spec, inputs, knobs, dtype, predictor, device, threads, notes: list[str]):
    from ..predict import Predictor, make_target, predict

    if predictor is not None:
        own = Predictor.load(predictor).target
        device, threads, dtype = own.device, own.threads, own.dtype
    target = make_target(device, "eager", dtype, threads)
    r = predict(spec, inputs=inputs or None, knobs=knobs, device=target.device, runtime=target.runtime,
                dtype=target.dtype, threads=target.threads, predictor=predictor, force=True)
    notes += [n.replace("(--force)", "(a predictor's figure, not this runner's latency)") for n in r.notices]
    return r


def predicted_record(spec, inputs, knobs, dtype, *, predictor=None, device="cpu", threads=None,
                     notes: list[str]) -> dict:
    """The baseline's ``predicted`` part, for the model as it is now."""
    r = _predict(spec, inputs, knobs, dtype, predictor, device, threads or DEFAULT_THREADS, notes)
    p = r.predictor
    return {"predicted_ms": r.predicted_ms,
            "by_kind": {k: v["predicted_ms"] for k, v in r.by_kind().items()},
            "predictor": {k: p[k] for k in PREDICTOR_FIELDS}, "calibrated": p["calibrated"]}


def validate_predicted(rec, source: str) -> None:
    ok = isinstance(rec, dict) and isinstance(rec.get("predicted_ms"), (int, float)) \
        and not isinstance(rec.get("predicted_ms"), bool) and rec["predicted_ms"] > 0 \
        and isinstance(rec.get("predictor"), dict) and all(k in rec["predictor"] for k in PREDICTOR_FIELDS)
    if not ok:
        raise ScaleprofError(f"baseline {source} is malformed: predicted must hold a positive predicted_ms and "
                             f"the predictor's {', '.join(PREDICTOR_FIELDS)}")


def predicted_row(spec, stored: dict, inputs, knobs, dtype, *, predictor=None, force: bool = False,
                  limit: float, notes: list[str]) -> tuple[CheckRow, dict]:
    """The predicted-latency row against the baseline's record (and the record of now). A slowdown beyond
    ``limit`` (relative) is a regression; a speed-up passes (a faster model is no regression)."""
    want = stored["predictor"]
    cur = predicted_record(spec, inputs, knobs, dtype, predictor=predictor, device=want["device"],
                           threads=want["threads"], notes=notes)
    have = cur["predictor"]
    diffs = [f"predicted.predictor.{k}: {want[k]!r} != {have[k]!r}" for k in PREDICTOR_FIELDS if want[k] != have[k]]
    if diffs and not force:
        raise ScaleprofError(f"another predictor than the baseline's ({diffs[0]}): pass the baseline's with "
                             "--predictor, re-save the baseline with --predicted, or --force")
    notes += [f"another predictor than the baseline's (--force): {d}" for d in diffs]
    base_ms, now_ms = float(stored["predicted_ms"]), cur["predicted_ms"]
    change = now_ms / base_ms - 1.0
    verdict = "regression" if change > limit else "pass"
    note = f"predicted by {have['digest']}; regression when more than {limit:.0%} slower"
    return CheckRow("predicted_ms", base_ms, now_ms, change, limit, verdict, unit="ms", note=note), cur
