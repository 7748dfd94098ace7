"""Report sections, one builder per kind of result; each takes the verb's `--json` dict and returns blocks.

Tables are pandas frames of formatted strings (units in the column names); plots come from plots.py.
"""

from __future__ import annotations

import pandas as pd

from .. import __version__
from ..bench.env import environment
from ..bench.env import summary as env_summary
from ..scaling.grid import SYMBOL
from . import plots
from .document import Bullets, Figure, Heading, Para, Table
from .scale_tables import SCORE_LEGEND
from .tables import ci, human, ms, num, pct
from .verdict import ROW_COLUMNS, row_cells


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(s).lower()).strip("-")[:60] or "x"


# --- environment -----------------------------------------------------------------------------------------

ENV_FIELDS = ("cpu", "cores", "threads", "gpu", "cuda", "torch", "python", "onnxruntime", "platform", "dtype",
              "compile_mode", "fingerprint")


def env_table(env: dict) -> Table:
    rows = [{"field": k, "value": str(env[k])} for k in ENV_FIELDS if env.get(k) not in (None, "", [], {})]
    if env.get("thread_env"):
        rows.append({"field": "thread variables", "value": str(env["thread_env"])})
    return Table(pd.DataFrame(rows, columns=["field", "value"]))


def made_by_sentence() -> str:
    """Which scaleprof, machine and versions built this: `scaleprof 0.1.0 on ...; platform ...`."""
    env = environment()
    return f"scaleprof {__version__} on {env_summary(env, code=True)}; platform {env.get('platform')}"


def made_by() -> list:
    """Which machine and versions built this report."""
    return [Heading("Made by"), Para(made_by_sentence() + ".")]


# --- profile ---------------------------------------------------------------------------------------------

def profile_kind_frame(d: dict) -> pd.DataFrame:
    t = d["totals"]
    rows = []
    for kind, v in d["by_kind"].items():
        rows.append({"kind": kind, "calls": v.get("calls", ""), "MACs": num(v.get("macs", 0)),
                     "MACs %": pct(v.get("macs", 0), t.get("macs")), "FLOPs %": pct(v.get("flops", 0), t.get("flops")),
                     "params": num(v.get("params", 0)), "activations": num(v.get("activations", 0)),
                     "bytes": human(v.get("bytes", 0), "B")})
    rows.append({"kind": "**total**", "calls": sum(int(v.get("calls", 0) or 0) for v in d["by_kind"].values()),
                 "MACs": num(t.get("macs", 0)), "MACs %": "100.0", "FLOPs %": "100.0", "params": num(t.get("params", 0)),
                 "activations": num(t.get("activations", 0)), "bytes": human(t.get("bytes", 0), "B")})
    return pd.DataFrame(rows)


def profile_section(d: dict, source: str = "") -> list:
    t = d["totals"]
    name = d.get("model") or source or "model"
    out = [Heading(f"Profile: {name}"),
           Para(f"Input {', '.join(map(str, d.get('inputs', [])))}, dtype {d.get('dtype', '?')}, counted on "
                f"{d.get('counted_on', d.get('device', '?'))}. **MACs {t['macs']:,}** ({human(t['macs'])}), "
                f"FLOPs {t['flops']:,} ({human(t['flops'])}), params {t['params']:,}, activations "
                f"{t['activations']:,}, least memory traffic {human(t['bytes'], 'B')}."),
           Table(profile_kind_frame(d), caption="Cost per layer kind (MACs = multiply-accumulates of conv, "
                                                "linear/matmul and attention products; FLOPs = every "
                                                "floating-point operation).")]
    if d["by_kind"]:
        out.append(Figure(f"cost-shares-{_slug(name)}", plots.cost_shares(d["by_kind"], t),
                          caption=f"{name}: each layer kind's share of MACs, FLOPs and params"))
    layers = sorted((r for r in d.get("layers", []) if r.get("macs")), key=lambda r: -r["macs"])[:12]
    if layers:
        df = pd.DataFrame([{"layer": r.get("name") or "(root)", "kind": r.get("kind"), "MACs": num(r["macs"]),
                            "MACs %": pct(r["macs"], t["macs"]), "params": num(r.get("params", 0))}
                           for r in layers])
        out.append(Table(df, caption="The layers with the most MACs."))
    extra = []
    if d.get("uncounted_ops"):
        extra.append("Uncounted ops (no formula; not in the totals): "
                     + ", ".join(f"`{k}` ×{v}" for k, v in sorted(d["uncounted_ops"].items())))
    extra += [f"Notice: {n}" for n in d.get("notices", [])]
    if extra:
        out.append(Bullets(extra))
    return out


