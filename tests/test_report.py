"""`scaleprof report`: each kind of result -> report.md + a self-contained report.html, and bad input."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from torch import nn

import scaleprof
from scaleprof import cli
from scaleprof.detect import result_kind
from scaleprof.errors import ScaleprofError
from scaleprof.report.writer import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def toy() -> nn.Module:
    # conv 3->8 3x3 pad 1 on 8x8: 13,824 MACs; depthwise 8 3x3: 4,608; linear 512->10: 5,120
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                         nn.SiLU(), nn.Flatten(), nn.Linear(512, 10)).eval()


def scale_dict() -> dict:
    """A small `scale --json` result by the contract: a 3x3x3 grid at φ = 1 with the paper's constraint."""
    base_macs = 1_000_000
    cands = []
    for a in (1.0, 1.2, 1.4):
        for b in (1.0, 1.1, 1.2):
            for g in (1.0, 1.15, 1.3):
                f = a * b * b * g * g
                cands.append({"alpha": a, "beta": b, "gamma": g, "width": b, "depth": a, "resolution": round(224 * g),
                              "macs": round(base_macs * f), "params": 5_000_000, "cost_ratio": f, "formula_ratio": f,
                              "feasible": abs(f - 2) <= 0.1, "latency_ms": None, "score": a + b + g, "status": "ok"})
    best = max((c for c in cands if c["feasible"]), key=lambda c: c["score"])
    sweep = [{"phi": p, "name": f"b{p}", "cost_ratio": 2 ** p * 1.05, "paper_ratio": r}
             for p, r in zip(range(4), (1.0, 0.70 / 0.39, 1.0 / 0.39, 1.8 / 0.39), strict=True)]
    return {"family": "efficientnet", "phi": 1, "budget": {"describe": "2x the base ±5%", "target_ratio": 2.0},
            "candidates": cands, "best": best, "phi_sweep": sweep}


@pytest.fixture(scope="module")
def results() -> dict:
    from scaleprof.bench import bench, compare_models
    from scaleprof.bench.roofline import Roofline, measure_peaks, place

    m = toy()
    prof = scaleprof.profile(m, ["1x3x8x8"]).to_dict()
    b = bench(m, inputs=["1x3x8x8"], batch_sizes=[1, 2], max_time=0.3, memory=False, by="kind")
    peaks = measure_peaks("cpu", matmul_n=128, copy_elems=1 << 18, max_time=0.3)
    b.roofline = Roofline(peaks=peaks, points=place(peaks, b.attribution.by_kind_rows))
    c = compare_models(m, nn.Sequential(toy(), nn.Linear(10, 10)), ["1x3x8x8"], max_time=0.5, samples=True,
                       labels=("toy", "toy+linear"))
    return {"profile": prof, "bench": json.loads(json.dumps(b.to_dict(), default=str)),
            "compare": json.loads(json.dumps(c.to_dict(), default=str)), "scale": scale_dict()}


def _check_files(paths, kind_heading: str):
    md = paths.markdown.read_text()
    page = paths.html.read_text()
    assert md.startswith("# ") and kind_heading in md
    # every figure the Markdown references exists as a PNG beside it
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert refs and len(refs) == len(paths.figures)
    for ref in refs:
        data = (paths.markdown.parent / ref).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    # the HTML carries the same figures inline and loads nothing from outside
    inline = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(inline) == len(refs)
    assert all(base64.b64decode(x).startswith(PNG_MAGIC) for x in inline)
    assert not re.search(r'(src|href)="(https?:|//|figures/)', page)
    assert "Made by" in md and "fingerprint" in md
    return md, page


@pytest.mark.parametrize("kind, heading", [("profile", "## Profile: Sequential"), ("bench", "## Benchmark: Sequential"),
                                           ("compare", "## Comparison: toy+linear against toy"),
                                           ("scale", "## Scaling search: efficientnet at φ = 1")])
def test_each_kind_gives_markdown_and_html(results, tmp_path, kind, heading):
    src = tmp_path / f"{kind}.json"
    src.write_text(json.dumps(results[kind]))
    assert result_kind(results[kind]) == kind
    paths = write_report([src], tmp_path / "out")
    md, page = _check_files(paths, heading)
    assert paths.inputs == [{"source": str(src), "kind": kind}]
    if kind == "profile":
        # the hand-derived counts reach the tables
        assert "| conv.standard | 1 | 13,824 |" in md and "| conv.depthwise | 1 | 4,608 |" in md
        assert "**MACs 23,552**" in md and "<strong>MACs 23,552</strong>" in page
    if kind == "bench":
        assert "throughput" in md and "share of MACs against share of time" in md and "Roofline" in md
    if kind == "compare":
        assert "Mann-Whitney p" in md
    if kind == "scale":
        assert "Pareto" in md and "φ sweep" in md and "2^φ" in md


