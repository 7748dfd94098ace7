"""`scaleprof check`: the gate for other projects' CI.

Cost: the model's MACs, FLOPs, params, activations and bytes, in total and per layer kind, against a stored
baseline. Exact by default; `tolerances` gives a relative limit per metric (``{"macs": 0.01}``, or
``"macs=0.01,params=0"``; ``macs[conv.depthwise]=0.05`` for one kind). A change beyond its limit fails the
gate either way: an increase is a *regression*, a decrease is *changed* (the baseline no longer describes
the model: re-save it if the change is meant), unless ``allow_decrease``.

Latency, two ways:
- ``against=SPEC``: a reference model measured in the same job, in shuffled interleaved rounds
  (scaleprof.bench.compare). Regression when Mann-Whitney p < ``alpha`` (0.002) *and* the paired ratio
  current/reference exceeds 1 + ``threshold`` (10%): both a detectable and a material slowdown.
- stored samples: a baseline saved with ``latency=True`` keeps per-call samples and the environment
  fingerprint; the check measures again and applies the same rule, but only when the fingerprint matches:
  timings from another machine, library version or thread setting are not comparable, so that refuses with
  the differing fields (exit 2).

Baselines are JSON, written atomically (temporary file, then rename).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..counting.result import METRICS
from ..errors import ScaleprofError
from ..spec import spec_label
from .detect import result_kind
from .files import atomic_write_json, read_json, writable_dir
from .tables import ms, num, pct

FORMAT_VERSION = 1
DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.002
DEFAULT_MAX_TIME = 20.0
EXIT_CODES = {"pass": 0, "regression": 1, "error": 2}


# --- results -----------------------------------------------------------------------------------------------

@dataclass
class CheckRow:
    metric: str            # "macs", "params[conv.depthwise]", "latency"
    baseline: float | None
    current: float | None
    change: float | None   # relative: (current - baseline) / baseline; None when the baseline is 0
    limit: float           # relative limit on |change| (latency: on the slowdown)
    verdict: str           # pass | regression | changed
    unit: str = ""
    p_value: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        d = {"metric": self.metric, "baseline": self.baseline, "current": self.current, "change": self.change,
             "limit": self.limit, "verdict": self.verdict}
        if self.unit:
            d["unit"] = self.unit
        if self.p_value is not None:
            d["p_value"] = self.p_value
        if self.note:
            d["note"] = self.note
        return d

    @property
    def failed(self) -> bool:
        return self.verdict != "pass"


@dataclass
class CheckResult:
    verdict: str                      # pass | regression | error
    checks: list[CheckRow] = field(default_factory=list)
    model: str = ""
    baseline: str | None = None
    saved: str | None = None
    against: str | None = None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None         # for verdict "error"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict:
        d = {"verdict": self.verdict, "checks": [c.to_dict() for c in self.checks], "model": self.model,
             "baseline": self.baseline, "against": self.against, "saved": self.saved, "notes": list(self.notes)}
        if self.reason:
            d["reason"] = self.reason
        return d

    def to_markdown(self, all_rows: bool = False) -> str:
        return verdict_markdown(self, all_rows=all_rows)


def error_result(reason: str, model: str = "") -> CheckResult:
    return CheckResult(verdict="error", model=model, reason=reason)


# --- tolerances --------------------------------------------------------------------------------------------

def _metric_known(key: str) -> bool:
    if key == "latency" or key in METRICS:
        return True
    if key.endswith("]") and "[" in key:
        base, kind = key[:-1].split("[", 1)
        return base in METRICS and bool(kind)
    return False


def _fraction(text: str, key: str) -> float:
    t = str(text).strip()
    try:
        v = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise ScaleprofError(f"malformed tolerance {key}={text!r}: a relative number expected, e.g. "
                             f"{key}=0.01 or {key}=1%") from None
    if not math.isfinite(v) or v < 0:
        raise ScaleprofError(f"tolerance {key}={text!r} must be a non-negative relative number")
    return v


def parse_tolerances(spec) -> dict[str, float]:
    """``"macs=0.01,params=0"`` (or a dict, or a list of such strings) -> {metric: relative limit}."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        texts = [spec] if isinstance(spec, str) else list(spec)
        items = []
        for text in texts:
            for part in str(text).split(","):
                part = part.strip()
                if not part:
                    continue
                if "=" not in part:
                    raise ScaleprofError(f"malformed tolerance {part!r}: use METRIC=VALUE, e.g. macs=0.01")
                k, v = part.split("=", 1)
                items.append((k.strip(), v))
    out = {}
    for k, v in items:
        k = str(k).strip().lower()
        if not _metric_known(k):
            raise ScaleprofError(f"unknown metric {k!r} in --tolerance; use {', '.join(METRICS)}, latency "
                                 f"or METRIC[KIND] (e.g. macs[conv.depthwise])")
        out[k] = _fraction(v, k)
    return out


