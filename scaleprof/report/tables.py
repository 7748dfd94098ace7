"""Tables for people: the analysis objects stay separate from how they print.

The number formatters here are the one set the CLI tables, the check's verdict table and the reports
share. Two families, by where they print: for documents and the verdict table (human, num, ms, pct, ci) a
missing value (None) is ""; for the terminal's tabulate tables (sig, fixed, or_dash, binary_bytes, ci_rel)
it is "-".
"""

from __future__ import annotations

import math

import pandas as pd

from ..counting.result import METRICS, UNITS


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.235 M' (SI prefixes; bytes get binary-free SI too, for one convention)."""
    n = float(n)
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3f} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _finite(v) -> bool:
    return not (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))


def num(v, digits: int = 3) -> str:
    """A count with thousands separators (18,944); other numbers to ``digits`` significant digits below
    1000, to one decimal above (1,234.5)."""
    if v is None or not _finite(v):
        return "" if v is None else str(v)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1000):
        return f"{int(v):,}"
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.1f}"


def ms(v) -> str:
    """Milliseconds to the microsecond: 1.234."""
    return "" if v is None else f"{v:.3f}"


def pct(v, total: float = 1.0, digits: int = 1, signed: bool = False) -> str:
    """``v`` as a percentage of ``total`` (a fraction of 1 by default), without the % sign: 12.3
    (``signed``: +12.30 with digits=2)."""
    if v is None or not total:
        return ""
    if not _finite(v):
        return str(v)
    return f"{100.0 * v / total:{'+' if signed else ''}.{digits}f}"


def ci(interval) -> str:
    """A 95% CI in ms: 1.234 – 1.456."""
    return f"{interval[0]:.3f} – {interval[1]:.3f}" if interval else ""


DASH = "-"   # a missing value in the terminal's tables


def sig(v, digits: int = 4) -> str:
    """``digits`` significant digits: 12.35, 1235 (a time in ms, a throughput)."""
    return DASH if v is None else f"{v:.{digits}g}"


def fixed(v, unit: float = 1.0, digits: int = 3) -> str:
    """``v / unit`` to ``digits`` decimals: fixed(4.1e8, 1e9) -> '0.410' (GMACs, M params)."""
    return DASH if v is None else f"{v / unit:.{digits}f}"


def or_dash(v, fmt: str = "{:.3f}") -> str:
    """``fmt.format(v)``, or "-" for a missing value."""
    return DASH if v is None else fmt.format(v)


def binary_bytes(v) -> str:
    """Bytes with binary prefixes, one decimal: 1.5 GiB, 12.0 MiB, 512 B."""
    if v is None:
        return DASH
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(v) >= div:
            return f"{v / div:.1f} {unit}"
    return f"{v} B"


def ci_rel(median, interval) -> str:
    """A 95% CI as ± its half-width relative to the median: ±1.2%."""
    from ..bench.stats import ci_halfwidth_rel

    rel = ci_halfwidth_rel(median, interval)
    return DASH if rel is None else f"±{100 * rel:.1f}%"


def render(df: pd.DataFrame, fmt: str) -> str:
    """A frame as CSV (a named index becomes a column: no anonymous index column), Markdown (numbers written
    out in full: counts with separators, shares to one decimal; never 1.8e+09) or a terminal table."""
    if fmt in ("csv", "markdown"):
        flat = df.reset_index() if df.index.name is not None else df.reset_index(drop=True)
        if fmt == "csv":
            return _integers(flat).to_csv(index=False)
        align = ["right" if pd.api.types.is_numeric_dtype(flat[c]) else "left" for c in flat.columns]
        return _written_out(flat).to_markdown(index=False, disable_numparse=True, colalign=align)
    return df.to_string()


