"""The environment a timing was taken in, recorded with every result.

A latency means little without the machine, the library versions and the thread settings behind it, so
every result carries this fingerprint; `fingerprint_hash` hashes the fields that change timings, and
`differences` names them when two results are compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform

import torch

from ..errors import ScaleprofError

# Fields that do not change timings and stay out of the hash.
_UNHASHED = frozenset({"fingerprint", "hostname", "load"})
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_DYNAMIC", "KMP_AFFINITY",
                "OMP_PROC_BIND", "GOMP_CPU_AFFINITY")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _version(mod: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for dist in (mod, f"{mod}-gpu"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def gpu_name(device: str | torch.device | None = None) -> str | None:
    if not torch.cuda.is_available():
        return None
    dev = torch.device(device) if device is not None and str(device).startswith("cuda") else torch.device("cuda")
    return torch.cuda.get_device_name(dev)


def environment(*, dtype: str = "float32", compile_mode: str | None = None, devices=("cpu",),
                ort_threads: dict | None = None, **runtime_fields) -> dict:
    """The fingerprint: a flat dict of strings and numbers, plus `fingerprint` (a stable hash).
    ``runtime_fields``: what a runtime adds of its own (the web runtime's browser and onnxruntime-web),
    present only where that runtime ran."""
    cuda = any(str(d).startswith("cuda") for d in devices)
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime"),
        "numpy": _version("numpy"),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ},
        "mkl": bool(torch.backends.mkl.is_available()),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "ort_threads": ort_threads,
        "gpu": gpu_name(next((d for d in devices if str(d).startswith("cuda")), None)) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": (torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None),
        "dtype": dtype,
        "compile_mode": compile_mode,
        "devices": [str(d) for d in devices],
        "allocator": allocator_policy(),
        "hostname": platform.node(),
        # other processes' demand when the run started: on a busy machine threads wait for cores
        "load": load_average(),
    }
    env.update(runtime_fields)
    env["fingerprint"] = fingerprint_hash(env)
    return env


# glibc's malloc serves blocks over its mmap threshold (128 KiB at first, rising with what is freed) by mmap
# and gives the heap's free top back to the OS past its trim threshold: so whether a call page-faults on its
# own outputs depends on the process's history. Measured here: a depthwise conv alone 2.1-2.8 ms with ~850
# page faults a call, 0.22-0.32 ms without; EfficientNet-B0 whole 52 ms (16 ms of it in the kernel) in one
# round, 24 ms in the next. Timings here are of the allocator's steady state (what a long-running process,
# or jemalloc/tcmalloc, gives): blocks up to 32 MiB (glibc's ceiling) from the heap, the heap never trimmed.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_CEILING = 32 << 20
_STEADY = "glibc malloc: mmap over 32 MiB, no trim"
_applied: list[bool] = []


def allocator_policy() -> str | None:
    """The allocator policy timings in this process use (``steady_allocator``): None where the C library
    is not glibc or ``SCALEPROF_MALLOC=as-is`` keeps the process's own."""
    if os.environ.get("SCALEPROF_MALLOC", "steady") == "as-is" or platform.libc_ver()[0] != "glibc":
        return None
    return _STEADY


def steady_allocator() -> None:
    """Put glibc's malloc in its steady state before timing (once per process: mallopt has no undo; the
    cost is memory freed but kept by the process, up to its peak)."""
    if _applied or allocator_policy() is None:
        return
    import ctypes

    _applied.append(True)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_CEILING)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


def load_average() -> float | None:
    """The 1-minute load average (a quiet machine reads below its cores), None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def fingerprint_hash(env: dict) -> str:
    stable = {k: v for k, v in env.items() if k not in _UNHASHED}
    blob = json.dumps(stable, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def summary(env: dict, code: bool = False) -> str:
    """The environment in one line: CPU (and GPU), cores and torch threads, versions, fingerprint (in
    backticks with ``code``, for Markdown)."""
    parts = [env.get("cpu") or "unknown CPU"]
    if env.get("gpu"):
        parts.append(f"GPU {env['gpu']}")
    parts.append(f"{env.get('cores', '?')} cores, {env.get('threads', '?')} torch threads")
    parts.append(f"torch {env.get('torch', '?')}, Python {env.get('python', '?')}")
    if env.get("onnxruntime"):
        parts.append(f"onnxruntime {env['onnxruntime']}")
    fp = env.get("fingerprint", "?")
    return "; ".join(parts) + (f" (fingerprint `{fp}`)" if code else f" (fingerprint {fp})")


def differences(a: dict, b: dict) -> list[str]:
    """Fields (other than the hash) whose values differ: `threads: 2 != 4`."""
    out = []
    for k in sorted(set(a) | set(b)):
        if k in _UNHASHED:
            continue
        if a.get(k) != b.get(k):
            out.append(f"{k}: {a.get(k)!r} != {b.get(k)!r}")
    return out


def same_environment(a: dict, b: dict) -> bool:
    return fingerprint_hash(a) == fingerprint_hash(b)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's intra-op threads set to `n` for the block (None: left as they are), restored after."""
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
