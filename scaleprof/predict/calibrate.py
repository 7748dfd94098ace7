"""`calibrate()`: measure this machine for one target and write a predictor file.

1. The machine's peaks (bench/roofline.py: a large matmul, a large copy) seed the roofline.
2. Calibration models (zoo, on meta) are harvested: every distinct op configuration they run.
3. Each calibration model's ops are replayed as a chain, in the forward's order, each op on its own real
   tensors and timed alone where it runs (chain.py: an op replayed alone, call after call, runs hot in
   the caches; in a chain it meets the caches a model leaves it), then the same for the redraws: the
   models at other resolutions and widths (zoo knobs), whose configurations sit near the measured ones in
   channels and spatial size (nn-Meter's refinement, drawn from the zoo's own scaling); then the adaptive
   step: the families cross-validation predicts worst without their own samples (crossval.py) are
   redrawn further (ADAPTIVE_REDRAWS) and chained while time is left. A configuration
   no chain timed (on CUDA, or a chain over CHAIN_MAX_BYTES) is replayed alone with bench's adaptive
   timer, the heaviest expected error first; a model whose forward no chain timed is timed whole (eager,
   on real random weights) before those replays and again after them, and the faster pass counts.
4. Fit (model.py): the per-op model on the samples, the overhead on the forwards timed beside their
   chains; write the file atomically (predictor.py).

Every finished measurement is appended to a JSON-lines journal beside the output (scaleprof/runlog.py),
``<out>.journal.jsonl``. Resuming is automatic: a calibration started again with the same target, environment
and models reads the journal back and measures only what is missing (a line cut by a kill is redone);
``restart=True`` discards it. The journal is removed once the predictor is written. ``max_time`` bounds
the whole run: when it is spent, the fit uses what was measured (ops not measured are predicted by
their group's fit, or their kind's).

``timer(what, make)`` is the measuring function: ``what`` is an OpEvent or a ModelRun, ``make()`` builds
the callable to time; ``timer.chain(run)``, where the timer has it, gives each of a run's events its ms
(None: no chain here). The default replays and measures; tests pass fakes that return synthetic times.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import ScaleprofError, one_line
from ..runlog import RunLog
from . import model as M
from . import synthetic
from .harvest import FEATURES, Harvest, OpEvent, harvest
from .predictor import Predictor, Target, current_environment, default_path, make_target

# Calibration models: every kind the zoo has (standard, pointwise, depthwise and grouped convs, linear,
# attention, norms, the activations, pooling, element-wise), small enough to time whole in seconds; the
# deformable ResNet for its deformable convs (no other model has them); synthetic MLP, CNN and attention
# nets (predict/synthetic.py) for more whole-model points, so that the per-op and per-model overheads are
# fitted on models of very different op counts and sizes; and nets of random layers (synthetic.PRIOR) for
# configurations wider and larger than the zoo's calibration models reach, the space a held-out model or
# a scaling grid asks about.
DEFAULT_MODELS = ("resnet18", "mobilenet_v2", "efficientnet_b0", "vit_tiny", "mobilenet_v3_small", "googlenet",
                  "deform_resnet50", *(f"scaleprof.predict.synthetic:{n}" for n in synthetic.CALIBRATION))
# Redraws of each model's configurations: other input sizes and widths.
DEFAULT_REDRAWS = ({"resolution": 0.75}, {"resolution": 1.3}, {"resolution": 1.75}, {"width": 0.75},
                   {"width": 1.25}, {"width": 1.75})
# The adaptive step (nn-Meter's refinement, by family): after every chain, the families the per-op model
# predicts worst without their own samples (crossval.py) are redrawn further, at these sizes.
ADAPTIVE_FAMILIES = 3
ADAPTIVE_REDRAWS = ({"width": 0.5}, {"width": 1.5}, {"resolution": 0.5}, {"resolution": 1.5})

DEFAULT_MAX_TIME_S = 420.0   # the whole calibration (the issue allows 10 minutes on two cores)
QUICK_MAX_TIME_S = 90.0
OP_TIME_S = 0.25        # per op configuration replayed alone (where no chain timed it)
CHAIN_MAX_BYTES = 4 << 30   # a chain holds every op's own tensors at once
MODEL_TIME_S = 2.0      # per whole calibration model
PEAKS_TIME_S = 1.0


@dataclass
class ModelRun:
    """A calibration model: its spec, knobs, inputs and harvested ops."""

    name: str
    knobs: dict
    inputs: list
    harvest: Harvest

    @property
    def label(self) -> str:
        return self.name + "".join(f" {k}={v}" for k, v in sorted(self.knobs.items()))


@dataclass
class CalibrationResult:
    path: str
    target: dict
    fingerprint: str
    samples: int
    failed: int
    measured_now: int
    resumed: int
    models: list[dict]
    elapsed_s: float
    stopped: str                       # done | max_time
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("path", "target", "fingerprint", "samples", "failed", "measured_now",
                                               "resumed", "models", "elapsed_s", "stopped", "notices")}


Timer = Callable[[object, Callable[[], Callable[[], object]]], float]


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"calibrate: {msg}", file=sys.stderr, flush=True)


CLOCKS = ("auto", "wall", "thread")


def resolve_clock(clock: str, target: Target) -> str:
    """``auto``: the calling thread's CPU time for one thread on CPU, else the wall clock.

    With one intra-op thread every kernel runs on the calling thread, so its CPU time is the latency the
    op would have on a quiet machine: other processes taking the cores (a shared CI runner, a developer
    box) slow the wall clock, not this one. With more threads, or on CUDA, only the wall clock (or CUDA
    events) sees the work."""
    if clock not in CLOCKS:
        raise ScaleprofError(f"unknown clock {clock!r}: use {', '.join(CLOCKS)}")
    if clock == "thread" and (target.device != "cpu" or target.threads != 1):
        raise ScaleprofError("--clock thread measures one CPU thread: it needs --device cpu --threads 1")
    if clock == "auto":
        return "thread" if target.device == "cpu" and target.threads == 1 else "wall"
    return clock


class MeasuringTimer:
    """The real timer: bench's adaptive measure, under inference mode and the target's threads; blocks
    timed by the clock ``resolve_clock`` picks (the run's time limit is always the wall clock). It returns
    the fastest block's per-call time: other processes only ever add to a block (on this 2-core machine,
    on a shared host, thread CPU time itself reads up to 1.4x in some rounds: caches and memory bandwidth
    are shared), so the minimum is the figure that repeats; a median moved 15-40% between rounds.
    ``chain(run)`` times a model's ops in its own order (chain.py), on the CPU."""

    def __init__(self, target: Target, op_time: float = OP_TIME_S, model_time: float = MODEL_TIME_S,
                 clock: str = "auto"):
        self.target, self.op_time, self.model_time = target, op_time, model_time
        self.use = resolve_clock(clock, target)

    def _clock(self):
        return time.thread_time if self.use == "thread" else time.perf_counter

    def __call__(self, what, make) -> float:
        import torch

        from ..bench.env import torch_threads
        from ..bench.timer import CpuBlockTimer, TimerConfig, block_timer_for, measure

        is_model = isinstance(what, ModelRun)
        cfg = TimerConfig(max_time=self.model_time if is_model else self.op_time,
                          min_time=0.5 if is_model else 0.05, target_ci=0.02, min_samples=8, warmup_window=3)
        bt = CpuBlockTimer(self._clock()) if self.target.device == "cpu" else block_timer_for(self.target.device)
        with torch_threads(self.target.threads), torch.inference_mode():
            fn = make()
            return float(measure(fn, cfg, block_timer=bt, clock=time.perf_counter).summary.min)

    def chain(self, run: ModelRun) -> tuple[list[float | None], float | None] | None:
        """Each of the run's events timed in the forward's order, and the model's own forward between the
        passes (chain.py); None where chains are not measured (CUDA: a per-op timing there needs a
        synchronisation per op) or the chain would hold over CHAIN_MAX_BYTES."""
        import torch

        from ..bench.env import steady_allocator, torch_threads
        from .chain import chain_bytes, chain_times

        if self.target.device != "cpu" or chain_bytes(run.harvest.events) > CHAIN_MAX_BYTES:
            return None
        steady_allocator()
        with torch_threads(self.target.threads), torch.inference_mode():
            return chain_times(run.harvest.events, self.target.device, self._clock(),
                               whole=_model_maker(run, self.target)())


