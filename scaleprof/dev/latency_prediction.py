"""reports/latency-prediction: how well `scaleprof predict` predicts this machine (issue 13).

    python -m scaleprof.dev.latency_prediction --out reports [--quick] [--force]

1. Calibration (`scaleprof calibrate`, eager, float32, 1 thread, batch 1) on predict.calibrate's default
   models (zoo models, deform_resnet50, synthetic MLP/CNN/attention nets), into data/predictor.json.
2. Every zoo model and the held-out synthetic nets (predict.synthetic.HELD_OUT: other builders, other layers,
   so that no calibration sample came from them): predicted ms beside measured ms (the calibration's own
   clock and timer: thread CPU time for one thread), MACs and activations.
3. The EfficientNet grid: architectures spread over the default scale grid (α, β, γ at φ = 1), predicted
   and measured: Spearman ρ of the two rankings.
4. The baselines: latency fitted on MACs alone and on MACs + activations (least squares on relative error,
   over the calibration models' whole-model measurements), evaluated on the same held-out models.

Every piece (calibration, one model, one grid point) is written to data/ when done; a rerun skips what is
there (``--force`` redoes it) and a killed calibration resumes from its journal. ``--quick`` is a cheap
run to see the pipeline work (short calibration, a few models, a small grid): not the report's figures.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..bench.env import load_average
from ..errors import one_line
from ..files import writable_dir
from ..report import sections
from ..report.document import Bullets, Document, Figure, Heading, Para, Table
from ..report.writer import write_document
from .driver import Store, log

NAME = "latency-prediction"
THREADS = 1
MEASURE_MAX_GMACS = 20.0     # larger zoo models are predicted, not timed (seconds a call on one thread)
WITHIN = 0.10                # the nn-Meter figure: share of models within ±10%


class Mode:
    """What one run does: the full report, or --quick to see it work."""

    def __init__(self, quick: bool):
        self.quick = quick
        from ..predict.calibrate import DEFAULT_MAX_TIME_S

        self.calibration_s = 45.0 if quick else DEFAULT_MAX_TIME_S
        self.model_time_s = 0.4 if quick else 2.0
        self.grid_points = 6 if quick else 32
        self.redraws = () if quick else None     # None: calibrate's defaults


def _zoo_models(quick: bool) -> list[str]:
    from ..zoo.registry import MODELS

    names = list(MODELS)
    return ["mobilenet_v3_small", "resnet18", "vit_tiny", "mobilenet_v3_large"] if quick else names


def _hf_models(quick: bool) -> list[str]:
    """HuggingFace transformers from their default configs (hf: specs), held out: where transformers
    imports (an optional dependency)."""
    import importlib.util

    if quick or importlib.util.find_spec("transformers") is None:
        return []
    return ["hf:bert", "hf:gpt2"]


def _calibration_models(quick: bool) -> tuple[str, ...]:
    from ..predict.calibrate import DEFAULT_MODELS
    from ..predict.synthetic import CALIBRATION, spec

    return ("mobilenet_v3_small", "resnet18", "vit_tiny", spec(CALIBRATION[0])) if quick else DEFAULT_MODELS


def calibrate_stage(store: Store, mode: Mode, models) -> tuple[Path, dict]:
    from ..predict import calibrate

    path = store.dir / "predictor.json"
    got = store.get("calibration")
    if got is not None and path.is_file():
        return path, got
    kw = {} if mode.redraws is None else {"redraws": mode.redraws}
    r = calibrate(threads=THREADS, max_time=mode.calibration_s, out=path, models=models, **kw)
    d = r.to_dict()
    store.put("calibration", d)
    return path, d


def _measured(spec: str, knobs: dict, specs, time_s: float) -> float:
    import torch

    from ..predict import make_target
    from ..predict.calibrate import time_module
    from ..spec import load_model

    torch.manual_seed(0)
    model = load_model(spec, device="cpu", **knobs).eval()
    xs = [s.make("cpu") for s in specs]
    return time_module(model, xs, make_target(threads=THREADS), time_s)


def evaluate(spec: str, knobs: dict, predictor: Path, time_s: float, *, measure: bool = True) -> dict:
    """One model: its count, its prediction (with the share of predicted time from ops far from every
    sample: the predictor's novelty), and its measured ms."""
    from ..counting import profile
    from ..predict import Predictor, predict_harvest
    from ..predict.harvest import harvest
    from ..shapes import InputSpec
    from ..spec import load_model, model_inputs

    pred = Predictor.load(predictor)
    model = load_model(spec, device="meta", **knobs).eval()
    specs = [InputSpec(s.shape, s.dtype) for s in model_inputs(model)]
    # the count alone beside predict (count + per-op model), each twice, alternated, on the thread's CPU
    # clock and the faster kept: what predict costs on top of a count, not what the machine's load adds
    count_s = predict_s = math.inf
    for _ in range(2):
        t0 = time.thread_time()
        profile(model, specs)
        count_s = min(count_s, time.thread_time() - t0)
        t0 = time.thread_time()
        h = harvest(model, specs, name=spec)
        r = predict_harvest(pred, h, [str(s) for s in specs], [])
        predict_s = min(predict_s, time.thread_time() - t0)
    op_ms = pred.events_ms(h.events) + pred.overhead.per_op_ms
    far = float((op_ms * pred.novelty(h.events)).sum() / max(op_ms.sum(), 1e-12))
    tot = h.profile.totals
    out = {"spec": spec, "knobs": knobs, "inputs": [str(s) for s in specs], "macs": tot.macs,
           "activations": tot.activations, "n_ops": len(h.events), "n_modules": h.module_calls,
           "predicted_ms": r.predicted_ms, "predict_s": predict_s, "count_s": count_s, "novel_share": far,
           "by_kind": {k: v["share"] for k, v in r.by_kind().items()}, "measured_ms": None, "status": "ok",
           # the whole-model overhead terms' part of the prediction (per op, per module call, per forward)
           "overhead_ms": float(pred.overhead.total(len(h.events), h.module_calls)),
           "load": load_average()}
    if measure and tot.macs <= MEASURE_MAX_GMACS * 1e9:
        out["measured_ms"] = _measured(spec, knobs, specs, time_s)
    elif measure:
        out["reason"] = f"not timed: over {MEASURE_MAX_GMACS:g} GMACs"
    return out


def _safe(fn):
    try:
        return fn()
    except Exception as exc:    # one model failing leaves the others
        return {"status": "failed", "reason": one_line(exc)}


def models_stage(store: Store, mode: Mode, predictor: Path, calibration_models) -> list[dict]:
    from ..predict.synthetic import HELD_OUT, spec

    out = []
    cal = set(calibration_models)
    names = [(n, "zoo") for n in _zoo_models(mode.quick)] + [(spec(n), "synthetic") for n in HELD_OUT]
    names += [(n, "transformers") for n in _hf_models(mode.quick)]
    names += [(n, "synthetic") for n in cal if n.startswith("scaleprof.")]
    for i, (name, source) in enumerate(names):
        rec = store.cached(f"model-{name.rsplit(':', 1)[-1]}",
                           lambda n=name: _safe(lambda: evaluate(n, {}, predictor, mode.model_time_s)),
                           label=f"{NAME}: model {i + 1}/{len(names)}: {name}")
        rec.update(name=name.rsplit(":", 1)[-1], source=source, calibration=name in cal)
        out.append(rec)
    _more_passes(store, [(f"model-{n.rsplit(':', 1)[-1]}", n, {}) for n, _ in names], out, mode, "model")
    return out


PASSES = 3   # each timed record: once in the list, then again after the whole list, twice


def _more_passes(store: Store, keys: list[tuple[str, str, dict]], recs: list[dict], mode: Mode, what: str) -> None:
    """Each timed record timed again, minutes after its first pass (the whole list in between), and a third
    time after that: the fastest counts, as in calibration (on a shared host a neighbour's burst slows the
    memory-bound models for a minute or more, and a pass inside it reads 20-40% high), and the passes show
    the measurement's own reproducibility. The second pass is stored as ``again-KEY``, the third as
    ``again2-KEY``."""
    from ..shapes import parse_input

    for n in range(2, PASSES + 1):
        prefix = "again" if n == 2 else f"again{n - 1}"
        for i, ((key, spec, knobs), rec) in enumerate(zip(keys, recs, strict=True)):
            if rec.get("status") != "ok" or not rec.get("measured_ms"):
                continue
            again = store.cached(f"{prefix}-{key}", lambda s=spec, k=knobs, r=rec: _safe(
                lambda: {"measured_ms": _measured(s, k, [parse_input(x) for x in r["inputs"]], mode.model_time_s)}),
                label=f"{NAME}: {what} {i + 1}/{len(keys)} pass {n}: {spec}")
            if again.get("measured_ms"):
                rec.setdefault("measured_passes", [rec["measured_ms"]]).append(again["measured_ms"])
                rec["measured_ms"] = min(rec["measured_passes"])


def _grid_points(n: int) -> list:
    """``n`` architectures spread over the default grid (α, β, γ at φ = 1), by the paper's cost α·β²·γ²."""
    from ..scaling import grid as G
    from ..scaling.family import resolve_family

    fam = resolve_family("efficientnet", None, None)
    r = {k: G.parse_range(v, k) for k, v in G.DEFAULT_RANGES.items()}
    cands = G.build_grid(r["alpha"], r["beta"], r["gamma"], phi=1.0, base_knobs=fam.base_knobs)
    cands.sort(key=lambda c: (G.formula_ratio(c.alpha, c.beta, c.gamma), c.index))
    pick = sorted({round(i * (len(cands) - 1) / max(1, n - 1)) for i in range(n)})
    return [cands[i] for i in pick]


def grid_stage(store: Store, mode: Mode, predictor: Path) -> list[dict]:
    out = []
    points = _grid_points(mode.grid_points)
    for i, c in enumerate(points):
        knobs = {"width": c.width, "depth": c.depth, "resolution": c.resolution}
        rec = store.cached(f"grid-{c.key}", lambda k=knobs: _safe(lambda: evaluate("efficientnet", k, predictor,
                                                                                    mode.model_time_s)),
                           label=f"{NAME}: grid {i + 1}/{len(points)}: {c.key}")
        rec.update(key=c.key, alpha=c.alpha, beta=c.beta, gamma=c.gamma)
        out.append(rec)
    _more_passes(store, [(f"grid-{c.key}", "efficientnet", {"width": c.width, "depth": c.depth,
                                                            "resolution": c.resolution}) for c in points],
                 out, mode, "grid")
    return out


# --- the analysis (pure functions of the records) ---------------------------------------------------------------

def fit_baseline(rows: list[dict], columns: tuple[str, ...]) -> np.ndarray:
    """Non-negative least squares of measured ms on [1, *columns] in relative error (each row weighted by
    1/measured): the MACs-only (and MACs + activations) fit of the issue."""
    from scipy.optimize import nnls

    X = np.array([[1.0, *(float(r[c]) for c in columns)] for r in rows])
    t = np.array([r["measured_ms"] for r in rows], dtype=float)
    w = 1.0 / t
    scale = X.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls((X / scale) * w[:, None], t * w)
    return coef / scale


def apply_baseline(coef: np.ndarray, r: dict, columns: tuple[str, ...]) -> float:
    return float(coef[0] + sum(coef[i + 1] * float(r[c]) for i, c in enumerate(columns)))


def spearman(a, b) -> float:
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1]) if len(ra) > 2 else float("nan")


