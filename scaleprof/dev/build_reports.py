"""`make reports`: the committed reports under reports/, each a folder with README.md, README.html, figures/
and data/ (one JSON per finished piece of work).

    python -m scaleprof.dev.build_reports --out reports [--only zoo,crosscheck,...] [--force]

- zoo: every zoo model's params, MACs and per-kind shares against the published figures, and its CPU
  latency (eager, batch 1, a short time cap per model).
- crosscheck: scaleprof beside fvcore, thop and torch's FlopCounterMode for every zoo model but the largest,
  each difference explained by layer group; then models from outside the zoo (quantized int8 models, and
  torchvision's detection models where it imports) and what every counter misses.
- efficientnet-scaling: the grid search at φ = 1 under the paper's constraint (α·β²·γ² ≈ 2) and under the
  real cost, the chosen coefficients, and the φ sweep against Table 2.
- flops-vs-latency: on this CPU, each conv kind's share of MACs against its share of time; swish against
  ReLU; what that means for choosing a model.
- transformers: HF configs from GPT-2 to Mixtral counted on meta: prefill and decode per token, KV cache,
  the memory estimate, beside FlopCounterMode and the 2·N·tokens rule (dev/transformers_report.py).

Every piece of work (one model's latency, one peer check, one search) is written to data/ as soon as it is
done, and a rerun skips what is there (``--force`` redoes it), so an interrupted build resumes. Each zoo
model's cost is counted once, kept under zoo/data/, and read from there by the crosscheck too.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from ..bench.env import environment
from ..bench.env import summary as env_summary
from ..counting.peers import PEERS, crosscheck
from ..errors import one_line
from ..files import atomic_write_text, writable_dir
from ..report import plots, sections
from ..report.document import Bullets, Document, Figure, Heading, Para, Table
from ..report.tables import ci, ms, num
from ..report.writer import write_document
from ..scaling.grid import PAPER_POINT, SYMBOL, formula_ratio, key_of
from .driver import Store, add_target_args, log, select_targets
from .transformers_report import build_transformers

REPORTS = ("zoo", "crosscheck", "efficientnet-scaling", "flops-vs-latency", "transformers")

# Latency in the zoo report: a short cap per model; past this many MACs a CPU run is skipped, not capped
# (EfficientNet-L2 at 800 px is ~476 GMACs: tens of seconds a call and gigabytes of activations).
LATENCY_MAX_GMACS = 100.0
# Peers run real forwards (three of them, plus fvcore's JIT trace): the same limit.
CROSSCHECK_MAX_GMACS = 100.0
ATTRIBUTION_MODELS = ("efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large", "resnet50")


def _failure(exc: BaseException) -> dict:
    return {"status": "failed", "reason": one_line(exc)}


# --- zoo -------------------------------------------------------------------------------------------------------

def _zoo_cost(costs: Store, name: str, label: str = "") -> dict:
    """The model's count (catalog.cost_row with by_kind), once per run for the zoo and the crosscheck alike."""
    from ..catalog import cost_row

    return costs.cached(f"cost-{name}", lambda: cost_row(name, by_kind=True), label)


def _zoo_latency(name: str, macs: int, max_time: float, threads: int | None = 1) -> dict:
    from ..bench import bench

    if macs / 1e9 > LATENCY_MAX_GMACS:
        return {"status": "skipped", "reason": f"{macs / 1e9:.0f} GMACs: over the report's {LATENCY_MAX_GMACS:g} "
                                               f"GMACs cap for a CPU run"}
    try:
        r = bench(name, max_time=max_time, memory=False, samples=False, threads=threads)
    except Exception as exc:
        return _failure(exc)
    row = r.results[0]
    return {"status": row.status, "reason": row.reason, "median_ms": row.median_ms, "ci95_ms": row.ci95_ms,
            "samples": row.samples, "cold_ms": row.cold_ms, "threads": r.env.get("threads"), "env": r.env,
            "max_time": max_time, "stop_reason": r.results[0].details.get("stop_reason")}


def _top_kinds(by_kind: dict, total: int, n: int = 3) -> str:
    if not total:
        return ""
    items = sorted(((v.get("macs", 0), k) for k, v in by_kind.items() if v.get("macs")), reverse=True)[:n]
    return ", ".join(f"{k} {100 * m / total:.0f}%" for m, k in items)


def _vs_published(ours: int, pub: int | None, tol: int | None) -> str:
    if not pub:
        return ""
    if ours == pub:
        return "exact"
    d = ours - pub
    within = tol is not None and abs(d) <= tol
    return f"{d:+,} ({100 * d / pub:+.2f}%){' within rounding' if within else ''}"


