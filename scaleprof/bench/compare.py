"""Is B faster than A? Both measured in one process, in shuffled interleaved rounds.

Each round times one block of A and one block of B in a random order, so drift of the machine (thermal
state, other tenants, frequency) lands on both alike and the order of the pair carries no bias. The
effect is the median of the per-round ratios B/A, with a percentile-bootstrap 95% CI over rounds
(resampled as pairs); a two-sided Mann-Whitney U test on the per-call samples of A and B gives a p-value.

Verdict rule (both must agree for a difference): B is "faster" or "slower" only when the ratio's 95% CI
excludes 1 *and* p < 0.01; otherwise "no difference". Requiring both guards against either test's blind
spot (the bootstrap of a median with few rounds, a rank test that sees a shift the ratio CI does not).
`min_effect` (default 1%) adds a practical threshold: a difference must also have its whole CI beyond
1 ± min_effect. Two copies of one model in one process differ by a few tenths of a percent, reproducibly
(where their weights and buffers land in memory): real, but not a difference between the models, and
below the ±1% precision the measurement aims for. `min_effect=0` calls any significant change.

Rounds stop when the ratio's CI lies within ±`target_ci` of the ratio (after `min_rounds` and at least a
second, so one quiet moment of the machine cannot decide), or at `max_time` seconds.
"""

from __future__ import annotations

import copy
import random
import sys
import time
from dataclasses import dataclass, field

from torch import nn

from ..errors import ScaleprofError, one_line
from ..shapes import dtype_name, parse_device, parse_weight_dtype
from ..spec import load_model, resolve_inputs, spec_label
from . import prepare, stats
from .env import differences, environment, torch_threads
from .options import ALPHA, MIN_EFFECT, CompareOptions
from .runtimes import environment_fields, get_runtime
from .timer import MIN_SAMPLES_AT_LIMIT, TimerConfig, block_timer_for, sample_until_stop, warm_up

VERDICTS = ("faster", "slower", "no difference")


@dataclass
class Side:
    label: str
    median_ms: float
    ci95_ms: list[float] | None
    samples: int
    cold_ms: float
    calls_per_block: int
    samples_ms: list[float] = field(repr=False, default_factory=list)

    def to_dict(self, samples: bool = False) -> dict:
        d = {"label": self.label, "median_ms": self.median_ms, "ci95_ms": self.ci95_ms, "samples": self.samples,
             "cold_ms": self.cold_ms, "calls_per_block": self.calls_per_block}
        if samples:
            d["samples_ms"] = self.samples_ms
        return d


@dataclass
class CompareResult:
    """B against A: `ratio` = B/A per call (above 1: B is slower)."""

    a: Side
    b: Side
    ratio: float
    ratio_ci95: tuple[float, float]
    p_value: float
    verdict: str           # faster | slower | no difference  (B relative to A)
    rounds: int
    stop_reason: str
    runtime: str
    device: str
    dtype: str
    inputs: list[str]
    env: dict
    min_effect: float = MIN_EFFECT
    inputs_b: list[str] | None = None  # B's own inputs, when not A's
    include_samples: bool = False

    @property
    def rule(self) -> str:
        return (f"difference only when the ratio's 95% bootstrap CI lies beyond 1 ± {self.min_effect:g} and "
                f"Mann-Whitney p < {ALPHA:g}")

    @property
    def change(self) -> float:
        """Relative change in latency from A to B (+0.25 = B takes 25% longer)."""
        return self.ratio - 1.0

    def to_dict(self) -> dict:
        d = {"a": self.a.to_dict(self.include_samples), "b": self.b.to_dict(self.include_samples),
             "ratio": self.ratio, "ratio_ci95": list(self.ratio_ci95), "change": self.change,
             "p_value": self.p_value, "verdict": self.verdict, "rule": self.rule, "min_effect": self.min_effect,
             "rounds": self.rounds, "stop_reason": self.stop_reason, "runtime": self.runtime,
             "device": self.device, "dtype": self.dtype, "inputs": self.inputs, "env": self.env}
        if self.inputs_b is not None:  # only then: the contract for shared inputs stays as it was
            d["inputs_b"] = self.inputs_b
        return d

    def sentence(self) -> str:
        lo, hi = self.ratio_ci95
        if self.verdict == "no difference":
            head = f"{self.b.label} vs {self.a.label}: no difference"
        else:
            head = f"{self.b.label} is {self.verdict} than {self.a.label}"
        return (f"{head}: B/A = {self.ratio:.3f} (95% CI {lo:.3f}-{hi:.3f}), Mann-Whitney p = {self.p_value:.2g}, "
                f"{self.rounds} rounds")


