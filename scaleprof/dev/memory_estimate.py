"""reports/memory-estimate: `profile --memory`'s training-step estimate against the measured peak on CPU.

For each zoo model at batch 8, float32, one thread, a training step with SGD (momentum) and with AdamW: the
estimate (counting/memory.py, on meta: each part and the peak) beside the memory child's measured peak
(bench/memory.py: the peak RSS above the child's own baseline, after imports and before the model, less the
kernels' code the run paged in, with glibc's mmap threshold fixed), their ratio and whether it is within
±10%. A model whose estimate is above `LIMIT_BYTES` is not run (the machine is shared), and says so.
Resumable: one data/MODEL-OPTIMIZER.json per row, written when it is done.

    python -m scaleprof.dev.memory_estimate --out reports [--only resnet18,vgg11] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..errors import one_line
from ..files import writable_dir
from ..report import sections
from ..report.document import Bullets, Document, Para, Table
from ..report.tables import binary_bytes
from ..report.writer import write_document
from .driver import Store, log

NAME = "memory-estimate"
BATCH = 8
OPTIMIZERS = ("adamw", "sgd")
OPT_NAMES = {"sgd": "SGD (momentum 0.9)", "adam": "Adam", "adamw": "AdamW"}
STEPS = 2   # the second step holds the optimizer's state through its forward and backward: its peak
LIMIT_BYTES = 12 << 30   # no model is run whose estimated peak is above this (24 GiB here, shared)
TOLERANCE = 0.10
PARTS = ("weights", "optimizer_state", "inputs", "activations_saved", "backward_scratch", "gradients",
         "optimizer_scratch")


def measure_one(model: str, optimizer: str, baselines: dict | None = None) -> dict:
    """The estimate and, when it is under the limit, the measured peak of one training step."""
    import torch

    from ..bench import memory
    from ..bench.prepare import with_batch
    from ..bench.runtimes import Eager
    from ..counting import profile
    from ..spec import resolve_target

    target = resolve_target(model, train=True)
    specs = [str(s) for s in with_batch(target.inputs, BATCH)]
    est = profile(target.model, specs, backward=True, memory=True, optimizer=optimizer, quiet=True).memory
    row = {"model": model, "optimizer": optimizer, "inputs": specs, "estimate": est.to_dict(),
           "parts": est.parts(), "status": "ok"}
    if est.peak_bytes > LIMIT_BYTES:
        row.update(status="skipped", reason=f"estimated peak {binary_bytes(est.peak_bytes)} is above the "
                                            f"{binary_bytes(LIMIT_BYTES)} this shared machine allows")
        return row
    job = memory.make_job(model={"spec": model, "knobs": {}}, runtime=Eager().child_job(None), inputs=specs,
                          dtype="float32", threads=1, train=True, optimizer=optimizer)
    job["iters"] = STEPS
    torch.set_num_threads(1)
    measured = memory.cpu_peak(job, baseline_cache=baselines).to_dict()
    row["measured"] = measured
    if measured.get("model_peak_bytes") is None:
        row.update(status="failed", reason=measured.get("reason") or "no in-child baseline on this platform")
    return row


def _row(d: dict) -> dict:
    est = d["estimate"]
    out = {"model": d["model"], "optimizer": d["optimizer"]}
    out.update({p.replace("_", " "): binary_bytes(d["parts"][p]) if p in d["parts"] else "" for p in PARTS})
    out["peak at"] = est.get("peak_phase") or ""
    out["estimate"] = binary_bytes(est["peak_bytes"])
    if d["status"] != "ok":
        out.update({"measured": "", "ratio": "", "within ±10%": f"{d['status']}: {d['reason']}"})
        return out
    m = d["measured"]
    ratio = est["peak_bytes"] / m["model_peak_bytes"]
    out.update({"measured": binary_bytes(m["model_peak_bytes"]), "raw peak RSS": binary_bytes(m["rss_run_bytes"]),
                "ratio": f"{ratio:.3f}", "within ±10%": "yes" if abs(ratio - 1) <= TOLERANCE else "no"})
    return out


def build(store: Store, models: list[str], optimizers=OPTIMIZERS, cached_only: bool = False) -> Document:
    """``cached_only``: the rows already in data/, the others listed as not run (a rerun measures them)."""
    done = []
    baselines: dict = {}   # the import-only child: one per optimizer
    jobs = [(m, o) for o in optimizers for m in models]   # every model with the first optimizer, then the next
    not_run = [f"{m} {o}" for m, o in jobs if cached_only and store.get(f"{m}-{o}") is None]
    for i, (model, opt) in enumerate(jobs, 1):
        if cached_only and store.get(f"{model}-{opt}") is None:
            continue
        def run(model=model, opt=opt):
            try:
                return measure_one(model, opt, baselines)
            except Exception as exc:
                return {"model": model, "optimizer": opt, "status": "failed", "reason": one_line(exc),
                        "estimate": {"peak_bytes": 0}, "parts": {}}
        done.append(store.cached(f"{model}-{opt}", run, f"[memory-estimate {i}/{len(jobs)}] {model} {opt}"))
    rows = sorted((_row(d) for d in done), key=lambda r: (r["model"], r["optimizer"]))
    measured = [r for r in rows if r["within ±10%"] in ("yes", "no")]
    within = sum(r["within ±10%"] == "yes" for r in measured)
    doc = Document("The training-memory estimate against the measured peak on CPU")
    doc.add(Para(f"Each zoo model at batch {BATCH}, float32, one thread: a training step (`bench --train`'s: "
                 f"forward, loss, backward, optimizer step and zero_grad(set_to_none)), {STEPS} steps in a fresh "
                 f"child process, with {' and with '.join(OPT_NAMES[o] for o in optimizers)}. Estimate: `scaleprof profile MODEL "
                 "--memory --backward --optimizer OPT` (counting/memory.py, on meta, nothing run). Its parts "
                 "sum to the peak: at the backward's peak weights + optimizer state + inputs (the batch) + "
                 "activations saved for the backward (less the batch, where it is saved) + backward scratch "
                 "(the activations' and parameters' gradients live at that moment, tracked storage by storage "
                 "on meta); at the optimizer's step weights + optimizer state + inputs + every gradient + "
                 "the step's temporaries. The table shows the parts of the phase where the peak is (`peak at`); "
                 "a blank part is not in that phase's sum."),
            Para("Measured: the child's peak RSS above its own baseline (its RSS after its imports and after "
                 "making and stepping the optimizer once on a one-element parameter, which imports torch._dynamo "
                 "and sympy: about 70 MiB that is not the model's), less the file-backed pages the run faulted "
                 "in (the code of the kernels it ran, 20-30 MiB), with glibc's mmap threshold fixed at 128 KiB "
                 "(`MALLOC_MMAP_THRESHOLD_`): glibc's default raises the threshold as large blocks are freed and "
                 "then keeps freed tensors' memory in its heap, 32-166 MiB more on five of these models, "
                 "which depends on the order of frees and not on what is live. Raw peak RSS: the same child's "
                 "whole peak, interpreter and torch included (bench's `memory.rss_run_bytes`)."),
            Para(f"Within ±10%: {within} of {len(measured)} measured rows "
                 f"({len(rows) - len(measured)} not measured, with the reason"
                 + (f"; not run in this build, for time: {', '.join(not_run)}" if not_run else "") + ")."),
            Table(pd.DataFrame(rows).fillna("")))
    misses = sorted({r["model"] for r in rows if r["within ±10%"] == "no"})
    doc.add(Bullets([f"outside ±10%: {', '.join(misses) or 'none'}.",
                     "Attention: on meta torch would take scaled_dot_product_attention's math path, which saves "
                     "the attention matrix; the count takes the kernel a CPU run takes for the same call (the "
                     "flash kernel, which saves its inputs, output and log-sum-exp; the math path where the "
                     "CPU's takes it too, with dropout), so the ViTs' saved activations are a CPU step's."]))
    return doc


def _cheapest_first(models: list[str]) -> list[str]:
    """The models by their MACs at batch 1 (counted on meta, seconds for the zoo): an interrupted build has
    the most rows; a rerun goes on from data/."""
    from ..counting import profile

    def macs(m: str) -> int:
        try:
            return profile(m, quiet=True).totals.macs
        except Exception:
            return 0
    return sorted(models, key=macs)


def main(argv=None) -> int:
    from ..zoo.registry import MODELS

    p = argparse.ArgumentParser(prog="python -m scaleprof.dev.memory_estimate", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="folder for the reports (default: reports)")
    p.add_argument("--only", default=None, help="comma-separated zoo models (default: all)")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated (default: adamw,sgd)")
    p.add_argument("--force", action="store_true", help="redo finished rows instead of reading them from data/")
    p.add_argument("--cached-only", action="store_true", help="write the table from the rows in data/ only")
    opts = p.parse_args(argv)
    optimizers = [o.strip() for o in opts.optimizers.split(",") if o.strip()]
    if not optimizers or any(o not in ("sgd", "adam", "adamw") for o in optimizers):
        print(f"memory_estimate: error: --optimizers takes sgd, adam, adamw; got {opts.optimizers!r}", file=sys.stderr)
        return 2
    models = [m.strip() for m in opts.only.split(",") if m.strip()] if opts.only else list(MODELS)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        print(f"memory_estimate: error: unknown zoo model {', '.join(unknown) or '(none)'}", file=sys.stderr)
        return 2
    models = _cheapest_first(models)
    folder = writable_dir(Path(opts.out) / NAME)
    doc = build(Store(folder, opts.force), models, optimizers, cached_only=opts.cached_only)
    doc.add(*sections.made_by())
    path = write_document(doc, folder, stem="README").markdown
    log(f"memory_estimate: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
