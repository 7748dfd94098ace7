"""`bench()`: every (device, batch size, runtime) row measured in turn; one failing row never stops the rest."""

from __future__ import annotations

import copy
import dataclasses
import gc
import sys
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import Interrupted, ScaleprofError, one_line
from ..runlog import Journal, RunLog, require_shape
from ..shapes import dtype_name, parse_weight_dtype
from ..spec import load_model, model_inputs, spec_label
from . import prepare
from .env import environment, torch_threads  # noqa: F401 (torch_threads: its old home, still importable)
from .memory import MemoryMeter
from .options import DEFAULT_MAX_TIME, BenchOptions  # noqa: F401 (DEFAULT_MAX_TIME: its old home)
from .progress import RunPlan
from .result import BenchResult, RunResult, TrainResult
from .runtimes import Compile, RuntimeUnavailable, environment_fields, get_runtime
from .timer import TimerConfig, block_timer_for, measure


def _split(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    else:
        items = [str(v).strip() for v in value]
    items = [v for v in items if v]
    if not items:
        raise ScaleprofError(f"empty {what} list")
    return items


def parse_devices(device) -> list[torch.device]:
    out = []
    for d in _split(device or "cpu", "device"):
        try:
            dev = torch.device(d)
        except (RuntimeError, TypeError):
            raise ScaleprofError(f"unknown device {d!r}; use cpu or cuda") from None
        if dev.type not in ("cpu", "cuda"):
            raise ScaleprofError(f"cannot benchmark on device {d!r}; use cpu or cuda")
        out.append(dev)
    return out


def parse_batches(batch_sizes) -> list[int] | None:
    if batch_sizes is None:
        return None
    if isinstance(batch_sizes, int):
        batch_sizes = [batch_sizes]
    out = []
    for b in _split(batch_sizes, "batch size"):
        try:
            n = int(b)
        except ValueError:
            raise ScaleprofError(f"malformed batch size {b!r}: positive integers expected, e.g. 1,8,32") from None
        if n < 1:
            raise ScaleprofError(f"batch size must be positive, got {n}")
        out.append(n)
    return out


def parse_runtimes(runtimes, threads=None) -> list:
    return [get_runtime(name, threads=threads) for name in _split(runtimes or "eager", "runtime")]


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def bench(spec_or_model, inputs=None, options: BenchOptions | None = None, **overrides) -> BenchResult:
    """Measure a model's latency, throughput and peak memory, per runtime, device and batch size.

    `spec_or_model`: a model spec (zoo name, module:callable, file.py:callable) or an nn.Module (never
    changed: it is copied). `inputs`: shapes ("1x3x224x224", tuples, InputSpecs); default: the zoo model's.
    `options`: a BenchOptions; `overrides`: any of its fields as keywords (None keeps the default):
    `batch_sizes` replaces each input's leading dimension; None keeps the inputs' own.
    `max_time`: seconds per row for warm-up and measurement; a row stops earlier when the 95% CI of the
    median is within ±`target_ci`. `by` ("kind" | "module") adds time attribution, `roofline` the machine's roofline
    (the CLI draws it with report.plots.roofline), `train` training-step rows. `memory` measures peak memory
    (CPU: in fresh subprocesses, which costs a model load each).
    `log`: a JSON-lines file each finished row is appended to at once; with `resume`, rows measured ok by
    an earlier run of the same bench (same model, settings and environment fingerprint) are taken from it
    and not measured again (failed rows are tried again; attribution and the roofline are redone).
    `total_time`: seconds for the whole call; before each row its cost is estimated (bench.progress.RunPlan)
    and a row that no longer fits gets status "skipped" with the reason. With `progress`, the estimated cost
    is said first, and the long silent steps (compilation, export, session creation) tick on stderr.
    """
    o = BenchOptions.of(options, **overrides)
    plan = RunPlan(max_time=o.max_time, memory=o.memory, total_time=o.total_time)
    devices = parse_devices(o.device)
    batches = parse_batches(o.batch_sizes)
    dt = parse_weight_dtype(o.dtype)
    with torch_threads(o.threads):
        rts = parse_runtimes(o.runtimes, threads=o.threads)
        for rt in rts:
            rt.progress = o.progress
            if isinstance(rt, Compile):
                rt.memory_child = o.compile_memory
        # A user's module comes back as it is: never changed here, every consumer works on its own copy.
        base = load_model(spec_or_model, device="cpu", **(o.knobs or {}))
        specs = model_inputs(base, inputs)
        batches = batches or [specs[0].shape[0]]
        n_rows = len(devices) * len(batches)
        _log(o.progress, plan.describe(rts, n_rows * len(rts), n_rows if o.train else 0))
        env = environment(dtype=dtype_name(dt), devices=devices, **environment_fields(rts))
        settings = {"max_time": o.max_time, "target_ci": o.target_ci, "batch_sizes": batches,
                    "threads": o.threads, "memory": o.memory, "min_samples": o.min_samples}
        rlog = None if o.log is None else RunLog(
            o.log, _log_config(spec_or_model, base, specs, rts, devices, dt, batches, settings, o, env),
            resume=o.resume, tool="scaleprof bench", run="bench")
        run = _Run(o, base, specs, dt, _Rows(rlog, dt, o.progress), MemoryMeter(spec_or_model, base, o.knobs, o.memory),
                   plan)
        try:
            results, attribution, roof = _inference(run, rts, devices, batches)
            train_rows = ([run.row(TrainResult, "eager", "training step", dev, b, _train_row, run, dev, b,
                                   cost_s=plan.row_cost()) for dev in devices for b in batches] if o.train else None)
        except KeyboardInterrupt as exc:   # Ctrl-C: the rows finished so far are still a result
            run.notes.append(f"interrupted after {len(run.results)} row(s)")
            raise Interrupted(BenchResult(model=spec_label(spec_or_model), inputs=[str(s) for s in specs], env=env,
                                          results=run.results, settings=settings, include_samples=o.samples,
                                          notes=run.notes)) from exc
        finally:
            run.close()
        if run.rows.reused:
            run.notes.append(f"{run.rows.reused} row(s) taken from {o.log}, measured by an earlier run")
    return BenchResult(model=spec_label(spec_or_model), inputs=[str(s) for s in specs], env=env, results=results,
                       settings=settings, train=train_rows, attribution=attribution, roofline=roof,
                       include_samples=o.samples, notes=run.notes)


@dataclass
class _Run:
    """One bench's state shared by its rows: options, the base model and inputs, the rows' journal, memory."""

    o: BenchOptions
    base: nn.Module
    specs: list
    dt: torch.dtype
    rows: _Rows
    meter: MemoryMeter
    plan: RunPlan
    notes: list = dataclasses.field(default_factory=list)
    flops: dict = dataclasses.field(default_factory=dict)   # (batch, train) -> (model, hardware) FLOPs
    results: list = dataclasses.field(default_factory=list)   # the inference rows finished so far

    def row(self, cls, runtime: str, what: str, dev, batch: int, measure_row, *args, cost_s: float):
        """The row from the log, or measured; skipped (with the reason) when `cost_s` no longer fits in
        --total-time."""
        def measured(*a):
            reason = self.plan.skip_reason(cost_s)
            if reason is not None:
                _log(self.o.progress, f"bench: {what} on {dev}, batch {batch}: {reason}")
                return _skipped(cls, runtime, dev, batch, self.dt, self.o.optimizer, reason)
            return measure_row(*a)

        return self.rows.get(cls, runtime, what, dev, batch, measured, *args)

    def timer(self, label: str) -> TimerConfig:
        return TimerConfig(label=label, **self.o.timer_fields())

    def utilisation(self, dev, batch: int, median_ms, *, train: bool) -> tuple[float | None, float | None]:
        """(MFU, HFU) of a row: the model counted once per batch size (on meta), the device's peak measured
        once per process (bench/mfu.py); (None, None) with mfu off or where the count fails."""
        if not self.o.mfu or median_ms is None:
            return None, None
        from .mfu import counted_flops, device_peak, utilisation

        key = (batch, train)
        if key not in self.flops:
            self.flops[key] = counted_flops(self.base, prepare.with_batch(self.specs, batch), self.dt, train=train)
        if self.flops[key] is None:
            return None, None
        peak = device_peak(str(dev), self.dt).gflops
        model, hardware = self.flops[key]
        return utilisation(model, median_ms, peak), utilisation(hardware, median_ms, peak)

    def close(self) -> None:
        self.meter.close()
        self.rows.close()


def _inference(run: _Run, rts, devices, batches):
    """Every inference row, device by device, and the attribution (and roofline) on the first device that
    runs, on the copy its rows were timed on."""
    o = run.o
    attr_dev = (next((d for d in devices if d.type != "cuda" or torch.cuda.is_available()), None)
                if o.by or o.roofline else None)
    attribution = roof = None
    results = run.results
    for dev in devices:
        placed = _placed(run.base, dev, run.dt)
        for b in batches:
            bspecs = prepare.with_batch(run.specs, b)
            for rt in rts:
                results.append(run.row(RunResult, rt.label(), rt.label(), dev, b, _run_row, rt, placed, bspecs,
                                       dev, b, run, cost_s=run.plan.row_cost(rt)))
        if dev == attr_dev:
            attr_dev = None
            skip = run.plan.skip_reason(o.max_time)
            try:
                if skip is not None:
                    raise ScaleprofError(skip)
                if isinstance(placed, Exception):
                    raise placed
                attribution, roof = _attribution(placed, run.specs, dev, run.dt, batches[0], o.by or "kind",
                                                 o.level, o.roofline, o.progress)
            except Exception as exc:  # the timings stand on their own
                run.notes.append(f"time attribution failed: {one_line(exc)}")
        del placed  # not resident while the next device's or the training rows run
        _free(dev)
    return results, attribution, roof


def _log_config(spec, base, specs, rts, devices, dt, batches, settings, o: BenchOptions, env) -> dict:
    """What a logged bench is: rows from a log are reused only for the same model, inputs, settings and
    environment (a row timed on another machine or with other threads is another measurement)."""
    return {"model": spec_label(spec), "params": sum(p.numel() for p in base.parameters()),
            "inputs": [str(s) for s in specs], "runtimes": [rt.label() for rt in rts],
            "devices": [str(d) for d in devices], "dtype": dtype_name(dt), "batch_sizes": batches,
            "settings": settings, "train": o.train, "optimizer": o.optimizer if o.train else None,
            "environment": env["fingerprint"]}


def _row_key(r: dict):
    """A logged row is taken again only if it was measured ok (a failure may be passing)."""
    if r.get("status") != "ok":
        return None
    require_shape(r, runtime="text", device="text", dtype="text", batch_size="whole", median_ms="number",
                  mean_ms="number", min_ms="number", iqr_ms="number", p90_ms="number", p99_ms="number",
                  ci95_ms="pair", samples="whole", throughput="number", cold_ms="number",
                  peak_memory_bytes="whole", samples_ms="numbers", phases="object", memory="object",
                  details="object")
    return (r.get("runtime"), r.get("device"), r.get("dtype"), r.get("batch_size"))


class _Rows:
    """Each row measured in turn, or taken from the log of an earlier run of the same bench (--resume: the
    rows that were ok), and appended to the log (--log) as soon as it is measured (runlog.Journal)."""

    KIND = {RunResult: "run", TrainResult: "train"}

    def __init__(self, rlog: RunLog | None, dt: torch.dtype, progress: bool):
        self.journal = Journal(rlog, {kind: _row_key for kind in self.KIND.values()})
        self.dtype, self.progress = dtype_name(dt), progress
        self.reused = 0

    def get(self, cls, runtime: str, what: str, dev: torch.device, batch: int, measure, *args):
        """The row of (`runtime`, `dev`, `batch`): from the log, or `measure(*args)` (`what` names it)."""
        kind = self.KIND[cls]
        done = self.journal.get(kind, (runtime, str(dev), self.dtype, batch))
        if done is not None:
            _log(self.progress, f"bench: {what} on {dev}, batch {batch}: from the log")
            self.reused += 1
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in done.items() if k in names})
        _log(self.progress, f"bench: {what} on {dev}, batch {batch} ...")
        row = measure(*args)
        _free(dev)
        self.journal.put(kind, dataclasses.asdict(row))
        return row

    def close(self) -> None:
        self.journal.close()


