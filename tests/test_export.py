"""`scaleprof export` (ONNX checked against eager), the browser page, `bench --keep-onnx` and the web runtime."""

from __future__ import annotations

import copy
import json
import queue
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scaleprof.bench import stats, web, webpage
from scaleprof.bench.export import ExportOptions, export, export_options_kwargs, flat_outputs
from scaleprof.bench.timer import TimerConfig
from scaleprof.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TS = ExportOptions(exporter="torchscript")  # the fast exporter, where the test is not about the exporter


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.SiLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 5))


def _ort_run(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def test_round_trip_against_eager_with_the_default_exporter(tmp_path):
    model = _net()
    before = copy.deepcopy(model.state_dict())
    model.train()
    r = export(model, tmp_path / "m.onnx", inputs=["2x3x8x8"])
    assert r.exporter in ("dynamo", "torchscript") and r.ok() and r.checks[0].batch_size == 2
    assert r.max_abs_diff < 1e-5 and r.bytes == (tmp_path / "m.onnx").stat().st_size
    assert not list(tmp_path.glob("*.data"))  # the weights are inside the one file
    # the user's module is left as found: still in training mode, same weights
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # checked here on other inputs, independently of the export's own check
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = model.eval()(x).numpy()
    np.testing.assert_allclose(_ort_run(tmp_path / "m.onnx", x), want, rtol=1e-4, atol=1e-5)


def test_dynamic_batch_is_really_dynamic(tmp_path):
    model = _net().eval()
    r = export(model, tmp_path / "d.onnx", inputs=["1x3x8x8"],
               options=ExportOptions(exporter="torchscript", dynamic_batch=True))
    assert [c.batch_size for c in r.checks] == [1, 3] and r.ok()
    dim0 = onnx.load(str(tmp_path / "d.onnx")).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "batch"
    for b in (1, 3):
        x = torch.randn(b, 3, 8, 8)
        with torch.no_grad():
            np.testing.assert_allclose(_ort_run(tmp_path / "d.onnx", x), model(x).numpy(), rtol=1e-4, atol=1e-5)
    # without the option the batch is fixed: batch 3 does not run, so the test above can fail
    export(model, tmp_path / "s.onnx", inputs=["1x3x8x8"], options=TS)
    with pytest.raises(Exception, match="(?i)dimension|shape|got"):
        _ort_run(tmp_path / "s.onnx", torch.randn(3, 3, 8, 8))


def test_opset_is_the_one_asked_for(tmp_path):
    r = export(_net(), tmp_path / "o.onnx", inputs=["1x3x8x8"], options=ExportOptions(exporter="torchscript", opset=17))
    assert r.opset == 17
    assert [o.version for o in onnx.load(str(tmp_path / "o.onnx")).opset_import if o.domain in ("", "ai.onnx")] == [17]


def test_export_options_name_every_input_and_output():
    kw = export_options_kwargs(2, 1, ExportOptions(opset=18, dynamic_batch=True))
    assert kw["input_names"] == ["input_0", "input_1"] and kw["output_names"] == ["output_0"]
    assert kw["dynamic_axes"] == {"input_0": {0: "batch"}, "input_1": {0: "batch"}, "output_0": {0: "batch"}}
    assert kw["opset_version"] == 18 and kw["external_data"] is False
    assert "dynamic_axes" not in export_options_kwargs(1, 1, ExportOptions())
    t = torch.zeros(1)
    assert flat_outputs({"a": t, "b": (t, [t])}) == [t, t, t]


DRIFTING = """
from torch import nn


class Drifting(nn.Module):
    # its output depends on how often it ran: the exported graph bakes in one count, eager has moved on
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * float(self.calls)


def build():
    return Drifting()
"""


def test_cli_export_exit_2_beyond_the_tolerance(tmp_path, capsys):
    f = tmp_path / "drift.py"
    f.write_text(DRIFTING)
    code = main(["export", f"{f}:build", "--input", "1x4", "--out", str(tmp_path / "x.onnx"), "--exporter",
                 "torchscript", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 2 and out["ok"] is False and out["checks"][0]["ok"] is False
    # traced at one count, checked at a later one: |(a - b) x| >= |x|, and make_inputs' x is not small
    assert out["max_abs_diff"] > 0.1
    last = captured.err.strip().splitlines()[-1]  # after the progress lines, the one-line reason
    assert last.startswith("scaleprof export: error: the export differs from eager by")
    assert last.endswith("beyond --tolerance 0.0001")
    # the rule is relative to the output's scale: a tolerance over the drift passes the same file
    assert main(["export", f"{f}:build", "--input", "1x4", "--out", str(tmp_path / "y.onnx"), "--exporter",
                 "torchscript", "--tolerance", "1"]) == 0


class _TinyDrift(nn.Module):
    """Outputs near 1e-12 that drift by half of themselves between export and check: an absolute
    tolerance (1e-4) would pass it; the scale-relative one must not."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * (1e-12 * (1.0 + 0.5 * self.calls))


def test_tiny_outputs_are_checked_against_their_own_scale(tmp_path):
    r = export(_TinyDrift(), tmp_path / "t.onnx", inputs=["1x4"], options=TS)
    c = r.checks[0]
    assert c.max_abs_diff < 1e-11 and c.max_ref < 1e-11 and not c.ok and not r.ok()
    assert 0.1 < c.max_rel_diff < 1.0  # |a - b| / b for two call counts a, b: 0.5 k / (1 + 0.5 n)
    assert export(nn.Identity(), tmp_path / "i.onnx", inputs=["1x4"], options=TS).checks[0].max_rel_diff == 0.0


def test_cli_export_of_an_example_file(tmp_path, capsys):
    code = main(["export", f"{EXAMPLES / 'cnn.py'}:build", "--arg", "width=8", "--out", str(tmp_path / "c.onnx"),
                 "--exporter", "torchscript", "--dynamic-batch", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["inputs"] == ["1x3x64x64"] and out["dynamic_batch"]
    assert [c["batch_size"] for c in out["checks"]] == [1, 3] and out["max_abs_diff"] < 1e-5


def test_cli_export_needs_a_destination(capsys):
    assert main(["export", "resnet18"]) == 2
    assert "--out" in capsys.readouterr().err


# --- the page ---------------------------------------------------------------------------------------------

URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}[^\s\"')]*")
# the one URL in onnxruntime-web's files: a link in an error message about cross-origin isolation
ALLOWED_URLS = {"https://web.dev/cross-origin-isolation-guide/"}


def test_page_sources_load_nothing_remote():
    for name in webpage.PAGE_FILES:
        text = (webpage.PAGE_DIR / name).read_text()
        assert not [u for u in URL.findall(text) if "127.0.0.1" not in u], name
    html = (webpage.PAGE_DIR / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs == ["ort.wasm.min.js", "bench.js"]


def test_page_config_lists_inputs_and_refuses_what_it_cannot_feed():
    from scaleprof.shapes import InputSpec, parse_input

    cfg = webpage.page_config([parse_input("2x3x8x8"), parse_input("2x7:int64")], "m")
    assert cfg["inputs"] == [{"shape": [2, 3, 8, 8], "dtype": "float32"}, {"shape": [2, 7], "dtype": "int64"}]
    with pytest.raises(Exception, match="cannot feed int8 inputs"):
        webpage.page_config([InputSpec((1, 4), torch.int8)], "m")


def test_web_page_needs_a_float32_model(tmp_path):
    from scaleprof.errors import ScaleprofError

    with pytest.raises(ScaleprofError, match="--web needs a float32 model, got --dtype float16"):
        export(nn.Linear(4, 2), inputs=["1x4"], dtype="float16", web=tmp_path / "p")
    assert not (tmp_path / "p").exists()


needs_ort_web = pytest.mark.skipif(webpage.find_ort_web() is None, reason=f"onnxruntime-web absent: {webpage.INSTALL_HINT}")


@needs_ort_web
def test_web_export_writes_a_self_contained_page(tmp_path):
    r = export(_net(), inputs=["1x3x8x8"], web=tmp_path / "page", options=TS)
    d = tmp_path / "page"
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted(["model.onnx", "model.json", *webpage.PAGE_FILES, *webpage.ORT_WEB_FILES])
    assert r.path == str(d / "model.onnx") and sorted(Path(f).name for f in r.web["files"]) == names
    cfg = json.loads((d / "model.json").read_text())
    assert cfg["model"] == "model.onnx" and cfg["inputs"] == [{"shape": [1, 3, 8, 8], "dtype": "float32"}]
    assert cfg["ort_web_version"] == webpage.ORT_WEB_VERSION
    # every text file the page loads: no URL but the allowed link; the loader it imports is beside it
    for name in ("index.html", "bench.js", "model.json", *[n for n in webpage.ORT_WEB_FILES if not n.endswith(".wasm")]):
        found = set(URL.findall((d / name).read_text(errors="replace")))
        assert {u for u in found if "127.0.0.1" not in u} <= ALLOWED_URLS, name
    assert "ort-wasm-simd-threaded.mjs" in (d / "ort.wasm.min.js").read_text()
    assert (d / "ort-wasm-simd-threaded.wasm").read_bytes()[:4] == b"\0asm"


# --- bench --keep-onnx and the web runtime ------------------------------------------------------------------

def test_bench_keep_onnx_keeps_a_file_that_runs(tmp_path, capsys):
    f = tmp_path / "tiny.py"
    f.write_text("import torch\nfrom torch import nn\n"
                 "def build():\n    torch.manual_seed(0)\n    return nn.Sequential(nn.Linear(6, 3), nn.ReLU())\n")
    code = main(["bench", f"{f}:build", "--input", "2x6", "--runtime", "onnxruntime", "--max-time", "0.5",
                 "--no-memory", "--keep-onnx", str(tmp_path / "kept"), "--json"])
    assert code == 0
    kept = list((tmp_path / "kept").glob("*.onnx"))
    assert len(kept) == 1 and kept[0].name.endswith("_b2_float32.onnx")
    assert f"bench: kept {kept[0]}" in capsys.readouterr().err
    from scaleprof.spec import load_model

    model = load_model(f"{f}:build").eval()
    x = torch.randn(2, 6)
    with torch.no_grad():
        np.testing.assert_allclose(_ort_run(kept[0], x), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_web_runtime_missing_pieces_fail_the_row_with_the_reason(monkeypatch):
    from scaleprof import bench

    monkeypatch.setattr(web, "find_chromium", lambda: None)
    monkeypatch.setattr(webpage, "ort_web_candidates", lambda: [])
    r = bench(nn.Linear(4, 2), inputs=["1x4"], runtimes="eager,web", max_time=0.3, memory=False)
    eager, row = r.results
    assert eager.status == "ok" and row.status == "failed" and row.runtime == "web"
    assert row.reason.startswith("web runtime needs chromium and onnxruntime-web: no chromium on PATH")
    assert "make install-web" in row.reason


class _FakeSession:
    """What measure_in_browser reads from a BrowserSession: samples on a queue, the page's info."""

    def __init__(self, samples):
        self.q = queue.Queue()
        for s in samples:
            self.q.put(s)
        self.info = {"cold_ms": 12.5, "calls_per_block": 3}
        self.stop = threading.Event()

    def next_ms(self):
        return self.q.get_nowait()


def test_browser_samples_go_through_the_shared_warm_up_stop_and_statistics():
    # ten warm-up blocks settle (two windows of five with equal medians), then ten samples reach the CI
    # target (all equal: a zero-width CI) at min_samples
    warm = [5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    measured = [2.0] * 10
    s = _FakeSession(warm + measured + [99.0] * 5)
    m = web.measure_in_browser(s, TimerConfig(max_time=60, min_samples=10, min_time=0.0))
    assert m.warmup_blocks == 10 and m.samples_ms == measured and m.stop_reason == "converged"
    assert m.cold_ms == 12.5 and m.calls_per_block == 3 and s.stop.is_set() and s.q.qsize() == 5
    assert m.summary == stats.summarize(measured)


def test_get_runtime_knows_web():
    from scaleprof.bench.runtimes import get_runtime

    rt = get_runtime("web", threads=2)
    plan = rt.memory_plan(torch.device("cpu"))
    assert rt.label() == "web" and rt.threads == 2 and plan.method == "none" and "browser" in plan.reason


needs_browser = pytest.mark.skipif(web.unavailable_reason() is not None, reason=str(web.unavailable_reason()))


@pytest.mark.browser
@needs_browser
def test_web_runtime_times_a_tiny_model_in_chromium():
    from scaleprof import bench

    r = bench(_net(), inputs=["1x3x16x16"], runtimes="web", max_time=2.0, threads=1, memory=False, samples=True)
    row = r.results[0]
    assert row.status == "ok", row.reason
    assert row.samples >= 6 and len(row.samples_ms) == row.samples and min(row.samples_ms) > 0
    s = stats.summarize(row.samples_ms)  # the same statistics as every runtime
    assert row.median_ms == s.median and row.iqr_ms == s.iqr and row.ci95_ms == list(s.ci95)
    assert row.cold_ms > row.details["first_call_ms"] > 0  # setup (export, browser, session) + first run
    assert row.details["cross_origin_isolated"] is True and row.details["web_threads"] == 1
    assert row.details["ort_web_version"] == webpage.ORT_WEB_VERSION and "HeadlessChrome" in row.details["browser"]


def _fake_browser(tmp_path, body: str) -> str:
    f = tmp_path / "fake-chromium"
    f.write_text(f"#!/bin/sh\n{body}\n")
    f.chmod(0o755)
    return str(f)


def test_the_page_server_isolates_the_page_and_takes_its_samples(tmp_path):
    import urllib.request

    (tmp_path / "index.html").write_text("<p>page</p>")
    s = web.BrowserSession(tmp_path, threads=2, chromium=_fake_browser(tmp_path, "sleep 60"))
    try:
        port = s._server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html") as r:
            assert r.read() == b"<p>page</p>"
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"

        def post(what, body):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/scaleprof/{what}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return json.loads(r.read())

        assert post("ready", {"cold_ms": 3.0, "calls_per_block": 1}) == {"stop": False}
        assert s.wait_ready(timeout=5) == {"cold_ms": 3.0, "calls_per_block": 1}
        assert post("samples", {"samples": [1.5, 2.5]}) == {"stop": False}
        assert [s.next_ms(), s.next_ms()] == [1.5, 2.5]
        s.stop.set()
        assert post("samples", {"samples": [9.0]}) == {"stop": True}  # the page's cue to end
        assert "--user-data-dir=" in " ".join(s.proc.args) and s.proc.args[-1].endswith("?bench=1&threads=2")
    finally:
        s.close()
    assert s.proc.poll() is not None  # the browser is gone with the session


def test_a_browser_that_dies_or_a_page_that_fails_is_a_reason(tmp_path):
    s = web.BrowserSession(tmp_path, threads=1, chromium=_fake_browser(tmp_path, "echo no display; exit 3"))
    try:
        with pytest.raises(web.RuntimeUnavailable, match="chromium exited with code 3: no display"):
            s.wait_ready(timeout=30)
    finally:
        s.close()
    s = web.BrowserSession(tmp_path, threads=1, chromium=_fake_browser(tmp_path, "sleep 60"))
    try:
        s.receive("error", {"message": "no backend found"})
        with pytest.raises(web.RuntimeUnavailable, match="the page failed: no backend found"):
            s.wait_ready(timeout=5)
    finally:
        s.close()
