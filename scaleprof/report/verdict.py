"""How a check's verdict is printed: the row cells (shared by the terminal, the report and the step summary),
the Markdown verdict table, and the append to GitHub's step summary."""

from __future__ import annotations

import math
import os
import sys

from .tables import ms, num, pct

ROW_COLUMNS = ("metric", "baseline", "current", "change", "limit", "verdict")


def _value(v, unit: str = "") -> str:
    if unit == "ms":
        return "" if v is None else f"{ms(v)} ms"
    return num(v, 4)


def row_cells(c: dict) -> dict:
    """One check row (``CheckRow.to_dict()``, or the ``checks`` of a check's JSON) as the table's cells;
    a latency limit is one-sided (+), a cost limit two-sided (±)."""
    unit, ch = c.get("unit", ""), c.get("change")
    if ch is None:
        change = "new" if c.get("baseline") == 0 and c.get("current") else ""
    else:
        change = f"{pct(ch, digits=2, signed=True)}%" if math.isfinite(ch) else str(ch)
    if c.get("p_value") is not None:
        change += f" (p = {c['p_value']:.2g})"
    limit = c.get("limit")
    return {"metric": c.get("metric"), "baseline": _value(c.get("baseline"), unit),
            "current": _value(c.get("current"), unit), "change": change,
            "limit": "" if limit is None else f"{'+' if c.get('metric') == 'latency' else '±'}"
                                              f"{pct(limit, digits=2)}%",
            "verdict": c.get("verdict")}


_MARK = {"pass": "pass", "regression": "**REGRESSION**", "changed": "**changed**"}


def verdict_markdown(res, all_rows: bool = False) -> str:
    """A CheckResult (scaleprof.gate) as Markdown: every total and latency row, and the per-kind rows that moved (all with all_rows)."""
    head = {"pass": "passed", "regression": "FAILED: regression", "error": "ERROR"}[res.verdict]
    lines = [f"### scaleprof check `{res.model}`: {head}", ""]
    if res.reason:
        lines += [f"error: {res.reason}", ""]
    src = []
    if res.baseline:
        src.append(f"baseline `{res.baseline}`")
    if res.against:
        src.append(f"`{res.against}` measured in this job")
    if src:
        lines += ["Compared with " + " and ".join(src) + ".", ""]
    shown = [r for r in res.checks if all_rows or "[" not in r.metric or r.current != r.baseline or r.failed]
    if shown:
        lines += ["| " + " | ".join(ROW_COLUMNS) + " |", "|---|---:|---:|---:|---:|---|"]
        for r in shown:
            cells = row_cells(r.to_dict())
            cells["verdict"] = _MARK.get(r.verdict, r.verdict)
            lines.append("| " + " | ".join(str(cells[k]) for k in ROW_COLUMNS) + " |")
        hidden = len(res.checks) - len(shown)
        if hidden:
            lines += ["", f"{hidden} per-kind rows unchanged."]
        lines.append("")
    lines += [f"- {n}" for n in res.notes]
    return "\n".join(lines).rstrip() + "\n"


def append_step_summary(markdown: str, path: str | None = None) -> bool:
    """Append to $GITHUB_STEP_SUMMARY (or ``path``) when set; a failure to write warns and moves on."""
    target = path or os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip() + "\n\n")
        return True
    except OSError as exc:
        print(f"scaleprof check: warning: cannot append to the step summary {target}: {exc.strerror}",
              file=sys.stderr)
        return False