def _placed(base: nn.Module, dev: torch.device, dt: torch.dtype) -> nn.Module | Exception:
    """A copy of the model on `dev` in `dt`, in eval mode, or the exception that stops it getting there."""
    if dev.type == "cuda" and not torch.cuda.is_available():
        return RuntimeUnavailable("CUDA is not available on this machine")
    try:
        model = copy.deepcopy(base)
    except Exception as exc:
        return ScaleprofError(f"cannot copy the model to benchmark it: {one_line(exc)}")
    try:
        return prepare.place(model, dev, dt).eval()
    except Exception as exc:
        return exc


def _free(dev: torch.device) -> None:
    # Only the GPU needs the cycle collector's help: cached blocks of a finished row would count in the
    # next row's max_memory_reserved. On CPU a full collection costs more than it gives back.
    if dev.type == "cuda" and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def _run_row(rt, placed, specs, dev, batch, run: _Run) -> RunResult:
    dt = run.dt
    row = RunResult(runtime=rt.label(), device=str(dev), dtype=dtype_name(dt), batch_size=batch)
    if isinstance(placed, Exception):
        row.status, row.reason = "failed", one_line(placed)
        return row
    prepared = None
    try:
        xs = prepare.make_inputs(specs, dev, dt)
        prepared = rt.prepare(placed, xs, dev)
        run.plan.saw_setup(rt, prepared.setup_s)
        with prepared.context():
            config = run.timer(f"{rt.label()} {dev} b{batch}")
            m = (prepared.measure(config) if prepared.measure is not None
                 else measure(prepared.call, config, block_timer=block_timer_for(dev)))
        row.fill(m.summary, m.samples_ms)
        row.mfu = run.utilisation(dev, batch, row.median_ms, train=False)[0]
        row.cold_ms = prepared.setup_s * 1000.0 + m.cold_ms
        row.details = {**m.details(), "setup_ms": prepared.setup_s * 1000.0, "first_call_ms": m.cold_ms,
                       **prepared.info}
        if run.meter.enabled:
            result = run.meter.run(rt, prepared, dev, dt, specs)
            row.peak_memory_bytes = result.peak_bytes
            row.details["memory"] = result.to_dict()
    except Exception as exc:  # the model or the runtime broke: this row fails, the others go on
        row.status, row.reason = "failed", one_line(exc)
    finally:
        if prepared is not None:
            prepared.close()
    if row.status == "failed":
        row.samples_ms = None
    return row


