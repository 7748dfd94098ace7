"""`scaleprof export`: a model as an ONNX file, checked against eager PyTorch with ONNX Runtime.

The export itself is the one the onnxruntime runtime does (runtimes.export_onnx: the dynamo exporter, then
the TorchScript one); this module adds what a file for someone else needs: an opset, a dynamic batch
dimension, the weights inside the one file (no `.onnx.data` beside it, so it can be copied and served
alone), and the proof that it computes what the model computes: the exported graph runs in ONNX Runtime on
the same inputs as eager PyTorch, and the largest absolute difference of the outputs is reported. The
tolerance is relative to each output's scale: ``max |ort - eager| <= tolerance * max |eager|``, output by
output, else the export fails (exit 2). An absolute tolerance would pass anything for a model whose outputs
are tiny (the zoo's EfficientNet-B0, freshly initialised, outputs values near 1e-13).

With a dynamic batch the check runs at the export's batch and at that batch + 2, so a graph that only
looks dynamic in its metadata but was traced with a fixed batch fails there.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ScaleprofError, one_line
from ..shapes import dtype_name, parse_dtype
from ..spec import load_model, model_inputs, spec_label
from . import prepare, runtimes


@dataclass(frozen=True)
class ExportOptions:
    """How to export and how closely the export must agree with eager PyTorch."""

    opset: int | None = None        # None: the exporter's default
    dynamic_batch: bool = False     # the leading dimension of every input and output is symbolic
    exporter: str = "auto"          # auto (dynamo, then torchscript) | dynamo | torchscript
    tolerance: float = 1e-4         # largest difference allowed, as a fraction of the largest |eager output|
    check: bool = True              # run the export in ONNX Runtime against eager


@dataclass
class Check:
    """One comparison of the exported graph with eager PyTorch at one batch size."""

    batch_size: int
    max_abs_diff: float
    max_ref: float        # largest |eager output|, the scale the difference is read against
    max_rel_diff: float   # the largest of each output's max |diff| / max |eager| (0 where both are 0)
    ok: bool

    def to_dict(self) -> dict:
        return {"batch_size": self.batch_size, "max_abs_diff": self.max_abs_diff, "max_abs_eager": self.max_ref,
                "max_rel_diff": self.max_rel_diff, "ok": self.ok}


@dataclass
class ExportResult:
    model: str
    inputs: list[str]
    path: str
    bytes: int
    exporter: str
    opset: int | None
    dynamic_batch: bool
    export_s: float
    options: ExportOptions
    checks: list[Check] = field(default_factory=list)
    web: dict | None = None   # {"dir", "files"} when a page was written

    @property
    def max_abs_diff(self) -> float | None:
        return max((c.max_abs_diff for c in self.checks), default=None)

    @property
    def max_rel_diff(self) -> float | None:
        return max((c.max_rel_diff for c in self.checks), default=None)

    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict:
        return {"model": self.model, "inputs": self.inputs, "path": self.path, "bytes": self.bytes,
                "exporter": self.exporter, "opset": self.opset, "dynamic_batch": self.dynamic_batch,
                "export_s": self.export_s, "max_abs_diff": self.max_abs_diff, "max_rel_diff": self.max_rel_diff,
                "tolerance": self.options.tolerance,
                "checks": [c.to_dict() for c in self.checks], "ok": self.ok(), "web": self.web}


def export_options_kwargs(n_inputs: int, n_outputs: int, options: ExportOptions) -> dict:
    """torch.onnx.export's keyword arguments for `options`: names, opset, dynamic axes, one file."""
    names = [f"input_{i}" for i in range(n_inputs)]
    outs = [f"output_{i}" for i in range(n_outputs)]
    kw: dict = {"input_names": names, "output_names": outs, "external_data": False}
    if options.opset is not None:
        kw["opset_version"] = int(options.opset)
    if options.dynamic_batch:
        kw["dynamic_axes"] = {n: {0: "batch"} for n in names + outs}
    return kw


