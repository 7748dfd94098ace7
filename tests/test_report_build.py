"""`make bench` (dev.selfbench) and `make reports` (dev.build_reports): guarded sections, resumable work."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from scaleprof.dev import build_reports, selfbench


@pytest.fixture()
def fake_sections(tmp_path, monkeypatch):
    """Three sections: one that works (and counts its runs), one that raises, one whose module is missing."""
    pkg = tmp_path / "fakebench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(textwrap.dedent("""
        from pathlib import Path
        def run_selfbench(out_dir):
            p = Path(out_dir) / "good-runs.txt"
            p.write_text(p.read_text() + "x" if p.exists() else "x")
            return "## Good section\\n\\n| tool | ratio |\\n|---|---|\\n| scaleprof | 1.00 |\\n"
    """))
    (pkg / "bad.py").write_text("def run_selfbench(out_dir=None):\n    raise RuntimeError('peer not installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(selfbench, "SECTIONS", {
        "counting": ("fakebench.good", "Counting speed"),
        "measurement": ("fakebench.bad", "Measurement"),
        "scaling": ("fakebench.absent", "Scaling search"),
    })
    yield tmp_path
    for m in [m for m in sys.modules if m.startswith("fakebench")]:
        del sys.modules[m]


def test_selfbench_reports_missing_and_failing_sections(fake_sections, capsys):
    out = fake_sections / "reports"
    assert selfbench.main(["--out", str(out)]) == 0  # one section of three on the page
    page = (out / "performance.md").read_text()
    assert page.startswith("# Performance")
    assert "| scaleprof | 1.00 |" in page
    assert "**Not available: failed.** RuntimeError: peer not installed" in page
    assert "**Not available: failed.** ModuleNotFoundError" in page and "fakebench.absent" in page
    assert "fingerprint" in page  # which machine made it
    # a rerun keeps the finished section and retries the others
    assert selfbench.main(["--out", str(out)]) == 0
    assert (out / "good-runs.txt").read_text() == "x"
    assert selfbench.main(["--out", str(out), "--only", "counting,", "--force"]) == 0
    assert (out / "good-runs.txt").read_text() == "xx"
    # every section asked for failed: exit 2, and the finished one is still on the page
    assert selfbench.main(["--out", str(out), "--only", "measurement,scaling"]) == 2
    assert "| scaleprof | 1.00 |" in (out / "performance.md").read_text()
    assert selfbench.main(["--out", str(out), "--only", "nope"]) == 2
    assert selfbench.main(["--out", str(out), "--only", ","]) == 2


def test_store_skips_finished_work_and_redoes_damaged(tmp_path):
    store = build_reports.Store(tmp_path)
    calls = []

    def work():
        calls.append(1)
        return {"value": 42}

    assert store.cached("piece", work)["value"] == 42
    assert build_reports.Store(tmp_path).cached("piece", work)["value"] == 42
    assert len(calls) == 1
    (tmp_path / "data" / "piece.json").write_text("{half")
    assert build_reports.Store(tmp_path).cached("piece", work)["value"] == 42
    assert len(calls) == 2
    forced = build_reports.Store(tmp_path, force=True)
    forced.cached("piece", work)
    forced.cached("piece", work)  # once per run, even when forced
    assert len(calls) == 3


def test_zoo_and_crosscheck_reports_resume(tmp_path):
    out = tmp_path / "reports"
    args = ["--out", str(out), "--only", "zoo,crosscheck", "--models", "mobilenet_v1_025", "--max-time", "0.3"]
    assert build_reports.main(args) == 0
    zoo_md = (out / "zoo" / "README.md").read_text()
    # the paper's 41M mult-adds and 0.5M params for MobileNetV1 at width 0.25 (figures.md), to its rounding
    row = next(line for line in zoo_md.splitlines() if line.startswith("| mobilenet_v1_025 |"))
    assert "41,030,272" in row and "41,000,000" in row and "within rounding" in row
    assert (out / "zoo" / "README.html").is_file() and (out / "zoo" / "figures" / "zoo-macs-vs-latency.png").is_file()
    assert not list((out / "crosscheck" / "data").glob("cost-*"))  # one count per model, kept with the zoo's
    cc = json.loads((out / "crosscheck" / "data" / "crosscheck-mobilenet_v1_025.json").read_text())
    assert cc["scaleprof_macs"] == 41_030_272
    assert {p["name"] for p in cc["peers"]} == {"fvcore", "thop", "torch"}
    cc_md = (out / "crosscheck" / "README.md").read_text()
    assert "## Each difference explained" in cc_md and "fingerprint" in cc_md
    assert (out / "README.md").is_file()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "zoo" / "data").iterdir()}
    assert build_reports.main(args) == 0  # rerun: nothing redone
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (out / "zoo" / "data").iterdir()}


def test_build_reports_bad_input(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert build_reports.main(["--out", str(blocker / "sub")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err
    assert build_reports.main(["--out", str(tmp_path), "--only", "everything"]) == 2
