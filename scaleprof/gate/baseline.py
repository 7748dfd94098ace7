"""The baseline file: a versioned JSON record of a model's cost (and, optionally, latency samples with the
environment they were taken in), its validation, and how one is made from a count."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from .. import __version__
from ..counting.result import METRICS
from ..detect import result_kind
from ..errors import ScaleprofError
from ..files import read_json, writable_dir
from ..spec import spec_label

FORMAT_VERSION = 1

# what each metric counts: in every baseline (``units``) and on each cost row (``unit``)
UNITS = {"macs": "multiply-accumulates", "flops": "floating-point operations", "params": "parameters",
         "activations": "elements", "bytes": "bytes"}


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _validate_cost(cost, source: str) -> None:
    if not isinstance(cost, dict) or not isinstance(cost.get("totals"), dict) or not isinstance(cost.get("by_kind"),
                                                                                                dict):
        raise ScaleprofError(f"baseline {source} is malformed: no cost.totals / cost.by_kind")
    for m in METRICS:
        if not _is_count(cost["totals"].get(m)):
            raise ScaleprofError(f"baseline {source} is malformed: cost.totals.{m} is "
                                 f"{cost['totals'].get(m)!r}, not a non-negative integer")
    unc = cost.get("uncounted_ops", {})
    if not isinstance(unc, dict) or not all(isinstance(k, str) and _is_count(v) for k, v in unc.items()):
        raise ScaleprofError(f"baseline {source} is malformed: cost.uncounted_ops is not a map of op to calls")
    for kind, row in cost["by_kind"].items():
        if not isinstance(row, dict) or not all(_is_count(row.get(m, 0)) for m in METRICS):
            raise ScaleprofError(f"baseline {source} is malformed: cost.by_kind[{kind!r}] is not a set of counts")


def _validate_latency(lat, source: str) -> None:
    samples = lat.get("samples_ms") if isinstance(lat, dict) else None
    if (not isinstance(samples, list) or len(samples) < 2
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
                       for s in samples)):
        # Infinity would pass `> 0` (and NaN poison every statistic): finite, positive times only
        raise ScaleprofError(f"baseline {source} is malformed: latency.samples_ms must be a list of finite, "
                             f"positive times")
    if not isinstance(lat.get("env"), dict) or not lat["env"]:
        raise ScaleprofError(f"baseline {source} is malformed: latency.env (the environment fingerprint) is "
                             f"missing")


def validate_baseline(obj, source: str) -> dict:
    """The baseline dict, or a one-line ScaleprofError saying what is wrong with it."""
    kind = result_kind(obj)
    if kind != "baseline":
        what = f"a {kind} result" if kind else "not a scaleprof baseline"
        raise ScaleprofError(f"baseline {source} is {what}, not a baseline (write one with "
                             f"`scaleprof check SPEC --save FILE`)")
    if obj.get("scaleprof_baseline") != FORMAT_VERSION:
        raise ScaleprofError(f"baseline {source} has format version {obj.get('scaleprof_baseline')!r}; this "
                             f"scaleprof reads version {FORMAT_VERSION}")
    _validate_cost(obj.get("cost"), source)
    if obj.get("latency") is not None:
        _validate_latency(obj["latency"], source)
    if obj.get("predicted") is not None:
        from .predicted import validate_predicted

        validate_predicted(obj["predicted"], source)
    return obj


def load_baseline(path) -> dict:
    return validate_baseline(read_json(path, "baseline"), str(path))


def cost_record(result) -> dict:
    """The ``cost`` part of a baseline from a ProfileResult: totals, per kind, and per top-level module."""
    by_module = {}
    for name, v in result.by_module(1).items():
        by_module[name or "(root)"] = {"macs": v["macs"], "params": v["params"]}
    rec = {"totals": result.totals.to_dict(), "by_kind": result.by_kind(), "by_module": by_module}
    if result.uncounted_ops:   # only when some op is: a complete model's baseline stays as it was
        rec["uncounted_ops"] = dict(sorted(result.uncounted_ops.items()))
    return rec


def make_baseline(spec, result, knobs=None, latency: dict | None = None, predicted: dict | None = None) -> dict:
    import torch

    d = {"scaleprof_baseline": FORMAT_VERSION, "model": spec_label(spec), "knobs": dict(knobs or {}),
         "inputs": list(result.inputs), "dtype": result.dtype,
         "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
         "scaleprof": __version__, "torch": torch.__version__, "units": dict(UNITS),
         "cost": cost_record(result)}
    if latency is not None:
        d["latency"] = latency
    if predicted is not None:
        d["predicted"] = predicted
    return d


def check_save_target(path) -> None:
    """Refuse a save target that cannot be written before anything is measured."""
    p = Path(path)
    if p.is_dir():
        raise ScaleprofError(f"cannot save the baseline to {p}: it is a folder")
    try:
        writable_dir(p.parent)
    except ScaleprofError as exc:
        raise ScaleprofError(f"cannot save the baseline to {p}: {exc}") from None