def verdict(ratio_ci: tuple[float, float], p: float, *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> str:
    lo, hi = ratio_ci
    if p >= alpha or lo <= 1.0 <= hi:
        return "no difference"
    if hi < 1.0 - min_effect:
        return "faster"
    if lo > 1.0 + min_effect:
        return "slower"
    return "no difference"


def compare_models(model_a: nn.Module, model_b: nn.Module, inputs, *, inputs_b=None, labels=("A", "B"),
                   options: CompareOptions | None = None, clock=time.perf_counter, **overrides) -> CompareResult:
    """Measure two modules on the same inputs in interleaved rounds; see the module docstring.

    The modules are copied (never changed). `inputs`: shapes, InputSpecs or tensors, shared by both unless
    `inputs_b` is given: then B runs on its own (e.g. a candidate at another resolution against its base),
    and the ratio compares one call of each on its own input. Default None: B gets A's inputs.
    `options`: a CompareOptions; `overrides`: any of its fields as keywords (None keeps the default).
    """
    o = CompareOptions.of(options, **overrides)
    dev = parse_device(o.device)
    if dev.type == "meta":
        raise ScaleprofError("compare needs a device that runs: cpu or cuda")
    dt = parse_weight_dtype(o.dtype)
    with torch_threads(o.threads):
        specs = resolve_inputs(model_a, model_a, inputs)
        specs_b = specs if inputs_b is None else resolve_inputs(model_b, model_b, inputs_b)
        rt = get_runtime(o.runtime, threads=o.threads) if isinstance(o.runtime, str) else o.runtime
        prepared = []
        try:
            for m, sp in ((model_a, specs), (model_b, specs_b)):
                placed = prepare.place(copy.deepcopy(m), dev, dt).eval()
                xs = prepare.make_inputs(sp, dev, dt)
                try:
                    prepared.append(rt.prepare(placed, xs, dev))
                except Exception as exc:
                    raise ScaleprofError(f"cannot prepare {labels[len(prepared)]} with {rt.label()}: "
                                         f"{one_line(exc)}") from exc
            with prepared[0].context(), prepared[1].context():
                a_ms, b_ms, colds, ks, reason = _rounds([p.call for p in prepared], dev, o, clock, labels)
        finally:
            for p in prepared:
                p.close()
    ratio, ci = stats.bootstrap_ratio_ci(a_ms, b_ms, seed=o.seed)
    p = stats.mann_whitney_p(a_ms, b_ms)
    sides = []
    for label, xs, cold, k in zip(labels, (a_ms, b_ms), colds, ks, strict=True):
        mci = stats.median_ci(xs)
        sides.append(Side(label=label, median_ms=stats.median(xs), ci95_ms=list(mci) if mci else None,
                          samples=len(xs), cold_ms=cold, calls_per_block=k, samples_ms=list(xs)))
    env = environment(dtype=dtype_name(dt), devices=[dev],
                      compile_mode=environment_fields([rt]).get("compile_mode"))
    return CompareResult(a=sides[0], b=sides[1], ratio=ratio, ratio_ci95=ci, p_value=p,
                         verdict=verdict(ci, p, min_effect=o.min_effect), rounds=len(a_ms), stop_reason=reason,
                         runtime=rt.label(), device=str(dev), dtype=dtype_name(dt), inputs=[str(s) for s in specs],
                         env=env, min_effect=o.min_effect, include_samples=o.samples,
                         inputs_b=None if inputs_b is None else [str(s) for s in specs_b])


class _RatioStop:
    """compare's stop rule for `timer.sample_until_stop` (samples are (A ms, B ms) rounds): "converged" once
    the bootstrap CI of the ratio B/A lies within ±target_ci of it (after `min_rounds`, then every ~5% more
    rounds, and at least min_time), "max_time" at the limit."""

    def __init__(self, cfg: TimerConfig, o: CompareOptions, t_start: float):
        self.cfg, self.o, self.t_start = cfg, o, t_start
        self.next_check = o.min_rounds

    def __call__(self, rounds: list, now: float) -> str | None:
        n, cfg = len(rounds), self.cfg
        if n >= self.next_check and now - self.t_start >= min(cfg.min_time, 0.5 * cfg.max_time):
            self.next_check = n + max(2, n // 20)
            a, b = zip(*rounds, strict=True)
            r, (lo, hi) = stats.bootstrap_ratio_ci(list(a), list(b), n_boot=1000, seed=self.o.seed)
            if lo >= r * (1 - cfg.target_ci) and hi <= r * (1 + cfg.target_ci):
                return "converged"
        if now - self.t_start >= cfg.max_time and n >= MIN_SAMPLES_AT_LIMIT:
            return "max_time"
        return None


def _rounds(calls, dev, o: CompareOptions, clock, labels):
    bt = block_timer_for(dev)
    if hasattr(bt, "clock"):
        bt.clock = clock
    overhead = bt.overhead_s()
    colds = [bt.time_block(c, 1) * 1000.0 for c in calls]
    cfg = TimerConfig(max_time=o.max_time, target_ci=o.target_ci, progress=o.progress)
    t_start = clock()
    # both warm up in lockstep, each with its own calls per block
    _, ks = warm_up([lambda k, c=c: bt.time_block(c, k) / k for c in calls], cfg, clock=clock, t_start=t_start,
                    overhead_s=overhead)
    rng = random.Random(o.seed)

    def take() -> tuple[float, float]:
        out = [0.0, 0.0]
        order = [0, 1]
        rng.shuffle(order)
        for i in order:
            out[i] = bt.time_block(calls[i], ks[i]) / ks[i] * 1000.0
        return out[0], out[1]

    def report(rounds, elapsed, done=None):
        if done is None:  # a line while it runs, none at the end (the result says it)
            r = stats.median(stats.paired_ratios(*zip(*rounds, strict=True)))
            print(f"  compare: {len(rounds)} rounds, {labels[1]}/{labels[0]} = {r:.3f}, "
                  f"{elapsed:.1f}/{o.max_time:g} s", file=sys.stderr, flush=True)

    rounds, reason = sample_until_stop(take, cfg, clock=clock, t_start=t_start,
                                       stop=lambda t_meas: _RatioStop(cfg, o, t_start), report=report)
    return [a for a, _ in rounds], [b for _, b in rounds], colds, ks, reason


def compare(spec_a, spec_b, inputs=None, *, batch_size: int | None = None, knobs: dict | None = None,
            knobs_a: dict | None = None, knobs_b: dict | None = None, options: CompareOptions | None = None,
            **overrides) -> CompareResult:
    """Load two model specs (or modules) and compare them with `compare_models`.

    `knobs` apply to both; `knobs_a`/`knobs_b` to one. Inputs default to A's zoo input (else B's).
    `options`/`overrides` as for `compare_models`.
    """
    o = CompareOptions.of(options, **overrides)
    ka = {**(knobs or {}), **(knobs_a or {})}
    kb = {**(knobs or {}), **(knobs_b or {})}
    model_a = load_model(spec_a, device="cpu", **ka)  # a user's module as it is: compare_models copies it
    model_b = load_model(spec_b, device="cpu", **kb)
    if inputs:
        specs = resolve_inputs(spec_a, model_a, inputs)
    else:
        try:
            specs = resolve_inputs(spec_a, model_a, None, knobs=ka)
        except ScaleprofError:
            specs = resolve_inputs(spec_b, model_b, None, knobs=kb)
    specs = prepare.with_batch(specs, batch_size)
    return compare_models(model_a, model_b, specs, labels=(spec_label(spec_a), spec_label(spec_b)), options=o)


# --- saved results -----------------------------------------------------------------------------------------

def compare_saved(a: dict, b: dict) -> dict:
    """Compare two saved `bench --json` results row by row (runtime, device, dtype, batch size).

    Rows measured at different times cannot be paired, so the ratio is of medians and the test is
    Mann-Whitney on `samples_ms` when both saved them; environments that differ are flagged, since the
    ratio then mixes the change with the machine.
    """
    def key(r):
        return (r.get("runtime"), r.get("device"), r.get("dtype"), r.get("batch_size"))

    rows_b = {key(r): r for r in b.get("results", [])}
    rows = []
    for ra in a.get("results", []):
        rb = rows_b.get(key(ra))
        if rb is None or ra.get("status") != "ok" or rb.get("status") != "ok":
            continue
        ratio = rb["median_ms"] / ra["median_ms"] if ra.get("median_ms") else None
        p = None
        if ra.get("samples_ms") and rb.get("samples_ms"):
            p = stats.mann_whitney_p(ra["samples_ms"], rb["samples_ms"])
        rows.append({"runtime": ra["runtime"], "device": ra["device"], "dtype": ra["dtype"],
                     "batch_size": ra["batch_size"], "a_median_ms": ra["median_ms"], "b_median_ms": rb["median_ms"],
                     "ratio": ratio, "p_value": p})
    env_diff = differences(a.get("env", {}), b.get("env", {}))
    return {"rows": rows, "same_environment": not env_diff, "env_differences": env_diff}