def measuring_timer(target: Target, op_time: float = OP_TIME_S, model_time: float = MODEL_TIME_S,
                    clock: str = "auto") -> MeasuringTimer:
    return MeasuringTimer(target, op_time, model_time, clock)


def time_module(model, inputs: list, target: Target, max_time: float = MODEL_TIME_S, clock: str = "auto") -> float:
    """A whole module's ms on ``inputs`` (real tensors on the target device), timed as calibration
    times its models (the same clock, threads and timer settings): what a prediction is checked against."""
    run = ModelRun(getattr(model, "__class__", type(model)).__name__, {}, [], None)
    return measuring_timer(target, model_time=max_time, clock=clock)(run, lambda: lambda: model(*inputs))


def _model_maker(run: ModelRun, target: Target):
    def make():
        from ..shapes import parse_dtype
        from ..spec import load_model

        dt = parse_dtype(target.dtype)
        model = load_model(run.name, device=target.device, **run.knobs).eval().to(dtype=dt)
        xs = [s.make(target.device) for s in run.inputs]
        xs = [x.to(dt) if x.is_floating_point() else x for x in xs]
        return lambda: model(*xs)

    return make


def _op_maker(event: OpEvent, target: Target):
    def make():
        from .replay import replayable

        return replayable(event, target.device)

    return make