def build_zoo(store: Store, costs: Store, opts) -> Document:
    from .. import zoo

    names = opts.models or zoo.list_models()
    rows = []
    for i, name in enumerate(names, 1):
        cost = _zoo_cost(costs, name, f"[zoo {i}/{len(names)}] {name}: cost")
        lat = store.cached(f"latency-{name}", lambda name=name, cost=cost: _zoo_latency(
            name, cost["totals"]["macs"], opts.max_time, opts.threads), f"[zoo {i}/{len(names)}] {name}: CPU latency")
        rows.append((cost, lat))

    table = []
    points = []
    for cost, lat in rows:
        t, pub = cost["totals"], cost.get("published") or {}
        ok = lat.get("status") == "ok" and lat.get("median_ms")
        table.append({"model": cost["name"], "input": cost["input"], "params": f"{t['params']:,}",
                      "published params": f"{pub['params']:,}" if pub.get("params") else "",
                      "params vs published": _vs_published(t["params"], pub.get("params"), pub.get("params_tol")),
                      "MACs": f"{t['macs']:,}",
                      # a starred figure is a reference count, not a published one (its note says which)
                      "published MACs": (f"{pub['macs']:,}" + ("*" if pub.get("note") else "")) if pub.get("macs") else "",
                      "MACs vs published": _vs_published(t["macs"], pub.get("macs"), pub.get("macs_tol")),
                      "largest MAC shares": _top_kinds(cost["by_kind"], t["macs"]),
                      "CPU ms (median)": f"{lat['median_ms']:.2f}" if ok else lat.get("status", ""),
                      "95% CI ms": ci(lat.get("ci95_ms")) if ok else (lat.get("reason") or "")[:60],
                      "GMAC/s": f"{t['macs'] / (lat['median_ms'] * 1e-3) / 1e9:.1f}" if ok else ""})
        if ok:
            points.append((t["macs"] / 1e9, lat["median_ms"], cost["name"]))
    env = next((lat["env"] for _, lat in rows if lat.get("env")), None) or environment()
    max_time = opts.max_time
    sources = sorted({(c.get("published") or {}).get("source") for c, _ in rows
                      if not (c.get("published") or {}).get("note")} - {None})
    doc = Document("The zoo: cost against the published figures, and CPU latency")
    doc.add(Para("Every model of `scaleprof.zoo` at its default input, batch 1. **MACs** are multiply-accumulates of "
                 "convolution, linear/matmul and attention products (the papers' FLOPS, torchvision's `_ops`); params "
                 "are counted once. *vs published* is our count minus the published figure (exact where the source "
                 "is exact, within its stated rounding otherwise)."),
            Para(f"CPU latency: eager PyTorch, float32, batch 1, median of per-call samples with a distribution-free "
                 f"95% CI, {opts.threads or 'all'} torch thread(s), at most {max_time:g} s of measurement per model (at least 6 samples, so the largest take "
                 f"longer); models over {LATENCY_MAX_GMACS:g} GMACs are skipped. Measured on {env_summary(env, code=True)}."
                 " The machine is shared, so absolute times carry noise; the ratios between models are the point."),
            Table(pd.DataFrame(table)))
    if points:
        doc.add(Figure("zoo-macs-vs-latency", plots.scatter_log(points, xlabel="GMACs", ylabel="CPU latency (ms)",
                                                                title="MACs against CPU latency, batch 1",
                                                                rate_line="the median time per MAC"),
                       caption="MACs against CPU latency. The dashed diagonal is the zoo's median time per MAC: "
                               "a model above it runs slower per MAC than the median, one below it faster. A "
                               "label that would cover another is left off; the table above has every model."))
        rates = sorted(((p[0] / (p[1] * 1e-3), p[2]) for p in points), reverse=True)
        lines = [f"Fastest per MAC: {', '.join(f'{n} {r:.1f}' for r, n in rates[:3])} GMAC/s; slowest: "
                 f"{', '.join(f'{n} {r:.1f}' for r, n in rates[-3:])} GMAC/s — "
                 f"{rates[0][0] / rates[-1][0]:.1f}× apart, so MACs alone do not rank latency on this CPU."]
        doc.add(Heading("What it shows"), Bullets(lines))
    doc.add(Para("Published figures from: " + "; ".join(sources) + "."))
    starred = [f"{c['name']}: {c['published']['note']} ({c['published']['source']})"
               for c, _ in rows if (c.get("published") or {}).get("note")]
    if starred:
        doc.add(Para("\\* " + "; ".join(starred) + "."))
    return doc


