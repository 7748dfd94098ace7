"""`scaleprof check`: count (and time) the model, hold it against a baseline and/or a reference model,
optionally save a new baseline, and return the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScaleprofError
from ..files import atomic_write_json
from ..spec import spec_label
from .baseline import check_save_target, cost_record, load_baseline, make_baseline, validate_baseline
from .measure import DEFAULT_MAX_TIME, against_latency_row, count, measure_latency, stored_latency_row
from .predicted import PredictedCheck
from .result import CheckResult, CheckRow
from .rules import DEFAULT_ALPHA, DEFAULT_THRESHOLD, cost_rows, module_notes
from .tolerances import parse_tolerances


def _refuse_bad_options(baseline, against, save, threshold, alpha, max_time) -> None:
    if baseline is None and against is None and save is None:
        raise ScaleprofError("nothing to check: give --baseline FILE, --against SPEC or --save FILE")
    if not 0 <= threshold < 10:
        raise ScaleprofError(f"--threshold must be a relative slowdown such as 0.1, got {threshold}")
    if not 0 < alpha < 1:
        raise ScaleprofError(f"--alpha must be in (0, 1), got {alpha}")
    if max_time is not None and max_time <= 0:
        raise ScaleprofError(f"--max-time must be positive, got {max_time}")


def _read_baseline(baseline) -> tuple[dict | None, str | None]:
    if baseline is None:
        return None, None
    if isinstance(baseline, dict):
        return validate_baseline(baseline, "(dict)"), "(dict)"
    return load_baseline(baseline), str(baseline)


def _at_dtype(stored: list[str], dtype) -> list:
    """The baseline's inputs, their floating ones at ``dtype`` when one is given: the stored labels carry the
    baseline's dtype (``1x3x8x8:float16``), which must not override the one asked for now."""
    if dtype is None:
        return stored
    from ..shapes import InputSpec, parse_dtype, parse_input

    specs = [parse_input(s) for s in stored]
    return [InputSpec(s.shape, parse_dtype(dtype)) if s.dtype.is_floating_point else s for s in specs]


def _mismatch_notes(spec, base: dict, result, inputs, knobs: dict) -> list[str]:
    """What differs between the baseline's model, inputs and knobs and this check's."""
    notes = []
    if base.get("model") not in (None, spec_label(spec)):
        notes.append(f"the baseline was saved for {base.get('model')!r}; checking {spec_label(spec)!r}")
    if inputs and base.get("inputs") and list(result.inputs) != list(base["inputs"]):
        notes.append(f"inputs differ from the baseline's: {', '.join(result.inputs)} now, "
                     f"{', '.join(base['inputs'])} then")
    if base.get("knobs", {}) != knobs:
        notes.append(f"knobs differ from the baseline's: {knobs or 'none'} now, {base.get('knobs') or 'none'} then")
    return notes


def _baseline_rows(spec, base: dict, current: dict, tols: dict, *, allow_decrease, cost_only, knobs, threshold,
                   alpha, max_time, notes: list[str]) -> tuple[list[CheckRow], dict | None]:
    """The cost rows against the baseline, then its latency row when it has samples and not ``cost_only``;
    and the latency record measured for that row (None if none was)."""
    rows = cost_rows(base["cost"], current, tols, allow_decrease)
    if any(r.failed for r in rows):
        notes += module_notes(base["cost"], current)
    measured = None
    if base.get("latency") and not cost_only:
        row, measured = stored_latency_row(spec, base["latency"], knobs=knobs, threshold=threshold, alpha=alpha,
                                           max_time=max_time)
        rows.append(row)
    elif base.get("latency"):
        notes.append("latency samples in the baseline not checked (cost only)")
    return rows, measured


def _predicted(spec, base, save, result, knobs, dtype, *, predicted, limit, device,
               notes) -> tuple[list[CheckRow], dict | None]:
    """check --predicted: the row against the baseline's predicted record, and the record to save."""
    from .predicted import predicted_record, predicted_row

    predictor, force = (predicted.predictor, predicted.force) if predicted else (None, False)
    rows, record = [], None
    stored = base.get("predicted") if base is not None else None
    if stored is not None and predicted:
        row, record = predicted_row(spec, stored, list(result.inputs), knobs, dtype, predictor=predictor,
                                    force=force, limit=limit, notes=notes)
        rows.append(row)
    elif stored is not None:
        notes.append("predicted latency in the baseline not checked (pass --predicted)")
    elif predicted and base is not None and save is None:
        raise ScaleprofError("--predicted: the baseline holds no predicted latency; save one with "
                             "--save FILE --predicted")
    if predicted and save is not None and record is None:
        record = predicted_record(spec, list(result.inputs), knobs, dtype, predictor=predictor, device=device,
                                  notes=notes)
    return rows, record