def harvest_model(name: str, knobs: dict, target: Target) -> ModelRun:
    from ..shapes import InputSpec, parse_dtype
    from ..spec import load_model, model_inputs

    model = load_model(name, device="meta", **knobs).eval()
    specs = [InputSpec((target.batch, *s.shape[1:]), s.dtype) for s in model_inputs(model)]
    return ModelRun(name, dict(knobs), specs, harvest(model, specs, name=name, dtype=parse_dtype(target.dtype)))


def parse_label(label: str) -> tuple[str, dict]:
    """ModelRun.label's inverse: "resnet18 resolution=160 width=1.25" -> ("resnet18", {...})."""
    name, *pairs = label.split(" ")
    knobs = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        knobs[k] = int(v) if v.isdigit() else float(v)
    return name, knobs


def _redraw_knobs(name: str, redraw: dict) -> dict:
    from ..spec import load_model, model_inputs

    knobs = {}
    for k, f in redraw.items():
        if k == "resolution":
            side = model_inputs(load_model(name, device="meta"))[0].shape[-1]
            knobs[k] = max(32, int(round(side * f / 16)) * 16)
        else:
            knobs[k] = f
    return knobs


def _harvest_all(models, redraws, target: Target, progress: bool) -> tuple[list[ModelRun], list[ModelRun]]:
    base = [harvest_model(n, {}, target) for n in models]
    extra = []
    for n in models:
        for r in redraws:
            try:
                extra.append(harvest_model(n, _redraw_knobs(n, r), target))
            except ScaleprofError as exc:   # a family without that knob
                _say(progress, f"no redraw {r} of {n}: {one_line(exc)}")
    return base, extra


def _key(e: OpEvent) -> str:
    return f"{e.kind}|{e.sig}"