def _limit(metric: str, tolerances: dict[str, float]) -> float:
    if metric in tolerances:
        return tolerances[metric]
    base = metric.split("[", 1)[0]
    return tolerances.get(base, 0.0)


# --- baselines ---------------------------------------------------------------------------------------------

# what each metric counts: in every baseline (``units``) and on each cost row (``unit``)
UNITS = {"macs": "multiply-accumulates", "flops": "floating-point operations", "params": "parameters",
         "activations": "elements", "bytes": "bytes"}


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_baseline(obj, source: str) -> dict:
    """The baseline dict, or a one-line ScaleprofError saying what is wrong with it."""
    kind = result_kind(obj)
    if kind != "baseline":
        what = f"a {kind} result" if kind else "not a scaleprof baseline"
        raise ScaleprofError(f"baseline {source} is {what}, not a baseline (write one with "
                             f"`scaleprof check SPEC --save FILE`)")
    if obj.get("scaleprof_baseline") != FORMAT_VERSION:
        raise ScaleprofError(f"baseline {source} has format version {obj.get('scaleprof_baseline')!r}; this "
                             f"scaleprof reads version {FORMAT_VERSION}")
    cost = obj.get("cost")
    if not isinstance(cost, dict) or not isinstance(cost.get("totals"), dict) or not isinstance(cost.get("by_kind"),
                                                                                                dict):
        raise ScaleprofError(f"baseline {source} is malformed: no cost.totals / cost.by_kind")
    for m in METRICS:
        if not _is_count(cost["totals"].get(m)):
            raise ScaleprofError(f"baseline {source} is malformed: cost.totals.{m} is "
                                 f"{cost['totals'].get(m)!r}, not a non-negative integer")
    for kind, row in cost["by_kind"].items():
        if not isinstance(row, dict) or not all(_is_count(row.get(m, 0)) for m in METRICS):
            raise ScaleprofError(f"baseline {source} is malformed: cost.by_kind[{kind!r}] is not a set of counts")
    lat = obj.get("latency")
    if lat is not None:
        samples = lat.get("samples_ms") if isinstance(lat, dict) else None
        if (not isinstance(samples, list) or len(samples) < 2
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in samples)):
            raise ScaleprofError(f"baseline {source} is malformed: latency.samples_ms must be a list of positive "
                                 f"times")
        if not isinstance(lat.get("env"), dict) or not lat["env"]:
            raise ScaleprofError(f"baseline {source} is malformed: latency.env (the environment fingerprint) is "
                                 f"missing")
    return obj


def load_baseline(path) -> dict:
    return validate_baseline(read_json(path, "baseline"), str(path))


def count(spec, inputs=None, dtype=None, knobs=None):
    """scaleprof's cost of the model (a module or a spec) on meta tensors (nothing allocated)."""
    from ..counting import profile

    return profile(spec, inputs, device="meta", dtype=dtype, knobs=knobs)


def cost_record(result) -> dict:
    by_module = {}
    for name, v in result.by_module(1).items():
        by_module[name or "(root)"] = {"macs": v["macs"], "params": v["params"]}
    return {"totals": result.totals.to_dict(), "by_kind": result.by_kind(), "by_module": by_module}


def make_baseline(spec, result, knobs=None, latency: dict | None = None) -> dict:
    import torch

    d = {"scaleprof_baseline": FORMAT_VERSION, "model": spec_label(spec), "knobs": dict(knobs or {}),
         "inputs": list(result.inputs), "dtype": result.dtype,
         "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
         "scaleprof": __version__, "torch": torch.__version__, "units": dict(UNITS),
         "cost": cost_record(result)}
    if latency is not None:
        d["latency"] = latency
    return d


