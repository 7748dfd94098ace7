"""Predicted latency and calibration results as tables for people; `--json` prints `to_dict()` instead.

Reads only the result objects' dicts (predict.PredictionResult, predict.CalibrationResult), never the
predictor's internals."""

from __future__ import annotations

import pandas as pd

from .tables import human, ms, pct, render


def _predictor_line(p: dict) -> str:
    if not p.get("calibrated", True):
        return "predictor: none calibrated: the roofline alone with seeded peaks (run `scaleprof calibrate`)"
    return (f"predictor: {p.get('path') or '(in memory)'} (fingerprint {p['fingerprint']}; {p['device']}, "
            f"{p['runtime']}, {p['dtype']}, {p['threads']} threads)")


def prediction_frame(result, by: str = "kind", level: int = 2) -> pd.DataFrame:
    d = result.to_dict()
    total = d["predicted_ms"] or 1.0
    if by == "layer":
        rows = [{"layer": r["name"] or "(root)", "kind": r["kind"], "calls": r["calls"], "macs": human(r["macs"]),
                 "predicted ms": ms(r["predicted_ms"]), "share %": pct(r["predicted_ms"], total)}
                for r in d["layers"]]
        return pd.DataFrame(rows).set_index("layer")
    table = d["by_kind"] if by == "kind" else result.by_module(level)
    rows = [{by: k or "(root)", "macs": human(v["macs"]), "predicted ms": ms(v["predicted_ms"]),
             "share %": pct(v["share"])} for k, v in table.items()]
    return pd.DataFrame(rows).set_index(by)


def format_prediction(result, by: str = "kind", level: int = 2, fmt: str = "table") -> str:
    d = result.to_dict()
    head = [f"{d['model']} on {', '.join(d['inputs'])}: predicted {d['predicted_ms']:.3f} ms "
            f"({human(d['macs'])} MACs)", _predictor_line(d["predictor"])]
    return "\n".join(head) + "\n\n" + render(prediction_frame(result, by, level), fmt)


def format_calibration(result) -> str:
    d = result.to_dict()
    t = d["target"]
    lines = [f"predictor: {d['path']}",
             f"target: {t['device']}, {t['runtime']}, {t['dtype']}, {t['threads']} threads, batch {t['batch']}; "
             f"fingerprint {d['fingerprint']}",
             f"{d['samples']} op samples ({d['measured_now']} measured now, {d['resumed']} from the journal, "
             f"{d['failed']} could not be replayed), {d['elapsed_s']:.0f} s, {d['stopped']}"]
    rows = [{"model": r["model"], "measured ms": ms(r["measured_ms"]), "predicted ms": ms(r["predicted_ms"]),
             "error %": pct(r["error"], signed=True)} for r in d["models"]]
    if rows:
        lines += ["", "calibration models (in-sample):", render(pd.DataFrame(rows).set_index("model"), "table")]
    return "\n".join(lines)


def format_bench_prediction(d: dict) -> str:
    """bench --predict (predict.bench_join.predict_bench's dict): predicted beside measured, per row and per
    kind (shares: the attribution's op time does not hold the framework's Python, the prediction does)."""
    rows = [{"runtime": r["runtime"], "device": r["device"], "dtype": r["dtype"], "batch": r["batch_size"],
             "measured ms": ms(r["measured_ms"]) if r["measured_ms"] else "-",
             "predicted ms": ms(r["predicted_ms"]) if r["predicted_ms"] is not None else "-",
             "error %": pct(r["error"], signed=True) if r["error"] is not None else (r["reason"] or "-")}
            for r in d["rows"]]
    lines = ["predicted beside measured:", _predictor_line(d["predictor"]),
             render(pd.DataFrame(rows).set_index("runtime"), "table")]
    kinds = [{"kind": k["kind"],
              "measured ms": ms(k["measured_ms"]) if k["measured_ms"] is not None else "-",
              "measured %": pct(k["measured_share"]) if k["measured_share"] is not None else "-",
              "predicted ms": ms(k["predicted_ms"]) if k["predicted_ms"] is not None else "-",
              "predicted %": pct(k["predicted_share"]) if k["predicted_share"] is not None else "-"}
             for k in d["by_kind"]]
    if kinds:
        lines += ["", "per kind (the first predicted row):", render(pd.DataFrame(kinds).set_index("kind"), "table")]
    lines += [f"note: {n}" for n in d.get("notices", [])]
    return "\n".join(lines)


def format_scale_prediction(d: dict) -> str:
    """scale --objective predicted-latency (a ScaleResult's dict): the ranked candidates' predicted ms, and
    the measured ms of those timed to confirm; "" when no candidate was predicted."""
    rows = [c for c in d["candidates"] if c.get("rank") and c.get("predicted_ms") is not None]
    if not rows:
        return ""
    rows.sort(key=lambda c: c["rank"])
    out = []
    for c in rows[:10]:
        meets = c.get("measured_meets_budget")
        out.append({"rank": c["rank"], "α,β,γ": f"{c['alpha']:g},{c['beta']:g},{c['gamma']:g}",
                    "predicted ms": ms(c["predicted_ms"]),
                    "measured ms": ms(c["measured_ms"]) if c.get("measured_ms") is not None else
                    (c.get("confirm_failed") or "-"),
                    "error %": pct(c["predicted_error"], signed=True) if c.get("predicted_error") is not None else "-",
                    "meets budget (measured)": "-" if meets is None else ("yes" if meets else "no")})
    return "predicted latency (the best timed to confirm):\n" + render(pd.DataFrame(out).set_index("rank"), "table")
