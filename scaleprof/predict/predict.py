"""`predict()`: a model's latency from its count, without running it.

One count on meta tensors (the harvester: no weights, no arithmetic) gives every op with its shapes; the
predictor gives each op's time (vectorised per group, model.py), and the whole-model overhead (per op,
per module call, per forward) is added. Each op's time (with its per-op overhead) goes to its layer row
(module, kind); the module-call and per-forward overhead is one row of its own, "(framework overhead)",
so the layers sum to ``predicted_ms`` exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..counting import kinds as K
from ..shapes import InputSpec, parse_dtype
from ..spec import load_model, model_inputs, spec_label
from .harvest import harvest
from .predictor import Predictor, make_target, resolve

OVERHEAD_ROW = "(framework overhead)"


@dataclass
class PredictedLayer:
    name: str
    kind: str
    predicted_ms: float
    macs: int
    calls: int

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "predicted_ms": self.predicted_ms, "macs": self.macs,
                "calls": self.calls}


@dataclass
class PredictionResult:
    model: str
    inputs: list[str]
    predicted_ms: float
    layers: list[PredictedLayer]
    predictor: dict
    macs: int
    elapsed_ms: float
    notices: list[str] = field(default_factory=list)

    def by_kind(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for r in self.layers:
            g = out.setdefault(r.kind, {"predicted_ms": 0.0, "macs": 0, "share": 0.0})
            g["predicted_ms"] += r.predicted_ms
            g["macs"] += r.macs
        total = self.predicted_ms or 1.0
        for g in out.values():
            g["share"] = g["predicted_ms"] / total
        return dict(sorted(out.items(), key=lambda kv: K.kind_order(kv[0])))

    def by_module(self, level: int | None = 2) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for r in self.layers:
            key = r.name if r.name.startswith("(") or level is None else ".".join(r.name.split(".")[:level])
            g = out.setdefault(key, {"predicted_ms": 0.0, "macs": 0, "share": 0.0})
            g["predicted_ms"] += r.predicted_ms
            g["macs"] += r.macs
        for g in out.values():
            g["share"] = g["predicted_ms"] / (self.predicted_ms or 1.0)
        return out

    def to_dict(self) -> dict:
        return {"model": self.model, "inputs": self.inputs, "predicted_ms": self.predicted_ms,
                "macs": self.macs, "by_kind": self.by_kind(), "layers": [r.to_dict() for r in self.layers],
                "predictor": self.predictor, "elapsed_ms": self.elapsed_ms, "notices": list(self.notices)}


def predict(model_or_spec, inputs=None, *, knobs: dict | None = None, device="cpu", runtime="eager",
            dtype=None, threads: int | None = None, predictor=None, force: bool = False,
            batch: int | None = None) -> PredictionResult:
    """Predicted latency (ms) of ``model_or_spec`` (a spec or an nn.Module) on ``inputs`` (the zoo's
    default when None) for the target (device, runtime, dtype, threads), by ``predictor`` (a file, a
    Predictor, or None: the one calibrated for this environment and target; the roofline alone when there
    is none). A predictor from another environment is refused naming what differs, unless ``force``.
    ``batch``: the inputs' leading dimension replaced by this (as bench --batch does)."""
    target = make_target(device, runtime, dtype, threads)
    pred, notices = resolve(predictor, target, force=force)
    t0 = time.perf_counter()
    knobs = dict(knobs or {})
    model = load_model(model_or_spec, device="meta", **knobs)
    if isinstance(model_or_spec, str):
        model.eval()
    dt = parse_dtype(target.dtype)
    specs = [InputSpec(s.shape, dt if s.dtype.is_floating_point else s.dtype)
             for s in model_inputs(model, inputs)]
    if batch is not None:
        specs = [InputSpec((int(batch), *s.shape[1:]), s.dtype) if len(s.shape) else s for s in specs]
    h = harvest(model, specs, name=spec_label(model_or_spec), dtype=dt)
    result = predict_harvest(pred, h, [str(s) for s in specs], notices)
    result.elapsed_ms = (time.perf_counter() - t0) * 1000.0
    return result


def predict_harvest(pred: Predictor, h, inputs: list[str], notices: list[str]) -> PredictionResult:
    """The prediction of one harvested forward (the piece scaling and bench reuse)."""
    per_op = np.maximum(pred.events_ms(h.events) + pred.overhead.per_op_ms, 0.0)    # a view, less the replay's call
    rows: dict[tuple[str, str], PredictedLayer] = {}
    for e, ms in zip(h.events, per_op.tolist(), strict=True):
        row = rows.get((e.module, e.kind))
        if row is None:
            row = rows[(e.module, e.kind)] = PredictedLayer(e.module, e.kind, 0.0, 0, 0)
        row.predicted_ms += ms
        row.macs += e.macs
        row.calls += 1
    layers = list(rows.values())
    rest = pred.overhead.per_module_ms * h.module_calls + pred.overhead.per_model_ms
    if rest:
        layers.append(PredictedLayer(OVERHEAD_ROW, K.OTHER, rest, 0, h.module_calls))
    total = sum(r.predicted_ms for r in layers)
    info = {"fingerprint": pred.fingerprint, "runtime": pred.target.runtime, "device": pred.target.device,
            "dtype": pred.target.dtype, "threads": pred.target.threads, "path": pred.path,
            "calibrated": pred.calibrated, "digest": pred.digest}
    return PredictionResult(model=h.profile.model, inputs=inputs, predicted_ms=total, layers=layers, predictor=info,
                            macs=h.profile.totals.macs, elapsed_ms=0.0, notices=list(notices))