# --- crosscheck -----------------------------------------------------------------------------------------------

def _crosscheck_one(name: str) -> dict:
    import torch

    from .. import zoo

    shape = zoo.default_input(name)
    torch.manual_seed(0)
    model = zoo.build(name, device="cpu").eval()
    x = torch.randn(shape)
    cc = crosscheck(model, [x])  # scaleprof counts on meta; the peers do the real arithmetic
    return {"name": name, "input": "x".join(map(str, shape)), **cc.to_dict()}


def _crosscheck_outside(m) -> dict:
    """One model from outside the zoo (dev/outside_models.py): the crosscheck, and for a quantized model the
    float model's count beside it."""
    import torch

    from ..counting import profile

    torch.manual_seed(0)
    x = torch.randn(m.input)
    cc = crosscheck(m.build(), [x])
    d = {"name": m.name, "group": m.group, "input": "x".join(map(str, m.input)), **cc.to_dict()}
    if m.reference is not None:
        ref = profile(m.reference(), [x], quiet=True)
        d["float_model"] = {"macs": ref.totals.macs, "params": ref.totals.params, "flops": ref.totals.flops}
    return d


def _outside_rows(store: Store) -> list[dict]:
    from .outside_models import outside_models

    done = []
    models = outside_models()
    for i, m in enumerate(models, 1):
        def run(m=m):
            try:
                return _crosscheck_outside(m)
            except Exception as exc:
                return {"name": m.name, "group": m.group, **_failure(exc)}

        key = "outside-" + "".join(c if c.isalnum() else "_" for c in m.name)
        done.append(store.cached(key, run, f"[crosscheck outside {i}/{len(models)}] {m.name}"))
    return done


def _peer_cells(d: dict) -> dict:
    row = {}
    for p in d.get("peers", []):
        row[p["name"]] = f"{p['macs_equivalent']:,}" if p["status"] == "ok" else f"failed: {p['reason'][:60]}"
    return row


def outside_section(done: list[dict]) -> list:
    """The outside world: quantized and detection rows, each quantized one beside its float model."""
    rows = []
    for d in done:
        row = {"model": d["name"], "group": d.get("group", ""), "input": d.get("input", "")}
        if d.get("status") == "failed":
            rows.append(row | {"scaleprof MACs": f"failed: {d['reason']}"})
            continue
        row["scaleprof MACs"] = f"{d['scaleprof_macs']:,}"
        if d.get("float_model"):
            row["float model MACs"] = f"{d['float_model']['macs']:,}"
        row |= _peer_cells(d)
        row["complete"] = "yes" if not d.get("scaleprof_uncounted_ops") else "no"
        rows.append(row)
    if not rows:
        return [Heading("Outside the zoo"), Para("No model from outside the zoo could be built here (no quantized "
                                                 "engine, and torchvision does not import).")]
    return [Heading("Outside the zoo"),
            Para("Models the counter was not tuned to: int8 models from torch.ao.quantization (counted as their float "
                 "model: MACs from the packed weights' shapes) and, where torchvision imports, its detection models "
                 "(random weights, counted on CPU where the forward needs values). Every column is in MACs."),
            Table(pd.DataFrame(rows).fillna(""))]


def misses_section(done: list[dict]) -> list:
    """What every counter misses: the ops scaleprof leaves uncounted in any model, and whether the peers that
    name their misses miss them too (agreeing totals are then not complete)."""
    items = []
    for d in done:
        unc = d.get("scaleprof_uncounted_ops") or {}
        if not unc:
            continue
        common = set(d.get("missed_by_all") or [])
        ops = ", ".join(f"`{op}` ×{n}" + (" (every peer too)" if op in common else "") for op, n in sorted(unc.items()))
        items.append(f"**{d['name']}**: {ops}")
    text = ("Ops no formula covers are listed, never counted as a silent zero; a row marks an op every peer that "
            "names its misses (fvcore's unsupported ops, torch's FlopCounterMode registry) misses too: there, "
            "agreeing totals do not make a complete one.")
    return [Heading("What every counter misses"), Para(text),
            Bullets(items) if items else Para("No model here has an op scaleprof leaves uncounted.")]


