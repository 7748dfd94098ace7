"""What the gate counts and times: the model's cost on meta tensors, and its latency either against stored
samples (only when the environment fingerprint matches: timings from another machine, library version or
thread setting are not comparable) or against a reference model in shuffled interleaved rounds."""

from __future__ import annotations

from ..errors import ScaleprofError
from ..spec import spec_label
from .result import CheckRow
from .rules import DEFAULT_ALPHA, DEFAULT_THRESHOLD, latency_row

DEFAULT_MAX_TIME = 20.0


def count(spec, inputs=None, dtype=None, knobs=None):
    """scaleprof's cost of the model (a module or a spec) on meta tensors (nothing allocated)."""
    from ..counting import profile

    return profile(spec, inputs, device="meta", dtype=dtype, knobs=knobs or None)


def _bench_latency(spec, inputs, *, runtime, device, dtype, max_time, knobs):
    from ..bench import bench

    r = bench(spec, inputs=inputs, runtimes=runtime, device=device, dtype=dtype or "float32", max_time=max_time,
              samples=True, memory=False, knobs=knobs)
    row = r.results[0]
    if row.status != "ok" or not row.samples_ms:
        raise ScaleprofError(f"latency measurement failed: {row.reason or 'no samples'}")
    return r, row


def measure_latency(spec, inputs=None, *, runtime="eager", device="cpu", dtype=None, max_time=DEFAULT_MAX_TIME,
                    knobs=None) -> dict:
    """The latency record a baseline keeps: samples, medians and the environment fingerprint."""
    r, row = _bench_latency(spec, inputs, runtime=runtime, device=device, dtype=dtype, max_time=max_time,
                            knobs=knobs)
    return {"runtime": row.runtime, "device": row.device, "dtype": row.dtype, "inputs": r.inputs,
            "batch_size": row.batch_size, "max_time": max_time, "median_ms": row.median_ms, "ci95_ms": row.ci95_ms,
            "samples_ms": list(row.samples_ms), "env": r.env}


def _env_guard(stored: dict, current: dict, ignore=()) -> None:
    from ..bench.env import differences

    diffs = [d for d in differences(stored, current) if d.split(":", 1)[0] not in ignore]
    if diffs:
        raise ScaleprofError("stored latency samples come from a different environment, so they cannot be "
                             "compared (" + "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "")
                             + "): re-save the baseline here or use --against SPEC")


def stored_latency_row(spec, lat: dict, *, knobs=None, threshold=DEFAULT_THRESHOLD, alpha=DEFAULT_ALPHA,
                       max_time=None) -> tuple[CheckRow, dict]:
    """The latency row against the baseline's samples, and the latency record measured for it (which a
    baseline saved in the same run can keep instead of measuring again)."""
    from ..bench.env import environment

    device = lat.get("device", "cpu")
    dtype = lat.get("dtype", "float32")
    # refuse before spending time measuring: the fields that do not depend on the runtime must match now
    _env_guard(lat["env"], environment(dtype=dtype, devices=[device]), ignore=("compile_mode", "ort_threads"))
    runtime = lat.get("runtime", "eager")
    now = measure_latency(spec, lat.get("inputs"), runtime=runtime, device=device, dtype=dtype,
                          max_time=max_time or lat.get("max_time") or DEFAULT_MAX_TIME, knobs=knobs)
    _env_guard(lat["env"], now["env"])
    row = latency_row(lat["samples_ms"], now["samples_ms"], threshold=threshold, alpha=alpha,
                      note=f"stored samples ({len(lat['samples_ms'])}) vs now ({len(now['samples_ms'])}), {runtime} "
                           f"on {device}; regression when Mann-Whitney p < {alpha:g} and ratio > "
                           f"{1 + threshold:.3g}")
    return row, now


def against_latency_row(spec, against, inputs, *, knobs=None, runtime="eager", device="cpu", dtype=None,
                        max_time=DEFAULT_MAX_TIME, threshold=DEFAULT_THRESHOLD, alpha=DEFAULT_ALPHA) -> CheckRow:
    from ..bench.compare import compare

    c = compare(against, spec, inputs, device=device, dtype=dtype or "float32", runtime=runtime, max_time=max_time,
                knobs_b=knobs, samples=True)
    return latency_row(c.a.samples_ms, c.b.samples_ms, ratio=c.ratio, p=c.p_value, threshold=threshold, alpha=alpha,
                       note=f"{c.rounds} interleaved rounds against {spec_label(against)} (paired ratio "
                            f"{c.ratio:.3f}, 95% CI {c.ratio_ci95[0]:.3f}-{c.ratio_ci95[1]:.3f}); regression when "
                            f"Mann-Whitney p < {alpha:g} and ratio > {1 + threshold:.3g}")


