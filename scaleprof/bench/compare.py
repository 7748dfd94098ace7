"""Is B faster than A? Both measured in one process, in shuffled interleaved rounds.

Each round times one block of A and one block of B in a random order, so drift of the machine (thermal
state, other tenants, frequency) lands on both alike and the order of the pair carries no bias. The
effect is the median of the per-round ratios B/A, with a percentile-bootstrap 95% CI over rounds
(resampled as pairs); a two-sided Mann-Whitney U test on the per-call samples of A and B gives a p-value.

Verdict rule, three answers (`verdict`):
- "faster" / "slower": the ratio's whole 95% CI lies beyond 1 ± `min_effect` *and* p < 0.01. Requiring
  both guards against either test's blind spot (the bootstrap of a median with few rounds, a rank test
  that sees a shift the ratio CI does not).
- "no difference": the whole CI lies inside 1 ± `min_effect`: whatever the change is, it is smaller than
  the smallest that counts.
- "inconclusive": neither (the CI straddles a bound of the band, or p is not small): the run was too short
  to tell, and `more_rounds` estimates how many more rounds would, from the CI's half-width shrinking as
  1/sqrt(rounds).
`min_effect` (default 1%) is the practical threshold. Two copies of one model in one process differ by a
few tenths of a percent, reproducibly (where their weights and buffers land in memory): real, but not a
difference between the models, and below the ±1% precision the measurement aims for. `min_effect=0` calls
any significant change (and can never say "no difference").

Rounds stop when the ratio's CI lies within ±`target_ci` of the ratio (after `min_rounds` and at least a
second, so one quiet moment of the machine cannot decide), or at `max_time` seconds.
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ScaleprofError, one_line
from ..shapes import dtype_name, parse_device, parse_weight_dtype
from ..spec import load_model, model_inputs, spec_label
from . import prepare, stats
from .env import differences, environment, steady_allocator, torch_threads
from .options import ALPHA, MIN_EFFECT, CompareOptions
from .runtimes import environment_fields, get_runtime
from .timer import MIN_SAMPLES_AT_LIMIT, StopRule, TimerConfig, block_timer_for, sample_until_stop, warm_up

VERDICTS = ("faster", "slower", "no difference", "inconclusive")


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
    verdict: str           # faster | slower | no difference | inconclusive  (B relative to A)
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
    threads: int | None = None         # torch.get_num_threads() inside the run
    max_time: float | None = None      # the time limit it ran under (for the advice when inconclusive)

    @property
    def more_rounds(self) -> int | None:
        """Inconclusive: about how many more rounds would decide (`more_rounds`); None otherwise."""
        if self.verdict != "inconclusive":
            return None
        return more_rounds(self.ratio, self.ratio_ci95, self.rounds, min_effect=self.min_effect)

    @property
    def more_seconds(self) -> float | None:
        """`more_rounds` in seconds: each round runs one block of A and one of B."""
        n = self.more_rounds
        if n is None:
            return None
        return n * (self.a.median_ms * self.a.calls_per_block + self.b.median_ms * self.b.calls_per_block) / 1000.0

    @property
    def rule(self) -> str:
        return (f"difference only when the ratio's 95% bootstrap CI lies beyond 1 ± {self.min_effect:g} and "
                f"Mann-Whitney p < {ALPHA:g}; no difference when it lies inside; else inconclusive")

    @property
    def change(self) -> float:
        """Relative change in latency from A to B (+0.25 = B takes 25% longer)."""
        return self.ratio - 1.0

    def to_dict(self) -> dict:
        d = {"a": self.a.to_dict(self.include_samples), "b": self.b.to_dict(self.include_samples),
             "ratio": self.ratio, "ratio_ci95": list(self.ratio_ci95), "change": self.change,
             "p_value": self.p_value, "verdict": self.verdict, "rule": self.rule, "min_effect": self.min_effect,
             "rounds": self.rounds, "stop_reason": self.stop_reason, "runtime": self.runtime,
             "device": self.device, "dtype": self.dtype, "inputs": self.inputs, "env": self.env,
             "threads": self.threads, "more_rounds": self.more_rounds, "more_seconds": self.more_seconds}
        if self.inputs_b is not None:  # only then: the contract for shared inputs stays as it was
            d["inputs_b"] = self.inputs_b
        return d

    def sentence(self) -> str:
        lo, hi = self.ratio_ci95
        if self.verdict in ("faster", "slower"):
            head = f"{self.b.label} is {self.verdict} than {self.a.label}"
        else:
            head = f"{self.b.label} vs {self.a.label}: {self.verdict}"
        out = (f"{head}: B/A = {self.ratio:.3f} (95% CI {lo:.3f}-{hi:.3f}), Mann-Whitney p = {self.p_value:.2g}, "
               f"{self.rounds} rounds")
        return out + self.advice()

    def advice(self) -> str:
        """For an inconclusive verdict: how much longer to run, and the flag that gives it."""
        secs = self.more_seconds
        if secs is None:
            return ""
        flag = f"--max-time {math.ceil(self.max_time + secs):d}" if self.max_time is not None else "a longer --max-time"
        if self.stop_reason == "converged":  # the CI target stopped it, not the time: a finer one
            lo, hi = self.ratio_ci95
            now = (hi - lo) / 2 / self.ratio
            flag += f" --target-ci {now * math.sqrt(self.rounds / (self.rounds + self.more_rounds)):.2g}"
        return f"; to decide, run about {secs:.3g} s longer (~{self.more_rounds} more rounds: {flag})"


def verdict(ratio_ci: tuple[float, float] | None, p: float | None, *, alpha: float = ALPHA,
            min_effect: float = MIN_EFFECT) -> str:
    """The module docstring's rule. `p` None: no samples to test (saved results), the CI alone decides;
    `ratio_ci` None: nothing to decide from ("inconclusive")."""
    if ratio_ci is None:
        return "inconclusive"
    lo, hi = ratio_ci
    if p is None or p < alpha:
        if hi < 1.0 - min_effect:
            return "faster"
        if lo > 1.0 + min_effect:
            return "slower"
    if 1.0 - min_effect <= lo and hi <= 1.0 + min_effect:
        return "no difference"
    return "inconclusive"


def more_rounds(ratio: float, ratio_ci: tuple[float, float], rounds: int, *, min_effect: float = MIN_EFFECT) -> int | None:
    """About how many more rounds an inconclusive comparison needs, if the ratio stays where it is: the CI's
    half-widths (each side of the ratio) shrink as 1/sqrt(rounds) until the CI clears the band 1 ± min_effect
    (a difference) or fits inside it (no difference). None when the ratio sits on a bound (no run decides)."""
    lo, hi = ratio_ci
    below, above = ratio - lo, hi - ratio          # the CI's half-widths
    if ratio > 1.0 + min_effect:                   # would be "slower": the lower bound must clear the band
        needs = [(below, ratio - (1.0 + min_effect))]
    elif ratio < 1.0 - min_effect:                 # would be "faster"
        needs = [(above, (1.0 - min_effect) - ratio)]
    else:                                          # would be "no difference": both bounds inside the band
        needs = [(below, ratio - (1.0 - min_effect)), (above, (1.0 + min_effect) - ratio)]
    if any(room <= 0 for _, room in needs) or rounds < 1:
        return None
    factor = max((half / room) ** 2 for half, room in needs)
    return max(1, math.ceil(rounds * factor) - rounds)


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
        specs = model_inputs(model_a, inputs)
        specs_b = specs if inputs_b is None else model_inputs(model_b, inputs_b)
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
        # inside the threads' block: the count it really ran with, not the one restored after
        threads = torch.get_num_threads()
        env = environment(dtype=dtype_name(dt), devices=[dev],
                          compile_mode=environment_fields([rt]).get("compile_mode"))
    ratio, ci = stats.bootstrap_ratio_ci(a_ms, b_ms, seed=o.seed)
    p = stats.mann_whitney_p(a_ms, b_ms)
    sides = []
    for label, xs, cold, k in zip(labels, (a_ms, b_ms), colds, ks, strict=True):
        mci = stats.median_ci(xs)
        sides.append(Side(label=label, median_ms=stats.median(xs), ci95_ms=list(mci) if mci else None,
                          samples=len(xs), cold_ms=cold, calls_per_block=k, samples_ms=list(xs)))
    return CompareResult(a=sides[0], b=sides[1], ratio=ratio, ratio_ci95=ci, p_value=p,
                         verdict=verdict(ci, p, min_effect=o.min_effect), rounds=len(a_ms), stop_reason=reason,
                         runtime=rt.label(), device=str(dev), dtype=dtype_name(dt), inputs=[str(s) for s in specs],
                         env=env, min_effect=o.min_effect, include_samples=o.samples, threads=threads,
                         max_time=o.max_time,
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


def interleaved_rounds(calls, dev, cfg: TimerConfig, *, clock=time.perf_counter, seed: int = 0,
                       stop: Callable[[float], StopRule], report=None):
    """Shuffled interleaved rounds of several zero-argument calls, the machinery compare and the
    micro-benchmarks share: each call's cold first run, then warm-up in lockstep (each call its own calls per
    block, `timer.warm_up`), then rounds that time one block of every call in a random order until
    ``stop(t_start)``'s rule says stop (its samples are the rounds, one tuple of ms per round).

    Returns each call's per-call samples (ms, one per round), cold ms, calls per block, and why it stopped."""
    bt = block_timer_for(dev)
    if hasattr(bt, "clock"):
        bt.clock = clock
    steady_allocator()
    overhead = bt.overhead_s()
    colds = [bt.time_block(c, 1) * 1000.0 for c in calls]
    t_start = clock()
    _, ks = warm_up([lambda k, c=c: bt.time_block(c, k) / k for c in calls], cfg, clock=clock, t_start=t_start,
                    overhead_s=overhead)
    rng = random.Random(seed)

    def take() -> tuple[float, ...]:
        out = [0.0] * len(calls)
        order = list(range(len(calls)))
        rng.shuffle(order)
        for i in order:
            out[i] = bt.time_block(calls[i], ks[i]) / ks[i] * 1000.0
        return tuple(out)

    rounds, reason = sample_until_stop(take, cfg, clock=clock, t_start=t_start, stop=lambda t_meas: stop(t_start),
                                       report=report)
    return [list(xs) for xs in zip(*rounds, strict=True)], colds, ks, reason