# --- cost ----------------------------------------------------------------------------------------------------

def _row(metric: str, base: int, cur: int, limit: float, allow_decrease: bool, unit: str = "") -> CheckRow:
    change = None if base == 0 else (cur - base) / base
    exceeded = abs(cur - base) > limit * abs(base) if base else cur != base
    if not exceeded:
        verdict = "pass"
    elif cur > base:
        verdict = "regression"
    else:
        verdict = "pass" if allow_decrease else "changed"
    note = "new in this model" if base == 0 and cur else ("gone from this model" if cur == 0 and base else "")
    return CheckRow(metric, base, cur, change, limit, verdict, unit=unit, note=note)


def cost_rows(base_cost: dict, cur_cost: dict, tolerances: dict[str, float], allow_decrease: bool = False
              ) -> list[CheckRow]:
    rows = [_row(m, int(base_cost["totals"][m]), int(cur_cost["totals"][m]), _limit(m, tolerances), allow_decrease,
                 UNITS[m]) for m in METRICS]
    from ..counting.kinds import kind_order

    kinds = sorted(set(base_cost["by_kind"]) | set(cur_cost["by_kind"]), key=lambda k: (kind_order(k), k))
    for kind in kinds:
        b, c = base_cost["by_kind"].get(kind, {}), cur_cost["by_kind"].get(kind, {})
        for m in METRICS:
            bv, cv = int(b.get(m, 0)), int(c.get(m, 0))
            if bv == 0 and cv == 0:
                continue
            metric = f"{m}[{kind}]"
            rows.append(_row(metric, bv, cv, _limit(metric, tolerances), allow_decrease, UNITS[m]))
    return rows


def module_notes(base_cost: dict, cur_cost: dict, limit: int = 5) -> list[str]:
    """Where a cost change sits: top-level modules whose MACs or params moved."""
    b, c = base_cost.get("by_module") or {}, cur_cost.get("by_module") or {}
    moved = []
    for name in sorted(set(b) | set(c)):
        bm, cm = b.get(name, {}), c.get(name, {})
        dm = cm.get("macs", 0) - bm.get("macs", 0)
        dp = cm.get("params", 0) - bm.get("params", 0)
        if dm or dp:
            state = " (new)" if name not in b else (" (gone)" if name not in c else "")
            moved.append((abs(dm) + abs(dp), f"module `{name}`{state}: MACs {dm:+,}, params {dp:+,}"))
    moved.sort(key=lambda t: -t[0])
    return [m for _, m in moved[:limit]]


# --- latency -------------------------------------------------------------------------------------------------

def latency_row(base_ms: list[float], cur_ms: list[float], *, ratio: float | None = None, p: float | None = None,
                threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA, note: str = "") -> CheckRow:
    """Regression when p < alpha and the slowdown ratio exceeds 1 + threshold."""
    from ..bench import stats

    b, c = stats.median(base_ms), stats.median(cur_ms)
    if ratio is None:
        ratio = c / b
    if p is None:
        p = stats.mann_whitney_p(base_ms, cur_ms)
    slower = p < alpha and ratio > 1.0 + threshold
    return CheckRow("latency", b, c, ratio - 1.0, threshold, "regression" if slower else "pass", unit="ms",
                    p_value=p, note=note or f"regression when Mann-Whitney p < {alpha:g} and ratio > "
                                            f"{1 + threshold:.3g}")


def _bench_latency(spec, inputs, *, runtime, device, dtype, max_time, knobs):
    from ..bench import bench

    r = bench(spec, inputs=inputs, runtimes=runtime, device=device, dtype=dtype or "float32", max_time=max_time,
              samples=True, memory=False, knobs=knobs)
    row = r.results[0]
    if row.status != "ok" or not row.samples_ms:
        raise ScaleprofError(f"latency measurement failed: {row.reason or 'no samples'}")
    return r, row


def measure_latency(spec, inputs=None, *, runtime="eager", device="cpu", dtype=None, max_time=DEFAULT_MAX_TIME,
                    knobs=None) -> dict:
    """The latency record a baseline keeps: samples, medians and the environment fingerprint."""
    r, row = _bench_latency(spec, inputs, runtime=runtime, device=device, dtype=dtype, max_time=max_time,
                            knobs=knobs)
    return {"runtime": row.runtime, "device": row.device, "dtype": row.dtype, "inputs": r.inputs,
            "batch_size": row.batch_size, "max_time": max_time, "median_ms": row.median_ms, "ci95_ms": row.ci95_ms,
            "samples_ms": list(row.samples_ms), "env": r.env}


