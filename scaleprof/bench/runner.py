"""`bench()`: every (device, batch size, runtime) row measured in turn; one failing row never stops the rest."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import os
import sys
import tempfile
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ScaleprofError, one_line
from ..runlog import RunLog
from ..spec import dtype_name, load_model, parse_dtype, resolve_inputs, spec_label
from . import memory as mem
from . import prepare
from .env import environment
from .result import BenchResult, RunResult, TrainResult
from .runtimes import RuntimeUnavailable, get_runtime
from .timer import TimerConfig, block_timer_for, measure

DEFAULT_MAX_TIME = 10.0


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


@contextlib.contextmanager
def torch_threads(n: int | None):
    if n is None:
        yield
        return
    if n < 1:
        raise ScaleprofError(f"--threads must be positive, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def bench(spec_or_model, inputs=None, runtimes: Sequence[str] | str = ("eager",), device="cpu",
          dtype="float32", batch_sizes=None, threads: int | None = None, train: bool = False,
          by: str | None = None, max_time: float = DEFAULT_MAX_TIME, target_ci: float = 0.01,
          samples: bool = False, knobs: dict | None = None, memory: bool = True, roofline: bool = False,
          optimizer: str = "sgd", level: int | None = None, progress: bool = False,
          min_samples: int = 10, log=None, resume: bool = False) -> BenchResult:
    """Measure a model's latency, throughput and peak memory, per runtime, device and batch size.

    `spec_or_model`: a model spec (zoo name, module:callable, file.py:callable) or an nn.Module (never
    changed: it is copied). `inputs`: shapes ("1x3x224x224", tuples, InputSpecs); default: the zoo model's.
    `batch_sizes`: replaces each input's leading dimension; None keeps the inputs' own.
    `max_time`: seconds per row for warm-up and measurement; a row stops earlier when the 95% CI of the
    median is within ±`target_ci`. `by` ("kind" | "module") adds time attribution, `roofline` the machine's roofline
    (the CLI draws it with report.plots.roofline), `train` training-step rows. `memory` measures peak memory
    (CPU: in fresh subprocesses, which costs a model load each).
    `log`: a JSON-lines file each finished row is appended to at once; with `resume`, rows measured ok by
    an earlier run of the same bench (same model, settings and environment fingerprint) are taken from it
    and not measured again (failed rows are tried again; attribution and the roofline are redone).
    """
    if max_time is None or max_time <= 0:
        raise ScaleprofError(f"--max-time must be positive, got {max_time}")
    if not 0 < target_ci < 1:
        raise ScaleprofError(f"target CI must be a fraction in (0, 1), got {target_ci}")
    if by not in (None, "kind", "module"):
        raise ScaleprofError(f"--by must be kind or module, got {by!r}")
    if resume and log is None:
        raise ScaleprofError("--resume needs --log FILE (the log of the bench to continue)")
    devices = parse_devices(device)
    batches = parse_batches(batch_sizes)
    dt = parse_dtype(dtype)
    if not dt.is_floating_point:
        raise ScaleprofError(f"--dtype must be a floating type for benchmarking, got {dtype!r}")
    with torch_threads(threads):
        rts = parse_runtimes(runtimes, threads=threads)
        # A user's module comes back as it is: never changed here, every consumer works on its own copy.
        base = load_model(spec_or_model, device="cpu", **(knobs or {}))
        specs = resolve_inputs(spec_or_model, base, inputs, knobs=knobs)
        batches = batches or [specs[0].shape[0]]
        compile_modes = [rt.mode for rt in rts if rt.name == "compile"]
        ort_threads = next(({"intra_op": rt.intra_op_threads or torch.get_num_threads(),
                             "inter_op": rt.inter_op_threads} for rt in rts if rt.name == "onnxruntime"), None)
        env = environment(dtype=dtype_name(dt), compile_mode=",".join(compile_modes) or None, devices=devices,
                          ort_threads=ort_threads)
        cfg = dict(max_time=max_time, target_ci=target_ci, progress=progress, min_samples=min_samples)
        settings = {"max_time": max_time, "target_ci": target_ci, "batch_sizes": batches, "threads": threads,
                    "memory": memory, "min_samples": min_samples}
        rows = _Rows(None if log is None else RunLog(
            log, _log_config(spec_or_model, base, specs, rts, devices, dt, batches, settings, train, optimizer, env),
            resume=resume, tool="scaleprof bench", run="bench"), dt, progress)
        ctx = _MemoryContext(spec_or_model, base, knobs, memory)
        # attribution runs on the first device that can run, on the copy its rows were timed on
        attr_dev = (next((d for d in devices if d.type != "cuda" or torch.cuda.is_available()), None)
                    if by or roofline else None)
        attribution = roof = None
        notes = []
        try:
            results = []
            for dev in devices:
                placed = _placed(base, dev, dt)
                for b in batches:
                    bspecs = prepare.with_batch(specs, b)
                    for rt in rts:
                        results.append(rows.get(RunResult, rt.label(), rt.label(), dev, b,
                                                _run_row, rt, placed, bspecs, dev, dt, b, cfg, ctx))
                if dev == attr_dev:
                    attr_dev = None
                    try:
                        if isinstance(placed, Exception):
                            raise placed
                        attribution, roof = _attribution(placed, specs, dev, dt, batches[0], by or "kind", level,
                                                         roofline, progress)
                    except Exception as exc:  # the timings stand on their own
                        notes.append(f"time attribution failed: {one_line(exc)}")
                del placed  # not resident while the next device's or the training rows run
                _free(dev)
            train_rows = None
            if train:
                train_rows = []
                for dev in devices:
                    for b in batches:
                        train_rows.append(rows.get(TrainResult, "eager", "training step", dev, b, _train_row, base,
                                                   prepare.with_batch(specs, b), dev, dt, b, cfg, optimizer, ctx))
        finally:
            ctx.close()
            rows.close()
        if rows.reused:
            notes.append(f"{rows.reused} row(s) taken from {log}, measured by an earlier run")
    label = spec_label(spec_or_model)
    return BenchResult(model=label, inputs=[str(s) for s in specs], env=env, results=results,
                       settings=settings, train=train_rows, attribution=attribution, roofline=roof,
                       include_samples=samples, notes=notes)


def _log_config(spec, base, specs, rts, devices, dt, batches, settings, train, optimizer, env) -> dict:
    """What a logged bench is: rows from a log are reused only for the same model, inputs, settings and
    environment (a row timed on another machine or with other threads is another measurement)."""
    return {"model": spec_label(spec), "params": sum(p.numel() for p in base.parameters()),
            "inputs": [str(s) for s in specs], "runtimes": [rt.label() for rt in rts],
            "devices": [str(d) for d in devices], "dtype": dtype_name(dt), "batch_sizes": batches,
            "settings": settings, "train": train, "optimizer": optimizer if train else None,
            "environment": env["fingerprint"]}


class _Rows:
    """Each row measured in turn, or taken from the log of an earlier run of the same bench (--resume: the
    rows that were ok), and appended to the log (--log) as soon as it is measured."""

    KIND = {RunResult: "run", TrainResult: "train"}

    def __init__(self, rlog: RunLog | None, dt: torch.dtype, progress: bool):
        self.rlog, self.dtype, self.progress = rlog, dtype_name(dt), progress
        self.done = {} if rlog is None else {
            (r["type"], r.get("runtime"), r.get("device"), r.get("dtype"), r.get("batch_size")): r
            for r in rlog.records if r.get("status") == "ok"}
        self.reused = 0

    def get(self, cls, runtime: str, what: str, dev: torch.device, batch: int, measure, *args):
        """The row of (`runtime`, `dev`, `batch`): from the log, or `measure(*args)` (`what` names it)."""
        kind = self.KIND[cls]
        key = (kind, runtime, str(dev), self.dtype, batch)
        if key in self.done:
            _log(self.progress, f"bench: {what} on {dev}, batch {batch}: from the log")
            self.reused += 1
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in self.done[key].items() if k in names})
        _log(self.progress, f"bench: {what} on {dev}, batch {batch} ...")
        row = measure(*args)
        _free(dev)
        if self.rlog is not None:
            self.rlog.write({"type": kind, **dataclasses.asdict(row)})
        return row

    def close(self) -> None:
        if self.rlog is not None:
            self.rlog.close()


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


def _run_row(rt, placed, specs, dev, dt, batch, cfg, ctx) -> RunResult:
    row = RunResult(runtime=rt.label(), device=str(dev), dtype=dtype_name(dt), batch_size=batch)
    if isinstance(placed, Exception):
        row.status, row.reason = "failed", one_line(placed)
        return row
    prepared = None
    try:
        xs = prepare.make_inputs(specs, dev, dt)
        prepared = rt.prepare(placed, xs, dev)
        config = TimerConfig(label=f"{rt.label()} {dev} b{batch}", **cfg)
        with prepared.context():
            m = (prepared.measure(config) if prepared.measure is not None
                 else measure(prepared.call, config, block_timer=block_timer_for(dev)))
        row.fill(m.summary, m.samples_ms)
        row.cold_ms = prepared.setup_s * 1000.0 + m.cold_ms
        row.details = {**m.details(), "setup_ms": prepared.setup_s * 1000.0, "first_call_ms": m.cold_ms,
                       **prepared.info}
        if ctx.enabled:
            result = ctx.measure(rt, prepared, dev, dt, specs, train=False)
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


def _train_row(base, specs, dev, dt, batch, cfg, optimizer, ctx) -> TrainResult:
    from .train import TrainStep, measure_step

    row = TrainResult(runtime="eager", device=str(dev), dtype=dtype_name(dt), batch_size=batch, optimizer=optimizer)
    try:
        model = _placed(base, dev, dt)
        if isinstance(model, Exception):
            raise model
        xs = prepare.make_inputs(specs, dev, dt)
        step = TrainStep(model, xs, optimizer=optimizer)  # puts its copy in train mode
        m = measure_step(step, TimerConfig(label=f"train {dev} b{batch}", **cfg), device=dev)
        row.fill(m.summary, m.total_ms)
        row.loss = step.loss_name
        row.cold_ms = m.cold_ms
        row.phases = m.phase_summary()
        row.stop_reason = m.stop_reason
        if ctx.enabled:
            if dev.type == "cuda":
                res = mem.gpu_peak(step.run, dev)
            else:
                res = ctx.cpu(runtime="eager", dt=dt, specs=specs, train=True, optimizer=optimizer)
            row.peak_memory_bytes = res.peak_bytes
            row.memory = res.to_dict()
    except Exception as exc:
        row.status, row.reason = "failed", one_line(exc)
    return row


class _MemoryContext:
    """Peak-memory measurement for every row, sharing one pickled copy of a user's module and the
    import-only baselines between rows."""

    def __init__(self, spec, base: nn.Module, knobs, enabled: bool):
        self.enabled = enabled
        self.spec = spec if isinstance(spec, str) else None
        self.base = base
        self.knobs = knobs or {}
        self._tmp = None
        self._model_path = None
        self._pickle_error = None
        self._baselines: dict = {}

    def _ensure_model_file(self) -> str | None:
        if self.spec is not None or self._model_path or self._pickle_error:
            return self._model_path
        self._tmp = tempfile.mkdtemp(prefix="scaleprof-model-")
        path = os.path.join(self._tmp, "model.pt")
        try:
            torch.save(self.base, path)
            self._model_path = path
        except Exception as exc:
            self._pickle_error = f"model cannot be pickled for the memory subprocess: {one_line(exc)}"
        return self._model_path

    def cpu(self, *, runtime: str, dt, specs, train: bool, optimizer: str = "sgd", onnx_path=None,
            ort_options=None) -> mem.MemoryResult:
        model_path = None
        if onnx_path is None:
            model_path = self._ensure_model_file()
            if self.spec is None and model_path is None:
                return mem.MemoryResult(peak_bytes=None, method="subprocess-rss", reason=self._pickle_error)
        job = mem.make_job(spec=self.spec, model_path=model_path, knobs=self.knobs, inputs=[str(s) for s in specs],
                           runtime=runtime, dtype=dtype_name(dt), threads=torch.get_num_threads(), train=train,
                           onnx_path=onnx_path, ort_options=ort_options, optimizer=optimizer)
        return mem.cpu_peak(job, baseline_cache=self._baselines)

    def measure(self, rt, prepared, dev, dt, specs, train: bool) -> mem.MemoryResult:
        if getattr(rt, "memory_reason", None):
            return mem.MemoryResult(peak_bytes=None, method="none", reason=rt.memory_reason)
        if dev.type == "cuda":
            if rt.name == "onnxruntime":
                return mem.MemoryResult(peak_bytes=None, method="none",
                                        reason="ONNX Runtime's CUDA arena is not visible to torch's allocator")
            with prepared.context():
                return mem.gpu_peak(prepared.call, dev)
        if rt.name == "onnxruntime":
            info = prepared.info
            return self.cpu(runtime=rt.label(), dt=dt, specs=specs, train=False, onnx_path=prepared.onnx_path,
                            ort_options={"intra_op_threads": info.get("intra_op_threads"),
                                         "inter_op_threads": info.get("inter_op_threads"),
                                         "graph_optimization_level": info.get("graph_optimization_level")})
        return self.cpu(runtime=rt.label(), dt=dt, specs=specs, train=train)

    def close(self) -> None:
        if self._tmp:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


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

