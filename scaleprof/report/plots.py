"""Report plots as PNG bytes, drawn from the `--json` dicts (never from live objects), so a report can be
rebuilt from saved results alone.

matplotlib's object API with the Agg canvas: no pyplot, no global backend switch, nothing left open.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..scaling.grid import PAPER_POINT

PALETTE = ("#4063d8", "#e2711d", "#389826", "#cb3c33", "#9558b2", "#8c564b", "#d62f9a", "#7f7f7f", "#bcbd22",
           "#17becf")
DPI = 110


def _fig(w: float = 7.5, h: float = 4.5, *, nrows: int = 1, ncols: int = 1, layout: str | None = None,
         squeeze: bool = True):
    """A figure on its own Agg canvas and its axes (one, or an nrows × ncols array unless ``squeeze``)."""
    fig = Figure(figsize=(w, h), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def _finish(fig, ax, title: str, *, grid_axis: str = "both", legend: bool | str = False) -> bytes:
    """The end every plot shares: its title, a light grid (on ``grid_axis``), the legend when there is
    something to label (a string places it), the PNG."""
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis=grid_axis, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize=8, **({"loc": legend} if isinstance(legend, str) else {}))
    return _png(fig)


def _png(fig, tight: bool = True) -> bytes:
    """The figure as PNG bytes (``tight``: tight_layout first; off for a figure with its own layout)."""
    if tight:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _percent(v) -> float:
    """A share (fraction of 1, or None) as a plotted percentage."""
    return 100.0 * float(v or 0.0)


def share_bars(labels: list[str], series: dict[str, list[float]], *, title: str, xlabel: str = "share (%)") -> bytes:
    """Horizontal grouped bars: one group per label, one bar per series (values in %)."""
    n = max(1, len(series))
    fig, ax = _fig(7.5, max(2.8, 0.45 * len(labels) * max(1, n / 2) + 1.2))
    height = 0.8 / n
    for i, (name, vals) in enumerate(series.items()):
        ys = [j + (i - (n - 1) / 2) * height for j in range(len(labels))]
        bars = ax.barh(ys, vals, height=height, label=name, color=PALETTE[i % len(PALETTE)])
        for b, v in zip(bars, vals, strict=True):
            if v >= 0.5:
                ax.text(b.get_width() + 0.5, b.get_y() + b.get_height() / 2, f"{v:.1f}", va="center", fontsize=7)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return _finish(fig, ax, title, grid_axis="x", legend="lower right")


def macs_vs_time(rows: list[dict], title: str = "share of MACs against share of time, per layer kind") -> bytes:
    """rows: [{kind or name, macs_share, time_share}] (fractions), e.g. `bench --json`'s attribution rows."""
    rows = [r for r in rows if (r.get("time_share") or 0) > 0 or (r.get("macs_share") or 0) > 0]
    labels = [r.get("kind") or r.get("name") or "?" for r in rows]
    return share_bars(labels, {"share of MACs": [_percent(r.get("macs_share")) for r in rows],
                               "share of time": [_percent(r.get("time_share")) for r in rows]}, title=title)


def cost_shares(by_kind: dict, totals: dict, title: str = "share of the cost, per layer kind") -> bytes:
    kinds = [k for k, v in by_kind.items() if any(v.get(m) for m in ("macs", "flops", "params"))]
    series = {}
    for metric, label in (("macs", "MACs"), ("flops", "FLOPs"), ("params", "params")):
        tot = totals.get(metric) or 0
        series[label] = [100.0 * by_kind[k].get(metric, 0) / tot if tot else 0.0 for k in kinds]
    return share_bars(kinds, series, title=title)