def _skipped(cls, runtime: str, dev, batch: int, dt: torch.dtype, optimizer: str, reason: str):
    """A row not measured because --total-time ran out: status "skipped" and why."""
    extra = {"optimizer": optimizer} if cls is TrainResult else {}
    return cls(runtime=runtime, device=str(dev), dtype=dtype_name(dt), batch_size=batch, status="skipped",
               reason=reason, **extra)


def _train_row(run: _Run, dev, batch) -> TrainResult:
    from .train import TrainStep, measure_step

    dt, optimizer = run.dt, run.o.optimizer
    specs = prepare.with_batch(run.specs, batch)
    row = TrainResult(runtime="eager", device=str(dev), dtype=dtype_name(dt), batch_size=batch, optimizer=optimizer)
    try:
        model = _placed(run.base, dev, dt)
        if isinstance(model, Exception):
            raise model
        xs = prepare.make_inputs(specs, dev, dt)
        step = TrainStep(model, xs, optimizer=optimizer)  # puts its copy in train mode
        m = measure_step(step, run.timer(f"train {dev} b{batch}"), device=dev)
        row.fill(m.summary, m.total_ms)
        row.mfu, row.hfu = run.utilisation(dev, batch, row.median_ms, train=True)
        row.loss = step.loss_name
        row.cold_ms = m.cold_ms
        row.phases = m.phase_summary()
        row.stop_reason = m.stop_reason
        if run.meter.enabled:
            res = run.meter.train(step, dev, dt, specs, optimizer)
            row.peak_memory_bytes = res.peak_bytes
            row.memory = res.to_dict()
            row.memory_estimate = _memory_estimate(run.base, specs, dt, optimizer)
    except Exception as exc:
        row.status, row.reason = "failed", one_line(exc)
    return row


def _memory_estimate(model, specs, dt, optimizer: str) -> dict | None:
    """The counter's estimate of the training step's memory (on meta, without running), beside the measured
    peak; None when the count fails (the measurement stands on its own)."""
    from ..counting import profile

    try:
        return profile(model, specs, dtype=dt, backward=True, memory=True, optimizer=optimizer,
                       quiet=True).memory.to_dict()
    except Exception:
        return None


def _attribution(model, specs, dev, dt, batch, by, level, roofline, progress):
    """Time by kind or module on `model` (the rows' placed copy, in eval mode), and the roofline if asked."""
    from .attribution import attribute
    from .roofline import Roofline, measure_peaks, place

    _log(progress, f"bench: attributing time by {by} on {dev} ...")
    xs = prepare.make_inputs(prepare.with_batch(specs, batch), dev, dt)
    attr = attribute(model, xs, device=dev, by=by, level=level)
    roof = None
    if roofline:
        _log(progress, f"bench: measuring this machine's peaks on {dev} ...")
        peaks = measure_peaks(dev, dt)
        roof = Roofline(peaks=peaks, points=place(peaks, attr.by_kind_rows))
    return attr, roof

