"""Plots of a compound-scaling search (`scaleprof scale --plot DIR`), matplotlib with the Agg backend.

    pareto.png        MACs against latency (when measured) or the score: every counted candidate, the
                      feasible ones marked, their Pareto front drawn, the best and the paper's point named.
    feasibility.png   the α-β-γ grid: one panel per α (depth), β across, γ up; the colour is the
                      real cost ratio to the base, feasible cells are outlined, the number is α·β²·γ².
    phi.png           the scale-up: real MACs ratio to φ = 0 against 2^φ, (α·β²·γ²)^φ, the paper's Table 2
                      and the released B0-B7, on a log2 axis.

Each function takes a ScaleResult or its to_dict() and a path; ``write_plots`` writes all three.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PAPER_POINT = (1.2, 1.1, 1.15)


def _as_dict(result) -> dict:
    return result if isinstance(result, dict) else result.to_dict()


def _front(points):
    """Indices of the points no other beats on both x and y (both minimized)."""
    out = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i):
            out.append(i)
    return sorted(out, key=lambda i: points[i][0])


def plot_pareto(result, path) -> Path:
    d = _as_dict(result)
    rows = [c for c in d["candidates"] if c.get("macs") is not None]
    use_lat = any(c.get("latency_ms") is not None for c in rows)
    ykey, ylabel, minimize = ("latency_ms", "latency (ms, median)", True) if use_lat else \
        ("score", f"score ({d['objective']}; higher is better)", False)
    fig, ax = plt.subplots(figsize=(7, 5))
    infeas = [c for c in rows if not c["feasible"] and c.get(ykey) is not None]
    feas = [c for c in rows if c["feasible"] and c.get(ykey) is not None]
    if infeas:
        ax.scatter([c["macs"] / 1e9 for c in infeas], [c[ykey] for c in infeas], s=14, c="#bbbbbb",
                   label="outside the budget")
    if feas:
        ax.scatter([c["macs"] / 1e9 for c in feas], [c[ykey] for c in feas], s=22, c="#1f77b4", label="feasible")
        pts = [(c["macs"], c[ykey] if minimize else -c[ykey]) for c in feas]
        front = _front(pts)
        ax.plot([feas[i]["macs"] / 1e9 for i in front], [feas[i][ykey] for i in front], "-o", c="#d62728",
                ms=4, lw=1.2, label="Pareto front (fewer MACs, " + ("lower latency)" if minimize else "higher score)"))
    best = d.get("best")
    if best and best.get(ykey) is not None:
        ax.scatter([best["macs"] / 1e9], [best[ykey]], marker="*", s=220, c="#ff7f0e", zorder=5,
                   label=f"best α={best['alpha']:g} β={best['beta']:g} γ={best['gamma']:g}")
    paper = next((c for c in rows if (c["alpha"], c["beta"], c["gamma"]) == PAPER_POINT), None)
    if paper and paper.get(ykey) is not None:
        ax.annotate("paper (1.2, 1.1, 1.15)", (paper["macs"] / 1e9, paper[ykey]), xytext=(8, -12),
                    textcoords="offset points", fontsize=8, arrowprops={"arrowstyle": "-", "lw": 0.6})
    target = d["budget"].get("target_macs")
    if target:
        ax.axvline(target / 1e9, ls="--", c="k", lw=0.8, label=f"budget {d['budget']['spec']}")
    if not rows or not (feas or infeas):
        ax.text(0.5, 0.5, f"no {ykey} to plot", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("GMACs (multiply-accumulates)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{d['family']} at φ = {d['phi']:g}: candidates")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_feasibility(result, path) -> Path:
    d = _as_dict(result)
    rows = d["candidates"]
    alphas = sorted({c["alpha"] for c in rows})
    betas = sorted({c["beta"] for c in rows})
    gammas = sorted({c["gamma"] for c in rows})
    panels = alphas
    n = len(panels)
    cols = min(n, 3)
    nrows = math.ceil(n / cols)
    ratios = [c["cost_ratio"] for c in rows if c.get("cost_ratio") is not None]
    vmin, vmax = (min(ratios), max(ratios)) if ratios else (0.0, 1.0)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols + 1.4, 3.0 * nrows + 0.7), squeeze=False,
                             layout="constrained")
    by_key = {(c["alpha"], c["beta"], c["gamma"]): c for c in rows}
    im = None
    for k, a in enumerate(panels):
        ax = axes[k // cols][k % cols]
        grid = [[(by_key.get((a, b, g)) or {}).get("cost_ratio") for b in betas] for g in gammas]
        data = [[math.nan if v is None else v for v in row] for row in grid]
        im = ax.imshow(data, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for gi, g in enumerate(gammas):
            for bi, b in enumerate(betas):
                c = by_key.get((a, b, g))
                if not c:
                    continue
                if c["feasible"]:
                    ax.add_patch(plt.Rectangle((bi - 0.5, gi - 0.5), 1, 1, fill=False, ec="#ff3030", lw=1.8))
                if len(betas) * len(gammas) <= 64:
                    ax.text(bi, gi, f"{c['formula_ratio']:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if (c.get("cost_ratio") or vmin) < (vmin + vmax) / 2 else "black")
                if (a, b, g) == PAPER_POINT:
                    ax.plot(bi, gi, marker="*", c="#ff7f0e", ms=10)
        depth = next((c["depth"] for c in rows if c["alpha"] == a), None)
        ax.set_title(f"α = {a:g} (depth {depth})", fontsize=9)
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas], fontsize=7)
        ax.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas], fontsize=7)
        ax.set_xlabel("β (width)", fontsize=8)
        ax.set_ylabel("γ (resolution)", fontsize=8)
    for k in range(n, nrows * cols):
        axes[k // cols][k % cols].axis("off")
    if im is not None:
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
        cb.set_label("real cost ratio to the base (MACs)")
    fig.suptitle(f"{d['family']}: feasible cells outlined ({d['budget'].get('describe', d['budget']['spec'])}); "
                 "numbers are α·β²·γ²", fontsize=9)
    return _save(fig, path, tight=False)


def plot_phi(result, path) -> Path:
    d = _as_dict(result)
    rows = [s for s in d.get("phi_sweep") or [] if s.get("macs")]
    fig, ax = plt.subplots(figsize=(7, 5))
    if rows:
        base = next((s["macs"] for s in rows if s["phi"] == 0), d["base"]["macs"])
        phis = [s["phi"] for s in rows]
        ax.plot(phis, [s["macs"] / base for s in rows], "-o", c="#1f77b4",
                label=f"built (α={rows[0]['alpha']:g}, β={rows[0]['beta']:g}, γ={rows[0]['gamma']:g})")
        ax.plot(phis, [s["target_ratio"] for s in rows], "--", c="k", label="2^φ")
        ax.plot(phis, [s["formula_ratio"] for s in rows], ":", c="#2ca02c", label="(α·β²·γ²)^φ")
        paper = [(s["phi"], s["paper_ratio"]) for s in rows if s.get("paper_ratio")]
        if paper:
            ax.plot(*zip(*paper, strict=True), "s", c="#d62728", label="paper Table 2 (B_φ / B0)")
        paper_b0 = next((s.get("released_macs") for s in rows if s["phi"] == 0), None)
        released = [(s["phi"], s["released_macs"] / paper_b0) for s in rows if s.get("released_macs") and paper_b0]
        if released:
            ax.plot(*zip(*released, strict=True), "x", c="#9467bd", ms=8, label="released B_φ (exact)")
        ax.set_yscale("log", base=2)
    else:
        ax.text(0.5, 0.5, "no φ sweep", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("φ")
    ax.set_ylabel("MACs ratio to φ = 0")
    ax.set_title(f"{d['family']}: scaling up")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path, tight: bool = True) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write_plots(result, directory) -> list[Path]:
    """pareto.png, feasibility.png and phi.png under ``directory`` (created if needed)."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..errors import ScaleprofError

        raise ScaleprofError(f"--plot {directory}: cannot create the folder: {exc.strerror}") from exc
    return [plot_pareto(result, out / "pareto.png"), plot_feasibility(result, out / "feasibility.png"),
            plot_phi(result, out / "phi.png")]