def roofline(peaks: dict, points: list[dict], title: str = "") -> bytes:
    """The machine's roof (measured matmul GFLOP/s and copy GB/s) and each kind's achieved rate."""
    import numpy as np

    gflops, gbps = float(peaks["gflops"]), float(peaks["gbps"])
    ridge = gflops / gbps
    pts = [p for p in points if p.get("intensity") and p.get("gflops")]
    xs = [p["intensity"] for p in pts] or [ridge]
    lo, hi = min(min(xs) / 4, ridge / 100), max(max(xs) * 4, ridge * 100)
    grid = np.logspace(math.log10(lo), math.log10(hi), 200)
    fig, ax = _fig(7.5, 5)
    ax.plot(grid, np.minimum(gflops, grid * gbps), color="black", lw=1.5,
            label=f"roof: {gflops:.0f} GFLOP/s (matmul), {gbps:.1f} GB/s (copy)")
    for i, p in enumerate(pts):
        share = float(p.get("time_share") or 0)
        ax.scatter(p["intensity"], p["gflops"], s=30 + 500 * share, alpha=0.75, color=PALETTE[i % len(PALETTE)])
        ax.annotate(f"{p.get('kind')} ({100 * share:.0f}% time)", (p["intensity"], p["gflops"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved GFLOP/s")
    return _finish(fig, ax, title or f"roofline on {peaks.get('device', '?')} ({peaks.get('dtype', '?')})",
                   legend="lower right")


def throughput(rows: list[dict], title: str = "throughput against batch size",
               by: tuple[str, ...] = ("runtime", "device", "dtype")) -> bytes:
    """rows: `bench --json` results; one line per value of the ``by`` keys (e.g. ``("model",)`` for rows
    of several models that carry their model's name)."""
    groups: dict[tuple, list[tuple[int, float]]] = {}
    for r in rows:
        if r.get("status", "ok") != "ok" or not r.get("throughput"):
            continue
        key = tuple(r.get(k) for k in by)
        groups.setdefault(key, []).append((int(r["batch_size"]), float(r["throughput"])))
    fig, ax = _fig()
    for i, (key, pts) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=PALETTE[i % len(PALETTE)],
                label=" ".join(str(k) for k in key if k))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("samples / s")
    return _finish(fig, ax, title, legend=bool(groups))


def compare_samples(a: dict, b: dict, title: str = "latency samples") -> bytes:
    """Box plots of each side's per-call samples when saved, else medians with their 95% CIs."""
    fig, ax = _fig(7, 3.8)
    labels = [a.get("label", "A"), b.get("label", "B")]
    if a.get("samples_ms") and b.get("samples_ms"):
        try:  # matplotlib >= 3.10 names the direction; older ones take vert
            ax.boxplot([a["samples_ms"], b["samples_ms"]], orientation="horizontal", widths=0.5)
        except TypeError:
            ax.boxplot([a["samples_ms"], b["samples_ms"]], vert=False, widths=0.5)
        ax.set_yticks([1, 2])
        ax.set_yticklabels(labels)
    else:
        for i, s in enumerate((a, b)):
            med = s.get("median_ms") or 0.0
            ci = s.get("ci95_ms") or [med, med]
            ax.errorbar([med], [i], xerr=[[med - ci[0]], [ci[1] - med]], fmt="o", capsize=6, ms=8,
                        color=PALETTE[i])
        ax.set_yticks([0, 1])
        ax.set_yticklabels(labels)
        ax.set_ylim(-0.7, 1.7)
    ax.set_xlabel("ms per call")
    return _finish(fig, ax, title, grid_axis="x")


def _cost(c: dict) -> float | None:
    v = c.get("cost_ratio")
    if v is None:
        v = c.get("macs")
    return None if v is None else float(v)


def _pareto(points: list[tuple[float, float]], maximize: bool) -> list[tuple[float, float]]:
    """Points not dominated: lower cost and better score (max or min)."""
    front, best = [], None
    for x, y in sorted(points, key=lambda p: (p[0], -p[1] if maximize else p[1])):
        if best is None or (y > best if maximize else y < best):
            front.append((x, y))
            best = y
    return front


def pareto_front(candidates: list[dict], best: dict | None = None, target: float | None = None,
                 objective: str | None = None, title: str = "candidates: cost against objective") -> bytes:
    """Each candidate's cost (ratio to the base, else MACs) against its objective, feasible ones coloured,
    the front of undominated feasible candidates drawn, the chosen one ringed.

    The objective axis: for a cost-only search, activations relative to the base (the search's tie-break:
    fewer activations run faster at equal MACs, Dollár et al. 2021); else the score, else the latency."""
    if objective == "cost" and any(c.get("activation_ratio") is not None for c in candidates):
        ykey, maximize, ylabel = "activation_ratio", False, "activations / base activations (lower is better)"
    elif any(c.get("score") is not None for c in candidates):
        ykey, maximize, ylabel = "score", True, f"score{f' ({objective})' if objective else ''} (higher is better)"
    else:
        ykey, maximize, ylabel = "latency_ms", False, "latency (ms, lower is better)"
    feas, infeas = [], []
    for c in candidates:
        x, y = _cost(c), c.get(ykey)
        if x is None or y is None or c.get("status", "ok") not in (None, "ok", "done"):
            continue
        (feas if c.get("feasible", True) else infeas).append((x, float(y)))
    fig, ax = _fig()
    if infeas:
        ax.scatter(*zip(*infeas, strict=True), s=14, color="#bbbbbb", label="outside the budget")
    if feas:
        ax.scatter(*zip(*feas, strict=True), s=22, color=PALETTE[0], label="within the budget")
        front = _pareto(feas, maximize)
        ax.plot(*zip(*front, strict=True), color=PALETTE[1], lw=1.5, marker="o", ms=4, label="Pareto front")
    if best and _cost(best) is not None and best.get(ykey) is not None:
        ax.scatter([_cost(best)], [best[ykey]], s=160, facecolors="none", edgecolors=PALETTE[3], lw=2,
                   label="chosen")
    if target:
        ax.axvline(target, color="black", ls="--", lw=1, label=f"budget {target:g}x")
    ax.set_xlabel("cost (MACs / base MACs)" if any(c.get("cost_ratio") is not None for c in candidates) else "MACs")
    ax.set_ylabel(ylabel)
    return _finish(fig, ax, title, legend=bool(feas or infeas))


def phi_curve(sweep: list[dict], title: str = "cost against φ: measured, 2^φ and the paper") -> bytes:
    """sweep rows (`scale --json`'s phi_sweep): {phi, cost_ratio (MACs / base), formula_ratio ((α·β²·γ²)^φ),
    paper_ratio (Table 2 FLOPS / B0's), released_macs, paper_model or name}."""
    import numpy as np

    rows = sorted((r for r in sweep if r.get("phi") is not None), key=lambda r: float(r["phi"]))
    fig, ax = _fig()
    if rows:
        phis = [float(r["phi"]) for r in rows]
        grid = np.linspace(min(phis + [0.0]), max(phis), 100)
        ax.plot(grid, 2.0 ** grid, color="black", ls="--", lw=1.2, label="2^φ (what α·β²·γ² = 2 promises)")

        def line(key, label, color, marker, ls="-", scale=None):
            pts = [(float(r["phi"]), (r[key] / scale(r)) if scale else r[key]) for r in rows
                   if r.get(key) is not None and (scale is None or scale(r))]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=marker, ls=ls, color=color, label=label)

        line("cost_ratio", "measured MACs / base (rounded architecture)", PALETTE[0], "o")
        line("formula_ratio", "(α·β²·γ²)^φ", PALETTE[2], "^", ":")
        line("paper_ratio", "paper, Table 2 / B0", PALETTE[1], "s", ":")

        def base_macs(r):
            return r["macs"] / r["cost_ratio"] if r.get("macs") and r.get("cost_ratio") else None

        line("released_macs", "released B-models / base", PALETTE[3], "D", "-.", scale=base_macs)
        for r in rows:
            label = r.get("name") or r.get("paper_model")
            if label and r.get("cost_ratio") is not None:
                ax.annotate(str(label), (float(r["phi"]), r["cost_ratio"]), fontsize=7, xytext=(4, -10),
                            textcoords="offset points")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("φ")
    ax.set_ylabel("MACs relative to the base model")
    return _finish(fig, ax, title, legend=bool(rows))


def feasibility_grid(candidates: list[dict], title: str = "") -> bytes:
    """The α-β-γ view of a grid search: one panel per α (depth), β across, γ up; colour is the real cost
    ratio to the base, feasible cells outlined, each cell's number its α·β²·γ², the paper's point starred."""
    from matplotlib.patches import Rectangle

    alphas = sorted({c["alpha"] for c in candidates})
    betas = sorted({c["beta"] for c in candidates})
    gammas = sorted({c["gamma"] for c in candidates})
    cols = max(1, min(len(alphas), 3))
    nrows = max(1, math.ceil(len(alphas) / cols))
    ratios = [c["cost_ratio"] for c in candidates if c.get("cost_ratio") is not None]
    vmin, vmax = (min(ratios), max(ratios)) if ratios else (0.0, 1.0)
    fig, axes = _fig(3.3 * cols + 1.4, 3.0 * nrows + 0.7, nrows=nrows, ncols=cols, layout="constrained",
                     squeeze=False)
    by_key = {(c["alpha"], c["beta"], c["gamma"]): c for c in candidates}
    im = None
    for k, a in enumerate(alphas):
        ax = axes[k // cols][k % cols]
        data = [[(by_key.get((a, b, g)) or {}).get("cost_ratio") for b in betas] for g in gammas]
        data = [[math.nan if v is None else v for v in row] for row in data]
        im = ax.imshow(data, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for gi, g in enumerate(gammas):
            for bi, b in enumerate(betas):
                c = by_key.get((a, b, g))
                if not c:
                    continue
                if c.get("feasible"):
                    ax.add_patch(Rectangle((bi - 0.5, gi - 0.5), 1, 1, fill=False, ec="#ff3030", lw=1.8))
                if len(betas) * len(gammas) <= 64 and c.get("formula_ratio") is not None:
                    dark = (c.get("cost_ratio") or vmin) < (vmin + vmax) / 2
                    ax.text(bi, gi, f"{c['formula_ratio']:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")
                if (a, b, g) == PAPER_POINT:
                    ax.plot(bi, gi, marker="*", color=PALETTE[1], ms=10)
        depth = next((c.get("depth") for c in candidates if c["alpha"] == a), None)
        ax.set_title(f"α = {a:g}" + (f" (depth {depth:g})" if depth is not None else ""), fontsize=9)
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas], fontsize=7)
        ax.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas], fontsize=7)
        ax.set_xlabel("β (width)", fontsize=8)
        ax.set_ylabel("γ (resolution)", fontsize=8)
    for k in range(len(alphas), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8).set_label("real cost ratio to the base (MACs)")
    fig.suptitle(title or "feasible cells outlined; numbers are α·β²·γ²", fontsize=9)
    return _png(fig, tight=False)