def _rounds(calls, dev, o: CompareOptions, clock, labels):
    cfg = TimerConfig(max_time=o.max_time, target_ci=o.target_ci, progress=o.progress)

    def report(rounds, elapsed, done=None):
        if done is None:  # a line while it runs, none at the end (the result says it)
            r = stats.median(stats.paired_ratios(*zip(*rounds, strict=True)))
            print(f"  compare: {len(rounds)} rounds, {labels[1]}/{labels[0]} = {r:.3f}, "
                  f"{elapsed:.1f}/{o.max_time:g} s", file=sys.stderr, flush=True)

    (a_ms, b_ms), colds, ks, reason = interleaved_rounds(calls, dev, cfg, clock=clock, seed=o.seed,
                                                         stop=lambda t_start: _RatioStop(cfg, o, t_start),
                                                         report=report)
    return a_ms, b_ms, colds, ks, reason


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
        specs = model_inputs(model_a, inputs)
    else:
        try:
            specs = model_inputs(model_a)
        except ScaleprofError:
            specs = model_inputs(model_b)
    specs = prepare.with_batch(specs, batch_size)
    return compare_models(model_a, model_b, specs, labels=(spec_label(spec_a), spec_label(spec_b)), options=o)


# --- saved results -----------------------------------------------------------------------------------------