def _env_guard(stored: dict, current: dict, ignore=()) -> None:
    from ..bench.env import differences

    diffs = [d for d in differences(stored, current) if d.split(":", 1)[0] not in ignore]
    if diffs:
        raise ScaleprofError("stored latency samples come from a different environment, so they cannot be "
                             "compared (" + "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "")
                             + "): re-save the baseline here or use --against SPEC")


def stored_latency_row(spec, lat: dict, *, knobs=None, threshold=DEFAULT_THRESHOLD, alpha=DEFAULT_ALPHA,
                       max_time=None) -> tuple[CheckRow, dict]:
    """The latency row against the baseline's samples, and the latency record measured for it (which a
    baseline saved in the same run can keep instead of measuring again)."""
    from ..bench.env import environment

    device = lat.get("device", "cpu")
    dtype = lat.get("dtype", "float32")
    # refuse before spending time measuring: the fields that do not depend on the runtime must match now
    _env_guard(lat["env"], environment(dtype=dtype, devices=[device]), ignore=("compile_mode", "ort_threads"))
    runtime = lat.get("runtime", "eager")
    now = measure_latency(spec, lat.get("inputs"), runtime=runtime, device=device, dtype=dtype,
                          max_time=max_time or lat.get("max_time") or DEFAULT_MAX_TIME, knobs=knobs)
    _env_guard(lat["env"], now["env"])
    row = latency_row(lat["samples_ms"], now["samples_ms"], threshold=threshold, alpha=alpha,
                      note=f"stored samples ({len(lat['samples_ms'])}) vs now ({len(now['samples_ms'])}), {runtime} "
                           f"on {device}; regression when Mann-Whitney p < {alpha:g} and ratio > "
                           f"{1 + threshold:.3g}")
    return row, now


def against_latency_row(spec, against, inputs, *, knobs=None, runtime="eager", device="cpu", dtype=None,
                        max_time=DEFAULT_MAX_TIME, threshold=DEFAULT_THRESHOLD, alpha=DEFAULT_ALPHA) -> CheckRow:
    from ..bench.compare import compare

    c = compare(against, spec, inputs, device=device, dtype=dtype or "float32", runtime=runtime, max_time=max_time,
                knobs_b=knobs, samples=True)
    return latency_row(c.a.samples_ms, c.b.samples_ms, ratio=c.ratio, p=c.p_value, threshold=threshold, alpha=alpha,
                       note=f"{c.rounds} interleaved rounds against {spec_label(against)} (paired ratio "
                            f"{c.ratio:.3f}, 95% CI {c.ratio_ci95[0]:.3f}-{c.ratio_ci95[1]:.3f}); regression when "
                            f"Mann-Whitney p < {alpha:g} and ratio > {1 + threshold:.3g}")


# --- the check ---------------------------------------------------------------------------------------------