def scale_plots(result: dict) -> dict[str, bytes]:
    """The three plots of a scaling search (`scale --json`): candidates' Pareto front, the α-β-γ grid and
    the φ curve, as {file name: PNG}."""
    budget = result.get("budget") or {}
    return {
        "pareto.png": pareto_front(result.get("candidates", []), result.get("best"), budget.get("target_ratio"),
                                   result.get("objective"),
                                   title=f"{result.get('family', '')} at φ = {result.get('phi', 1):g}: candidates"),
        "feasibility.png": feasibility_grid(
            result.get("candidates", []),
            title=f"{result.get('family', '')}: feasible cells outlined ({budget.get('describe', '')}); "
                  "numbers are α·β²·γ²"),
        "phi.png": phi_curve(result.get("phi_sweep") or []),
    }


def label_spots(xy: list[tuple[float, float]], labels: list[str], *, char_w: float = 0.0095, line_h: float = 0.03,
                gap: float = 0.008) -> list[tuple[float, float] | None]:
    """Where each label goes beside its point (lower-left corner, in axes fractions) so that no two labels
    overlap and none covers a point: right-above, right-below, left-above, left-below, the first that is free;
    a label with no free spot is left off (None). Points come first-placed first (the caller's order)."""
    dots = [(x - gap / 2, y - gap / 2, x + gap / 2, y + gap / 2) for x, y in xy]
    placed: list[tuple[float, float, float, float]] = []

    def free(b, own: int) -> bool:
        if b[0] < 0 or b[1] < 0 or b[2] > 1 or b[3] > 1:
            return False
        others = placed + [d for j, d in enumerate(dots) if j != own]
        return not any(b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3] for o in others)

    out: list[tuple[float, float] | None] = []
    for i, ((x, y), label) in enumerate(zip(xy, labels, strict=True)):
        w, h = char_w * len(label), line_h
        spot = None
        for dx, dy in ((gap, gap), (gap, -gap - h), (-gap - w, gap), (-gap - w, -gap - h)):
            b = (x + dx, y + dy, x + dx + w, y + dy + h)
            if free(b, i):
                placed.append(b)
                spot = (b[0], b[1])
                break
        out.append(spot)
    return out


