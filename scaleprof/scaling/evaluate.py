"""The units of work an executor runs: top-level functions of plain dicts, so a process pool (spawn) or Ray
can ship them. A failure inside one candidate becomes a record with status "failed" and the reason; it
never stops the search.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ..errors import one_line


def _threads(task: dict):
    """Torch threads for the task, restored afterwards (the local executor runs in the caller's process)."""
    from ..bench.env import torch_threads

    return torch_threads(task.get("threads") or None)


_COUNTS: dict[str, dict] = {}   # per process: arch_hash -> its count (an architecture is counted once)
_MAX_COUNTS = 100_000
# per process, for families with layouts (Family.layout_key): the last few module trees built, with their
# module_text and cost units (blockcount), so a layout counted at several resolutions is built and walked once
_MODELS: OrderedDict = OrderedDict()
_MAX_MODELS = 4


def count(family, width=None, depth=None, resolution=None, *, layout_key=None) -> dict:
    """Build the family at these knobs on meta tensors, name the architecture, count it (once per process).

    None keeps the base's knob (the base itself: ``count(family)``). Returns {arch, input, macs, flops,
    params, activations}; a build or count error propagates. A family with layouts reuses the module tree
    of an equal layout key built just before (equal keys build equal models). An EfficientNet is counted as
    the sum of its blocks, each block costed once per input (blockcount: exact), and is not built at all:
    its text and blocks come from blockcount.assemble; other models are built and counted whole.
    ``layout_key``: ``family.layout_key(width, depth, resolution)`` where the caller has it already.
    """
    import torch

    from ..counting import profile
    from . import blockcount
    from .family import arch_digest, module_text

    res = family.base_knobs.get("resolution") if resolution is None else resolution
    key = family.layout_key(width, depth, resolution) if layout_key is None else layout_key
    memo = None if key is None else (key, torch.get_default_dtype())   # dtypes are part of arch_hash
    if memo is not None and memo in _MODELS:
        _MODELS.move_to_end(memo)
        entry = _MODELS[memo]
    else:
        # the model (None: not built), its module_text, its cost units (False: not looked for yet), the digest
        # per input shape (hashing the text is a good part of a candidate's cost once its blocks are costed)
        parts = None if key is None else blockcount.assembled(family, width, depth, resolution)
        if parts is not None:     # an EfficientNet: its text and units from its distinct blocks, not built
            entry = [None, parts[0], parts[1], {}]
        else:
            model = family.build(width, depth, resolution, device="meta")
            entry = [model, module_text(model), False, {}]
        if memo is not None:
            _MODELS[memo] = entry
            if len(_MODELS) > _MAX_MODELS:
                _MODELS.popitem(last=False)
    model, text = entry[0], entry[1]
    shape = family.input_shape(model, res)
    arch = entry[3].get(shape)
    if arch is None:
        arch = entry[3][shape] = arch_digest(text, shape)
    totals = _COUNTS.get(arch)
    if totals is None:
        if entry[2] is False:
            entry[2] = blockcount.units_of(model)
        totals = None if entry[2] is None else blockcount.count_units(entry[2], shape)
        if totals is None:
            if model is None:
                model = entry[0] = family.build(width, depth, resolution, device="meta")
            t = profile(model, [shape], device="meta", quiet=True).totals
            totals = {f: getattr(t, f) for f in blockcount.FIELDS}
        if len(_COUNTS) >= _MAX_COUNTS:
            _COUNTS.clear()
        _COUNTS[arch] = totals
    return {"arch": arch, "input": "x".join(map(str, shape)), **totals}


def cost_group(task: dict) -> list[dict]:
    """Count each candidate of the group (``count``: each architecture once).

    task: {"family": Family, "candidates": [Candidate.to_dict(), ...], "threads": int | None,
           "layout_key": the candidates' common ``family.layout_key`` (optional)}
    Returns one record per candidate: the candidate's fields plus arch, input, macs, flops, params,
    activations, status, reason, seconds.
    """
    with _threads(task):
        return _cost_group(task)


def _cost_group(task) -> list[dict]:
    family = task["family"]
    out = []
    for c in task["candidates"]:
        t0 = time.perf_counter()
        rec = dict(c)
        try:
            rec.update(count(family, c["width"], c["depth"], c["resolution"], layout_key=task.get("layout_key")),
                       status="ok", reason=None)
        except Exception as exc:  # a build error or out of memory: record it, go on
            rec.update(arch=None, status="failed", reason=one_line(exc))
        rec["seconds"] = round(time.perf_counter() - t0, 4)
        out.append(rec)
    return out


def objective_task(task: dict) -> dict:
    """Run one objective on one architecture (objectives.REGISTRY: train, proxy, a user's scorer, latency).

    task: {"family", "candidate" (dict), "objective" (name), "options" (an ObjectiveOptions or its
    to_config dict), "threads", "state" (the objective's setup, for one run in this process; optional)}
    Returns {"objective", "arch", "key", "status", "reason", "metrics": {...}, "seconds"}.
    """
    with _threads(task):
        return _objective(task)


def _objective(task: dict) -> dict:
    name = task["objective"]
    c = task["candidate"]
    t0 = time.perf_counter()
    out = {"objective": name, "arch": c.get("arch"), "key": c.get("key")}
    try:
        from .objectives import make_objective
        from .options import ObjectiveOptions

        options = task.get("options")
        if not isinstance(options, ObjectiveOptions):
            options = ObjectiveOptions.from_config(options)
        metrics = make_objective(name).run(task["family"], c, options, task.get("state"))
        out.update(status="ok", reason=None, metrics=metrics)
    except Exception as exc:
        out.update(status="failed", reason=one_line(exc), metrics={})
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out
