"""The browser page: an ONNX file beside a self-contained index.html + bench.js that run it with
onnxruntime-web (WebAssembly backend) and show its latency.

Self-contained means offline: the three onnxruntime-web files the WebAssembly backend needs are copied
into the folder from an npm install of the pinned version (`make install-web` runs
``npm install --prefix .web onnxruntime-web@1.30.0``); the page fetches nothing from anywhere else. A
browser does not run WebAssembly modules from file:// pages, so the folder is opened through a local server
(``python -m http.server -d DIR``; `bench --runtime web` serves it itself, cross-origin isolated, which is
what lets the backend use threads and the clock resolve 5 µs instead of 100 µs).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import ScaleprofError
from ..shapes import InputSpec, dtype_name

ORT_WEB_VERSION = "1.30.0"
# The WebAssembly-only build: the API, the Emscripten loader it imports, and the SIMD+threads binary.
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("index.html", "bench.js")
PAGE_DIR = Path(__file__).with_name("page")
INPUT_DTYPES = ("float32", "int64", "int32", "bool")  # what bench.js knows how to fill
_DIST = Path("node_modules") / "onnxruntime-web" / "dist"
INSTALL_HINT = (f"run `make install-web` (npm install --prefix .web onnxruntime-web@{ORT_WEB_VERSION}) or set "
                "SCALEPROF_ORT_WEB to a folder holding onnxruntime-web's dist files")


def ort_web_candidates() -> list[Path]:
    """Where onnxruntime-web is looked for, in order: $SCALEPROF_ORT_WEB (a dist folder or an npm
    prefix), ./.web (an npm prefix in the working directory) and the .web prefix of this checkout."""
    out = []
    env = os.environ.get("SCALEPROF_ORT_WEB")
    if env:
        out += [Path(env), Path(env) / _DIST]
    out.append(Path.cwd() / ".web" / _DIST)
    out.append(Path(__file__).resolve().parents[2] / ".web" / _DIST)
    return out


def find_ort_web() -> Path | None:
    """The first candidate folder holding every file the page needs, or None."""
    for d in ort_web_candidates():
        if all((d / f).is_file() for f in ORT_WEB_FILES):
            return d
    return None


def ort_web_version(dist: Path) -> str | None:
    try:
        return json.loads((dist.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def require_ort_web() -> Path:
    found = find_ort_web()
    if found is None:
        raise ScaleprofError(f"onnxruntime-web is not installed here: {INSTALL_HINT}")
    return found


def page_config(specs: Sequence[InputSpec], label: str, model_file: str = "model.onnx") -> dict:
    """What bench.js reads from model.json: the file, its inputs (shape, dtype) and the model's name."""
    inputs = []
    for s in specs:
        name = dtype_name(s.dtype)
        if name not in INPUT_DTYPES:
            raise ScaleprofError(f"the web page cannot feed {name} inputs (it knows {', '.join(INPUT_DTYPES)})")
        inputs.append({"shape": list(s.shape), "dtype": name})
    return {"model": model_file, "label": label, "inputs": inputs, "ort_web_version": ORT_WEB_VERSION}


def write_page(folder: str | os.PathLike, onnx_path: str | os.PathLike, specs: Sequence[InputSpec], *,
               label: str) -> list[Path]:
    """Write the page into `folder`: the ONNX file as model.onnx (copied unless it is already there),
    index.html, bench.js, model.json and the onnxruntime-web files. Returns the files written."""
    dist = require_ort_web()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    if Path(onnx_path).resolve() != model.resolve():
        shutil.copyfile(onnx_path, model)
    files = [model]
    for name in PAGE_FILES:
        shutil.copyfile(PAGE_DIR / name, folder / name)
        files.append(folder / name)
    for name in ORT_WEB_FILES:
        shutil.copyfile(dist / name, folder / name)
        files.append(folder / name)
    config = page_config(specs, label)
    config["ort_web_version"] = ort_web_version(dist) or ORT_WEB_VERSION
    (folder / "model.json").write_text(json.dumps(config, indent=2) + "\n")
    files.append(folder / "model.json")
    return files
