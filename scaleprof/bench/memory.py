"""Peak memory of a run.

GPU: ``torch.cuda.max_memory_allocated`` (bytes held by tensors: weights, inputs, activations, workspaces
torch allocates) and ``max_memory_reserved`` (what the caching allocator took from the driver, tensors plus
its cache), both after resetting the peak counters, over a few calls.

CPU: the peak resident set of a *fresh* subprocess that loads the model and runs it (``ru_maxrss``, or
on Linux ``VmHWM``, see `maxrss_bytes`), minus
the peak of the same subprocess doing an import-only run (the interpreter, torch and the runtime's
libraries). Measuring in-process would be meaningless: this process's peak already includes every model
it built before. Both raw figures are reported beside the difference.

For ONNX Runtime the child loads the already-exported .onnx file and runs a session, without torch or the
exporter, so the figure is ONNX Runtime's, not the export's. For torch.compile the child compiles again, so
its peak includes compilation.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch

from ..spec import is_zoo_spec

CHILD_TIMEOUT_S = 900
CHILD_ITERS = 3


@dataclass
class MemoryResult:
    peak_bytes: int | None               # the figure for `peak_memory_bytes`
    method: str                          # cuda-allocator | subprocess-rss | none
    tensors_bytes: int | None = None     # GPU: max_memory_allocated
    allocator_bytes: int | None = None   # GPU: max_memory_reserved
    rss_run_bytes: int | None = None     # CPU: child's peak RSS, model loaded and run
    rss_baseline_bytes: int | None = None  # CPU: child's peak RSS, imports only
    reason: str | None = None            # why there is no figure

    def to_dict(self) -> dict:
        return asdict(self)


def gpu_peak(call, device: torch.device, iters: int = CHILD_ITERS) -> MemoryResult:
    """Peak of `iters` calls, on the current process's allocator (weights already resident count)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(iters):
        call()
    torch.cuda.synchronize(device)
    tensors = int(torch.cuda.max_memory_allocated(device))
    reserved = int(torch.cuda.max_memory_reserved(device))
    return MemoryResult(peak_bytes=tensors, method="cuda-allocator", tensors_bytes=tensors,
                        allocator_bytes=reserved)


