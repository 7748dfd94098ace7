"""`bench --predict`: the prediction beside each measured row of a bench result, and per layer kind.

bench does not know prediction (predict sits above it), so the join is made here from the bench result's
dict: each measured row is predicted for its own target (device, runtime, dtype, batch; the bench's
threads), and where the bench attributed time by kind, each kind's predicted share sits beside its measured
one. A row the predictor cannot serve (another runtime, no GPU predictor) gets a reason instead.
"""

from __future__ import annotations

from ..errors import ScaleprofError, one_line
from .predict import predict


def predict_bench(bench: dict, spec, *, knobs: dict | None = None, inputs=None, threads: int | None = None,
                  predictor=None, force: bool = False) -> dict:
    """``bench``: a BenchResult's dict. Returns {"rows": [{runtime, device, dtype, batch_size, measured_ms,
    predicted_ms, error, reason}], "by_kind": [{kind, measured_ms, measured_share, predicted_ms,
    predicted_share}], "predictor": {...}, "notices": [...]} (error = predicted / measured - 1)."""
    rows, first, notices = [], None, []
    for r in bench["results"]:
        row = {k: r[k] for k in ("runtime", "device", "dtype", "batch_size")}
        row.update(measured_ms=r.get("median_ms"), predicted_ms=None, error=None, reason=None)
        rows.append(row)
        if r.get("status") != "ok":
            row["reason"] = "not measured"
            continue
        try:
            p = predict(spec, inputs=inputs, knobs=knobs, device=r["device"], runtime=r["runtime"],
                        dtype=r["dtype"], threads=threads, predictor=predictor, force=force,
                        batch=r["batch_size"])
        except ScaleprofError as exc:
            row["reason"] = one_line(exc)
            continue
        row["predicted_ms"] = p.predicted_ms
        if row["measured_ms"]:
            row["error"] = p.predicted_ms / row["measured_ms"] - 1.0
        notices += [n for n in p.notices if n not in notices]
        if first is None:
            first = (row, p)
    if first is None:
        raise ScaleprofError("bench --predict: no measured row could be predicted: "
                             + next((r["reason"] for r in rows if r["reason"]), "nothing measured"))
    return {"rows": rows, "by_kind": _by_kind(bench.get("attribution"), first), "predictor": first[1].predictor,
            "notices": notices}


def _by_kind(attribution: dict | None, first) -> list[dict]:
    """Each kind's predicted ms and share beside the attribution's (the first predicted row's target)."""
    _, p = first
    measured = {}
    if attribution and attribution.get("by") == "kind":
        measured = {a["name"]: a for a in attribution["rows"]}
    out = []
    for kind, v in p.by_kind().items():
        m = measured.get(kind, {})
        out.append({"kind": kind, "measured_ms": m.get("time_ms"), "measured_share": m.get("time_share"),
                    "predicted_ms": v["predicted_ms"], "predicted_share": v["share"]})
    for kind, m in measured.items():
        if kind not in p.by_kind():
            out.append({"kind": kind, "measured_ms": m.get("time_ms"), "measured_share": m.get("time_share"),
                        "predicted_ms": None, "predicted_share": None})
    return out