def check(spec, baseline=None, save=None, tolerances=None, against=None, *, inputs=None, dtype=None,
          knobs=None, latency: bool = False, cost_only: bool = False, allow_decrease: bool = False,
          threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA, runtime: str = "eager",
          device: str = "cpu", max_time: float | None = None) -> CheckResult:
    """Check a model (spec or nn.Module) against a stored baseline and/or a reference model.

    - ``baseline``: path (or dict) of a baseline written by ``save``; cost metrics compared with
      ``tolerances`` (relative; exact by default); stored latency samples, if the baseline has them and
      not ``cost_only``, compared after an environment-fingerprint match (else ScaleprofError).
    - ``against``: a reference model spec timed in interleaved rounds in this process.
    - ``save``: write a baseline of the model as it is now (with latency samples when ``latency``),
      after any check.
    Inputs default to the baseline's, then to the zoo model's own. Returns a CheckResult (verdict pass or
    regression); bad input raises ScaleprofError.
    """
    if baseline is None and against is None and save is None:
        raise ScaleprofError("nothing to check: give --baseline FILE, --against SPEC or --save FILE")
    if not 0 <= threshold < 10:
        raise ScaleprofError(f"--threshold must be a relative slowdown such as 0.1, got {threshold}")
    if not 0 < alpha < 1:
        raise ScaleprofError(f"--alpha must be in (0, 1), got {alpha}")
    if max_time is not None and max_time <= 0:
        raise ScaleprofError(f"--max-time must be positive, got {max_time}")
    tols = parse_tolerances(tolerances)
    if "latency" in tols:
        threshold = tols.pop("latency")
    knobs = dict(knobs or {})

    base = None
    base_source = None
    if baseline is not None:
        if isinstance(baseline, dict):
            base, base_source = validate_baseline(baseline, "(dict)"), "(dict)"
        else:
            base, base_source = load_baseline(baseline), str(baseline)
    if save is not None:
        _check_save_target(save)

    notes: list[str] = []
    use_inputs = inputs
    if not use_inputs and base is not None and base.get("inputs"):
        use_inputs = list(base["inputs"])
    use_dtype = dtype if dtype is not None else (base.get("dtype") if base is not None else None)
    result = count(spec, use_inputs, use_dtype, knobs)
    current = cost_record(result)

    rows: list[CheckRow] = []
    measured = None   # the latency record measured against the baseline's samples, if any
    if base is not None:
        if base.get("model") not in (None, spec_label(spec)):
            notes.append(f"the baseline was saved for {base.get('model')!r}; checking {spec_label(spec)!r}")
        if inputs and base.get("inputs") and list(result.inputs) != list(base["inputs"]):
            notes.append(f"inputs differ from the baseline's: {', '.join(result.inputs)} now, "
                         f"{', '.join(base['inputs'])} then")
        if base.get("knobs", {}) != knobs:
            notes.append(f"knobs differ from the baseline's: {knobs or 'none'} now, {base.get('knobs') or 'none'} then")
        rows += cost_rows(base["cost"], current, tols, allow_decrease)
        if any(r.failed for r in rows):
            notes += module_notes(base["cost"], current)
        if base.get("latency") and not cost_only:
            row, measured = stored_latency_row(spec, base["latency"], knobs=knobs, threshold=threshold,
                                               alpha=alpha, max_time=max_time)
            rows.append(row)
        elif base.get("latency"):
            notes.append("latency samples in the baseline not checked (cost only)")
    if against is not None:
        rows.append(against_latency_row(spec, against, list(result.inputs), knobs=knobs, runtime=runtime,
                                        device=device, dtype=use_dtype, max_time=max_time or DEFAULT_MAX_TIME,
                                        threshold=threshold, alpha=alpha))

    saved = None
    if save is not None:
        lat = None
        if latency:
            if measured is not None and (measured["runtime"], measured["device"], measured["dtype"],
                                         list(measured["inputs"])) == (runtime, device, use_dtype or "float32",
                                                                       list(result.inputs)):
                lat = measured   # timed just now for the stored samples: the same run, not timed twice
            else:
                lat = measure_latency(spec, list(result.inputs), runtime=runtime, device=device, dtype=use_dtype,
                                      max_time=max_time or DEFAULT_MAX_TIME, knobs=knobs)
        saved = str(atomic_write_json(save, make_baseline(spec, result, knobs, lat)))
        notes.append(f"baseline written to {saved}" + (" with latency samples" if lat else ""))

    verdict = "regression" if any(r.failed for r in rows) else "pass"
    if any(r.verdict == "changed" for r in rows):
        notes.append("a metric fell beyond its limit: if the change is meant, re-save the baseline "
                     "(--save) or pass --allow-decrease")
    return CheckResult(verdict=verdict, checks=rows, model=spec_label(spec), baseline=base_source, saved=saved,
                       against=None if against is None else spec_label(against), notes=notes)


def _check_save_target(path) -> None:
    p = Path(path)
    if p.is_dir():
        raise ScaleprofError(f"cannot save the baseline to {p}: it is a folder")
    try:
        writable_dir(p.parent)
    except ScaleprofError as exc:
        raise ScaleprofError(f"cannot save the baseline to {p}: {exc}") from None


# --- output --------------------------------------------------------------------------------------------------

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


def verdict_markdown(res: CheckResult, all_rows: bool = False) -> str:
    """The verdict table: every total and latency row, and the per-kind rows that moved (all with all_rows)."""
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