def flat_outputs(out) -> list[torch.Tensor]:
    """A model's outputs as the flat list of tensors ONNX returns, in the same order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in flat_outputs(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in flat_outputs(v)]
    return []


def export_model(model: nn.Module, inputs: list[torch.Tensor], path: str | os.PathLike,
                 options: ExportOptions = ExportOptions()) -> tuple[str, float]:
    """Export `model` (eval mode, on the CPU) at `inputs` to one ONNX file at `path`; returns the exporter
    used and the seconds it took. Raises ScaleprofError with the exporters' reasons when both fail."""
    with torch.inference_mode():
        n_out = len(flat_outputs(model(*inputs)))
    kw = export_options_kwargs(len(inputs), n_out, options)
    path = Path(path)
    tmp = tempfile.mkdtemp(prefix="scaleprof-export-", dir=path.parent)
    try:
        t0 = time.perf_counter()
        with _quiet_exporter():
            _, exporter = runtimes.export_onnx(model, inputs, os.path.join(tmp, "model.onnx"), options.exporter,
                                               **kw)
        seconds = time.perf_counter() - t0
        os.replace(os.path.join(tmp, "model.onnx"), path)  # whole or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return exporter, seconds


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter logs a warning per torchvision op it cannot register when torchvision is absent:
    noise on a user's stderr, not news about their model."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def check_against_eager(model: nn.Module, path: str | os.PathLike, inputs: list[torch.Tensor],
                        options: ExportOptions) -> Check:
    """Run the ONNX file in ONNX Runtime (CPU) and eager PyTorch on the same inputs; the largest difference."""
    try:
        import onnxruntime as ort
    except Exception as exc:
        raise ScaleprofError(f"checking the export needs onnxruntime: {one_line(exc)} (or pass --no-check)") from exc
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if len(names) != len(inputs):
        raise ScaleprofError(f"the exported graph takes {len(names)} inputs, the model was given {len(inputs)}")
    got = sess.run(None, {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True)})
    with torch.inference_mode():
        want = [t.detach().float().cpu().numpy() for t in flat_outputs(model(*inputs))]
    if len(got) != len(want):
        raise ScaleprofError(f"the exported graph has {len(got)} outputs, the model {len(want)}")
    worst, scale, rel = 0.0, 0.0, 0.0
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != w.shape:
            raise ScaleprofError(f"an exported output has shape {list(g.shape)}, eager's {list(w.shape)}")
        d = float(np.abs(g - w).max(initial=0.0))
        s = float(np.abs(w).max(initial=0.0))
        worst, scale = max(worst, d), max(scale, s)
        rel = max(rel, d / s if s > 0 else (0.0 if d == 0 else float("inf")))
    return Check(batch_size=int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1, max_abs_diff=worst,
                 max_ref=scale, max_rel_diff=rel, ok=rel <= options.tolerance)


def _opset_of(path) -> int | None:
    try:
        import onnx

        m = onnx.load(str(path), load_external_data=False)
        return next((int(o.version) for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    except Exception:
        return None


def export(spec_or_model, out: str | os.PathLike | None = None, *, inputs=None, dtype=None, knobs: dict | None = None,
           options: ExportOptions = ExportOptions(), web: str | os.PathLike | None = None,
           progress: bool = False) -> ExportResult:
    """Export a model (spec or nn.Module, never changed) to ONNX at `out` and check it against eager; with
    `web`, also write a page that runs it in a browser with onnxruntime-web (bench/webpage.py) into that
    folder (the ONNX file goes there too when `out` is None). `progress`: a line on stderr per step."""
    if out is None and web is None:
        raise ScaleprofError("export needs --out FILE.onnx or --web DIR")
    dt = parse_dtype(dtype)
    base = load_model(spec_or_model, device="cpu", **(knobs or {}))
    specs = model_inputs(base, inputs)
    model = prepare.place(copy.deepcopy(base) if isinstance(spec_or_model, nn.Module) else base, torch.device("cpu"),
                          dt).eval()
    xs = prepare.make_inputs(specs, torch.device("cpu"), dt)
    if web is not None:
        from .webpage import require_ort_web

        if dt != torch.float32:  # the page feeds float32 tensors (WebAssembly kernels are float32)
            raise ScaleprofError(f"--web needs a float32 model, got --dtype {dtype_name(dt)}")
        require_ort_web()  # before a long export, not after it
    path = Path(out) if out is not None else Path(web) / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    _say(progress, f"export: exporting {spec_label(spec_or_model)} at {', '.join(map(str, specs))} "
                   f"(exporter {options.exporter}) ...")
    exporter, seconds = export_model(model, xs, path, options)
    _say(progress, f"export: exported with {exporter} in {seconds:.1f} s" +
         ("; checking it against eager in ONNX Runtime ..." if options.check else ""))
    result = ExportResult(model=spec_label(spec_or_model), inputs=[str(s) for s in specs], path=str(path),
                          bytes=path.stat().st_size, exporter=exporter, opset=_opset_of(path),
                          dynamic_batch=options.dynamic_batch, export_s=seconds, options=options)
    if options.check:
        result.checks.append(check_against_eager(model, path, xs, options))
        if options.dynamic_batch:
            other = prepare.with_batch(specs, specs[0].shape[0] + 2)
            result.checks.append(check_against_eager(model, path, prepare.make_inputs(other, torch.device("cpu"), dt),
                                                     options))
    if web is not None:
        from .webpage import write_page

        files = write_page(web, path, specs, label=result.model)
        result.web = {"dir": str(web), "files": [str(f) for f in files]}
    return result


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def keep_onnx(folder: str | os.PathLike | None, label: str):
    """While active, every ONNX file a runtime exports is saved into `folder` as one self-contained file
    named after the model and its batch (`bench --keep-onnx DIR`); yields the list of paths kept."""
    kept: list[str] = []
    if folder is None:
        yield kept
        return
    where = Path(folder)
    where.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_.")

    def hook(path: str, inputs: list[torch.Tensor]) -> None:
        import onnx

        batch = int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1
        dest = where / f"{stem or 'model'}_b{batch}_{dtype_name(inputs[0].dtype) if inputs else 'none'}.onnx"
        onnx.save_model(onnx.load(path), str(dest))  # external data folded in: one file that travels alone
        if str(dest) not in kept:
            kept.append(str(dest))

    runtimes.EXPORT_HOOKS.append(hook)
    try:
        yield kept
    finally:
        runtimes.EXPORT_HOOKS.remove(hook)
