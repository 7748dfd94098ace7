"""Issue 15: what a newcomer meets first: messages for a mistyped model, where files go, the tables people
expect (torchinfo's summary, fvcore's flop_count_table) and the committed reports' texts."""

import pytest

from scaleprof.cli import main
from scaleprof.errors import ScaleprofError
from scaleprof.zoo.registry import closest_names, resolve


def test_unknown_model_suggests_the_closest_names_in_one_short_line(capsys):
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
