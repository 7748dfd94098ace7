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
    if fmt == "csv":
        return df.to_csv()
    if fmt == "markdown":
        return df.to_markdown()
    return df.to_string()


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


def profile_frame(result, by: str = "kind", level: int = 2) -> pd.DataFrame:
    if by == "kind":
        return _kind_frame(result)
    if by == "layer":
        df = result.to_dataframe("layer")
        cols = ["name", "module_type", "kind", "phase", *METRICS, "calls"]
        return df[[c for c in cols if c in df]]
    table = result.by_module(level) if by == "module" else result.by_operator()
    df = pd.DataFrame.from_dict(table, orient="index")
    df.index.name = by
    return df


def format_profile(result, by: str = "kind", level: int = 2, fmt: str = "table") -> str:
    df = profile_frame(result, by, level)
    if fmt in ("csv", "markdown"):
        return render(df, fmt)
    t = result.totals
    shown = df.copy()
    for col in ("MACs", "FLOPs", "macs", "flops", "bytes", "activations", "params"):
        if col in shown:
            shown[col] = shown[col].map(human)
    for col in ("MACs %", "FLOPs %"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: f"{v:.1f}")
    head = [f"{result.model}  input {', '.join(result.inputs)}  dtype {result.dtype}  counted on "
            f"{result.counted_on}",
            f"MACs {t.macs:,} ({human(t.macs)})   FLOPs {t.flops:,} ({human(t.flops)})   params {t.params:,}   "
            f"activations {t.activations:,}   bytes {human(t.bytes, 'B')}"]
    if len(result.phases) > 1:
        for phase, pt in result.phases.items():
            head.append(f"  {phase}: MACs {pt.macs:,}  FLOPs {pt.flops:,}")
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
    return df.to_string(index=False)


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
    return "\n".join(lines).rstrip()
