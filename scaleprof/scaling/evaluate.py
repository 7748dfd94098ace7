"""The units of work an executor runs: top-level functions of plain dicts, so a process pool (spawn) or Ray
can ship them. A failure inside one candidate becomes a record with status "failed" and the reason; it
never stops the search.
"""

from __future__ import annotations

import time

from ..errors import one_line


def _threads(task: dict):
    """Torch threads for the task, restored afterwards (the local executor runs in the caller's process)."""
    from ..bench.runner import torch_threads

    return torch_threads(task.get("threads") or None)


def cost_group(task: dict) -> list[dict]:
    """Build each candidate of the group on meta tensors, name its architecture, count it once per name.

    task: {"family": Family, "candidates": [Candidate.to_dict(), ...], "threads": int | None}
    Returns one record per candidate: the candidate's fields plus arch, input, macs, flops, params,
    activations, status, reason, seconds.
    """
    import scaleprof

    from .family import arch_hash

    with _threads(task):
        return _cost_group(task, scaleprof, arch_hash)


def _cost_group(task, scaleprof, arch_hash) -> list[dict]:
    family = task["family"]
    seen: dict[str, dict] = {}
    out = []
    for c in task["candidates"]:
        t0 = time.perf_counter()
        rec = dict(c)
        try:
            model = family.build(c["width"], c["depth"], c["resolution"], device="meta")
            shape = family.input_shape(model, c["resolution"])
            arch = arch_hash(model, shape)
            if arch not in seen:
                r = scaleprof.profile(model, [shape], device="meta", quiet=True)
                t = r.totals
                seen[arch] = {"macs": t.macs, "flops": t.flops, "params": t.params, "activations": t.activations}
            rec.update(seen[arch], arch=arch, input="x".join(map(str, shape)), status="ok", reason=None)
        except Exception as exc:  # a build error or out of memory: record it, go on
            rec.update(arch=None, status="failed", reason=one_line(exc))
        rec["seconds"] = round(time.perf_counter() - t0, 4)
        out.append(rec)
    return out


def objective_task(task: dict) -> dict:
    """Run one objective (train, proxy or a user's python scorer) on one architecture.

    task: {"family", "candidate" (dict), "objective" (name), "options" (dict), "threads"}
    Returns {"objective", "arch", "status", "reason", "metrics": {...}, "seconds"}.
    """
    with _threads(task):
        return _objective(task)


def _objective(task: dict) -> dict:
    name = task["objective"]
    c = task["candidate"]
    t0 = time.perf_counter()
    out = {"objective": name, "arch": c.get("arch"), "key": c.get("key")}
    try:
        from . import objectives

        metrics = objectives.run_objective(name, task["family"], c, task.get("options") or {})
        out.update(status="ok", reason=None, metrics=metrics)
    except Exception as exc:
        out.update(status="failed", reason=one_line(exc), metrics={})
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def ping(_task=None) -> str:
    """Used by tests and the executor's start-up check."""
    return "ok"
