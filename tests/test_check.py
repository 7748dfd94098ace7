"""`scaleprof check`: the CI gate. Cost numbers here are derived by hand from the toy model's shapes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from scaleprof import cli
from scaleprof.errors import ScaleprofError
from scaleprof.gate import check, load_baseline, parse_tolerances

BASELINES = Path(__file__).parent / "baselines"
ZOO_BASELINES = sorted(BASELINES.glob("*.json"))

# conv 3->8, 3x3, padding 1 on 1x3x8x8: 8*8*8 outputs * 3*3*3 = 13,824 MACs; params 8*27 + 8 = 224
# linear 512->10: 5,120 MACs; params 5,130.   extra linear 10->10: 100 MACs, 110 params.
TOY = textwrap.dedent("""
    import time
    import torch
    from torch import nn

    def make(extra=0, slow=0):
        layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)]
        layers += [nn.Linear(10, 10) for _ in range(int(extra))]
        m = nn.Sequential(*layers)
        if int(slow):
            m = Slow(m)
        m.default_input = (1, 3, 8, 8)
        return m

    class Slow(nn.Module):
        # the same layers, plus 10 chained 64x64 matmuls a call: a few times the toy's latency, short enough
        # that even a loaded machine fits enough rounds in the time limit for p < 0.002
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.register_buffer("w", torch.randn(64, 64) / 8)

        def forward(self, x):
            y = self.w
            for _ in range(10):
                y = torch.tanh(y @ self.w)
            return self.inner(x) + y.sum() * 0