def _work_list(runs: list[ModelRun], estimate: Predictor, done: set[str]) -> list[OpEvent]:
    """Distinct op configurations not yet measured, most expected error first: estimated time × calls ×
    how far the configuration is from every sample of its group (1 - exp(-d), d in standard deviations;
    1 when the group has none). Before any sample, that is the heaviest first."""
    weight: dict[str, float] = {}
    first: dict[str, OpEvent] = {}
    for run in runs:
        events = run.harvest.events
        est = (estimate.events_ms(events) + estimate.overhead.per_op_ms) * estimate.novelty(events)
        for e, ms in zip(events, est, strict=True):
            k = _key(e)
            if k in done:
                continue
            first.setdefault(k, e)
            weight[k] = weight.get(k, 0.0) + float(ms)
    return [first[k] for k in sorted(first, key=lambda k: -weight[k])]


def _sample(e: OpEvent, ms: float | None) -> dict:
    """A measured configuration, in the context of the forward it came from (a replay alone stands for it
    there: where no chain is timed, that is all there is)."""
    return {"key": _key(e), "group": e.group, "kind": e.kind, "macs": e.macs, "bytes": e.bytes,
            "features": e.features(), "ms": ms}


def calibrate(device="cpu", runtime="eager", dtype="float32", threads=None, batch=1, *,
              max_time: float = DEFAULT_MAX_TIME_S, out=None, models=DEFAULT_MODELS, redraws=DEFAULT_REDRAWS,
              adaptive: int | None = None, restart: bool = False, progress: bool = True, clock: str = "auto",
              timer: Timer | None = None, peaks: tuple[float, float] | None = None,
              environment: dict | None = None) -> CalibrationResult:
    """Measure this machine for one target and write its predictor file (see the module docstring).

    ``adaptive``: how many families the adaptive step redraws further (default ADAPTIVE_FAMILIES where
    ``redraws`` are asked, else 0). ``clock``: auto | wall | thread (``resolve_clock``). ``peaks``
    (GFLOP/s, GB/s) skips the peak measurement; ``timer`` replaces the measuring function and
    ``environment`` the fingerprint (both for tests)."""
    t0 = time.perf_counter()
    if max_time <= 0:
        raise ScaleprofError(f"--max-time must be positive, got {max_time}")
    target = make_target(device, runtime, dtype, threads, batch)
    env = environment if environment is not None else current_environment(target)
    out_path = Path(out) if out is not None else default_path(target, env)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    journal_path = out_path.with_name(out_path.name + ".journal.jsonl")
    if restart and journal_path.exists():
        journal_path.unlink()
    used_clock = resolve_clock(clock, target) if timer is None else "fake"
    adaptive = (ADAPTIVE_FAMILIES if redraws else 0) if adaptive is None else int(adaptive)
    config = {"target": target.to_dict(), "fingerprint": env.get("fingerprint"), "models": list(models),
              "redraws": list(redraws), "clock": used_clock, "ops": "chains", "features": list(FEATURES),
              "adaptive": adaptive}
    log = RunLog(journal_path, config, resume=journal_path.exists(), tool="scaleprof calibrate",
                 run="calibration")
    try:
        return _calibrate(target, env, out_path, log, models, redraws, max_time, t0, progress,
                          timer or measuring_timer(target, clock=clock), peaks, journal_path, used_clock, adaptive)
    finally:
        log.close()


