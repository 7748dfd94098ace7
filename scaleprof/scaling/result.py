"""What a search returns: the ranked candidates, the best, the φ sweep; text and table views."""

from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate

from .grid import PAPER_POINT

# the `scale --json` contract (design.md); every candidate dict has at least these
CANDIDATE_KEYS = ("alpha", "beta", "gamma", "width", "depth", "resolution", "macs", "params", "cost_ratio",
                  "formula_ratio", "feasible", "latency_ms", "score", "status")


@dataclass
class ScaleResult:
    family: str
    phi: float
    budget: dict
    candidates: list[dict]            # ranked: feasible by score, then the rest by distance to the budget
    best: dict | None
    phi_sweep: list[dict]
    duplicates: int                   # candidates whose architecture another candidate already had
    architectures: int                # distinct architectures among the counted candidates
    objective: str
    constraint: str
    formula_target: float
    base: dict
    grid: dict
    timing: dict
    executor: str
    notes: list[str] = field(default_factory=list)
    resumed: int = 0
    log: str | None = None

    def to_dict(self) -> dict:
        return {"family": self.family, "phi": self.phi, "budget": self.budget, "candidates": self.candidates,
                "best": self.best, "phi_sweep": self.phi_sweep, "duplicates": self.duplicates,
                "architectures": self.architectures, "objective": self.objective, "constraint": self.constraint,
                "formula_target": self.formula_target, "base": self.base, "grid": self.grid,
                "timing": self.timing, "executor": self.executor, "resumed": self.resumed, "log": self.log,
                "notes": list(self.notes)}

    def to_dataframe(self, which: str = "candidates"):
        """The candidates (ranked, one row each) or, with ``which="phi_sweep"``, the scale-up table."""
        import pandas as pd

        if which == "phi_sweep":
            return pd.DataFrame(self.phi_sweep)
        df = pd.DataFrame(self.candidates)
        return df.set_index("key") if "key" in df else df

    def candidate(self, alpha: float, beta: float, gamma: float) -> dict | None:
        from .grid import key_of

        k = key_of(alpha, beta, gamma)
        return next((c for c in self.candidates if c["key"] == k), None)

    def format(self, top: int = 15) -> str:
        return format_result(self, top)


# --- text ----------------------------------------------------------------------------------------------------

def _g(v, unit=1e9, digits=3):
    return "-" if v is None else f"{v / unit:.{digits}f}"


def _f(v, fmt="{:.3f}"):
    return "-" if v is None else fmt.format(v)


def _table(headers, rows) -> str:
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True, stralign="right")