def _save(spec, save, result, knobs, *, latency, measured, runtime, device, dtype, max_time,
          predicted=None) -> tuple[str, bool]:
    """Write the baseline; the path written and whether it holds latency samples."""
    lat = None
    if latency:
        if measured is not None and (measured["runtime"], measured["device"], measured["dtype"],
                                     list(measured["inputs"])) == (runtime, device, dtype or "float32",
                                                                   list(result.inputs)):
            lat = measured   # timed just now for the stored samples: the same run, not timed twice
        else:
            lat = measure_latency(spec, list(result.inputs), runtime=runtime, device=device, dtype=dtype,
                                  max_time=max_time or DEFAULT_MAX_TIME, knobs=knobs)
    return str(atomic_write_json(save, make_baseline(spec, result, knobs, lat, predicted))), lat is not None


@dataclass(frozen=True)
class Timing:
    """How check times latency (stored samples, --against, --save --latency, the predicted figure's device):
    each default once. check() takes these as keywords."""

    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    runtime: str = "eager"
    device: str = "cpu"
    max_time: float | None = None


def check(spec, baseline=None, save=None, tolerances=None, against=None, *, inputs=None, dtype=None,
          knobs=None, latency: bool = False, cost_only: bool = False, allow_decrease: bool = False,
          predicted=False, **timing) -> CheckResult:
    """Check a model (spec or nn.Module) against a stored baseline and/or a reference model.

    - ``baseline``: path (or dict) of a baseline written by ``save``; cost metrics compared with
      ``tolerances`` (relative; exact by default); stored latency samples, if the baseline has them and
      not ``cost_only``, compared after an environment-fingerprint match (else ScaleprofError).
    - ``against``: a reference model spec timed in interleaved rounds in this process.
    - ``save``: write a baseline of the model as it is now (with latency samples when ``latency``),
      after any check.
    - ``predicted``: gate on the predicted latency (gate/predicted.py): True (this environment's
      predictor, else the roofline), a predictor file, or ``PredictedCheck(predictor, force)``. The
      baseline's record against the same predictor's figure now (a different predictor is refused unless
      ``force``); a slowdown beyond ``tolerances``' ``predicted`` (default ``threshold``) is a regression;
      with ``save``, the record is stored.
    - ``threshold``, ``alpha``, ``runtime``, ``device``, ``max_time``: how latency is timed (`Timing`).
    Inputs default to the baseline's, then to the zoo model's own. Returns a CheckResult (verdict pass or
    regression); bad input raises ScaleprofError.
    """
    t = Timing(**timing)   # an unknown keyword is a TypeError, as for any function
    threshold, alpha, runtime, device, max_time = t.threshold, t.alpha, t.runtime, t.device, t.max_time
    _refuse_bad_options(baseline, against, save, threshold, alpha, max_time)
    tols = parse_tolerances(tolerances)
    if "latency" in tols:
        threshold = tols.pop("latency")
    pred_limit = tols.pop("predicted", threshold)
    knobs = dict(knobs or {})
    base, base_source = _read_baseline(baseline)
    if save is not None:
        check_save_target(save)

    use_inputs = inputs
    if not use_inputs and base is not None and base.get("inputs"):
        use_inputs = _at_dtype(list(base["inputs"]), dtype)
    use_dtype = dtype if dtype is not None else (base.get("dtype") if base is not None else None)
    result = count(spec, use_inputs, use_dtype, knobs)
    current = cost_record(result)

    notes: list[str] = []
    rows: list[CheckRow] = []
    measured = None   # the latency record measured against the baseline's samples, if any
    if base is not None:
        notes += _mismatch_notes(spec, base, result, inputs, knobs)
        rows, measured = _baseline_rows(spec, base, current, tols, allow_decrease=allow_decrease,
                                        cost_only=cost_only, knobs=knobs, threshold=threshold, alpha=alpha,
                                        max_time=max_time, notes=notes)
    pred_rows, pred_record = _predicted(spec, base, save, result, knobs, use_dtype,
                                        predicted=PredictedCheck.of(predicted), limit=pred_limit, device=device,
                                        notes=notes)
    rows += pred_rows
    if against is not None:
        rows.append(against_latency_row(spec, against, list(result.inputs), knobs=knobs, runtime=runtime,
                                        device=device, dtype=use_dtype, max_time=max_time or DEFAULT_MAX_TIME,
                                        threshold=threshold, alpha=alpha))

    saved = None
    if save is not None:
        saved, with_latency = _save(spec, save, result, knobs, latency=latency, measured=measured, runtime=runtime,
                                    device=device, dtype=use_dtype, max_time=max_time, predicted=pred_record)
        notes.append(f"baseline written to {saved}" + (" with latency samples" if with_latency else "")
                     + (" with the predicted latency" if pred_record else ""))

    verdict = "regression" if any(r.failed for r in rows) else "pass"
    if any(r.verdict == "changed" for r in rows):
        notes.append("a metric fell beyond its limit: if the change is meant, re-save the baseline "
                     "(--save) or pass --allow-decrease")
    return CheckResult(verdict=verdict, checks=rows, model=spec_label(spec), baseline=base_source, saved=saved,
                       against=None if against is None else spec_label(against), notes=notes)
