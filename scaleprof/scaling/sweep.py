"""Scale up: the family at φ = 0..7 with the chosen α, β, γ, counted on meta tensors, against 2^φ (the
paper's intent), against (α·β²·γ²)^φ (its formula), and, for EfficientNet, against the paper's Table 2 B0-B7
and the released models' exact MACs (figures.md; zoo.published_rows)."""

from __future__ import annotations

from .evaluate import one_line
from .grid import formula_ratio, scaled_multiplier, scaled_resolution

TABLE2 = "Table 2"


def _efficientnet_figures(fam, phi: int) -> dict:
    """Paper (Table 2) and released (exact) figures of EfficientNet-B<φ>, when the family is EfficientNet."""
    if fam.zoo_name is None or phi > 7:
        return {}
    from .. import zoo

    if zoo.family_of(fam.zoo_name) != "efficientnet":
        return {}
    name = f"efficientnet_b{phi}"
    rows = zoo.published_rows(name)
    paper = next((r for r in rows if TABLE2 in r["source"]), None)
    paper_b0 = next((r for r in zoo.published_rows("efficientnet_b0") if TABLE2 in r["source"]), None)
    released = next((r for r in rows if not r["overrides"] and r["macs_tol"] == 0), None) or \
        next((r for r in rows if not r["overrides"] and TABLE2 not in r["source"]), None)
    out = {"paper_model": f"B{phi}"}
    if paper:
        out.update(paper_macs=paper["macs"], paper_params=paper["params"])
        if paper_b0:
            out["paper_ratio"] = paper["macs"] / paper_b0["macs"]
    if released:
        out.update(released_macs=released["macs"], released_resolution=released["resolution"],
                   released_knobs=zoo.knobs_of(name))
    return out


def phi_sweep(fam, coefficients, phis, base: dict, resolution_multiple: int = 1, progress=None) -> list[dict]:
    import scaleprof

    a, b, g = coefficients
    f = formula_ratio(a, b, g)
    rows = []
    for phi in phis:
        row = {"phi": phi, "alpha": a, "beta": b, "gamma": g,
               "depth": scaled_multiplier(fam.base_knobs.get("depth"), a, phi),
               "width": scaled_multiplier(fam.base_knobs.get("width"), b, phi),
               "resolution": scaled_resolution(fam.base_knobs.get("resolution"), g, phi, resolution_multiple),
               "target_ratio": 2.0 ** phi, "formula_ratio": f ** phi}
        try:
            model = fam.build(row["width"], row["depth"], row["resolution"], device="meta")
            shape = fam.input_shape(model, row["resolution"])
            t = scaleprof.profile(model, [shape], device="meta", quiet=True).totals
            row.update(macs=t.macs, params=t.params, activations=t.activations, cost_ratio=t.macs / base["macs"],
                       input="x".join(map(str, shape)), status="ok", reason=None)
        except Exception as exc:
            row.update(macs=None, params=None, cost_ratio=None, status="failed", reason=one_line(exc))
        row.update(_efficientnet_figures(fam, phi))
        if row.get("macs") and row.get("paper_macs"):
            row["vs_paper"] = row["macs"] / row["paper_macs"]
        if progress is not None:
            progress.say(f"φ sweep {phi}: {row['macs'] / 1e9 if row.get('macs') else float('nan'):.3f} GMACs", True)
        rows.append(row)
    return rows
