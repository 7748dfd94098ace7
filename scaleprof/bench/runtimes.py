"""Runtimes: how a model is run. Each prepares a zero-argument callable that runs the model once.

- ``eager``: the module itself, under ``torch.inference_mode``.
- ``compile`` (``compile:MODE``, MODE one of default, reduce-overhead, max-autotune, ...): ``torch.compile``;
  compilation happens on the first call, so it lands in the cold start, apart from steady state.
- ``onnxruntime`` (``onnxruntime:LEVEL``, LEVEL the graph optimisation level: disable, basic, extended or
  all, the default): exported with ``torch.onnx.export`` (the dynamo exporter, falling back to the
  TorchScript exporter) into a temporary folder and run by an ``InferenceSession``; export and session
  creation are the setup time, reported in the cold start. Threads: ``--threads`` (intra-op), inter-op 1.

A runtime that cannot run here raises ``RuntimeUnavailable`` with a one-line reason; the caller records it as
a failed row and goes on with the others.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ScaleprofError, one_line
from ..shapes import dtype_name

ORT_OPT_LEVELS = ("disable", "basic", "extended", "all")


class RuntimeUnavailable(ScaleprofError):
    """This runtime cannot run this model here; the message is the one-line reason."""


@dataclass
class Prepared:
    """A model made ready to run: `call()` runs it once on the prepared inputs."""

    call: Callable[[], object]
    setup_s: float = 0.0
    info: dict = field(default_factory=dict)
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    cleanup: Callable[[], None] | None = None
    onnx_path: str | None = None  # the exported graph, while prepared (the memory subprocess runs it)
    # A runtime that times itself (web: the browser's clock) gives measure(TimerConfig) -> timer.Measurement.
    measure: Callable[..., object] | None = None

    def close(self) -> None:
        if self.cleanup is not None:
            self.cleanup()
            self.cleanup = None


@dataclass(frozen=True)
class MemoryPlan:
    """How a runtime's peak memory is measured on a device (bench.memory): ``cuda-allocator`` (torch's CUDA
    allocator, in this process), ``subprocess-rss`` (peak RSS of a fresh child) or ``none`` (with the reason)."""

    method: str
    reason: str | None = None


class Runtime:
    """How a model is run. Besides `prepare`, a runtime describes itself, so the runner, the memory child and
    compare never ask for its name: the environment fields it adds, how its memory is measured, and what a
    fresh memory subprocess needs to rebuild it (`child_job` here, `from_child_job` there)."""

    name = "runtime"
    # modules the memory child imports for the import-only baseline (what a run of this runtime loads)
    baseline_imports: tuple[str, ...] = ()

    def prepare(self, model: nn.Module, inputs: list[torch.Tensor], device: torch.device) -> Prepared:
        raise NotImplementedError

    def label(self) -> str:
        return self.name

    def env_fields(self) -> dict:
        """Fields this runtime adds to the environment fingerprint (see `environment_fields`)."""
        return {}

    def memory_plan(self, device: torch.device) -> MemoryPlan:
        return MemoryPlan("cuda-allocator") if device.type == "cuda" else MemoryPlan("subprocess-rss")

    def child_job(self, prepared: Prepared) -> dict:
        """What the memory child needs to run this runtime as it ran here (JSON)."""
        return {"runtime": self.label(), "needs_model": True}

    @staticmethod
    def from_child_job(job: dict, threads: int) -> Runtime:
        """The runtime a memory child rebuilds from `child_job`'s record."""
        rt = get_runtime(job["runtime"], threads=job.get("intra_op_threads") or threads)
        if isinstance(rt, OnnxRuntime) and job.get("inter_op_threads"):
            rt.inter_op_threads = int(job["inter_op_threads"])
        return rt

    def run_in_child(self, job: dict, build, iters: int) -> None:
        """Run `iters` calls in the memory child; `build()` gives (model, inputs) on the CPU."""
        model, xs = build()
        prepared = self.prepare(model.eval(), xs, torch.device("cpu"))
        try:
            with prepared.context():
                for _ in range(iters):
                    prepared.call()
        finally:
            prepared.close()


def environment_fields(runtimes) -> dict:
    """The environment fields of several runtimes together: strings (compile modes) joined by commas, any
    other field as the first runtime that has it gives it."""
    out: dict = {}
    for rt in runtimes:
        for k, v in rt.env_fields().items():
            if k not in out:
                out[k] = v
            elif isinstance(v, str) and isinstance(out[k], str):
                out[k] = f"{out[k]},{v}"
    return out


class Eager(Runtime):
    name = "eager"

    def prepare(self, model, inputs, device):
        return Prepared(call=lambda: model(*inputs), context=torch.inference_mode, info={})