def maxrss_bytes() -> int:
    """This process's peak resident set.

    On Linux ``ru_maxrss`` carries over fork and exec: a child started from a 500 MB parent reports at
    least 500 MB whatever it does. ``VmHWM`` in /proc/self/status is the high-water mark of the child's own
    address space (fresh at exec), so it is read first; ``ru_maxrss`` is the fallback elsewhere.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)  # Linux reports KiB


def cpu_peak(job: dict, *, baseline_cache: dict | None = None) -> MemoryResult:
    """Run `job` (see `_child_run`) and its import-only baseline in fresh subprocesses."""
    try:
        run = _spawn({**job, "mode": "run"})
        # The baseline imports what the run imports: it depends on the kind of run, not on the model.
        key = (job["runtime"].partition(":")[0], job["threads"], job["zoo"],
               job.get("onnx_path") is not None)
        if baseline_cache is not None and key in baseline_cache:
            base = baseline_cache[key]
        else:
            base = _spawn({**job, "mode": "baseline"})
            if baseline_cache is not None:
                baseline_cache[key] = base
    except _ChildFailed as exc:
        return MemoryResult(peak_bytes=None, method="subprocess-rss", reason=str(exc))
    return MemoryResult(peak_bytes=max(0, run - base), method="subprocess-rss", rss_run_bytes=run,
                        rss_baseline_bytes=base)


class _ChildFailed(Exception):
    pass


def _spawn(job: dict) -> int:
    with tempfile.TemporaryDirectory(prefix="scaleprof-mem-") as tmp:
        job_path = os.path.join(tmp, "job.json")
        out_path = os.path.join(tmp, "out.json")
        with open(job_path, "w") as fh:
            json.dump(job, fh)
        env = dict(os.environ)
        # The child must import what this process imports (a test's or a user's module classes).
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
        try:
            proc = subprocess.run([sys.executable, "-m", "scaleprof.bench.memory", job_path, out_path],
                                  env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise _ChildFailed(f"memory subprocess timed out after {CHILD_TIMEOUT_S} s") from None
        if proc.returncode != 0 or not os.path.exists(out_path):
            lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise _ChildFailed(f"memory subprocess failed: {last[:200]}")
        with open(out_path) as fh:
            return int(json.load(fh)["maxrss_bytes"])


def make_job(*, spec, model_path: str | None, knobs: dict, inputs: list[str], runtime: str, dtype: str,
             threads: int, train: bool = False, onnx_path: str | None = None, ort_options: dict | None = None,
             optimizer: str = "sgd") -> dict:
    return {"spec": spec, "model_path": model_path, "knobs": knobs, "inputs": inputs, "runtime": runtime,
            "dtype": dtype, "threads": threads, "train": train, "onnx_path": onnx_path,
            "ort_options": ort_options or {}, "optimizer": optimizer, "iters": CHILD_ITERS,
            "zoo": isinstance(spec, str) and is_zoo_spec(spec)}


# --- the child ---------------------------------------------------------------------------------------------

def _child_run(job: dict) -> int:
    torch.set_num_threads(int(job["threads"]))
    if job.get("onnx_path"):
        return _child_ort(job)
    from ..shapes import parse_dtype, parse_input
    from ..spec import load_model
    from . import prepare

    if job["mode"] == "baseline":
        from . import runtimes, train  # noqa: F401 (imports are the baseline)

        if job["runtime"].startswith("compile"):
            import importlib

            importlib.import_module("torch._dynamo")
            importlib.import_module("torch._inductor.compile_fx")

        if job.get("zoo"):
            from .. import zoo  # noqa: F401
        return maxrss_bytes()
    if job.get("model_path"):
        model = torch.load(job["model_path"], weights_only=False)
    else:
        model = load_model(job["spec"], device="cpu", **(job.get("knobs") or {}))
    dev = torch.device("cpu")
    model = prepare.place(model, dev, job["dtype"])
    specs = [parse_input(s) for s in job["inputs"]]
    xs = prepare.make_inputs(specs, dev, parse_dtype(job["dtype"]))
    if job.get("train"):
        from .train import TrainStep

        step = TrainStep(model, xs, optimizer=job.get("optimizer", "sgd"))
        for _ in range(int(job["iters"])):
            step.run()
        return maxrss_bytes()
    from .runtimes import get_runtime

    model.eval()
    prepared = get_runtime(job["runtime"], threads=int(job["threads"])).prepare(model, xs, dev)
    try:
        with prepared.context():
            for _ in range(int(job["iters"]) + 1):
                prepared.call()
    finally:
        prepared.close()
    return maxrss_bytes()


def _child_ort(job: dict) -> int:
    import numpy as np
    import onnxruntime as ort

    if job["mode"] == "baseline":
        return maxrss_bytes()
    opts = job.get("ort_options") or {}
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(opts.get("intra_op_threads") or job["threads"])
    so.inter_op_num_threads = int(opts.get("inter_op_threads") or 1)
    so.log_severity_level = 3
    from .runtimes import _ort_level

    so.graph_optimization_level = _ort_level(ort, opts.get("graph_optimization_level", "all"))
    sess = ort.InferenceSession(job["onnx_path"], sess_options=so, providers=["CPUExecutionProvider"])
    feed = {}
    rng = np.random.default_rng(0)
    for meta in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in meta.shape]
        np_type = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                   "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}.get(meta.type)
        if np_type is None:
            raise RuntimeError(f"input type {meta.type} not handled")
        feed[meta.name] = (rng.standard_normal(shape).astype(np_type) if np.issubdtype(np_type, np.floating)
                           else np.zeros(shape, dtype=np_type))
    for _ in range(int(job["iters"]) + 1):
        sess.run(None, feed)
    return maxrss_bytes()


def _main(argv: list[str]) -> int:
    job_path, out_path = argv
    with open(job_path) as fh:
        job = json.load(fh)
    rss = _child_run(job)
    with open(out_path, "w") as fh:
        json.dump({"maxrss_bytes": rss}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