def profiles_overview(ds: list[dict]) -> list:
    rows = [{"model": d.get("model"), "input": ", ".join(map(str, d.get("inputs", []))),
             "MACs": num(d["totals"]["macs"]), "FLOPs": num(d["totals"]["flops"]),
             "params": num(d["totals"]["params"]), "activations": num(d["totals"]["activations"])} for d in ds]
    return [Heading("Models side by side"), Table(pd.DataFrame(rows))]


# --- bench -----------------------------------------------------------------------------------------------

def bench_frame(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        ok = r.get("status", "ok") == "ok"
        mem = r.get("peak_memory_bytes")
        out.append({"runtime": r.get("runtime"), "device": r.get("device"), "dtype": r.get("dtype"),
                    "batch": r.get("batch_size"), "median ms": ms(r.get("median_ms")),
                    "95% CI ms": ci(r.get("ci95_ms")), "IQR ms": ms(r.get("iqr_ms")),
                    "p90 ms": ms(r.get("p90_ms")),
                    "samples/s": "" if not r.get("throughput") else f"{r['throughput']:.1f}",
                    "cold ms": ms(r.get("cold_ms")), "peak MiB": "" if mem is None else f"{mem / 2**20:.1f}",
                    "samples": r.get("samples"),
                    "status": "ok" if ok else f"failed: {r.get('reason') or ''}"})
    return pd.DataFrame(out)


def attribution_blocks(attr: dict, name: str) -> list:
    rows = attr.get("rows") or []
    if not rows:
        return []
    by = attr.get("by", "kind")
    df = pd.DataFrame([{("kind" if by == "kind" else "module"): r.get("name") or "(root)",
                        **({} if by == "kind" else {"kind": r.get("kind") or ""}),
                        "time ms": ms(r.get("time_ms")), "time %": pct(r.get("time_share")),
                        "MACs %": pct(r.get("macs_share")),
                        "time % / MACs %": ("" if not r.get("macs_share") else
                                            f"{r.get('time_share', 0) / r['macs_share']:.2f}"),
                        "GFLOP/s": "" if r.get("gflops") is None else f"{r['gflops']:.2f}",
                        "GB/s": "" if r.get("gbps") is None else f"{r['gbps']:.2f}",
                        "FLOP/byte": "" if r.get("intensity") is None else f"{r['intensity']:.2f}"}
                       for r in rows])
    out = [Heading(f"Where the time goes (by {by})", 3),
           Para(f"Op time per iteration {attr.get('op_ms', 0):.3f} ms (profiled wall time "
                f"{attr.get('wall_ms', 0):.3f} ms, {attr.get('iterations', '?')} iterations on "
                f"{attr.get('device', '?')}). A kind whose share of time exceeds its share of MACs runs "
                "below the machine's average rate: counting MACs understates its cost."),
           Table(df)]
    if attr.get("note"):
        out.append(Para(f"Note: {attr['note']}"))
    plot_rows = rows if by == "kind" else sorted(rows, key=lambda r: -(r.get("time_share") or 0))[:12]
    out.append(Figure(f"macs-vs-time-{_slug(name)}", plots.macs_vs_time(plot_rows),
                      caption=f"{name}: share of MACs against share of time, per {by}"))
    return out


def roofline_blocks(roof: dict, name: str) -> list:
    pk = roof.get("peaks") or {}
    if not pk.get("gflops") or not pk.get("gbps"):
        return []
    pts = roof.get("points") or []
    df = pd.DataFrame([{"kind": p.get("kind"), "FLOP/byte": num(p.get("intensity")),
                        "achieved GFLOP/s": num(p.get("gflops")), "roof GFLOP/s": num(p.get("roof_gflops")),
                        "efficiency %": pct(p.get("efficiency")), "bound": p.get("bound") or "",
                        "time %": pct(p.get("time_share"))} for p in pts])
    return [Heading("Roofline", 3),
            Para(f"Measured peaks on {pk.get('device')} ({pk.get('dtype')}): {pk['gflops']:.1f} GFLOP/s "
                 f"(square matmul n = {pk.get('matmul_n')}), {pk['gbps']:.2f} GB/s (tensor copy); ridge at "
                 f"{pk['gflops'] / pk['gbps']:.1f} FLOP/byte."),
            Table(df),
            Figure(f"roofline-{_slug(name)}", plots.roofline(pk, pts), caption=f"{name}: roofline")]


def bench_section(d: dict, source: str = "") -> list:
    name = d.get("model") or source or "model"
    rows = d.get("results", [])
    out = [Heading(f"Benchmark: {name}"),
           Para(f"Input {', '.join(map(str, d.get('inputs', [])))}. Measured on "
                f"{env_summary(d.get('env', {}), code=True)}."),
           Table(bench_frame(rows), caption="Latency per call (median of blocks, distribution-free 95% CI); "
                                            "throughput = batch / median.")]
    batches = {r.get("batch_size") for r in rows if r.get("status", "ok") == "ok" and r.get("throughput")}
    if len(batches) > 1:
        out.append(Figure(f"throughput-{_slug(name)}", plots.throughput(rows),
                          caption=f"{name}: throughput against batch size"))
    if d.get("train"):
        tdf = pd.DataFrame([{"device": t.get("device"), "batch": t.get("batch_size"), "optimizer": t.get("optimizer"),
                             "median ms": ms(t.get("median_ms")), "95% CI ms": ci(t.get("ci95_ms")),
                             "samples/s": "" if not t.get("throughput") else f"{t['throughput']:.1f}",
                             "phases": ", ".join(f"{k} {100 * (v.get('share') or 0):.0f}%"
                                                 for k, v in (t.get("phases") or {}).items()),
                             "status": t.get("status")} for t in d["train"]])
        out += [Heading("Training step", 3), Table(tdf)]
    if d.get("attribution"):
        out += attribution_blocks(d["attribution"], name)
    if d.get("roofline"):
        out += roofline_blocks(d["roofline"], name)
    if d.get("env"):
        out += [Heading("Environment", 3), env_table(d["env"])]
    return out


# --- compare ---------------------------------------------------------------------------------------------

def compare_section(d: dict, source: str = "") -> list:
    a, b = d["a"], d["b"]
    lo, hi = (d.get("ratio_ci95") or [None, None])[:2]
    verdict = d.get("verdict", "?")
    head = (f"**{b.get('label', 'B')} is {verdict}** than {a.get('label', 'A')}" if verdict in ("faster", "slower")
            else f"{b.get('label', 'B')} vs {a.get('label', 'A')}: **{verdict}**")
    sides = pd.DataFrame([{"model": s.get("label"), "median ms": ms(s.get("median_ms")),
                           "95% CI ms": ci(s.get("ci95_ms")), "samples": s.get("samples"),
                           "cold ms": ms(s.get("cold_ms"))} for s in (a, b)])
    out = [Heading(f"Comparison: {b.get('label', 'B')} against {a.get('label', 'A')}"),
           Para(f"{head}: B/A = {d['ratio']:.3f}"
                + (f" (95% bootstrap CI {lo:.3f} – {hi:.3f})" if lo is not None else "")
                + f", Mann-Whitney p = {d['p_value']:.2g}, {d.get('rounds', '?')} interleaved rounds "
                  f"({d.get('stop_reason', '?')}); {d.get('runtime', '')} on {d.get('device', '?')}, "
                  f"{d.get('dtype', '')}, input {', '.join(map(str, d.get('inputs', [])))}."),
           Para(f"Rule: {d.get('rule', '')}."),
           *([Para(f"To decide, run about {d['more_seconds']:.3g} s longer (~{d.get('more_rounds')} more rounds, "
                   "if the ratio stays where it is).")] if d.get("more_seconds") is not None else []),
           Table(sides),
           Figure(f"compare-{_slug(a.get('label'))}-{_slug(b.get('label'))}", plots.compare_samples(a, b),
                  caption="per-call latency of each side")]
    if d.get("env"):
        out.append(Para(f"Measured on {env_summary(d['env'], code=True)}."))
    return out


# --- scale -----------------------------------------------------------------------------------------------

def coef(c: dict) -> str:
    """A scaling candidate's coefficients: α = 1.2, β = 1.1, γ = 1.15."""
    return ", ".join(f"{SYMBOL[k]} = {c[k]:.3g}" for k in SYMBOL if isinstance(c.get(k), (int, float)))


def scale_section(d: dict, source: str = "") -> list:
    cands = d.get("candidates") or []
    best = d.get("best") or None
    budget = d.get("budget") or {}
    words, target = budget.get("describe"), budget.get("target_ratio")
    out = [Heading(f"Scaling search: {d.get('family', '?')} at φ = {d.get('phi', '?')}")]
    desc = f"{d.get('candidates_total') or len(cands)} candidates"
    if d.get("candidates_kept") is not None and d["candidates_kept"] < (d.get("candidates_total") or 0):
        desc += f" (streamed: the {d['candidates_kept']:,} first of the ranking kept)"
    if d.get("architectures"):
        desc += f" ({d['architectures']} distinct architectures)"
    if words:
        desc += f", budget {words}"
    if d.get("objective"):
        desc += f", objective {d.get('objective_words') or d['objective']}"
    if best:
        desc += (f"; chosen {coef(best)} (width {best.get('width')}, depth {best.get('depth')}, resolution "
                 f"{best.get('resolution')}): MACs {num(best.get('macs'))}, {num(best.get('cost_ratio'))}× the "
                 f"base")
        if best.get("formula_ratio") is not None:
            desc += f"; α·β²·γ² = {best['formula_ratio']:.4f}"
    out.append(Para(desc + "."))
    if cands:
        def order(c):
            if c.get("rank") is not None:
                return (0, c["rank"])
            return (1 if c.get("feasible", True) else 2, -(c.get("score") or 0))
        top = sorted(cands, key=order)[:20]
        df = pd.DataFrame([{"rank": c.get("rank") or "", "α": c.get("alpha"), "β": c.get("beta"), "γ": c.get("gamma"),
                            "width": c.get("width"), "depth": c.get("depth"), "resolution": c.get("resolution"),
                            "MACs": num(c.get("macs")), "params": num(c.get("params")),
                            "cost ×": num(c.get("cost_ratio")), "α·β²·γ²": num(c.get("formula_ratio")),
                            "feasible": _yes_no(c.get("feasible")), "latency ms": ms(c.get("latency_ms")),
                            "score": num(c.get("score")), "status": c.get("status", "")} for c in top])
        out.append(Table(df, caption=f"Candidates, best first ({len(top)} of {len(cands)})."))
        out.append(Bullets([SCORE_LEGEND + ".", "feasible: whether the candidate meets the constraint "
                            f"({d.get('constraint', 'cost')}) within the budget."]))
        out.append(Figure(f"pareto-{_slug(d.get('family', 'scale'))}-{_slug(d.get('phi'))}",
                          plots.pareto_front(cands, best, target, d.get("objective")),
                          caption="the search's candidates and their Pareto front"))
        if all(c.get(k) is not None for c in cands for k in ("alpha", "beta", "gamma")):
            out.append(Figure(f"grid-{_slug(d.get('family', 'scale'))}-{_slug(d.get('phi'))}",
                              plots.feasibility_grid(cands),
                              caption="the α-β-γ grid: real cost ratio, feasible cells outlined, α·β²·γ² written"))
    sweep = d.get("phi_sweep") or []
    if sweep:
        out += phi_blocks(sweep, d.get("family", "scale"))
    out += [Para(f"Note: {n}") for n in d.get("notes") or []]
    return out


def _yes_no(v) -> str:
    return "" if v is None else ("yes" if v else "no")


def phi_blocks(sweep: list[dict], family: str = "efficientnet") -> list:
    """The scale-up table: each row is the chosen coefficients' own model at φ, beside the paper's B<φ>."""
    def ratio(v):
        return "" if v is None else f"{v:.2f}"

    df = pd.DataFrame([{"φ": r.get("phi"), "width": r.get("width"), "depth": r.get("depth"),
                        "resolution": r.get("resolution"),
                        "MACs": num(r.get("macs")), "params": num(r.get("params")),
                        "MACs / base": ratio(r.get("cost_ratio")),
                        "2^φ": ratio(2.0 ** float(r["phi"])) if r.get("phi") is not None else "",
                        "(α·β²·γ²)^φ": ratio(r.get("formula_ratio")), "paper's model": r.get("paper_model") or "",
                        "paper / B0": ratio(r.get("paper_ratio")),
                        "paper MACs": num(r.get("paper_macs")), "released MACs": num(r.get("released_macs"))}
                       for r in sweep])
    coefs = coef(sweep[0]) if sweep else "the chosen α, β, γ"
    return [Heading("The φ sweep", 3),
            Para(f"{coefs} raised to φ = 0, 1, …: each row is these coefficients' own model, not EfficientNet-B<φ>. "
                 "Its cost relative to the base model beside 2^φ (what α·β²·γ² = 2 promises), (α·β²·γ²)^φ, and "
                 "for comparison the paper's B<φ>: its Table 2 figure (FLOPS = multiply-adds) relative to its B0, "
                 "and the released model's exact MACs."),
            Table(df),
            Figure(f"phi-{_slug(family)}", plots.phi_curve(sweep), caption="MACs against φ")]


# --- check and zoo ---------------------------------------------------------------------------------------

def check_frame(checks: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row_cells(c) for c in checks], columns=list(ROW_COLUMNS))