BASELINES = {"MACs only": ("macs",), "MACs + activations": ("macs", "activations")}


def analyse(models: list[dict], grid: list[dict]) -> dict:
    ok = [m for m in models if m.get("status") == "ok" and m.get("measured_ms")]
    cal = [m for m in ok if m["calibration"]]
    held = [m for m in ok if not m["calibration"]]
    fits = {name: fit_baseline(cal, cols) for name, cols in BASELINES.items()} if len(cal) >= 3 else {}
    for m in ok:
        m["error"] = m["predicted_ms"] / m["measured_ms"] - 1.0
        for name, coef in fits.items():
            m[f"error {name}"] = apply_baseline(coef, m, BASELINES[name]) / m["measured_ms"] - 1.0
    gok = [g for g in grid if g.get("status") == "ok" and g.get("measured_ms")]
    for g in gok:
        g["error"] = g["predicted_ms"] / g["measured_ms"] - 1.0

    def within(rows, key="error"):
        return sum(abs(r[key]) <= WITHIN for r in rows) / len(rows) if rows else float("nan")

    summary = {"held_out": len(held), "within": within(held),
               "mean_abs_error": float(np.mean([abs(m["error"]) for m in held])) if held else float("nan"),
               "calibration_within": within(cal), "grid_points": len(gok),
               "spearman": spearman([g["predicted_ms"] for g in gok], [g["measured_ms"] for g in gok]),
               "grid_within": within(gok)}
    for name in fits:
        summary[f"within {name}"] = within(held, f"error {name}")
        if gok:
            summary[f"spearman {name}"] = spearman([apply_baseline(fits[name], g, BASELINES[name]) for g in gok],
                                                   [g["measured_ms"] for g in gok])
    summary["fits"] = {k: v.tolist() for k, v in fits.items()}
    # the measurement's own reproducibility: every pair of passes of one model, minutes apart
    reps = [abs(b / a - 1.0) for r in ok + gok for i, a in enumerate(r.get("measured_passes") or ())
            for b in r["measured_passes"][i + 1:]]
    summary["repeat"] = {"n": len(reps), "within": sum(d <= WITHIN for d in reps) / len(reps) if reps else float("nan"),
                         "median": float(np.median(reps)) if reps else float("nan"),
                         "max": float(max(reps)) if reps else float("nan")}
    return summary