""")


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    # a CI that sets GITHUB_STEP_SUMMARY for its own steps must not collect these tests' tables
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture()
def toy(write_model) -> str:
    return f"{write_model(TOY, 'toy.py')}:make"


def _rows(result):
    return {r.metric: r for r in result.checks}


def test_save_then_unchanged_model_passes(toy, tmp_path):
    base = tmp_path / "base.json"
    saved = check(toy, save=base, inputs=["1x3x8x8"])
    assert saved.verdict == "pass" and base.is_file()
    stored = json.loads(base.read_text())
    assert stored["cost"]["totals"]["macs"] == 13_824 + 5_120
    assert stored["cost"]["totals"]["params"] == 224 + 5_130
    assert stored["cost"]["by_kind"]["linear"]["macs"] == 5_120
    assert not list(tmp_path.glob(".*.tmp"))  # nothing left from the atomic write

    res = check(toy, baseline=base)
    assert res.verdict == "pass" and res.exit_code == 0
    rows = _rows(res)
    assert rows["macs"].baseline == rows["macs"].current == 18_944
    assert rows["macs"].change == 0 and rows["macs"].limit == 0
    assert rows["macs[conv.standard]"].current == 13_824


def test_added_layer_is_a_regression_naming_the_metric(toy, tmp_path, capsys):
    base = tmp_path / "base.json"
    assert cli.main(["check", toy, "--input", "1x3x8x8", "--save", str(base)]) == 0
    capsys.readouterr()
    code = cli.main(["check", toy, "--arg", "extra=1", "--baseline", str(base), "--json"])
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "regression"
    rows = {r["metric"]: r for r in out["checks"]}
    assert set(rows["macs"]) >= {"metric", "baseline", "current", "change", "limit", "verdict"}
    assert rows["macs"]["verdict"] == "regression"
    assert rows["macs"]["current"] - rows["macs"]["baseline"] == 100
    assert rows["macs"]["change"] == pytest.approx(100 / 18_944)
    assert rows["params"]["current"] - rows["params"]["baseline"] == 110
    assert rows["macs[linear]"]["verdict"] == "regression"
    assert rows["macs[conv.standard]"]["verdict"] == "pass"
    # the text output names the failing metric too
    assert cli.main(["check", toy, "--arg", "extra=1", "--baseline", str(base)]) == 1
    text = capsys.readouterr().out
    assert "| macs | 18,944 | 19,044 |" in text and "REGRESSION" in text


def test_tolerances(toy, tmp_path):
    base = tmp_path / "base.json"
    check(toy, save=base, inputs=["1x3x8x8"])
    # +100 MACs on 18,944 is +0.53%: within 1%, outside 0.5%; activations (conv and linear outputs)
    # 512 + 10 -> 532 is +1.9%
    loose = "macs=0.01,flops=0.01,params=0.03,activations=0.02,bytes=0.05"
    assert check(toy, baseline=base, knobs={"extra": 1}, tolerances=loose + ",macs[linear]=0.02,"
                 "flops[linear]=0.05,params[linear]=0.03,activations[linear]=1,bytes[linear]=1").verdict == "pass"
    res = check(toy, baseline=base, knobs={"extra": 1}, tolerances=loose.replace("macs=0.01", "macs=0.005"))
    assert _rows(res)["macs"].verdict == "regression"
    assert parse_tolerances("macs=1%, params=0") == {"macs": 0.01, "params": 0.0}
    with pytest.raises(ScaleprofError, match="unknown metric"):
        parse_tolerances("speed=0.1")
    with pytest.raises(ScaleprofError, match="malformed tolerance"):
        parse_tolerances("macs=lots")


def test_decrease_fails_unless_allowed(toy, tmp_path):
    base = tmp_path / "base.json"
    check(toy, save=base, knobs={"extra": 1}, inputs=["1x3x8x8"])
    res = check(toy, baseline=base)
    assert res.verdict == "regression" and _rows(res)["macs"].verdict == "changed"
    assert check(toy, baseline=base, allow_decrease=True).verdict == "pass"


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ('{"totals": {"macs": 1}, "by_kind": {}}', "a profile result"),
    ('{"scaleprof_baseline": 1, "cost": {"totals": {"macs": "many"}, "by_kind": {}}}', "cost.totals.macs"),
    ('{"scaleprof_baseline": 7, "cost": {}}', "format version"),
    ("[1, 2]", "not a scaleprof baseline"),
])
def test_corrupted_baseline_exits_2_with_one_line(toy, tmp_path, capsys, content, reason):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert cli.main(["check", toy, "--baseline", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and reason in err


def test_missing_baseline_and_unwritable_save(toy, tmp_path, capsys):
    assert cli.main(["check", toy, "--baseline", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["check", toy, "--input", "1x3x8x8", "--save", str(blocker / "b.json")]) == 2
    assert "cannot save the baseline" in capsys.readouterr().err
    assert cli.main(["check", toy]) == 2
    assert "nothing to check" in capsys.readouterr().err


def test_error_json_and_step_summary(toy, tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    base = tmp_path / "base.json"
    check(toy, save=base, inputs=["1x3x8x8"])
    assert cli.main(["check", toy, "--baseline", str(base)]) == 0
    assert cli.main(["check", toy, "--arg", "extra=1", "--baseline", str(base)]) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    capsys.readouterr()
    assert cli.main(["check", toy, "--baseline", str(bad), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "error" and out["checks"] == [] and "not valid JSON" in out["reason"]
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not replaced
    assert text.count("### scaleprof check") == 3
    assert ": passed" in text and "FAILED: regression" in text and "ERROR" in text
    assert "| macs | 18,944 | 19,044 |" in text


@pytest.mark.slow  # asserts a wall-clock ratio: `make test-slow`
def test_latency_against_a_reference_in_the_same_job(toy):
    res = check(toy, against=toy, knobs={"slow": 1}, inputs=["1x3x8x8"], max_time=2.0)
    row = _rows(res)["latency"]
    assert res.verdict == "regression" and row.verdict == "regression"
    assert row.change > 0.10 and row.p_value < 0.002
    same = check(toy, against=toy, inputs=["1x3x8x8"], max_time=1.0)
    assert _rows(same)["latency"].verdict == "pass"


def test_stored_latency_refuses_another_environment(toy, tmp_path, capsys):
    base = tmp_path / "lat.json"
    check(toy, save=base, latency=True, inputs=["1x3x8x8"], max_time=0.5)
    stored = json.loads(base.read_text())
    assert len(stored["latency"]["samples_ms"]) >= 6 and stored["latency"]["env"]["fingerprint"]
    res = check(toy, baseline=base, max_time=0.5)
    assert _rows(res)["latency"].p_value is not None  # measured again and compared in this environment

    stored["latency"]["env"]["cores"] = 999
    other = tmp_path / "other.json"
    other.write_text(json.dumps(stored))
    assert cli.main(["check", toy, "--baseline", str(other)]) == 2
    err = capsys.readouterr().err
    assert "different environment" in err and "cores" in err and len(err.strip().splitlines()) == 1
    # cost only still works across environments
    assert cli.main(["check", toy, "--baseline", str(other), "--cost-only"]) == 0


@pytest.mark.parametrize("path", ZOO_BASELINES, ids=[p.stem for p in ZOO_BASELINES])
def test_zoo_models_match_committed_baselines(path, capsys):
    """The project's own gate: each committed zoo baseline still holds (cost only, on meta)."""
    assert cli.main(["check", path.stem, "--baseline", str(path)]) == 0, capsys.readouterr().out


def test_committed_baselines_agree_with_published_figures():
    # an independent source for the stored numbers: torchvision's published params and MACs
    published = {"resnet50": (25_557_032, 4_089_184_256), "mobilenet_v2": (3_504_872, 300_774_272),
                 "efficientnet_b0": (5_288_548, 385_814_752), "mobilenet_v3_large": (5_483_032, 216_589_760),
                 "convnext_tiny": (28_589_128, 4_455_531_264)}
    assert len(ZOO_BASELINES) >= 5
    for name, (params, macs) in published.items():
        totals = load_baseline(BASELINES / f"{name}.json")["cost"]["totals"]
        assert (totals["params"], totals["macs"]) == (params, macs), name