def format_result(res: ScaleResult, top: int = 15) -> str:
    b = res.base
    out = [f"scale {res.family} at φ = {res.phi:g}: objective {res.objective}, budget {res.budget['describe']}, "
           f"feasible = {_constraint_words(res)}",
           f"base: width {b['width']} depth {b['depth']} resolution {b['resolution']}: "
           f"{b['macs'] / 1e9:.4f} GMACs, {b['params'] / 1e6:.3f} M params"]
    n = len(res.candidates)
    n_ok = sum(c["status"] != "failed" for c in res.candidates)
    n_feas = sum(bool(c["feasible"]) for c in res.candidates)
    out.append(f"{n} candidates, {res.architectures} architectures ({res.duplicates} duplicates collapsed), "
               f"{n_feas} feasible, {n - n_ok} failed; costed in {res.timing.get('cost_s', 0):.1f} s"
               + (f" ({res.resumed} from the log)" if res.resumed else ""))
    has_lat = any(c.get("latency_ms") is not None for c in res.candidates)
    has_acc = any(c.get("accuracy") is not None for c in res.candidates)
    headers = ["rank", "α", "β", "γ", "depth", "width", "res", "GMACs", "Mparams", "cost×", "αβ²γ²", "ok"]
    if has_lat:
        headers += ["lat ms", "lat×"]
    if has_acc:
        headers += ["acc", "±"]
    headers += ["score", "same arch"]
    twins: dict[str, int] = {}
    for c in res.candidates:
        if c.get("arch"):
            twins[c["arch"]] = twins.get(c["arch"], 0) + 1
    rows, shown = [], set()
    for c in res.candidates:
        if not c["feasible"] or c.get("rank") is None or c.get("arch") in shown:
            continue
        shown.add(c.get("arch"))
        if len(rows) >= top:
            continue
        r = [c["rank"], f"{c['alpha']:g}", f"{c['beta']:g}", f"{c['gamma']:g}", _f(c["depth"], "{:g}"),
             _f(c["width"], "{:g}"), _f(c["resolution"], "{}"), _g(c["macs"]), _g(c["params"], 1e6),
             _f(c["cost_ratio"], "{:.3f}"), _f(c["formula_ratio"], "{:.4f}"), "yes" if c["feasible"] else "no"]
        if has_lat:
            r += [_f(c.get("latency_ms"), "{:.2f}"), _f(c.get("latency_ratio"), "{:.3f}")
                  + ("=" if c.get("latency_tie") else "")]
        if has_acc:
            r += [_f(c.get("accuracy"), "{:.3f}"), _f(c.get("accuracy_std"), "{:.3f}")]
        r += [_f(c.get("score"), "{:.4g}"), twins.get(c.get("arch"), 1) - 1 or ""]
        rows.append(r)
    if rows:
        out += ["", _table(headers, rows)]
        if len(shown) > top:
            out.append(f"... {len(shown) - top} more feasible architectures (--json for all)")
    if has_lat:
        out.append("lat× = candidate/base latency (paired, interleaved); '=' ties with the best (95% CIs overlap)")
    if res.best:
        c = res.best
        out += ["", f"best: α={c['alpha']:g} β={c['beta']:g} γ={c['gamma']:g} (depth {c['depth']}, width "
                    f"{c['width']}, resolution {c['resolution']}): {c['macs'] / 1e9:.4f} GMACs = "
                    f"{c['cost_ratio']:.3f}x the base; α·β²·γ² = {c['formula_ratio']:.4f}"]
    paper = next((c for c in res.candidates if (c["alpha"], c["beta"], c["gamma"]) == PAPER_POINT), None)
    if paper and paper.get("cost_ratio") is not None:
        a, b, g = PAPER_POINT
        out.append(f"paper's point α={a:g} β={b:g} γ={g:g}: α·β²·γ² = {paper['formula_ratio']:.4f}, real cost "
                   f"{paper['cost_ratio']:.3f}x the base ({'feasible' if paper['feasible'] else 'outside the budget'})")
    if res.phi_sweep:
        s0 = res.phi_sweep[0]
        out += ["", f"scale-up with α={s0['alpha']:g} β={s0['beta']:g} γ={s0['gamma']:g} "
                    "(MACs against 2^φ and the paper's B0-B7):"]
        srows = []
        for s in res.phi_sweep:
            srows.append([s["phi"], _f(s["depth"], "{:g}"), _f(s["width"], "{:g}"), _f(s["resolution"], "{}"),
                          _g(s.get("macs")), _g(s.get("params"), 1e6), _f(s.get("cost_ratio"), "{:.2f}"),
                          f"{s['target_ratio']:g}", _f(s.get("formula_ratio"), "{:.2f}"),
                          s.get("paper_model") or "-", _g(s.get("paper_macs"), 1e9, 2),
                          _f(s.get("vs_paper"), "{:.2f}"), _g(s.get("released_macs"))])
        out.append(_table(["φ", "depth", "width", "res", "GMACs", "Mparams", "cost×", "2^φ", "(αβ²γ²)^φ",
                           "paper", "paper G", "vs paper", "released G"], srows))
    for note in res.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


def _constraint_words(res: ScaleResult) -> str:
    return {"cost": "real cost within the budget",
            "formula": f"α·β²·γ² within the tolerance of {res.formula_target:.3g}",
            "both": f"real cost within the budget and α·β²·γ² ≈ {res.formula_target:.3g}"}[res.constraint]
