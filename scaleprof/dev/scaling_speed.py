"""How fast the search itself is: candidates costed per second on this machine for the default grid.

    python -m scaleprof.dev.scaling_speed            # Markdown on stdout

Counting is on meta tensors (no weights, no arithmetic). efficientnet's candidates are named from its layout
(24 module trees and 168 architectures in the default grid of 378 candidates; 76 and 2,356 in the fine grid
of 16,926), no tree is built (its text and blocks come from its distinct blocks, each built once), and each
architecture is the sum of its blocks' closed forms (scaling/blockcount.py): the default grid takes about a
second, the fine one a few.
"""

from __future__ import annotations

import time

# the issue-16 grid: α 1.0:1.4:0.02, β 1.0:1.25:0.01, γ 1.0:1.3:0.01 (21 x 26 x 31 = 16,926 candidates)
FINE_GRID = {"alpha": "1.0:1.4:0.02", "beta": "1.0:1.25:0.01", "gamma": "1.0:1.3:0.01"}


def _row(label, r, seconds) -> str:
    t = r.timing
    rate = len(r.candidates) / t["cost_s"] if t["cost_s"] else float("nan")
    return (f"| {label} | {len(r.candidates)} | {r.architectures} | {r.duplicates} | {t['cost_s']:.1f} | "
            f"{rate:.1f} | {r.architectures / t['cost_s']:.1f} | {seconds:.1f} |")


def run_selfbench(jobs=(1, 2), sweep: bool = True, out_dir=None) -> str:
    """Markdown: the default grid costed with each ``jobs`` value (1: in process; more: a process pool),
    the fine grid (FINE_GRID) in process, the paper's point (formula against real cost), and the φ = 0..7 scale-up of the paper's coefficients.
    ``out_dir`` (the report folder `make bench` passes every section) is not used: nothing is kept."""
    from ..bench.env import environment, summary
    from ..scaling.search import scale

    lines = ["# scaleprof scale: self-benchmark", "",
             f"Machine: {summary(environment())}. Default grid (α 1.0:1.4:0.05, β 1.0:1.25:0.05, "
             "γ 1.0:1.3:0.05; the fine grid: α 1.0:1.4:0.02, β 1.0:1.25:0.01, γ 1.0:1.3:0.01) at φ = 1, "
             "objective cost, budget 2x ±5%, counted on meta tensors.", "",
             "| executor | candidates | architectures | duplicates | cost s | candidates/s | architectures/s "
             "| total s |", "|---|---|---|---|---|---|---|---|"]
    first = None
    for j in jobs:
        t0 = time.perf_counter()
        r = scale(jobs=j, sweep=None, progress=False)
        lines.append(_row("in process" if j == 1 else f"process pool ×{j}", r, time.perf_counter() - t0))
        first = first or r
    t0 = time.perf_counter()
    r = scale(sweep=None, progress=False, **FINE_GRID)
    lines.append(_row("fine grid, in process", r, time.perf_counter() - t0))
    p = first.candidate(1.2, 1.1, 1.15)
    lines += ["", f"Paper's point (1.2, 1.1, 1.15): α·β²·γ² = {p['formula_ratio']:.4f}, real cost "
                  f"{p['cost_ratio']:.3f}x B0 ({p['macs']:,} MACs at {p['resolution']} px, depth {p['depth']}: "
                  f"ceil rounding adds 7 blocks to B0's 16); "
                  f"{'feasible' if p['feasible'] else 'outside'} the 2x ±5% budget.",
              f"Best by the cost objective: α={first.best['alpha']:g} β={first.best['beta']:g} "
              f"γ={first.best['gamma']:g}, {first.best['cost_ratio']:.3f}x, α·β²·γ² = "
              f"{first.best['formula_ratio']:.4f}."]
    if sweep:
        r = scale(alpha="1.2", beta="1.1", gamma="1.15", budget="<=3x", sweep="0:7", sweep_from="paper",
                  progress=False)
        lines += ["", "Scale-up with the paper's (1.2, 1.1, 1.15): real MACs against 2^φ and Table 2.", "",
                  "| φ | depth | width | res | GMACs | ratio | 2^φ | (αβ²γ²)^φ | paper B_φ G | built / paper | "
                  "released B_φ G |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in r.phi_sweep:
            pg = f"{s['paper_macs'] / 1e9:.2f}" if s.get("paper_macs") else "-"
            vs = f"{s['vs_paper']:.2f}" if s.get("vs_paper") else "-"
            rg = f"{s['released_macs'] / 1e9:.3f}" if s.get("released_macs") else "-"
            lines.append(f"| {s['phi']} | {s['depth']:g} | {s['width']:g} | {s['resolution']} | "
                         f"{s['macs'] / 1e9:.3f} | {s['cost_ratio']:.2f} | {s['target_ratio']:g} | "
                         f"{s['formula_ratio']:.2f} | {pg} | {vs} | {rg} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run_selfbench())