class Compile(Runtime):
    name = "compile"
    baseline_imports = ("torch._dynamo", "torch._inductor.compile_fx")

    def __init__(self, mode: str = "default"):
        self.mode = mode

    def label(self) -> str:
        return "compile" if self.mode == "default" else f"compile:{self.mode}"

    def env_fields(self) -> dict:
        return {"compile_mode": self.mode}

    def prepare(self, model, inputs, device):
        t0 = time.perf_counter()
        try:
            compiled = torch.compile(model, mode=None if self.mode == "default" else self.mode)
        except Exception as exc:
            raise RuntimeUnavailable(f"torch.compile failed: {one_line(exc)}") from exc
        setup = time.perf_counter() - t0
        # no_grad rather than inference_mode: compiled graphs guard on grad mode, and inference tensors
        # have been a source of recompiles in some torch versions.
        return Prepared(call=lambda: compiled(*inputs), setup_s=setup, context=torch.no_grad,
                        info={"compile_mode": self.mode})


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    baseline_imports = ("numpy", "onnxruntime")

    def __init__(self, intra_op_threads: int | None = None, inter_op_threads: int = 1,
                 opt_level: str = "all", exporter: str = "auto"):
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.opt_level = opt_level
        self.exporter = exporter  # auto (dynamo, then torchscript) | dynamo | torchscript

    def label(self) -> str:
        return "onnxruntime" if self.opt_level == "all" else f"onnxruntime:{self.opt_level}"

    def env_fields(self) -> dict:
        return {"ort_threads": {"intra_op": self.intra_op_threads or torch.get_num_threads(),
                                "inter_op": self.inter_op_threads}}

    def memory_plan(self, device: torch.device) -> MemoryPlan:
        if device.type == "cuda":
            return MemoryPlan("none", "ONNX Runtime's CUDA arena is not visible to torch's allocator")
        return MemoryPlan("subprocess-rss")

    def child_job(self, prepared: Prepared) -> dict:
        # the child runs the graph exported here, without torch's exporter: the figure is ONNX Runtime's
        return {"runtime": self.label(), "needs_model": False, "onnx_path": prepared.onnx_path,
                "intra_op_threads": prepared.info.get("intra_op_threads"),
                "inter_op_threads": prepared.info.get("inter_op_threads")}

    def run_in_child(self, job: dict, build, iters: int) -> None:
        import numpy as np

        sess = self.session(job["onnx_path"], ["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feed = {}
        for meta in sess.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in meta.shape]
            np_type = _ORT_TYPES.get(meta.type)
            if np_type is None:
                raise RuntimeError(f"input type {meta.type} not handled")
            np_type = getattr(np, np_type)
            feed[meta.name] = (rng.standard_normal(shape).astype(np_type) if np.issubdtype(np_type, np.floating)
                               else np.zeros(shape, dtype=np_type))
        for _ in range(iters):
            sess.run(None, feed)

    def session(self, path: str, providers):
        """The one place an ONNX Runtime session is made (bench rows and the memory child alike)."""
        ort = _import_ort()
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(self.intra_op_threads or torch.get_num_threads())
        so.inter_op_num_threads = int(self.inter_op_threads)
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = _ort_level(ort, self.opt_level)
        so.log_severity_level = 3
        try:
            return ort.InferenceSession(path, sess_options=so, providers=providers)
        except Exception as exc:
            raise RuntimeUnavailable(f"onnxruntime session failed: {one_line(exc)}") from exc

    def prepare(self, model, inputs, device):
        ort = _import_ort()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeUnavailable("onnxruntime here has no CUDAExecutionProvider (install onnxruntime-gpu)")
            providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
            import numpy as np

            for t in inputs:  # an input the binding cannot take fails here, before the export
                _np_dtype(t.dtype, np)
        tmp = tempfile.mkdtemp(prefix="scaleprof-onnx-")
        try:
            t0 = time.perf_counter()
            path, exporter = export_onnx(model, inputs, os.path.join(tmp, "model.onnx"), self.exporter)
            export_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            sess = self.session(path, providers)
            session_s = time.perf_counter() - t1
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        names = [i.name for i in sess.get_inputs()]
        if len(names) != len(inputs):
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeUnavailable(f"exported graph takes {len(names)} inputs, the model was given {len(inputs)}")
        info = {"exporter": exporter, "providers": sess.get_providers(), "export_s": export_s,
                "session_s": session_s, "intra_op_threads": sess.get_session_options().intra_op_num_threads,
                "inter_op_threads": sess.get_session_options().inter_op_num_threads,
                # as the session holds it, read back: what ran, not what was asked
                "graph_optimization_level": _ort_level_name(ort, sess.get_session_options().graph_optimization_level)}
        if device.type == "cuda":
            call = iobinding_call(sess, names, inputs, device)
        else:
            feed = {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True)}
            call = lambda: sess.run(None, feed)  # noqa: E731
        return Prepared(call=call, setup_s=export_s + session_s, info=info, onnx_path=path,
                        cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool_"}


def _import_ort():
    try:
        import onnxruntime as ort
    except Exception as exc:
        raise RuntimeUnavailable(f"onnxruntime does not import: {one_line(exc)}") from exc
    return ort


def iobinding_call(sess, names, inputs, device):
    """Bind the inputs where they live and the outputs on the same device, so each run times the model,
    not host-device copies. Used on CUDA; it takes CPU tensors too, which is how it is tested without a GPU."""
    import numpy as np

    kind, index = device.type, device.index or 0
    binding = sess.io_binding()
    # ONNX Runtime keeps raw pointers: the (contiguous) tensors must live as long as the callable.
    held = [t.contiguous() for t in inputs]
    for n, t in zip(names, held, strict=True):
        binding.bind_input(name=n, device_type=kind, device_id=index, element_type=_np_dtype(t.dtype, np),
                           shape=tuple(t.shape), buffer_ptr=t.data_ptr())
    binding.synchronize_inputs()  # torch wrote the inputs on its own stream
    for o in sess.get_outputs():
        binding.bind_output(o.name, kind, index)

    def call(held=held):
        sess.run_with_iobinding(binding)
        # The CUDA provider runs on its own stream: the timed call ends when its outputs are written.
        binding.synchronize_outputs()
        return binding

    return call


def _np_dtype(dtype: torch.dtype, np):
    known = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64,
             torch.int64: np.int64, torch.int32: np.int32, torch.bool: np.bool_}
    if dtype not in known:
        # numpy has no type of the same width (bfloat16): binding the buffer as another type would misread it
        raise RuntimeUnavailable(f"onnxruntime cannot bind {dtype_name(dtype)} inputs on the device (numpy has no such type)")
    return known[dtype]


