"""Scale up: the family at φ = 0..7 with the chosen α, β, γ, counted on meta tensors, against 2^φ (the
paper's intent), against (α·β²·γ²)^φ (its formula), and, when the base is EfficientNet-B0 as released,
against the paper's Table 2 B0-B7 and the released models' exact MACs (figures.md; zoo.published)."""

from __future__ import annotations

from ..errors import one_line
from .evaluate import count
from .grid import formula_ratio, scaled_multiplier, scaled_resolution

TABLE2 = "Table 2"
B0 = "efficientnet_b0"


def _is_b0(fam) -> bool:
    """The base is EfficientNet-B0 with its own knobs and arguments (so B<φ> is a fair comparison)."""
    from .. import zoo

    return (fam.zoo_name is not None and zoo.resolve(fam.zoo_name).name == B0 and not fam.kwargs
            and fam.base_knobs == zoo.knobs_of(B0))


def _table2(name: str) -> dict | None:
    from .. import zoo

    return next((r for r in zoo.published_rows(name) if TABLE2 in r["source"]), None)


def _efficientnet_figures(phi: int, paper_b0: dict | None) -> dict:
    """Paper (Table 2) and released (exact) figures of EfficientNet-B<φ>."""
    from .. import zoo

    if phi > 7:
        return {}
    name = f"efficientnet_b{phi}"
    out = {"paper_model": f"B{phi}"}
    paper = _table2(name)
    if paper:
        out.update(paper_macs=paper["macs"], paper_params=paper["params"])
        if paper_b0:
            out["paper_ratio"] = paper["macs"] / paper_b0["macs"]
    released = zoo.published(name)          # the most exact row of the model as released
    if released and TABLE2 not in released["source"]:
        out.update(released_macs=released["macs"], released_resolution=released["resolution"],
                   released_knobs=zoo.knobs_of(name))
    return out


def phi_sweep(fam, coefficients, phis, base: dict, resolution_multiple: int = 1, progress=None) -> list[dict]:
    a, b, g = coefficients
    f = formula_ratio(a, b, g)
    figures = _is_b0(fam)
    paper_b0 = _table2(B0) if figures else None
    rows = []
    for phi in phis:
        row = {"phi": phi, "alpha": a, "beta": b, "gamma": g,
               "depth": scaled_multiplier(fam.base_knobs.get("depth"), a, phi),
               "width": scaled_multiplier(fam.base_knobs.get("width"), b, phi),
               "resolution": scaled_resolution(fam.base_knobs.get("resolution"), g, phi, resolution_multiple),
               "target_ratio": 2.0 ** phi, "formula_ratio": f ** phi}
        try:
            c = count(fam, row["width"], row["depth"], row["resolution"])
            row.update(macs=c["macs"], params=c["params"], activations=c["activations"],
                       cost_ratio=c["macs"] / base["macs"], input=c["input"], status="ok", reason=None)
        except Exception as exc:
            row.update(macs=None, params=None, cost_ratio=None, status="failed", reason=one_line(exc))
        if figures:
            row.update(_efficientnet_figures(phi, paper_b0))
        if row.get("macs") and row.get("paper_macs"):
            row["vs_paper"] = row["macs"] / row["paper_macs"]
        if progress is not None:
            progress.say(f"φ sweep {phi}: {row['macs'] / 1e9 if row.get('macs') else float('nan'):.3f} GMACs", True)
        rows.append(row)
    return rows
