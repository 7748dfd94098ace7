"""Peak memory of a run.

GPU: ``torch.cuda.max_memory_allocated`` (bytes held by tensors: weights, inputs, activations, workspaces
torch allocates) and ``max_memory_reserved`` (what the caching allocator took from the driver, tensors plus
its cache), both after resetting the peak counters, over a few calls.

CPU: the peak resident set of a *fresh* subprocess that loads the model and runs it (``ru_maxrss``, or
on Linux ``VmHWM``, see `maxrss_bytes`), minus
the peak of the same subprocess doing an import-only run (the interpreter, torch and the runtime's
libraries). Measuring in-process would be meaningless: this process's peak already includes every model
it built before. Both raw figures are reported beside the difference.

Which of these a row gets is the runtime's to say (`Runtime.memory_plan`), and so is how the child rebuilds
it (`Runtime.child_job` / `from_child_job` / `run_in_child`): for ONNX Runtime the child loads the
already-exported .onnx file and runs a session, without the exporter, so the figure is ONNX Runtime's, not the
export's; for torch.compile the child would compile again (minutes for a large model), so bench measures a
compiled row's CPU memory only when asked (`--compile-memory`; its peak then includes compilation) and
otherwise says why the row has no figure; on CUDA the allocator's peak is read in process, no recompilation.
In-process RSS was not chosen: this process's high-water mark already holds every model it built before.

The same child also reads its own baseline, after its imports and before the model and inputs exist
(`baseline_rss_bytes`; a training child first makes and steps its optimizer on a one-element parameter, since
torch's optimizers import torch._dynamo and sympy on first use, about 70 MiB that is not the model's), and
from it `peak_above_baseline_bytes` (its peak RSS above that) and `library_pages_bytes` (the file-backed pages
the run faulted in: the code of the kernels it ran, 20-30 MiB, not the model's tensors). Their difference,
`model_peak_bytes`, is what the step's tensors cost, weights included: the figure `profile --memory`'s
estimate is compared against. A training child runs with glibc's mmap threshold fixed at 128 KiB
(``MALLOC_MMAP_THRESHOLD_``, named in ``malloc``): by default glibc raises the threshold as large blocks are
freed and then keeps later tensors' freed memory in its heap, so the peak RSS of a step held 32 MiB
(mobilenet_v3_small) to 166 MiB (mobilenet_v2) of freed memory on five zoo models at batch 8, an amount that
depends on the order of frees, not on what is live; with the
threshold fixed a tensor's pages are resident while it lives, like the GPU's max_memory_allocated.

The child gets the model as its spec and knobs when it has them, else as a recipe and a weights-only tensor
file (bench.recipe); nothing is unpickled. A module that cannot be described so gets no figure, with the reason.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..shapes import dtype_name
from ..spec import is_zoo_spec
from . import recipe

CHILD_TIMEOUT_S = 900
CHILD_ITERS = 3
# glibc's M_MMAP_THRESHOLD (its default start) for a training child: see the module's docstring
TRAIN_MMAP_THRESHOLD = 128 * 1024


@dataclass
class MemoryResult:
    peak_bytes: int | None               # the figure for `peak_memory_bytes`
    method: str                          # cuda-allocator | subprocess-rss | none
    tensors_bytes: int | None = None     # GPU: max_memory_allocated
    allocator_bytes: int | None = None   # GPU: max_memory_reserved
    rss_run_bytes: int | None = None     # CPU: child's peak RSS, model loaded and run
    rss_baseline_bytes: int | None = None  # CPU: child's peak RSS, imports only
    reason: str | None = None            # why there is no figure
    baseline_rss_bytes: int | None = None  # CPU: the run child's RSS after its imports, before the model
    peak_above_baseline_bytes: int | None = None  # CPU: rss_run_bytes - baseline_rss_bytes
    library_pages_bytes: int | None = None  # CPU: file-backed pages (kernels' code) the run faulted in
    model_peak_bytes: int | None = None  # CPU: peak_above_baseline_bytes - library_pages_bytes
    malloc: str | None = None            # CPU: the child's allocator setting, when not glibc's default

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


def _status(*fields: str) -> dict[str, int]:
    """Fields of /proc/self/status in bytes ({} where there is none)."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in fields:
                    out[key] = int(value.split()[0]) * 1024  # kB
    except OSError:
        pass
    return out


def maxrss_bytes() -> int:
    """This process's peak resident set.

    On Linux ``ru_maxrss`` carries over fork and exec: a child started from a 500 MB parent reports at
    least 500 MB whatever it does. ``VmHWM`` in /proc/self/status is the high-water mark of the child's own
    address space (fresh at exec), so it is read first; ``ru_maxrss`` is the fallback elsewhere.
    """
    hwm = _status("VmHWM").get("VmHWM")
    if hwm is not None:
        return hwm
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)  # Linux reports KiB