def scatter_log(points: list[tuple[float, float, str]], *, xlabel: str, ylabel: str, title: str,
                rate_line: str | None = None) -> bytes:
    """Labelled log-log scatter (e.g. MACs against latency for the zoo). Labels that would overlap another
    label or a point are left off (`label_spots`). ``rate_line``: a legend label for the diagonal drawn at the
    points' median y / x (a constant rate: points above it take longer per unit of x than the median)."""
    import math

    fig, ax = _fig(7.5, 5.5)
    pts = [p for p in points if p[0] and p[1]]
    if not pts:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        return _finish(fig, ax, title)
    lx = [math.log10(p[0]) for p in pts]
    ly = [math.log10(p[1]) for p in pts]
    pad_x, pad_y = 0.08 * (max(lx) - min(lx) or 1), 0.08 * (max(ly) - min(ly) or 1)
    x0, x1, y0, y1 = min(lx) - pad_x, max(lx) + pad_x, min(ly) - pad_y, max(ly) + pad_y
    for i, (x, y, _) in enumerate(pts):
        ax.scatter([x], [y], color=PALETTE[i % len(PALETTE)], s=24, zorder=3)
    if rate_line:
        rates = sorted(p[1] / p[0] for p in pts)
        r = rates[len(rates) // 2] if len(rates) % 2 else 0.5 * (rates[len(rates) // 2 - 1] + rates[len(rates) // 2])
        xs = [10 ** x0, 10 ** x1]
        ax.plot(xs, [x * r for x in xs], linestyle="--", color="0.5", linewidth=1, label=rate_line, zorder=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(10 ** x0, 10 ** x1)
    ax.set_ylim(10 ** y0, 10 ** y1)
    frac = [((a - x0) / (x1 - x0), (b - y0) / (y1 - y0)) for a, b in zip(lx, ly, strict=True)]
    for (x, y, label), spot in zip(pts, label_spots(frac, [p[2] for p in pts]), strict=True):
        if spot is not None:
            ax.annotate(label, (x, y), xytext=spot, textcoords="axes fraction", fontsize=7, va="bottom")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(fig, ax, title, legend=bool(rate_line) and "upper left")