def _calibrate(target, env, out_path, log, models, redraws, max_time, t0, progress, timer, peaks,
               journal_path, clock, adaptive=0) -> CalibrationResult:
    records = log.records
    resumed = len(records)
    if resumed:
        _say(progress, f"resuming from {journal_path}: {resumed} measurements already done")
    deadline = t0 + max_time
    peak_rec = next((r for r in records if r.get("type") == "peaks"), None)
    if peak_rec is None:
        gflops, gbps = peaks if peaks is not None else _measure_peaks(target, progress, clock)
        peak_rec = {"type": "peaks", "gflops": gflops, "gbps": gbps}
        log.write(peak_rec)
    pred = Predictor(target=target, environment=env, gflops=float(peak_rec["gflops"]), gbps=float(peak_rec["gbps"]))
    seeded = Predictor.seeded(target, env)
    seeded.gflops, seeded.gbps = pred.gflops, pred.gbps
    base, extra = _harvest_all(models, redraws, target, progress)
    # the second whole-model pass's time is kept back from the ops (at most a tenth of --max-time)
    ops_deadline = deadline - min(0.1 * max_time, MODEL_TIME_S * len(base))
    chained = {r["label"]: r["ops"] for r in records if r.get("type") == "chain"}
    wholes = {r["label"]: r.get("whole_ms") for r in records if r.get("type") == "chain"}
    now, stopped, adaptive_labels = 0, "done", []
    chain = getattr(timer, "chain", None)
    if chain is not None:
        now, complete = _chain_runs(base + extra, chained, wholes, chain, ops_deadline, log, progress)
        if complete and adaptive:
            more = _adaptive_runs(pred, base + extra, chained, wholes, target, adaptive, progress)
            timed, complete = _chain_runs(more, chained, wholes, chain, ops_deadline, log, progress)
            now, extra, adaptive_labels = now + timed, extra + more, [r.label for r in more]
        stopped = "done" if complete else "max_time"
    # a model whose forward no chain timed beside its ops is timed whole, before the lone replays and again
    # after them, and its faster pass counts
    unchained = [r for r in base if not wholes.get(r.label)]
    passes = ({}, {})
    for r in records:
        if r.get("type") == "model":
            passes[r.get("pass", 1) - 1][r["label"]] = r["ms"]
    now += _time_models(unchained, passes, 1, deadline, timer, target, log, progress)
    stopped = stopped if all(r.label in passes[0] for r in unchained) else "max_time"
    # an op timed in a chain is timed where it runs; one no chain timed is replayed alone
    samples = {r["key"]: r for r in records if r.get("type") == "op"}
    samples.update(_chain_samples(base + extra, chained))
    for runs, what in ((base, "ops"), (extra, "redrawn ops")):
        estimate = seeded
        if runs is extra and samples:
            # the redraws are ordered by the first fit: far from what was measured and heavy first
            estimate = Predictor(target=target, environment=env, gflops=pred.gflops, gbps=pred.gbps,
                                 samples=[{k: v for k, v in r.items() if k != "type"} for r in samples.values()])
            estimate.fit()
        todo = _work_list(runs, estimate, {r["key"] for r in samples.values()})
        if todo:
            _say(progress, f"{len(todo)} {what} to measure")
        for i, e in enumerate(todo):
            if time.perf_counter() >= ops_deadline:
                stopped = "max_time"
                break
            ms = _timed(timer, e, _op_maker(e, target), False)
            rec = {"type": "op", **_sample(e, ms)}
            samples[rec["key"]] = rec
            log.write(rec)
            now += 1
            if progress and (i + 1) % 25 == 0:
                _say(progress, f"{what}: {i + 1}/{len(todo)} measured, {time.perf_counter() - t0:.0f}/"
                               f"{max_time:g} s")
        if stopped == "max_time":
            _say(progress, f"--max-time {max_time:g} s reached: fitting on what was measured")
            break
    now += _time_models(unchained, passes, 2, deadline, timer, target, log, progress)
    # the whole-model truth of the overhead fit: a run's forward timed between its own chain's passes
    # (the same seconds as its ops), else the faster of its two whole passes
    measured_models = {r.label: min((p[r.label] for p in passes if p.get(r.label) is not None), default=None)
                       for r in base}
    measured_models.update({k: v for k, v in wholes.items() if v})
    fitted = [r for r in base + extra if measured_models.get(r.label)]
    pred.samples = [{k: v for k, v in r.items() if k != "type"} for r in samples.values()]
    pred.fit()
    rows = _fit_overhead(pred, fitted, measured_models)
    failed = sum(1 for s in pred.samples if s.get("ms") is None)
    pred.calibration = {"models": [r.label for r in base], "redraws": [r.label for r in extra],
                        "adaptive": adaptive_labels,
                        "elapsed_s": round(time.perf_counter() - t0, 2), "stopped": stopped, "clock": clock,
                        "samples": len(pred.samples) - failed, "failed": failed}
    pred.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path = pred.save(out_path)
    log.close()
    journal_path.unlink(missing_ok=True)
    _say(progress, f"wrote {path} ({len(pred.samples) - failed} op samples, {len(rows)} models)")
    return CalibrationResult(path=str(path), target=target.to_dict(), fingerprint=pred.fingerprint,
                             samples=len(pred.samples) - failed, failed=failed, measured_now=now, resumed=resumed,
                             models=rows, elapsed_s=round(time.perf_counter() - t0, 2), stopped=stopped)