def _peer_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in PEERS:
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def build_crosscheck(store: Store, costs: Store, opts) -> Document:
    from .. import zoo

    names = opts.models or zoo.list_models()
    excluded, done = [], []
    for i, name in enumerate(names, 1):
        cost = _zoo_cost(costs, name, f"[crosscheck {i}/{len(names)}] {name}: cost")
        if cost["totals"]["macs"] / 1e9 > CROSSCHECK_MAX_GMACS:
            excluded.append(f"{name} ({cost['totals']['macs'] / 1e9:.0f} GMACs)")
            continue

        def run(name=name):
            try:
                return _crosscheck_one(name)
            except Exception as exc:
                return {"name": name, **_failure(exc)}

        done.append(store.cached(f"crosscheck-{name}", run, f"[crosscheck {i}/{len(names)}] {name}"))

    peers = tuple(PEERS)
    rows, explained = [], []
    agree = dict.fromkeys(peers, 0)
    for d in done:
        row = {"model": d["name"], "input": d.get("input", "")}
        if d.get("status") == "failed":
            row["scaleprof MACs"] = f"failed: {d['reason']}"
            rows.append(row)
            continue
        row["scaleprof MACs"] = f"{d['scaleprof_macs']:,}"
        items = []
        for p in d["peers"]:
            if p["status"] != "ok":
                row[p["name"]] = f"failed: {p['reason'][:60]}"
                continue
            diff = p.get("difference") or 0
            row[p["name"]] = f"{p['macs_equivalent']:,}"
            row[f"{p['name']} Δ"] = "0" if diff == 0 else f"{diff:+,} ({100 * diff / d['scaleprof_macs']:+.2f}%)"
            agree[p["name"]] += diff == 0
            items += [f"**{p['name']}** {e}" for e in p.get("explanations") or []]
            items += [f"{p['name']} note: {n}" for n in p.get("notes") or []]
        rows.append(row)
        if items:
            explained.append((d["name"], items))
    n_ok = sum(1 for d in done if d.get("status") != "failed")
    doc = Document("scaleprof beside fvcore, thop and torch's FlopCounterMode")
    doc.add(Para("Each zoo model at its default input, batch 1, eval mode, with random weights on CPU, counted by "
                 "scaleprof and by three peers. Units differ: fvcore's `flops` are multiply-adds (1 per fused "
                 "multiply-add), thop's `macs` follow its own per-module rules, torch's FlopCounterMode counts 2 "
                 "FLOPs per MAC (halved here). Every column is in MACs; Δ = peer − scaleprof."),
            Para(f"Peers: {_peer_versions()}. Excluded as too large for three real forward passes on this CPU: "
                 f"{', '.join(excluded) if excluded else 'none'}."),
            Para("Exact agreement in total MACs, out of " + str(n_ok) + " models: "
                 + ", ".join(f"{p} {agree[p]}" for p in peers) + "."),
            Table(pd.DataFrame(rows).fillna("")),
            Heading("Each difference explained"),
            Para("By layer group: what the peer counted against what scaleprof counted, and why they part."))
    for name, items in explained:
        doc.add(Heading(name, 3), Bullets(items))
    outside = _outside_rows(store) if opts.models is None else []   # a quick build (--models) skips them
    if opts.models is None:
        doc.add(*outside_section(outside))
    doc.add(*misses_section(done + outside))
    return doc


# --- efficientnet scaling -------------------------------------------------------------------------------------

def _scale_run(store: Store, key: str, **kw) -> dict:
    from ..scaling.search import scale

    logfile = store.dir / f"{key}.log.jsonl"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if store.force:
        logfile.unlink(missing_ok=True)  # --force redoes the search, not only its summary
    r = scale("efficientnet", log=str(logfile), resume=logfile.exists(), progress=True, **kw)
    return r.to_dict()


def _grid_words(grid: dict) -> str:
    """The searched grid, from a scale result's ``grid``: α 1.0–1.4, β 1.0–1.25, γ 1.0–1.3 in steps of 0.05."""
    def dec(v: float) -> str:
        t = f"{v:g}"
        return t if "." in t else f"{t}.0"

    ranges, steps = [], set()
    for k, sym in SYMBOL.items():
        vals = sorted(grid.get(k) or [])
        if not vals:
            continue
        ranges.append(f"{sym} {dec(vals[0])}–{dec(vals[-1])}" if len(vals) > 1 else f"{sym} {dec(vals[0])}")
        steps |= {round(b - a, 4) for a, b in zip(vals, vals[1:], strict=False)}
    return ", ".join(ranges) + (f" in steps of {steps.pop():g}" if len(steps) == 1 else "")