def test_all_kinds_in_one_report_from_the_cli(results, tmp_path, capsys):
    files = []
    for kind, d in results.items():
        p = tmp_path / f"{kind}.json"
        p.write_text(json.dumps(d))
        files.append(str(p))
    out = tmp_path / "all"
    assert cli.main(["report", *files, "--out", str(out), "--title", "All four", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [i["kind"] for i in info["inputs"]] == ["profile", "bench", "compare", "scale"]
    md = Path(info["markdown"]).read_text()
    assert md.startswith("# All four")
    assert len(info["figures"]) >= 7  # cost shares, throughput, MACs vs time, roofline, samples, Pareto, φ
    assert sorted(os.listdir(out)) == ["figures", "report.html", "report.md"]


@pytest.mark.parametrize("content, reason", [
    ('{"hello": 1}', "not a scaleprof"),
    ('{"scaleprof_baseline": 1, "cost": {}}', "a baseline file"),
    ("{oops", "not valid JSON"),
    ('{"totals": {"macs": 1}, "by_kind": {"conv.standard": 5}}', "malformed profile result"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, content, reason):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    assert cli.main(["report", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and reason in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_unwritable_output_folder(results, tmp_path, capsys):
    src = tmp_path / "p.json"
    src.write_text(json.dumps(results["profile"]))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli.main(["report", str(src), "--out", str(blocker / "sub")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(ScaleprofError):
        write_report([], tmp_path / "o")


def test_rewrite_replaces_whole_files(results, tmp_path):
    out = tmp_path / "out"
    write_report([results["profile"]], out)
    first = (out / "report.md").read_text()
    write_report([results["profile"], results["scale"]], out)
    second = (out / "report.md").read_text()
    assert second != first and "Scaling search" in second
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed")
def test_html_renders_with_plots_in_a_real_browser(results, tmp_path):
    from PIL import Image

    paths = write_report([results["profile"], results["bench"]], tmp_path / "out")
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}", f"--screenshot={shot}", "--window-size=1200,2000",
           paths.html.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2000)
    colours = img.getcolors(maxcolors=1 << 20)
    assert len(colours) > 300  # text, tables and anti-aliased plots; a blank or error page has a handful
    # the plots' blue (#4063d8) appears only inside rendered figures (CSS uses other colours)
    blue = sum(n for n, (r, g, b) in colours if abs(r - 0x40) < 12 and abs(g - 0x63) < 12 and abs(b - 0xd8) < 12)
    assert blue > 500, f"no plot pixels found ({blue})"
    # and the page is not blank: a report page is mostly white, but not all of it
    white = sum(n for n, c in colours if min(c) > 245)
    assert white < 0.97 * img.size[0] * img.size[1]


def test_check_and_zoo_results_are_reported_too(tmp_path):
    check_json = {"verdict": "regression", "model": "toy", "notes": ["module `4` (new): MACs +100, params +110"],
                  "checks": [{"metric": "macs", "baseline": 18_944, "current": 19_044, "change": 100 / 18_944,
                              "limit": 0.0, "verdict": "regression"}]}
    zoo_json = [{"name": "resnet18", "family": "resnet", "input": "1x3x224x224", "params": 11_689_512,
                 "macs": 1_814_073_344, "published_params": 11_689_512, "published_macs": 1_814_073_344,
                 "published_source": "torchvision"}]
    paths = write_report([check_json, zoo_json], tmp_path / "out")
    md = paths.markdown.read_text()
    assert "Verdict: **regression**" in md and "| macs | 18,944 | 19,044 | +0.53% | ±0.00% | regression |" in md
    assert "| resnet18 | resnet | 1x3x224x224 | 11,689,512 |" in md
    assert "<strong>regression</strong>" in paths.html.read_text()


def test_the_one_set_of_number_formatters():
    from scaleprof.report.tables import binary_bytes, ci_rel, fixed, human, ms, num, or_dash, pct, sig

    assert (human(1_234_567, "MACs"), num(18944), num(1234.5), num(0.123456, 4)) == \
        ("1.235 MMACs", "18,944", "1,234.5", "0.1235")
    assert (ms(1.23456), pct(0.1234), pct(-0.05, digits=2, signed=True), ms(None), pct(None)) == \
        ("1.235", "12.3", "-5.00", "", "")
    assert (sig(12.3456), sig(1234.56), fixed(4.1e8, 1e9), fixed(5_288_548, 1e6), or_dash(1.5, "{:.2f}")) == \
        ("12.35", "1235", "0.410", "5.289", "1.50")
    assert (binary_bytes(512), binary_bytes(1536), binary_bytes(3 << 30)) == ("512 B", "1.5 KiB", "3.0 GiB")
    # half-width 0.6 of the median 10 (the larger side): ±6.0%
    assert ci_rel(10.0, (9.5, 10.6)) == "±6.0%"
    assert {sig(None), fixed(None), or_dash(None), binary_bytes(None), ci_rel(10.0, None)} == {"-"}
