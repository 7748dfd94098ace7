"""The text view of a scale result (``scaleprof scale`` without --json): the ranked feasible architectures,
the best, the paper's point, the scale-up against 2^φ and the paper's B0-B7, and the notes.

Takes the result's dict (``ScaleResult.to_dict()`` or its JSON read back), so every result prints the same way.
"""

from __future__ import annotations

from tabulate import tabulate

from ..scaling.grid import PAPER_POINT

# what the ranked table's last columns mean, printed under it (report/sections.py shows the same words)
SCORE_LEGEND = ("score: what the objective ranks by, higher is better (cost: minus the activations relative to "
                "the base's, or the budget's share used under a ceiling; latency: minus the latency ratio to the "
                "base; train: accuracy; proxy: the proxy's value; with accuracy and latency, MnasNet's reward)")
SAME_ARCH_LEGEND = ("same arch: how many other grid points build exactly this architecture (rounding makes "
                    "them one model; they are collapsed into this row)")


def _g(v, unit=1e9, digits=3):
    return "-" if v is None else f"{v / unit:.{digits}f}"


def _f(v, fmt="{:.3f}"):
    return "-" if v is None else fmt.format(v)


def _table(headers, rows) -> str:
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True, stralign="right")


def format_scale(res: dict, top: int = 15) -> str:
    """The whole text view of a scale result dict."""
    out = _head(res)
    out += _ranked(res["candidates"], top, res.get("feasible_architectures"))
    out += _best(res)
    out += _sweep(res["phi_sweep"])
    out += [f"note: {note}" for note in res.get("notes", [])]
    return "\n".join(out)


def _head(res: dict) -> list[str]:
    b = res["base"]
    cands = res["candidates"]   # a streamed result holds some; its totals are the whole grid's
    n = res.get("candidates_total") or len(cands)
    failed = res.get("candidates_failed")
    n_ok = n - failed if failed is not None else sum(c["status"] != "failed" for c in cands)
    n_feas = res["feasible_total"] if res.get("feasible_total") is not None else sum(bool(c["feasible"]) for c in cands)
    resumed = res.get("resumed")
    return [f"scale {res['family']} at φ = {res['phi']:g}: objective {res.get('objective_words') or res['objective']}, budget "
            f"{res['budget']['describe']}, feasible = {_constraint_words(res)}",
            f"base: width {b['width']} depth {b['depth']} resolution {b['resolution']}: "
            f"{b['macs'] / 1e9:.4f} GMACs, {b['params'] / 1e6:.3f} M params",
            f"{n} candidates, {res['architectures']} architectures ({res['duplicates']} duplicates collapsed), "
            f"{n_feas} feasible, {n - n_ok} failed; costed in {res['timing'].get('cost_s', 0):.1f} s"
            + (f" ({resumed} from the log)" if resumed else "")]


def _ranked(cands: list[dict], top: int, n_archs: int | None = None) -> list[str]:
    """One row per feasible architecture, in rank order, the first ``top``; ``n_archs``: how many feasible
    architectures the whole grid has (None: those of ``cands``)."""
    has_lat = any(c.get("latency_ms") is not None for c in cands)
    has_acc = any(c.get("accuracy") is not None for c in cands)
    headers = ["rank", "α", "β", "γ", "depth", "width", "res", "GMACs", "Mparams", "cost×", "αβ²γ²", "feasible"]
    headers += ["lat ms", "lat×"] if has_lat else []
    headers += ["acc", "±"] if has_acc else []
    headers += ["score", "same arch"]
    twins: dict[str, int] = {}
    for c in cands:
        if c.get("arch"):
            twins[c["arch"]] = twins.get(c["arch"], 0) + 1
    rows, shown = [], set()
    for c in cands:
        if not c["feasible"] or c.get("rank") is None or c.get("arch") in shown:
            continue
        shown.add(c.get("arch"))
        if len(rows) < top:
            same = c.get("same_arch") or twins.get(c.get("arch"), 1)   # same_arch: a streamed result's
            rows.append(_row(c, has_lat, has_acc, same - 1 or ""))
    n_archs = len(shown) if n_archs is None else n_archs
    out = []
    if rows:
        out += ["", _table(headers, rows)]
        if n_archs > top:
            out.append(f"... {n_archs - top} more feasible architectures (--json for "
                       f"{'the first of them' if n_archs > len(shown) else 'all'})")
        out += [SCORE_LEGEND, SAME_ARCH_LEGEND]
    if has_lat:
        out.append("lat× = candidate/base latency (paired, interleaved); '=' ties with the best (95% CIs overlap)")
    return out


