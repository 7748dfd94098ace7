"""The regression gate behind `scaleprof check` (for other projects' CI).

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

The package: baseline.py (the file format and its validation), tolerances.py (the grammar), rules.py (cost
and latency verdicts from numbers), measure.py (counting and timing), run.py (`check`, the orchestration),
result.py (CheckRow, CheckResult). It renders nothing: scaleprof.report.verdict prints a CheckResult.
"""

from .baseline import FORMAT_VERSION, UNITS, cost_record, load_baseline, make_baseline, validate_baseline
from .measure import DEFAULT_MAX_TIME, count, measure_latency
from .predicted import PredictedCheck
from .result import EXIT_CODES, CheckResult, CheckRow, error_result
from .rules import DEFAULT_ALPHA, DEFAULT_THRESHOLD, cost_rows, latency_row, module_notes
from .run import check
from .tolerances import parse_tolerances

__all__ = ["check", "PredictedCheck", "CheckResult", "CheckRow", "error_result", "parse_tolerances", "load_baseline",
           "validate_baseline", "make_baseline", "cost_record", "count", "measure_latency", "cost_rows",
           "latency_row", "module_notes", "FORMAT_VERSION", "UNITS", "EXIT_CODES", "DEFAULT_THRESHOLD",
           "DEFAULT_ALPHA", "DEFAULT_MAX_TIME"]
