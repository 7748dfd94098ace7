"""Slow benchmark checks: torch.compile, ONNX export with the memory subprocess, the TorchScript exporter."""

import pytest
import torch
from torch import nn

from scaleprof.bench import bench
from scaleprof.bench.runtimes import OnnxRuntime

pytestmark = pytest.mark.slow


def small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def test_compile_runtime_reports_compilation_in_the_cold_start():
    r = bench(small(), inputs=["1x3x32x32"], runtimes="eager,compile", max_time=1.0, memory=False)
    eager, comp = r.results
    assert comp.status == "ok", comp.reason
    assert comp.details["compile_mode"] == "default"
    assert r.env["compile_mode"] == "default"
    # compilation happens on the first call: it dwarfs one steady-state call
    assert comp.cold_ms > 10 * comp.median_ms


def test_onnxruntime_matches_eager_and_measures_memory():
    model = small().eval()
    x = torch.randn(1, 3, 32, 32)
    prep = OnnxRuntime().prepare(model, [x], torch.device("cpu"))
    try:
        (out,) = prep.call()
        assert torch.allclose(torch.from_numpy(out), model(x), atol=1e-4)
    finally:
        prep.close()
    r = bench(model, inputs=["1x3x32x32"], runtimes="onnxruntime", max_time=0.5, memory=True)
    row = r.results[0]
    assert row.status == "ok", row.reason
    mem = row.details["memory"]
    assert mem["method"] == "subprocess-rss" and mem["reason"] is None
    assert row.peak_memory_bytes == mem["rss_run_bytes"] - mem["rss_baseline_bytes"]


def test_torchscript_exporter_fallback():
    model = small().eval()
    prep = OnnxRuntime(exporter="torchscript").prepare(model, [torch.randn(1, 3, 32, 32)], torch.device("cpu"))
    try:
        assert prep.info["exporter"] == "torchscript"
    finally:
        prep.close()