def _row(c: dict, has_lat: bool, has_acc: bool, twins) -> list:
    r = [c["rank"], f"{c['alpha']:g}", f"{c['beta']:g}", f"{c['gamma']:g}", _f(c["depth"], "{:g}"),
         _f(c["width"], "{:g}"), _f(c["resolution"], "{}"), _g(c["macs"]), _g(c["params"], 1e6),
         _f(c["cost_ratio"], "{:.3f}"), _f(c["formula_ratio"], "{:.4f}"), "yes" if c["feasible"] else "no"]
    if has_lat:
        r += [_f(c.get("latency_ms"), "{:.2f}"), _f(c.get("latency_ratio"), "{:.3f}")
              + ("=" if c.get("latency_tie") else "")]
    if has_acc:
        r += [_f(c.get("accuracy"), "{:.3f}"), _f(c.get("accuracy_std"), "{:.3f}")]
    return r + [_f(c.get("score"), "{:.4g}"), twins]


def _best(res: dict) -> list[str]:
    out = []
    c = res.get("best")
    if c:
        out += ["", f"best: α={c['alpha']:g} β={c['beta']:g} γ={c['gamma']:g} (depth {c['depth']}, width "
                    f"{c['width']}, resolution {c['resolution']}): {c['macs'] / 1e9:.4f} GMACs = "
                    f"{c['cost_ratio']:.3f}x the base; α·β²·γ² = {c['formula_ratio']:.4f}"]
    paper = next((c for c in res["candidates"] if (c["alpha"], c["beta"], c["gamma"]) == PAPER_POINT), None)
    if paper and paper.get("cost_ratio") is not None:
        a, b, g = PAPER_POINT
        out.append(f"paper's point α={a:g} β={b:g} γ={g:g}: α·β²·γ² = {paper['formula_ratio']:.4f}, real cost "
                   f"{paper['cost_ratio']:.3f}x the base ({'feasible' if paper['feasible'] else 'outside the budget'})")
    return out


def _sweep(sweep: list[dict]) -> list[str]:
    if not sweep:
        return []
    s0 = sweep[0]
    srows = [[s["phi"], _f(s["depth"], "{:g}"), _f(s["width"], "{:g}"), _f(s["resolution"], "{}"),
              _g(s.get("macs")), _g(s.get("params"), 1e6), _f(s.get("cost_ratio"), "{:.2f}"),
              f"{s['target_ratio']:g}", _f(s.get("formula_ratio"), "{:.2f}"), s.get("paper_model") or "-",
              _g(s.get("paper_macs"), 1e9, 2), _f(s.get("vs_paper"), "{:.2f}"), _g(s.get("released_macs"))]
             for s in sweep]
    return ["", f"scale-up with α={s0['alpha']:g} β={s0['beta']:g} γ={s0['gamma']:g}: these coefficients' own "
                "models at each φ, their MACs against 2^φ and beside the paper's B<φ> (not those models):",
            _table(["φ", "depth", "width", "res", "GMACs", "Mparams", "cost×", "2^φ", "(αβ²γ²)^φ",
                    "paper's", "paper G", "vs paper", "released G"], srows)]


def _constraint_words(res: dict) -> str:
    t = res["formula_target"]
    return {"cost": "real cost within the budget",
            "formula": f"α·β²·γ² within the tolerance of {t:.3g}",
            "both": f"real cost within the budget and α·β²·γ² ≈ {t:.3g}"}[res["constraint"]]