def build_scaling(store: Store, costs: Store, opts) -> Document:
    paper_grid = store.cached("search-paper-constraint-paper-sweep", lambda: _scale_run(
        store, "search-paper-constraint-paper-sweep", phi=1, budget="2x", tolerance=0.05, constraint="formula",
        sweep_from="paper"),
        "[efficientnet-scaling] grid search at φ = 1, feasible when α·β²·γ² ≈ 2 (the paper's constraint), and "
        "the paper's α, β, γ swept over φ")
    cost_grid = store.cached("search-real-cost", lambda: _scale_run(
        store, "search-real-cost", phi=1, budget="2x", tolerance=0.05, constraint="cost", sweep=None),
        "[efficientnet-scaling] grid search at φ = 1, feasible when the real MACs are 2x ± 5%")

    paper = ", ".join(f"{sym} = {v:g}" for sym, v in zip(SYMBOL.values(), PAPER_POINT, strict=True))
    pp = next((c for c in paper_grid["candidates"] if c.get("key") == key_of(*PAPER_POINT)), None)
    best_a, best_b = paper_grid.get("best") or {}, cost_grid.get("best") or {}
    doc = Document("EfficientNet compound scaling, searched again")
    doc.add(Para(f"Tan & Le (2019) scale depth by α^φ, width by β^φ and resolution by γ^φ under α·β²·γ² ≈ 2, and "
                 f"found {paper} by a grid search at φ = 1 (α·β²·γ² = {formula_ratio(*PAPER_POINT):.4f}). Here the "
                 f"same grid ({_grid_words(paper_grid.get('grid') or {})}) is costed on meta tensors with the zoo's "
                 "EfficientNet, whose rounding (channels to multiples of 8, repeats by ceil) is the reference "
                 "implementation's. Without ImageNet training the objective is the cost-only one: among feasible "
                 "candidates the fewest activations (Dollár et al. 2021: at equal MACs, fewer activations run "
                 "faster)."))
    bullets = []
    if best_a:
        bullets.append(f"Under the paper's constraint (α·β²·γ² within 5% of 2): chosen {sections.coef(best_a)}, "
                       f"α·β²·γ² = {best_a['formula_ratio']:.4f}, real cost {best_a['cost_ratio']:.3f}× B0.")
    if best_b:
        bullets.append(f"Under the real cost (MACs within 2× ± 5% of B0's): chosen {sections.coef(best_b)}, "
                       f"α·β²·γ² = {best_b['formula_ratio']:.4f}, real cost {best_b['cost_ratio']:.3f}× B0.")
    if pp and pp.get("cost_ratio"):
        bullets.append(f"The paper's point {paper} satisfies the formula (α·β²·γ² = "
                       f"{pp['formula_ratio']:.4f}) but, built, costs {pp['cost_ratio']:.3f}× B0: depth "
                       f"{PAPER_POINT[0]:g} rounds every stage's repeats up (ceil), 16 blocks become 23.")
    doc.add(Heading("The chosen coefficients"), Bullets(bullets))
    doc.add(Heading("Under the paper's constraint", 2))
    doc.add(*sections.scale_section({**paper_grid, "phi_sweep": []})[1:])
    doc.add(Heading("Under the real cost", 2))
    doc.add(*sections.scale_section({**cost_grid, "phi_sweep": []})[1:])
    doc.add(Heading("The φ sweep with the paper's coefficients, against Table 2", 2))
    sweep = paper_grid["phi_sweep"]
    if sweep:
        doc.add(*sections.phi_blocks(sweep, "efficientnet-paper")[1:])
        far = [r for r in sweep if r.get("vs_paper")]
        if far:
            doc.add(Bullets([f"φ = {r['phi']} ({r.get('paper_model', '')}): {r['macs'] / 1e9:.3f} GMACs built from "
                             f"({', '.join(f'{v:g}' for v in PAPER_POINT)})^φ against the paper's "
                             f"{r['paper_macs'] / 1e9:.2f} B ({r['vs_paper']:.2f}×); the released model at width "
                             f"{r.get('released_knobs', {}).get('width')}, depth "
                             f"{r.get('released_knobs', {}).get('depth')}, resolution "
                             f"{r.get('released_resolution')} has {r['released_macs'] / 1e9:.3f} GMACs"
                             for r in far if r.get("released_macs")]))
    return doc


# --- flops vs latency -----------------------------------------------------------------------------------------

def _attribution_bench(name: str, max_time: float, threads: int | None = 1, roofline: bool = False) -> dict:
    from ..bench import bench

    r = bench(name, max_time=max_time, memory=False, by="kind", roofline=roofline, batch_sizes=[1, 8],
              threads=threads)
    return r.to_dict()