def cpu_peak(job: dict, *, baseline_cache: dict | None = None) -> MemoryResult:
    """Run `job` (see `make_job`) and its import-only baseline in fresh subprocesses."""
    try:
        run = _spawn({**job, "mode": "run"})
        # The baseline imports what the run imports: it depends on the kind of run, not on the model.
        rt = job["runtime"]
        key = (rt["runtime"].partition(":")[0], job["threads"], job["zoo"], job.get("hf", False),
               rt.get("needs_model", True), job.get("train", False) and job.get("optimizer"))
        if baseline_cache is not None and key in baseline_cache:
            base = baseline_cache[key]
        else:
            base = _spawn({**job, "mode": "baseline"})
            if baseline_cache is not None:
                baseline_cache[key] = base
    except _ChildFailed as exc:
        return MemoryResult(peak_bytes=None, method="subprocess-rss", reason=str(exc))
    return result_of(run, base, job.get("mmap_threshold"))


def result_of(run: dict, base: dict, mmap_threshold: int | None = None) -> MemoryResult:
    """The row's figures from the run child's and the baseline child's reports (`_child_run`)."""
    peak = run["maxrss_bytes"]
    r = MemoryResult(peak_bytes=max(0, peak - base["maxrss_bytes"]), method="subprocess-rss", rss_run_bytes=peak,
                     rss_baseline_bytes=base["maxrss_bytes"],
                     malloc=f"MALLOC_MMAP_THRESHOLD_={mmap_threshold}" if mmap_threshold else None)
    if run.get("baseline_rss_bytes") is not None:
        r.baseline_rss_bytes = run["baseline_rss_bytes"]
        r.peak_above_baseline_bytes = max(0, peak - r.baseline_rss_bytes)
        r.library_pages_bytes = max(0, run["file_rss_bytes"] - run["baseline_file_rss_bytes"])
        r.model_peak_bytes = max(0, r.peak_above_baseline_bytes - r.library_pages_bytes)
    return r


class _ChildFailed(Exception):
    pass


def _spawn(job: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="scaleprof-mem-") as tmp:
        job_path = os.path.join(tmp, "job.json")
        out_path = os.path.join(tmp, "out.json")
        with open(job_path, "w") as fh:
            json.dump(job, fh)
        env = dict(os.environ)
        # The child must import what this process imports (a test's or a user's module classes).
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
        if job.get("mmap_threshold"):  # glibc reads it at start-up (see the module's docstring)
            env["MALLOC_MMAP_THRESHOLD_"] = str(job["mmap_threshold"])
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
            return json.load(fh)


def make_job(*, model: dict | None, runtime: dict, inputs: list[str], dtype: str, threads: int,
             train: bool = False, optimizer: str = "sgd") -> dict:
    """A child's job. `model`: ``{"spec", "knobs"}`` or ``{"recipe", "weights"}`` (see `ModelSource`), None
    when the runtime needs none; `runtime`: `Runtime.child_job`'s record."""
    spec = (model or {}).get("spec")
    return {"model": model, "runtime": runtime, "inputs": inputs, "dtype": dtype, "threads": threads,
            "train": train, "optimizer": optimizer, "iters": CHILD_ITERS,
            "mmap_threshold": TRAIN_MMAP_THRESHOLD if train else None,
            "zoo": isinstance(spec, str) and is_zoo_spec(spec),
            "hf": isinstance(spec, str) and spec.startswith("hf:")}