def _chain_runs(runs: list[ModelRun], chained: dict, wholes: dict, chain, deadline: float, log: RunLog,
                progress: bool) -> tuple[int, bool]:
    """Each run's ops timed in its forward's order (chain.py), journaled per run: how many were timed now,
    and whether every run was reached before ``deadline``."""
    from .chain import per_key

    timed = 0
    for i, run in enumerate(runs):
        if run.label in chained:
            continue
        if time.perf_counter() >= deadline:
            return timed, False
        got = chain(run)
        if got is None:         # not on this device, or too large: its ops are replayed alone
            continue
        times, whole_ms = got
        ops = per_key([_key(e) for e in run.harvest.events], times)
        chained[run.label] = ops
        wholes[run.label] = whole_ms
        log.write({"type": "chain", "label": run.label, "ops": ops, "whole_ms": whole_ms})
        timed += 1
        ok = sum(v is not None for v in ops.values())
        tail = f", the model {whole_ms:.2f} ms" if whole_ms else ""
        _say(progress, f"chain {i + 1}/{len(runs)}: {run.label}: {ok} of {len(ops)} configurations timed, "
                       f"{sum(t for t in times if t is not None):.2f} ms a forward{tail}")
    return timed, True


def _adaptive_runs(pred: Predictor, runs: list[ModelRun], chained: dict, wholes: dict, target: Target, n: int,
                   progress: bool) -> list[ModelRun]:
    """The adaptive step: the ``n`` families cross-validation predicts worst from the other families'
    samples (crossval.py), each redrawn at ADAPTIVE_REDRAWS. Deterministic in the chains' times, so a
    resumed calibration picks the same ones."""
    from .crossval import cross_validate, worst_families

    trial = Predictor(target=target, environment=pred.environment, gflops=pred.gflops, gbps=pred.gbps,
                      samples=[{k: v for k, v in r.items() if k != "type"}
                               for r in _chain_samples(runs, chained).values()])
    cv = cross_validate(trial, {r.label: r.harvest for r in runs}, {k: v for k, v in wholes.items() if v})
    fams = worst_families(cv, n)
    have = {r.label for r in runs}
    more = []
    for fam in fams:
        for r in ADAPTIVE_REDRAWS:
            try:
                run = harvest_model(fam, _redraw_knobs(fam, r), target)
            except ScaleprofError as exc:   # a family without that knob
                _say(progress, f"no adaptive redraw {r} of {fam}: {one_line(exc)}")
                continue
            if run.label not in have:
                have.add(run.label)
                more.append(run)
    _say(progress, f"adaptive step: cross-validation {cv['within']:.0%} within ±10%; redrawing the worst "
                   f"families, {', '.join(f.rsplit(':', 1)[-1] for f in fams)}: {len(more)} runs")
    return more