def _micro(suite: str, max_time: float, threads: int | None = 1) -> dict:
    from ..bench.env import torch_threads
    from ..bench.micro import run_micro

    with torch_threads(threads):
        return run_micro(suite, max_time=max_time).to_dict()


def _micro_ci(r: dict) -> str:
    """A micro-benchmark row's CI as ± its half-width, flagged when wide (bench.micro.WIDE_CI)."""
    lo_hi, med = r.get("ci95_ms"), r.get("median_ms")
    if not lo_hi or not med:
        return "wide CI" if r.get("wide_ci") else ""
    half = max(med - lo_hi[0], lo_hi[1] - med) / med
    return f"±{100 * half:.1f}%" + (" (wide CI)" if r.get("wide_ci") else "")


def _swish_vs_relu(max_time: float, threads: int | None = 1) -> dict:
    from torch import nn

    from .. import zoo
    from ..bench.compare import compare_models

    silu = zoo.build("efficientnet_b0", device="cpu").eval()
    relu = copy.deepcopy(silu)
    swapped = 0
    for parent in relu.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.SiLU):
                setattr(parent, child_name, nn.ReLU(inplace=False))
                swapped += 1
    c = compare_models(silu, relu, [zoo.default_input("efficientnet_b0")], max_time=max_time,
                       labels=("efficientnet_b0 (swish)", "efficientnet_b0 (ReLU)"), threads=threads)
    d = c.to_dict()
    d["swapped_modules"] = swapped
    return d


def _share_blocks(benches: dict) -> list:
    """Share of MACs against share of time per layer kind, every model in one table, then each model's figure;
    a model without attribution is named with the reason (never an empty table)."""
    rows, findings = [], []
    for name, b in benches.items():
        attr = b.get("attribution") or {}
        for r in attr.get("rows", []):
            if not str(r.get("name", "")).startswith("conv.") and r.get("name") not in ("linear", "activation", "norm"):
                continue
            macs_share, time_share = r.get("macs_share") or 0.0, r.get("time_share") or 0.0
            rows.append({"model": name, "kind": r["name"], "MACs %": f"{100 * macs_share:.1f}",
                         "time %": f"{100 * time_share:.1f}",
                         "time / MACs": f"{time_share / macs_share:.2f}" if macs_share else "",
                         "GFLOP/s": "" if r.get("gflops") is None else f"{r['gflops']:.1f}"})
            if r.get("name") == "conv.depthwise" and macs_share:
                findings.append(f"{name}: depthwise convolutions are {100 * macs_share:.1f}% of the MACs and "
                                f"{100 * time_share:.1f}% of the time ({time_share / macs_share:.1f}× their share)")
    out = [Heading("Share of MACs against share of time, per layer kind"),
           Para("Batch 1, eager. A ratio time / MACs above 1: the kind is slower per MAC than the model's average.")]
    if rows:
        out.append(Table(pd.DataFrame(rows)))
    missing = [f"{name}: {'; '.join(b.get('notes') or ['no time attribution in the result'])}"
               for name, b in benches.items() if not (b.get("attribution") or {}).get("rows")]
    if missing:  # never an empty table: say what is missing and why
        out += [Para("No time attribution for:"), Bullets(missing)]
    if findings:
        out.append(Bullets(findings))
    for name, b in benches.items():
        attr = b.get("attribution")
        if attr:
            kind_rows = [r for r in attr.get("rows", []) if (r.get("macs_share") or 0) > 0.001
                         or (r.get("time_share") or 0) > 0.01]
            out.append(Figure(f"macs-vs-time-{name}", plots.macs_vs_time(kind_rows, title=f"{name}: share of MACs "
                                                                                        "against share of time"),
                           caption=f"{name}, batch 1"))
    return out