def _ort_level(ort, name: str):
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    try:
        return levels[name]
    except KeyError:
        raise RuntimeUnavailable(f"unknown ONNX Runtime optimization level {name!r}; "
                                 f"use one of {', '.join(ORT_OPT_LEVELS)}") from None


def _ort_level_name(ort, level) -> str:
    return next(n for n in ORT_OPT_LEVELS if _ort_level(ort, n) == level)


# Called as hook(path, inputs) after every successful export (`bench --keep-onnx` copies the file).
EXPORT_HOOKS: list[Callable[[str, list[torch.Tensor]], None]] = []


def export_onnx(model: nn.Module, inputs: list[torch.Tensor], path: str, exporter: str = "auto",
                **options) -> tuple[str, str]:
    """Export to `path`; returns (path, exporter used). `options` go to torch.onnx.export (opset_version,
    dynamic_axes, ...). Exporter chatter on stdout is captured, so a `--json` stdout stays clean."""
    order = {"auto": ("dynamo", "torchscript"), "dynamo": ("dynamo",), "torchscript": ("torchscript",)}[exporter]
    reasons = []
    for name in order:
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, tuple(inputs), path, dynamo=(name == "dynamo"), verbose=False, **options)
            for hook in EXPORT_HOOKS:
                hook(path, inputs)
            return path, name
        except Exception as exc:
            reasons.append(f"{name}: {one_line(exc)}")
    raise RuntimeUnavailable("ONNX export failed (" + "; ".join(reasons) + ")")


def get_runtime(name: str, *, threads: int | None = None) -> Runtime:
    """`eager`, `compile`, `compile:MODE`, `onnxruntime` (also `ort`), `onnxruntime:LEVEL` or `web`."""
    base, _, arg = name.strip().partition(":")
    base = base.lower()
    if base == "eager" and not arg:
        return Eager()
    if base == "compile":
        return Compile(arg or "default")
    if base in ("onnxruntime", "ort"):
        level = arg.lower() or "all"
        if level not in ORT_OPT_LEVELS:
            raise ScaleprofError(f"unknown ONNX Runtime optimization level {arg!r} in {name!r}; "
                                 f"use onnxruntime:{{{','.join(ORT_OPT_LEVELS)}}}")
        return OnnxRuntime(intra_op_threads=threads, opt_level=level)
    if base == "web" and not arg:
        from .web import Web

        return Web(threads=threads)
    raise ScaleprofError(f"unknown runtime {name!r}; use eager, compile[:MODE], onnxruntime[:LEVEL] or web")