def compare_saved(a: dict, b: dict, *, min_effect: float = MIN_EFFECT) -> dict:
    """Compare two saved `bench --json` results row by row (runtime, device, dtype, batch size).

    Rows measured at different times cannot be paired, so the ratio is of medians. With `samples_ms` in both
    (bench --samples) its CI is a bootstrap resampling each side apart and the test Mann-Whitney; without,
    the CI is the widest the two medians' CIs allow (B's low / A's high to B's high / A's low), which is
    conservative, and the verdict (`verdict`) rests on it alone. Environments that differ are flagged,
    since the ratio then mixes the change with the machine.
    """
    def key(r):
        return (r.get("runtime"), r.get("device"), r.get("dtype"), r.get("batch_size"))

    rows_b = {key(r): r for r in b.get("results", [])}
    rows = []
    for ra in a.get("results", []):
        rb = rows_b.get(key(ra))
        if rb is None or ra.get("status") != "ok" or rb.get("status") != "ok":
            continue
        ratio, ci, p = _saved_ratio(ra, rb)
        rows.append({"runtime": ra["runtime"], "device": ra["device"], "dtype": ra["dtype"],
                     "batch_size": ra["batch_size"], "a_median_ms": ra["median_ms"], "b_median_ms": rb["median_ms"],
                     "ratio": ratio, "ratio_ci95": ci, "p_value": p,
                     "verdict": verdict(ci, p, min_effect=min_effect) if ratio is not None else "inconclusive"})
    env_diff = differences(a.get("env", {}), b.get("env", {}))
    return {"a_model": a.get("model"), "b_model": b.get("model"), "rows": rows, "min_effect": min_effect,
            "rule": (f"difference only when the ratio's 95% CI lies beyond 1 ± {min_effect:g} (and Mann-Whitney "
                     f"p < {ALPHA:g} where samples were saved); no difference when it lies inside; else inconclusive"),
            "same_environment": not env_diff, "env_differences": env_diff}


def _saved_ratio(ra: dict, rb: dict) -> tuple[float | None, list[float] | None, float | None]:
    """B/A of two saved rows' medians, its 95% CI (see `compare_saved`) and the p-value (None without samples)."""
    if not ra.get("median_ms"):
        return None, None, None
    ratio = rb["median_ms"] / ra["median_ms"]
    if ra.get("samples_ms") and rb.get("samples_ms"):
        _, ci = stats.bootstrap_median_ratio_ci(ra["samples_ms"], rb["samples_ms"])
        return ratio, list(ci), stats.mann_whitney_p(ra["samples_ms"], rb["samples_ms"])
    ca, cb = ra.get("ci95_ms"), rb.get("ci95_ms")
    if ca and cb and ca[0] > 0:
        return ratio, [cb[0] / ca[1], cb[1] / ca[0]], None
    return ratio, None, None