def build_flops_vs_latency(store: Store, costs: Store, opts) -> Document:
    models = opts.models or list(ATTRIBUTION_MODELS)
    benches = {}
    for i, name in enumerate(models, 1):
        # the roofline (the machine's peaks) is measured once, with the first model
        benches[name] = store.cached(f"bench-{name}", lambda name=name: _attribution_bench(
            name, opts.max_time * 2, opts.threads, roofline=name == models[0]),
            f"[flops-vs-latency {i}/{len(models)}] {name}: time per layer kind"
            + (", roofline" if name == models[0] else ""))
    micro_convs = store.cached("micro-convs", lambda: _micro("convs", 8.0, opts.threads),
                               "[flops-vs-latency] equal-MAC convolutions")
    micro_acts = store.cached("micro-activations", lambda: _micro("activations", 10.0, opts.threads),
                              "[flops-vs-latency] activations")
    swish = store.cached("swish-vs-relu", lambda: _swish_vs_relu(max(10.0, opts.max_time * 5), opts.threads),
                         "[flops-vs-latency] efficientnet_b0 with swish against ReLU")

    env = next((b.get("env") for b in benches.values() if b.get("env")), None) or environment()
    doc = Document("FLOPs against latency on this CPU")
    doc.add(Para(f"Measured on {env_summary(env, code=True)}, with {opts.threads or 'all'} torch thread(s). MACs say how much arithmetic a layer does; time says "
                 "how long it takes. The two part where a layer does little arithmetic per byte it moves "
                 "(depthwise convolutions, activations, norms): those run far below the machine's peak rate."))

    doc.add(*_share_blocks(benches))
    first = next((b for b in benches.values() if b.get("roofline")), None)
    if first:
        doc.add(*sections.roofline_blocks(first["roofline"], first.get("model", "model")))
    tp_rows = [dict(r, model=name) for name, b in benches.items() for r in b.get("results", [])]
    if tp_rows:
        doc.add(Heading("Throughput against batch size"),
                Table(pd.DataFrame([{"model": r["model"], "batch": r["batch_size"], "median ms": ms(r.get("median_ms")),
                                     "samples/s": "" if not r.get("throughput") else f"{r['throughput']:.1f}"}
                                    for r in tp_rows])),
                Figure("throughput-by-model", plots.throughput(tp_rows, title="throughput against batch size",
                                                               by=("model",)),
                       caption="samples per second at batch 1 and 8"))

    # equal-MAC convolutions
    mrows = micro_convs.get("rows", [])
    doc.add(Heading("Four convolutions with the same MACs"),
            Para("Standard 3×3, pointwise 1×1, grouped 3×3 and depthwise 3×3, each sized to do the same "
                 "multiply-accumulates; what differs is the arithmetic per byte moved."),
            Table(pd.DataFrame([{"conv": r["name"], "config": r["config"], "MACs": f"{r['macs']:,}" if r.get("macs") else "",
                                 "median ms": f"{r['median_ms']:.3f}", "95% CI": _micro_ci(r),
                                 "GMAC/s": num(r.get("gmacs_per_s")), "GB/s": f"{r['gbps']:.1f}"} for r in mrows])))
    if mrows:
        t = {r["name"]: r["median_ms"] for r in mrows}
        std = t.get("standard 3x3")
        dw = t.get("depthwise 3x3")
        if std and dw:
            doc.add(Bullets([f"At equal MACs the depthwise convolution takes {dw / std:.1f}× the time of the standard "
                             f"one."]))

    # activations
    arows = micro_acts.get("rows", [])
    doc.add(Heading("Swish against ReLU"),
            Para("All seven measured together in shuffled interleaved rounds, each warmed up first (a wide CI "
                 "is flagged: read no ratio from it)."),
            Table(pd.DataFrame([{"activation": r["name"], "tensor": r["config"], "median ms": f"{r['median_ms']:.3f}",
                                 "95% CI": _micro_ci(r), "GB/s": f"{r['gbps']:.1f}"} for r in arows])))
    act = {r["name"]: r["median_ms"] for r in arows}
    notes = []
    if act.get("relu") and act.get("silu"):
        notes.append(f"On one tensor, SiLU (swish) takes {act['silu'] / act['relu']:.2f}× ReLU's time: both read and "
                     "write it once, so the difference is arithmetic (an exp and a divide per element).")
    if swish.get("ratio"):
        lo, hi = swish["ratio_ci95"]
        said = {"faster": "the ReLU version is faster", "slower": "the ReLU version is slower",
                "inconclusive": "inconclusive, the run too short to tell"}.get(
            swish["verdict"], "no difference either way")
        notes.append(f"In the whole model, efficientnet_b0 with its {swish.get('swapped_modules')} SiLU modules "
                     f"replaced by ReLU takes {swish['ratio']:.3f}× the swish version's time (95% CI {lo:.3f}–{hi:.3f}, "
                     f"Mann-Whitney p = {swish['p_value']:.2g}, {swish['rounds']} interleaved rounds): {said}. "
                     "MACs are the same for both; counting says nothing of this.")
    doc.add(Bullets(notes))

    doc.add(Heading("What it means for choosing a model"))
    doc.add(Bullets([
        "MACs rank models by arithmetic, not by time: on a CPU at batch 1, models built from depthwise-separable "
        "blocks (MobileNet, EfficientNet) spend a larger share of their time than of their MACs in depthwise "
        "convolutions, norms and activations, so they are slower per MAC than ResNets.",
        "Compare candidates by measured latency on the target hardware (`scaleprof compare A B`), and use MACs "
        "for what they measure: a hardware-independent cost, good for scaling rules and budgets.",
        "Activation count (elements written) tracks memory-bound time better than MACs among models of equal MACs; "
        "the scaling search uses it as its tie-break for that reason.",
        "Swish costs more than ReLU per element, and the cost grows with the activation count, not with MACs."]))
    return doc


