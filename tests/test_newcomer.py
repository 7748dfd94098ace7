"""Issue 15: what a newcomer meets first: messages for a mistyped model, where files go, the tables people
expect (torchinfo's summary, fvcore's flop_count_table) and the committed reports' texts."""

import pytest

from scaleprof.cli import main
from scaleprof.errors import ScaleprofError


def test_unknown_model_suggests_the_closest_names_in_one_short_line(capsys):
    from scaleprof.zoo.registry import closest_names, resolve

    assert closest_names("efficientnet_bo")[0] == "efficientnet_b0"  # ties keep the registry's order
    assert closest_names("ResNet18")[0] == "resnet18"
    assert closest_names("qqqqq") == []
    with pytest.raises(ScaleprofError) as exc:
        resolve("efficientnet_bo")
    assert "did you mean efficientnet_b0, " in str(exc.value) and "`scaleprof zoo`" in str(exc.value)
    assert main(["profile", "efficientnet_bo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 200 and "mobilenet_v2" not in err  # not all 34
    assert main(["profile", "qqqqq"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err and "scaleprof zoo" in err


def _tiny_spec(write_model):
    f = write_model("""
        from torch import nn

        def tiny():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    """, "tinymodel.py")
    return f"{f}:tiny"


def test_roofline_without_a_path_writes_no_file(write_model, tmp_path, monkeypatch, capsys):
    import json

    from scaleprof.bench import roofline

    fake = roofline.Peaks(device="cpu", dtype="float32", gflops=100.0, gbps=10.0, matmul_n=1, copy_bytes=1)
    monkeypatch.setattr(roofline, "measure_peaks", lambda *a, **k: fake)  # the machine's peaks are not the point
    spec = _tiny_spec(write_model)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = ["bench", spec, "--input", "1x3x8x8", "--max-time", "0.1", "--no-memory", "--json"]
    assert main([*argv, "--roofline"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["roofline"]["plot"] is None
    assert list(work.iterdir()) == [] and "give it a path, --roofline PNG" in out.err
    assert main([*argv, "--roofline", "r.png"]) == 0
    out = capsys.readouterr()
    assert (work / "r.png").read_bytes()[:4] == b"\x89PNG" and "roofline plot written to r.png" in out.err


# --- the tables people expect ------------------------------------------------------------------------------

def _frozen_net():
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)                    # 108 params, frozen
            self.body = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())  # 16 + 8
            self.head = nn.Linear(4, 2)                                              # 10
            self.stem.requires_grad_(False)

        def forward(self, x):
            x = self.body(self.stem(x))
            return self.head(x.mean((2, 3)) * 2)   # ops in the model's own forward: the (root) node

    return Net()


def test_params_split_into_trainable_and_frozen_and_the_module_tree():
    from scaleprof.counting import profile
    from scaleprof.report.tables import format_profile, profile_frame

    r = profile(_frozen_net(), ["1x3x4x4"])
    assert r.to_dict()["totals"]["params_trainable"] == 16 + 8 + 10 and r.totals.params == 142
    df = profile_frame(r, "module", 2)
    assert list(df.index) == ["stem", "body", "body.0", "body.1", "body.2", "(root)", "head", "total"]
    # MACs by hand: stem 4·16·3·9 = 1728, body.0 4·16·4 = 256, head 4·2 = 8
    assert df.loc["body", "MACs"] == 256 and df.loc["total", "MACs"] == 1728 + 256 + 8
    assert df.loc["body", "MACs %"] == pytest.approx(100 * 256 / 1992) and df.loc["total", "MACs %"] == 100
    assert df.loc["body", "params"] == 24 and df.loc["total", "calls"] == sum(x.calls for x in r.layers)
    text = format_profile(r, by="module", level=2, title="net width 2")
    assert text.startswith("net width 2  input 1x3x4x4")
    assert "params 142 (trainable 34, frozen 108)" in text
    lines = text.splitlines()
    assert any(line.startswith("  0 ") for line in lines) and any(line.startswith("total ") for line in lines)
    layer_csv = format_profile(r, by="layer", fmt="csv")
    assert layer_csv.startswith("name,module_type,") and "\n(root),Net," in layer_csv  # no index, no blank name
    assert format_profile(r, by="kind", fmt="csv").startswith("kind,calls,")
    ops = profile_frame(r, "op")
    assert "aten::empty" not in ops.index and (ops["calls"] > 0).all()   # batch norm's 0-call helper row


def test_markdown_writes_numbers_out_and_the_header_names_the_knobs(capsys):
    from torch import nn

    from scaleprof.counting import profile
    from scaleprof.report.tables import format_profile
    from scaleprof.zoo import knob_label

    r = profile(nn.Conv2d(64, 64, 3, padding=1), ["1x64x64x64"])
    md = format_profile(r, fmt="markdown")
    assert "e+" not in md and "150,994,944" in md   # 64·64·9·4096 MACs, not 1.50995e+08
    assert knob_label("efficientnet_b0") == "efficientnet_b0"
    assert knob_label("efficientnet_b0", {"width": 1.1, "depth": 1.2, "resolution": 260}) == \
        "efficientnet width 1.1 depth 1.2 resolution 260"
    assert knob_label("efficientnet_b2", {"resolution": 288}) == "efficientnet width 1.1 depth 1.2 resolution 288"
    assert main(["profile", "efficientnet_b0", "--width", "1.1", "--depth", "1.2", "--resolution", "260"]) == 0
    assert capsys.readouterr().out.startswith("efficientnet width 1.1 depth 1.2 resolution 260  input 1x3x260x260")


def test_zoo_table_has_no_nan_and_counts_with_progress(monkeypatch, capsys):
    from scaleprof import catalog
    from scaleprof.report.tables import format_zoo

    rows = [{"name": "a", "family": "f", "width": 1.0, "depth": None, "resolution": 224, "params": 5, "macs": 7,
             "published_params": None, "published_macs": None, "published_source": None}]
    assert "nan" not in format_zoo(rows).lower() and "None" not in format_zoo(rows)
    monkeypatch.setattr(catalog.zoo, "list_models", lambda: ["resnet18", "mobilenet_v2"])
    out = catalog.summary(with_cost=False, progress=True)
    err = capsys.readouterr().err
    assert [r["name"] for r in out] == ["resnet18", "mobilenet_v2"]
    assert "zoo: counting 1/2 resnet18" in err and "zoo: counting 2/2 mobilenet_v2" in err


# --- the committed reports' generators ---------------------------------------------------------------------

def test_scatter_labels_never_overlap_and_the_diagonal_is_drawn():
    from scaleprof.report.plots import label_spots, scatter_log

    names = ["a1", "a2", "a3", "a4", "a5", "close", "far"]
    xy = [(0.5, 0.5)] * 5 + [(0.52, 0.51), (0.9, 0.1)]
    spots = label_spots(xy, names)
    assert spots[4] is None  # five on one point: four corners, the fifth label is left off
    assert spots[0] is not None and spots[-1] is not None
    boxes = [(x, y, x + 0.0095 * len(n), y + 0.03) for (x, y), n in
             ((s, n) for s, n in zip(spots, names, strict=True) if s)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])  # no two overlap
    png = scatter_log([(1.0, 10.0, "a"), (2.0, 30.0, "b"), (4.0, 35.0, "c")], xlabel="x", ylabel="y", title="t",
                      rate_line="median")
    assert png[:4] == b"\x89PNG"


def test_b2_at_260_is_not_credited_to_torchvision_metadata():
    from scaleprof import zoo
    from scaleprof.zoo.published import TORCHVISION

    pub = zoo.published("efficientnet_b2")
    assert pub["input"] == "1x3x260x260" and pub["source"] != TORCHVISION and "1.088 G at 288 px" in pub["source"]
    assert "not a published figure" in pub["note"]
    at_288 = [r for r in zoo.published_rows("efficientnet_b2") if r["resolution"] == 288]
    assert at_288[0]["source"] == TORCHVISION and at_288[0]["macs"] == 1_087_529_456


def test_flops_vs_latency_never_opens_with_an_empty_table_and_stale_figures_go(tmp_path):
    from scaleprof.dev.build_reports import _drop_stale_figures, _share_blocks
    from scaleprof.report.document import Bullets, Table

    blocks = _share_blocks({"m": {"notes": ["time attribution failed: ImportError: x"]}})
    assert not any(isinstance(b, Table) for b in blocks)
    assert any(isinstance(b, Bullets) and "m: time attribution failed: ImportError: x" in b.items[0] for b in blocks)
    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "kept.png").write_bytes(b"x")
    (figs / "old.png").write_bytes(b"x")
    assert [p.name for p in _drop_stale_figures(figs, [figs / "kept.png"])] == ["old.png"]
    assert [p.name for p in figs.iterdir()] == ["kept.png"]


def test_scale_texts_phi_rows_legends_feasible_and_the_proxy():
    import pandas as pd

    from scaleprof.report.document import Para, Table
    from scaleprof.report.scale_tables import _ranked
    from scaleprof.report.sections import phi_blocks, scale_section
    from scaleprof.scaling.options import ObjectiveOptions

    sweep = [{"phi": 1, "alpha": 1.2, "beta": 1.1, "gamma": 1.15, "width": 1.1, "depth": 1.2, "resolution": 258,
              "macs": 10, "params": 5, "cost_ratio": 2.0, "formula_ratio": 1.92, "paper_model": "B1"}]
    blocks = phi_blocks(sweep)
    df = next(b for b in blocks if isinstance(b, Table)).df
    assert "model" not in df.columns and df["paper's model"].tolist() == ["B1"]
    assert "not EfficientNet-B<φ>" in next(b for b in blocks if isinstance(b, Para)).text
    cand = {"rank": 1, "alpha": 1.2, "beta": 1.1, "gamma": 1.15, "depth": 1.2, "width": 1.1, "resolution": 258,
            "macs": 10, "params": 5, "cost_ratio": 2.0, "formula_ratio": 1.92, "feasible": True, "score": -1.5,
            "arch": "x", "status": "ok"}
    text = "\n".join(_ranked([cand, {**cand, "rank": None, "feasible": False}], 5))
    assert "feasible" in text.splitlines()[1] and " yes " in text
    assert "score: what the objective ranks by" in text and "same arch: how many other grid points" in text
    sec = scale_section({"family": "f", "phi": 1, "candidates": [cand, {**cand, "rank": None, "feasible": False}],
                         "objective": "proxy", "objective_words": ObjectiveOptions(objective="proxy").words()})
    table = next(b for b in sec if isinstance(b, Table)).df
    assert isinstance(table, pd.DataFrame) and table["feasible"].tolist() == ["yes", "no"]
    assert "objective proxy naswot (EXPERIMENTAL" in sec[1].text


def test_report_micro_tables_flag_wide_cis():
    from scaleprof.dev.build_reports import _micro_ci

    assert _micro_ci({"median_ms": 1.0, "ci95_ms": [0.8, 1.3], "wide_ci": True}) == "±30.0% (wide CI)"
    assert _micro_ci({"median_ms": 2.0, "ci95_ms": [1.99, 2.02], "wide_ci": False}) == "±1.0%"