# --- the document ------------------------------------------------------------------------------------------------

def _png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def scatter(rows: list[dict], title: str, label_key: str = "name") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    for group, marker, colour in ((True, "s", "tab:gray"), (False, "o", "tab:blue")):
        sel = [r for r in rows if bool(r.get("calibration")) == group]
        if sel:
            ax.scatter([r["measured_ms"] for r in sel], [r["predicted_ms"] for r in sel], marker=marker, c=colour,
                       label="calibration model" if group else "held out", s=28)
    for r in rows:
        if abs(r["error"]) > WITHIN and label_key in r:
            ax.annotate(str(r[label_key]), (r["measured_ms"], r["predicted_ms"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    lo = min(min(r["measured_ms"], r["predicted_ms"]) for r in rows) * 0.8
    hi = max(max(r["measured_ms"], r["predicted_ms"]) for r in rows) * 1.25
    xs = np.geomspace(lo, hi, 50)
    ax.plot(xs, xs, "k-", lw=0.8)
    ax.fill_between(xs, xs * (1 - WITHIN), xs * (1 + WITHIN), color="tab:green", alpha=0.15, label="±10%")
    ax.set(xscale="log", yscale="log", xlabel="measured ms (thread CPU time, 1 thread)", ylabel="predicted ms",
           title=title)
    ax.legend(fontsize=8)
    return _png(fig)


def residuals(rows: list[dict], title: str) -> bytes:
    """Each model's error against its measured ms: the ±10% judgement at a glance, the labels spread by
    error (on the log-log scatter the large models' labels fall on each other)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.4, 4.8))
    for group, marker, colour in ((True, "s", "tab:gray"), (False, "o", "tab:blue")):
        sel = [r for r in rows if bool(r.get("calibration")) == group]
        if sel:
            ax.scatter([r["measured_ms"] for r in sel], [100 * r["error"] for r in sel], marker=marker, c=colour,
                       label="calibration model" if group else "held out", s=26)
    for r in rows:
        if abs(r["error"]) > WITHIN:
            ax.annotate(str(r["name"]), (r["measured_ms"], 100 * r["error"]), fontsize=7, xytext=(4, -3),
                        textcoords="offset points")
    ax.axhspan(-100 * WITHIN, 100 * WITHIN, color="tab:green", alpha=0.15, label="±10%")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="measured ms (thread CPU time, 1 thread)", ylabel="predicted / measured − 1 (%)",
           title=title)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:+.1f}"


def _share(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.0f}%"


def model_table(rows: list[dict]) -> pd.DataFrame:
    out = []
    for m in rows:
        top = max(m["by_kind"].items(), key=lambda kv: kv[1]) if m.get("by_kind") else ("-", 0)
        out.append({"model": m["name"], "MACs (G)": f"{m['macs'] / 1e9:.3f}",
                    "measured ms": f"{m['measured_ms']:.2f}" if m.get("measured_ms") else m.get("reason", "-"),
                    "predicted ms": f"{m['predicted_ms']:.2f}", "error %": _pct(m.get("error")),
                    **{f"{k} %": _pct(m.get(f"error {k}")) for k in BASELINES},
                    "overhead": _share(m["overhead_ms"] / m["predicted_ms"]) if m.get("predicted_ms") else "-",
                    "far from samples": _share(m.get("novel_share")), "top kind": f"{top[0]} {_share(top[1])}"})
    return pd.DataFrame(out)


def _repeat_line(rep: dict) -> str:
    """How far the same model's timings, minutes apart, differ: the floor under any predictor's error."""
    if not rep.get("n"):
        return "the measurement's reproducibility: not measured (one pass)"
    return (f"the measurement's own reproducibility: {rep['n']} pairs of passes of the models and grid points "
            f"(each timed {PASSES} times, minutes apart; the fastest counts): {_share(rep['within'])} of the pairs within ±10% of each other (median difference "
            f"{_share(rep['median'])}, largest {_share(rep['max'])}); no predictor can be held to less on this machine")


def _predict_cost(rows: list[dict]) -> str:
    """What predict costs beyond a count of the same model (the issue's target: at most 10 ms)."""
    both = [m for m in rows if m.get("count_s") is not None]
    if not both:
        return f"predict's own cost: {np.median([m['predict_s'] for m in rows]) * 1000:.0f} ms median"
    extra = np.array([m["predict_s"] - m["count_s"] for m in both]) * 1000
    return (f"predict's cost beyond a count of the same model (each twice, alternated, thread CPU time): "
            f"median {np.median(extra):+.1f} ms, 90th percentile {np.percentile(extra, 90):+.1f} ms over "
            f"{len(both)} models (target: at most +10 ms)")


def failures(rows: list[dict]) -> list[str]:
    """The held-out models outside ±10%, with what their prediction rests on."""
    out = []
    for m in sorted(rows, key=lambda m: -abs(m.get("error", 0))):
        if abs(m.get("error", 0)) <= WITHIN:
            continue
        top = sorted(m["by_kind"].items(), key=lambda kv: -kv[1])[:2]
        out.append(f"{m['name']}: {_pct(m['error'])}% ({'over' if m['error'] > 0 else 'under'}-predicted); "
                   f"{_share(m['novel_share'])} of its predicted time from ops far from every calibration sample; "
                   f"its time is mostly {', '.join(f'{k} ({_share(v)})' for k, v in top)}")
    return out


def _loads(rows: list[dict]) -> str:
    xs = [r["load"] for r in rows if r.get("load") is not None]
    return f"{min(xs):.1f} to {max(xs):.1f}" if xs else "unknown"


def build_document(cal: dict, models: list[dict], grid: list[dict], summary: dict, mode: Mode,
                   elapsed_s: float) -> Document:
    doc = Document("Latency prediction: `scaleprof predict` against measurement on this CPU")
    ok = [m for m in models if m.get("status") == "ok"]
    measured = [m for m in ok if m.get("measured_ms")]
    held = [m for m in measured if not m["calibration"]]
    gok = [g for g in grid if g.get("status") == "ok" and g.get("measured_ms")]
    doc.add(Para(("**A quick run (`--quick`)**: a short calibration, a few models and a small grid, to see the "
                  "pipeline work; these are not the report's figures. " if mode.quick else "")
                 + f"Eager, float32, {THREADS} thread, batch 1; times are thread CPU time, the fastest block "
                 "of the adaptive timer (the calibration's clock and statistic for one thread), with glibc's "
                 "malloc in its steady state (docs/prediction.md, 'The clock'). "
                 f"Built in {elapsed_s / 60:.1f} minutes; load average while models "
                 f"were timed: {_loads(models + grid)} (on {os.cpu_count()} cores: above that, the figures "
                 "measure the contention too)."))
    doc.add(Heading("Summary"), Bullets([
        f"held-out models within ±10%: **{_share(summary['within'])}** of {summary['held_out']} "
        f"(mean |error| {_share(summary['mean_abs_error'])}); the issue's target is 90%",
        *(f"{k} fit: {_share(summary.get(f'within {k}'))} within ±10%" for k in BASELINES),
        f"EfficientNet grid ({summary['grid_points']} architectures): Spearman ρ = **{summary['spearman']:.3f}** "
        f"(target 0.95)" + "".join(f"; {k} fit ρ = {summary[f'spearman {k}']:.3f}" for k in BASELINES
                                   if f"spearman {k}" in summary),
        f"calibration: {cal['samples']} op samples in {cal['elapsed_s']:.0f} s ({cal['stopped']}), "
        f"calibration models in-sample within ±10%: {_share(summary['calibration_within'])}",
        _cv_line(summary.get("cross_validation")), _predict_cost(ok), _repeat_line(summary["repeat"])]))
    doc.add(Heading("Calibration"),
            Para(f"Models: {', '.join(cal.get('calibration_models', []))}. Each model's ops replayed as a chain in the forward's "
                 "order, each timed where it runs, with the model's own forward timed between the passes, and so "
                 "the redraws' (docs/prediction.md); the MACs-only and MACs + "
                 "activations fits use the same whole-model measurements of the calibration models."),
            Table(pd.DataFrame([{"model": str(r.get("model")).rsplit(":", 1)[-1], "measured ms": f"{r['measured_ms']:.2f}",
                                 "predicted ms": f"{r['predicted_ms']:.2f}", "error %": _pct(r.get("error"))}
                                for r in cal.get("models", []) if r.get("measured_ms")]),
                  caption="in-sample: the calibration models"))
    if measured:
        doc.add(Heading("Every zoo model and the held-out nets"),
                Figure("predicted-vs-measured", scatter(measured, "predicted against measured"),
                       "log-log; the band is ±10%; labelled: outside it"),
                Figure("errors", residuals(measured, "the error of each prediction"),
                       "the band is ±10%; labelled: outside it"),
                Table(model_table(sorted(ok, key=lambda m: (m["calibration"], m["source"], m["macs"]))),
                      caption="'overhead': the share of the prediction from the whole-model overhead terms (per op, "
                              "per module call, per forward); 'far from samples': the share of predicted time from "
                              "ops at a distance from every calibration sample of their group"))
    if gok:
        doc.add(Heading("The EfficientNet grid"),
                Figure("grid", scatter(gok, f"EfficientNet grid: ρ = {summary['spearman']:.3f}", ""),
                       "α, β, γ spread over the default grid (φ = 1); the table below names each point"),
                Table(pd.DataFrame([{"α,β,γ": g["key"], "MACs (G)": f"{g['macs'] / 1e9:.3f}",
                                     "measured ms": f"{g['measured_ms']:.2f}", "predicted ms": f"{g['predicted_ms']:.2f}",
                                     "error %": _pct(g["error"])} for g in gok])))
    fails = failures(held)
    doc.add(Heading("Where the predictor fails, and why"),
            Bullets(fails or ["no held-out model outside ±10%"]))
    bad = [f"{m.get('name', '?')}: {m.get('reason')}" for m in models + grid if m.get("status") != "ok"]
    if bad:
        doc.add(Heading("Not evaluated"), Bullets(bad))
    doc.add(*sections.made_by())
    return doc


def _cv(predictor: Path) -> dict:
    from ..predict import Predictor
    from .predictor_cv import cross_validate

    return {**cross_validate(Predictor.load(predictor)), "status": "ok"}


def _cv_line(cv: dict | None) -> str:
    if not cv or cv.get("status") != "ok":
        return f"leave-one-family-out cross-validation: not run ({(cv or {}).get('reason', 'no predictor')})"
    return (f"leave-one-family-out cross-validation on the calibration models (each model and its redraws "
            f"predicted from the other models' samples, no timing; dev/predictor_cv.py): "
            f"{_share(cv['within'])} of {cv['n']} within ±10% (mean |error| {_share(cv['mean_abs_error'])}, "
            f"median {_share(cv['median_abs_error'])})")


def build(out: Path, mode: Mode, force: bool = False) -> Path:
    t0 = time.perf_counter()
    folder = writable_dir(out / NAME)
    store = Store(folder, force)
    models_cal = _calibration_models(mode.quick)
    predictor, cal = calibrate_stage(store, mode, models_cal)
    cal["calibration_models"] = [m.rsplit(":", 1)[-1] for m in models_cal]
    models = models_stage(store, mode, predictor, models_cal)
    grid = grid_stage(store, mode, predictor)
    summary = analyse(models, grid)
    summary["cross_validation"] = store.cached("cross-validation", lambda: _safe(lambda: _cv(predictor)),
                                               label=f"{NAME}: cross-validation on the calibration models")
    store.put("summary", summary)
    doc = build_document(cal, models, grid, summary, mode, time.perf_counter() - t0)
    return write_document(doc, folder, stem="README").markdown


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaleprof.dev.latency_prediction", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="folder for the reports (default: reports)")
    p.add_argument("--quick", action="store_true", help="a cheap run to see it work (not the report's figures)")
    p.add_argument("--force", action="store_true", help="redo finished work instead of reading it from data/")
    opts = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        path = build(Path(opts.out), Mode(opts.quick), opts.force)
    except Exception as exc:
        print(f"latency_prediction: error: {one_line(exc)}", file=sys.stderr)
        return 2
    log(f"latency_prediction: wrote {path} ({time.perf_counter() - t0:.0f} s)")
    if (Path(opts.out) / "README.md").is_file():    # the reports' index (make reports wrote it just before)
        from .build_reports import write_index

        write_index(Path(opts.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
