"""The tolerance grammar: ``"macs=0.01,params=0"``, ``1%``, ``macs[conv.depthwise]=0.05`` for one kind."""

from __future__ import annotations

import math

from ..counting.result import METRICS
from ..errors import ScaleprofError


def _metric_known(key: str) -> bool:
    if key in ("latency", "predicted") or key in METRICS:
        return True
    if key.endswith("]") and "[" in key:
        base, kind = key[:-1].split("[", 1)
        return base in METRICS and bool(kind)
    return False


def _fraction(text: str, key: str) -> float:
    t = str(text).strip()
    try:
        v = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise ScaleprofError(f"malformed tolerance {key}={text!r}: a relative number expected, e.g. "
                             f"{key}=0.01 or {key}=1%") from None
    if not math.isfinite(v) or v < 0:
        raise ScaleprofError(f"tolerance {key}={text!r} must be a non-negative relative number")
    return v


def _items(spec) -> list[tuple]:
    """(key, value) pairs from a dict, a string or a list of strings."""
    if isinstance(spec, dict):
        return list(spec.items())
    texts = [spec] if isinstance(spec, str) else list(spec)
    items = []
    for text in texts:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ScaleprofError(f"malformed tolerance {part!r}: use METRIC=VALUE, e.g. macs=0.01")
            k, v = part.split("=", 1)
            items.append((k.strip(), v))
    return items


def parse_tolerances(spec) -> dict[str, float]:
    """``"macs=0.01,params=0"`` (or a dict, or a list of such strings) -> {metric: relative limit}."""
    if spec is None:
        return {}
    out = {}
    for k, v in _items(spec):
        k = str(k).strip().lower()
        if not _metric_known(k):
            raise ScaleprofError(f"unknown metric {k!r} in --tolerance; use {', '.join(METRICS)}, latency "
                                 f"or METRIC[KIND] (e.g. macs[conv.depthwise])")
        out[k] = _fraction(v, k)
    return out


def limit_of(metric: str, tolerances: dict[str, float]) -> float:
    """A metric's limit: its own entry, else its base metric's (``macs`` for ``macs[conv]``), else exact."""
    if metric in tolerances:
        return tolerances[metric]
    base = metric.split("[", 1)[0]
    return tolerances.get(base, 0.0)