class ModelSource:
    """How the memory child gets the model: its spec and knobs when it came from one, else a recipe and a
    weights-only file written once and shared by every row (bench.recipe), else the reason it cannot."""

    def __init__(self, spec, model: nn.Module, knobs: dict | None):
        self.spec = spec if isinstance(spec, str) else None
        self.model, self.knobs = model, knobs or {}
        self._tmp: str | None = None
        self._shipped: dict | None = None
        self.reason: str | None = None

    def job(self) -> dict | None:
        """The job's ``model`` record, or None with `reason` set."""
        if self.spec is not None:
            return {"spec": self.spec, "knobs": self.knobs}
        if self._shipped is None and self.reason is None:
            self._tmp = tempfile.mkdtemp(prefix="scaleprof-model-")
            path = os.path.join(self._tmp, "weights.pt")
            try:
                self._shipped = {"recipe": recipe.save(self.model, path), "weights": path}
            except recipe.NotRebuildable as exc:
                self.reason = (f"the model cannot be rebuilt in the memory subprocess without pickling it: {exc}")
        return self._shipped

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class MemoryMeter:
    """Peak memory for every row of a bench, as each runtime says it is measured (`Runtime.memory_plan`),
    sharing the model's source and the import-only baselines between rows."""

    def __init__(self, spec, model: nn.Module, knobs: dict | None, enabled: bool):
        self.enabled = enabled
        self.source = ModelSource(spec, model, knobs)
        self._baselines: dict = {}

    def run(self, rt, prepared, dev: torch.device, dt: torch.dtype, specs) -> MemoryResult:
        plan = rt.memory_plan(dev)
        if plan.method == "none":
            return MemoryResult(peak_bytes=None, method="none", reason=plan.reason)
        if plan.method == "cuda-allocator":
            with prepared.context():
                return gpu_peak(prepared.call, dev)
        return self._child(rt.child_job(prepared), dt, specs, train=False)

    def train(self, step, dev: torch.device, dt: torch.dtype, specs, optimizer: str) -> MemoryResult:
        from .runtimes import Eager

        if Eager().memory_plan(dev).method == "cuda-allocator":
            return gpu_peak(step.run, dev)
        return self._child(Eager().child_job(None), dt, specs, train=True, optimizer=optimizer)

    def _child(self, runtime: dict, dt, specs, *, train: bool, optimizer: str = "sgd") -> MemoryResult:
        model = None
        if runtime.get("needs_model", True):
            model = self.source.job()
            if model is None:
                return MemoryResult(peak_bytes=None, method="subprocess-rss", reason=self.source.reason)
        job = make_job(model=model, runtime=runtime, inputs=[str(s) for s in specs], dtype=dtype_name(dt),
                       threads=torch.get_num_threads(), train=train, optimizer=optimizer)
        return cpu_peak(job, baseline_cache=self._baselines)

    def close(self) -> None:
        self.source.close()


# --- the child ---------------------------------------------------------------------------------------------

def _child_model(record: dict) -> nn.Module:
    if "recipe" in record:
        return recipe.load(record["recipe"], record["weights"])
    from ..spec import load_model

    return load_model(record["spec"], device="cpu", **(record.get("knobs") or {}))


def _warm_optimizer(name: str) -> None:
    """Make and step the optimizer on a one-element parameter: torch imports torch._dynamo and sympy on an
    optimizer's first use (about 70 MiB), which is not the model's memory."""
    from .train import make_optimizer

    p = nn.Parameter(torch.zeros(1))
    opt = make_optimizer(name, [p])
    p.grad = torch.zeros(1)
    opt.step()


def _child_imports(job: dict, rt, rt_job: dict) -> None:
    """What a run imports before it builds the model: the baseline."""
    import importlib

    for name in rt.baseline_imports:
        importlib.import_module(name)
    if rt_job.get("needs_model", True):
        from . import prepare, train  # noqa: F401
        if job.get("zoo"):
            from .. import zoo  # noqa: F401
        if job.get("hf"):  # an hf: spec's run imports transformers: not the model's memory
            from .. import hf

            hf._transformers()
    if job.get("train"):
        _warm_optimizer(job.get("optimizer", "sgd"))


def _child_run(job: dict) -> int:
    """The child's peak RSS (`_child_report`'s ``maxrss_bytes``)."""
    return _child_report(job)["maxrss_bytes"]


def _child_report(job: dict) -> dict:
    """The child's report: its peak RSS, and for a run its own baseline (RSS and file-backed RSS after the
    imports, before the model) and its file-backed RSS at the end."""
    from .runtimes import Runtime

    threads = int(job["threads"])
    torch.set_num_threads(threads)
    rt_job = job["runtime"]
    rt = Runtime.from_child_job(rt_job, threads)
    _child_imports(job, rt, rt_job)
    if job["mode"] == "baseline":
        return {"maxrss_bytes": maxrss_bytes()}
    base = _status("VmRSS", "RssFile")

    def build():
        from ..shapes import parse_dtype, parse_input
        from . import prepare

        dev = torch.device("cpu")
        model = prepare.place(_child_model(job["model"]), dev, job["dtype"])
        xs = prepare.make_inputs([parse_input(s) for s in job["inputs"]], dev, parse_dtype(job["dtype"]))
        return model, xs

    if job.get("train"):
        from .train import TrainStep

        step = TrainStep(*build(), optimizer=job.get("optimizer", "sgd"))
        for _ in range(int(job["iters"])):
            step.run()
    else:
        rt.run_in_child(rt_job, build, int(job["iters"]) + 1)
    report = {"maxrss_bytes": maxrss_bytes()}
    if "VmRSS" in base and "RssFile" in base:
        report.update(baseline_rss_bytes=base["VmRSS"], baseline_file_rss_bytes=base["RssFile"],
                      file_rss_bytes=_status("RssFile")["RssFile"])
    return report


def _main(argv: list[str]) -> int:
    job_path, out_path = argv
    with open(job_path) as fh:
        job = json.load(fh)
    report = _child_report(job)
    with open(out_path, "w") as fh:
        json.dump(report, fh)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