def _integers(df: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding only whole numbers (pandas makes counts floats when a row is added) as ints."""
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_float_dtype(col) and col.notna().all() and (col % 1 == 0).all():
            out[c] = col.astype("int64")
    return out


def _written_out(df: pd.DataFrame) -> pd.DataFrame:
    """Every numeric cell as text for a Markdown table: a share (column named with %) to one decimal,
    a whole number with thousands separators, another number to 4 significant digits in positional form."""
    out = df.astype(object)
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            continue
        share = "%" in str(c)

        def cell(v, share=share):
            if pd.isna(v):
                return ""
            if share:
                return f"{v:.1f}"
            if float(v).is_integer():
                return f"{int(v):,}"
            return f"{float(f'{v:.4g}'):,.10f}".rstrip("0").rstrip(".")
        out[c] = df[c].map(cell)
    return out


def _kind_frame(result) -> pd.DataFrame:
    rows = []
    total = result.totals
    mac_share, flop_share = result.share("macs"), result.share("flops")
    for kind, v in result.by_kind().items():
        rows.append({"kind": kind, "calls": v["calls"], "MACs": v["macs"], "MACs %": 100 * mac_share[kind],
                     "FLOPs": v["flops"], "FLOPs %": 100 * flop_share[kind],
                     "params": v["params"], "activations": v["activations"], "bytes": v["bytes"]})
    df = pd.DataFrame(rows).set_index("kind")
    df.loc["total"] = [df["calls"].sum(), total.macs, 100.0, total.flops, 100.0, total.params,
                       total.activations, total.bytes]
    return df


ROOT = "(root)"  # the model's own forward: ops that run in no submodule


def module_tree(result, level: int = 2) -> list[tuple[str, int, dict]]:
    """The module tree down to ``level``, in pre-order: (dotted name, depth, subtree costs) per node, each
    node's costs the sum of everything under it (torchinfo's summary). Ops outside every submodule are the
    node ``(root)``; "(unused parameters)" is a node of its own."""
    nodes: dict[str, tuple[int, dict]] = {}
    for d in range(1, max(1, level) + 1):
        for name, v in result.by_module(d).items():
            name = name or ROOT
            nodes.setdefault(name, (1 if name.startswith("(") else name.count(".") + 1, v))
    children: dict[str, list[str]] = {}
    for name, (depth, _) in nodes.items():
        parent = "" if depth == 1 else name.rsplit(".", 1)[0]
        children.setdefault(parent, []).append(name)
    out: list[tuple[str, int, dict]] = []

    def visit(parent: str) -> None:
        for name in children.get(parent, []):
            depth, v = nodes[name]
            out.append((name, depth, v))
            visit(name)

    visit("")
    return out


def _module_frame(result, level: int) -> pd.DataFrame:
    t = result.totals
    rows = []
    for name, depth, v in [*module_tree(result, level), ("total", 0, {**t.to_dict(), "calls": None})]:
        rows.append({"module": name, "depth": depth, "MACs": v["macs"], "MACs %": 100 * v["macs"] / (t.macs or 1),
                     "FLOPs": v["flops"], "FLOPs %": 100 * v["flops"] / (t.flops or 1), "params": v["params"],
                     "activations": v["activations"], "bytes": v["bytes"], "calls": v["calls"]})
    df = pd.DataFrame(rows).set_index("module")
    df.loc["total", "calls"] = sum(r.calls for r in result.layers)
    df["calls"] = df["calls"].astype("int64")
    return df


def profile_frame(result, by: str = "kind", level: int = 2) -> pd.DataFrame:
    if by == "kind":
        return _kind_frame(result)
    if by == "module":
        return _module_frame(result, level)
    if by == "layer":
        df = result.to_dataframe("layer")
        cols = ["name", "module_type", "kind", "phase", *METRICS, "calls"]
        df = df[[c for c in cols if c in df]]
        if "name" in df:
            df = df.assign(name=df["name"].replace("", ROOT))
        return df
    # by op: an op that never ran (a 0-call row the recorder opened) says nothing
    table = {op: v for op, v in result.by_operator().items() if v.get("calls")}
    df = pd.DataFrame.from_dict(table, orient="index")
    df.index.name = by
    return df


def format_profile(result, by: str = "kind", level: int = 2, fmt: str = "table", title: str | None = None) -> str:
    """The profile as a table (a header with the totals, the table, the units), CSV or Markdown. ``title``
    names the model in the header (default its spec: the CLI passes the knobs it ran with)."""
    df = profile_frame(result, by, level)
    if fmt == "markdown" and result.uncounted_ops:
        return render(df, fmt) + "\n\n" + result.incompleteness()
    if fmt in ("csv", "markdown"):
        return render(df, fmt)
    t = result.totals
    shown = df.copy()
    if by == "module":  # the tree, indented by depth
        depth = shown.pop("depth")
        shown.index = [("  " * (d - 1)) + (n.rsplit(".", 1)[-1] if d > 1 else n)
                       for n, d in zip(shown.index, depth, strict=True)]
        shown.index.name = "module"
    for col in ("MACs", "FLOPs", "macs", "flops", "bytes", "activations", "params"):
        if col in shown:
            shown[col] = shown[col].map(human)
    for col in ("MACs %", "FLOPs %"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: f"{v:.1f}")
    params = f"params {t.params:,}"
    if result.params_trainable is not None:
        params += f" (trainable {result.params_trainable:,}, frozen {t.params - result.params_trainable:,})"
    head = [f"{title or result.model}  input {', '.join(result.inputs)}  dtype {result.dtype}  counted on "
            f"{result.counted_on}",
            f"MACs {t.macs:,} ({human(t.macs)})   FLOPs {t.flops:,} ({human(t.flops)})   {params}   "
            f"activations {t.activations:,}   bytes {human(t.bytes, 'B')}"]
    if len(result.phases) > 1:
        for phase, pt in result.phases.items():
            head.append(f"  {phase}: MACs {pt.macs:,}  FLOPs {pt.flops:,}")
    if result.uncounted_ops:   # said above the numbers, not only in the footnotes: the totals are a lower bound
        head.append(result.incompleteness())
    if getattr(result, "generation", None):
        per = result.per_token()
        head.append("  per token: " + "; ".join(f"{ph} MACs {v['macs']:,.0f}, bytes {human(v['bytes'], 'B')}"
                                                for ph, v in per.items())
                    + f"   KV cache {human(result.kv_cache_bytes or 0, 'B')}")
    mem = getattr(result, "memory", None)
    if mem is not None:
        head.append(f"  memory: peak {human(mem.peak_bytes, 'B')} = weights {human(mem.weights, 'B')}"
                    + (f" + gradients {human(mem.gradients, 'B')} + {mem.optimizer} state "
                       f"{human(mem.optimizer_state, 'B')} + saved activations {human(mem.activations_saved, 'B')}"
                       if mem.optimizer else f" + KV cache {human(mem.kv_cache, 'B')} + largest op "
                       f"{human(mem.working_set, 'B')}"))
    foot = [f"MACs = {UNITS['macs']}; FLOPs = {UNITS['flops']}."]
    if result.uncounted_ops:
        foot.append("uncounted ops (no formula; not included above): "
                    + ", ".join(f"{k} x{v}" for k, v in sorted(result.uncounted_ops.items())))
    foot += [f"notice: {n}" for n in result.notices]
    return "\n".join(head + ["", shown.to_string(), ""] + foot)


def format_zoo(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    if df.empty:
        return "(no models)"
    for col in ("macs", "published_macs", "params", "published_params"):
        if col in df:
            df[col] = df[col].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
    for col in ("width", "depth", "resolution"):  # a knob the family lacks is "-", never NaN
        if col in df:
            df[col] = df[col].map(lambda v: "-" if pd.isna(v) else f"{v:g}")
    return df.astype(object).where(df.notna(), "").to_string(index=False)


def format_crosscheck(cc, fmt: str = "table") -> str:
    rows = [{"counter": "scaleprof", "status": "ok", "unit": "MACs", "reported": cc.ours_macs,
             "MACs": cc.ours_macs, "difference": 0}]
    for p in cc.peers:
        rows.append({"counter": p.name, "status": p.status if p.status == "ok" else f"failed: {p.reason}",
                     "unit": p.unit, "reported": p.reported, "MACs": p.macs_equivalent,
                     "difference": None if p.macs_equivalent is None else p.macs_equivalent - cc.ours_macs})
    lines = [render(pd.DataFrame(rows).set_index("counter"), fmt), ""]
    for p in cc.peers:
        if p.status != "ok":
            continue
        ex = cc.explanations(p)
        lines.append(f"{p.name}: " + ("agrees with scaleprof's MACs in every group" if not ex else ""))
        lines += [f"  - {e}" for e in ex] + [f"  - {n}" for n in p.notes]
    lines += cc.missing_lines()
    return "\n".join(lines).rstrip()