# --- driver ------------------------------------------------------------------------------------------------------

BUILDERS = {"zoo": build_zoo, "crosscheck": build_crosscheck, "efficientnet-scaling": build_scaling,
            "flops-vs-latency": build_flops_vs_latency, "transformers": build_transformers}


def build(name: str, out: Path, opts, costs: Store | None = None) -> Path:
    """Build one report under out/NAME; ``costs``: the zoo models' counts, shared by the zoo and crosscheck
    reports (kept under out/zoo/data/)."""
    folder = writable_dir(out / name)
    costs = costs or Store(out / "zoo", opts.force)
    doc = BUILDERS[name](Store(folder, opts.force), costs, opts)
    doc.add(*sections.made_by())
    paths = write_document(doc, folder, stem="README")
    _drop_stale_figures(folder / "figures", paths.figures)
    return paths.markdown


def _drop_stale_figures(figures: Path, written: list[Path]) -> list[Path]:
    """Remove the PNGs an earlier build left that this document does not show (a figure in figures/ is
    one the README shows, never a leftover)."""
    keep = {p.name for p in written}
    stale = [f for f in sorted(figures.glob("*.png")) if f.name not in keep] if figures.is_dir() else []
    for f in stale:
        f.unlink()
    return stale


def write_index(out: Path) -> Path:
    lines = ["# Reports", "", "Built by `make reports` (`python -m scaleprof.dev.build_reports --out reports`) and "
             "`make bench` (performance.md). Each folder has README.md, a self-contained README.html and the JSON "
             "it was made from under data/.", ""]
    for name in REPORTS:
        if (out / name / "README.md").is_file():
            first = (out / name / "README.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
            lines.append(f"- [{name}]({name}/README.md): {first}")
    if (out / "latency-prediction" / "README.md").is_file():    # dev/latency_prediction.py builds it
        lines.append("- [latency-prediction](latency-prediction/README.md): `scaleprof predict` against measurement")
    if (out / "memory-estimate" / "README.md").is_file():       # dev/memory_estimate.py builds it
        lines.append("- [memory-estimate](memory-estimate/README.md): the training-memory estimate against the "
                     "measured peak on CPU")
    if (out / "performance.md").is_file():
        lines.append("- [performance](performance.md): scaleprof's own speed against its peers")
    return atomic_write_text(out / "README.md", "\n".join(lines) + "\n")


def main(argv=None) -> int:
    prog = "python -m scaleprof.dev.build_reports"
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_target_args(p, REPORTS, out_help="folder for the reports",
                    force_help="redo finished work instead of reading it from data/")
    p.add_argument("--max-time", type=float, default=2.0, help="seconds of latency measurement per model (default 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for every timing (default 1: on a small shared machine a second thread "
                        "times the neighbours' load)")
    p.add_argument("--models", default=None, help="comma-separated zoo models (default: all; for a quick build)")
    p.add_argument("--debug", action="store_true")
    opts = p.parse_args(argv)
    opts.models = [m.strip() for m in opts.models.split(",") if m.strip()] if opts.models else None
    picked = select_targets("build_reports", opts, REPORTS, "report")
    if isinstance(picked, int):
        return picked
    names, out = picked
    costs = Store(out / "zoo", opts.force)  # one instance: with --force each model is counted once per run
    failed = 0
    for name in names:
        t0 = time.perf_counter()
        try:
            path = build(name, out, opts, costs)
            log(f"build_reports: {name}: wrote {path} ({time.perf_counter() - t0:.0f} s)")
        except Exception as exc:  # one report failing leaves the others and its finished pieces
            failed += 1
            if opts.debug:
                traceback.print_exc()
            print(f"build_reports: {name}: error: {one_line(exc)}", file=sys.stderr)
    write_index(out)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