def check_section(d: dict, source: str = "") -> list:
    out = [Heading(f"Check: {d.get('model') or source}"), Para(f"Verdict: **{d['verdict']}**.")]
    if d.get("checks"):
        out.append(Table(check_frame(d["checks"])))
    if d.get("notes"):
        out.append(Bullets(list(d["notes"])))
    return out


def zoo_section(rows: list[dict], source: str = "") -> list:
    df = pd.DataFrame([{"model": r.get("name"), "family": r.get("family"), "input": r.get("input"),
                        "params": num(r.get("params")), "published params": num(r.get("published_params")),
                        "MACs": num(r.get("macs")), "published MACs": num(r.get("published_macs")),
                        "source": r.get("published_source") or ""} for r in rows])
    return [Heading("Zoo"), Table(df)]


def compare_saved_section(d: dict, source: str = "") -> list:
    """`compare before.json after.json --json`: one row per (runtime, device, dtype, batch) both measured."""
    a, b = d.get("a_model") or "A", d.get("b_model") or "B"
    rows = [{"runtime": r["runtime"], "device": r["device"], "dtype": r["dtype"], "batch": r["batch_size"],
             "A median ms": ms(r.get("a_median_ms")), "B median ms": ms(r.get("b_median_ms")),
             "B/A": f"{r['ratio']:.3f}" if r.get("ratio") else "-",
             "95% CI": ("{:.3f} – {:.3f}".format(*r["ratio_ci95"]) if r.get("ratio_ci95") else "-"),
             "p": f"{r['p_value']:.2g}" if r.get("p_value") is not None else "-",
             "verdict": r.get("verdict", "?")} for r in d.get("rows", [])]
    out = [Heading(f"Saved results: {b} against {a}"),
           Para(f"Two saved bench results compared row by row (B = {b}, A = {a}); rule: {d.get('rule', '')}."),
           Table(pd.DataFrame(rows))]
    if not d.get("same_environment", True):
        out.append(Para("Measured in different environments: " + "; ".join(d.get("env_differences", []))
                        + ". The ratio mixes the change with the machine."))
    return out


BUILDERS = {"profile": profile_section, "bench": bench_section, "compare": compare_section,
            "compare_saved": compare_saved_section,
            "scale": scale_section, "check": check_section, "zoo": zoo_section}