def _chain_samples(runs: list[ModelRun], chained: dict) -> dict[str, dict]:
    """One sample per configuration and chain that timed it (``key@label``), in that chain's context."""
    out: dict[str, dict] = {}
    for run in runs:
        ops = chained.get(run.label)
        if ops is None:
            continue
        first: dict[str, OpEvent] = {}
        for e in run.harvest.events:
            first.setdefault(_key(e), e)
        for k, ms in ops.items():
            if ms is not None and k in first:
                e = first[k]
                out[f"{k}@{run.label}"] = {"type": "op", **_sample(e, float(ms)), "source": run.label}
    return out


def _time_models(base: list[ModelRun], passes: tuple[dict, dict], n: int, deadline: float, timer: Timer,
                 target: Target, log: RunLog, progress: bool) -> int:
    """Pass ``n`` (1 or 2) over the calibration models not yet timed in it, while time is left: how many
    were timed. A whole model on a shared machine moves 15-40% between rounds; two rounds apart, the ops'
    replays between them, and the faster counts."""
    done = passes[n - 1]
    timed = 0
    for run in base:
        if run.label in done or (n == 2 and passes[0].get(run.label) is None):
            continue
        if time.perf_counter() >= deadline:
            break
        ms = _timed(timer, run, _model_maker(run, target), progress)
        done[run.label] = ms
        log.write({"type": "model", "label": run.label, "ms": ms, "pass": n})
        timed += 1
        tail = f" (pass {n})" if n > 1 else ""
        _say(progress, f"model {run.label}{tail}: {ms:.3f} ms" if ms is not None else f"model {run.label}: failed")
    return timed


def _timed(timer: Timer, what, make, progress: bool) -> float | None:
    """One measurement; an op that cannot be replayed is journaled as failed (never retried)."""
    try:
        ms = float(timer(what, make))
    except Exception as exc:  # a replay can fail in ways no list foresees; the op is then predicted by its group
        _say(progress, f"could not time {getattr(what, 'label', getattr(what, 'sig', '?'))[:80]}: {one_line(exc)}")
        return None
    return ms if ms > 0 and np.isfinite(ms) else None


def _measure_peaks(target: Target, progress: bool, clock: str = "wall") -> tuple[float, float]:
    """The roofline's peaks, timed by the clock the ops are timed by: peaks by the wall clock under load and
    ops by thread CPU time made every efficiency the ratio of two clocks, not of two speeds."""
    import time as _time

    from ..bench.env import torch_threads
    from ..bench.roofline import measure_peaks
    from ..bench.timer import CpuBlockTimer
    from ..shapes import parse_dtype

    _say(progress, "measuring peaks (matmul, copy)")
    bt = CpuBlockTimer(_time.thread_time) if clock == "thread" else None
    with torch_threads(target.threads):
        p = measure_peaks(target.device, parse_dtype(target.dtype), max_time=PEAKS_TIME_S, block_timer=bt)
    _say(progress, f"peaks: {p.gflops:.1f} GFLOP/s, {p.gbps:.1f} GB/s")
    return p.gflops, p.gbps


def _fit_overhead(pred: Predictor, base: list[ModelRun], measured: dict) -> list[dict]:
    """Fit the whole-model overhead on the measured calibration models; their predicted-vs-measured rows."""
    runs = [r for r in base if measured.get(r.label)]
    sums = np.array([float(pred.events_ms(r.harvest.events).sum()) for r in runs])
    n_ops = np.array([len(r.harvest.events) for r in runs], dtype=float)
    n_mod = np.array([r.harvest.module_calls for r in runs], dtype=float)
    meas = np.array([measured[r.label] for r in runs], dtype=float)
    pred.overhead = M.fit_overhead(sums, n_ops, n_mod, meas)
    pred.models = []
    rows = []
    for r, s, n, u, m in zip(runs, sums, n_ops, n_mod, meas, strict=True):
        p = s + pred.overhead.total(int(n), int(u))
        pred.models.append({"name": r.label, "measured_ms": m, "op_sum_ms": s, "n_ops": int(n), "n_modules": int(u)})
        rows.append({"model": r.label, "measured_ms": m, "predicted_ms": p, "error": p / m - 1})
    return rows
