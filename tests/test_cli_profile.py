"""`scaleprof profile` and `scaleprof zoo` through the CLI: the JSON contract and exit codes."""

from __future__ import annotations

import json

import pytest

from scaleprof.cli import main


@pytest.fixture
def model_file(write_model):
    return write_model("""
        import torch.nn as nn

        def net(width=8):
            return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(width, 10))

        def not_a_module():
            return 42
    """, "net.py")


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_profile_json_contract(capsys, model_file):
    code, out, err = run(capsys, "profile", f"{model_file}:net", "--arg", "width=4", "--input", "2x3x8x8", "--json")
    assert code == 0
    d = json.loads(out)
    assert {"model", "inputs", "device", "totals", "by_kind", "layers", "uncounted_ops"} <= set(d)
    assert set(d["totals"]) == {"macs", "flops", "params", "params_trainable", "activations", "bytes"}  # design.md
    # conv 2·4·64·3·9 + linear 2·4·10
    assert d["totals"]["macs"] == 2 * 4 * 64 * 3 * 9 + 2 * 4 * 10
    assert d["inputs"] == ["2x3x8x8"]
    for kind in d["by_kind"].values():
        assert set(kind) == {"macs", "flops", "params", "activations", "bytes", "calls"}
    assert {"name", "kind", "macs", "flops", "params", "activations", "bytes"} <= set(d["layers"][0])


@pytest.mark.parametrize("by", ["kind", "module", "op", "layer"])
@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_profile_tables(capsys, model_file, by, fmt):
    code, out, _ = run(capsys, "profile", f"{model_file}:net", "--input", "1x3x8x8", "--by", by, "--format", fmt)
    assert code == 0 and out.strip()


def test_profile_zoo_default_input(capsys):
    code, out, _ = run(capsys, "profile", "efficientnet_b0", "--json")
    d = json.loads(out)
    assert code == 0 and d["inputs"] == ["1x3x224x224"] and d["totals"]["macs"] == 385_814_752


@pytest.mark.parametrize("argv,needle", [
    (["profile", "no_such_model_xyz"], "no_such_model_xyz"),
    (["profile", "{f}:missing", "--input", "1x3x8x8"], "no attribute"),
    (["profile", "{f}:not_a_module"], "not an nn.Module"),
    (["profile", "{f}:net", "--input", "1x3x8"], "rejects input"),
    (["profile", "{f}:net", "--input", "1x3xeightx8"], "malformed --input"),
    (["profile", "{f}:net", "--input", "1x3x8x8", "--dtype", "float7"], "unknown dtype"),
    (["profile", "{f}:net", "--input", "1x3x8x8", "--device", "tpu"], "device"),
    (["profile", "no_such_pkg_q.mod:fn"], "cannot import"),
])
def test_profile_bad_input_exit_2(capsys, model_file, argv, needle):
    code, out, err = run(capsys, *[a.format(f=model_file) for a in argv])
    assert code == 2 and out == ""
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_profile_crosscheck_json(capsys, model_file):
    code, out, _ = run(capsys, "profile", f"{model_file}:net", "--input", "1x3x8x8", "--crosscheck", "--json")
    d = json.loads(out)
    peers = {p["name"]: p for p in d["crosscheck"]["peers"]}
    assert set(peers) == {"fvcore", "thop", "torch"}
    # torch's counter agrees on products for a plain conv net (it reports 2 FLOPs per MAC)
    assert peers["torch"]["status"] == "ok" and peers["torch"]["macs_equivalent"] == d["totals"]["macs"]


@pytest.mark.parametrize("lib", ["torchvision", "timm"])
def test_hub_spec_when_absent_is_one_line(capsys, lib):
    import importlib.util

    if importlib.util.find_spec(lib) is not None:
        pytest.skip(f"{lib} is installed here")
    code, out, err = run(capsys, "profile", f"{lib}:resnet18")
    assert code == 2 and "does not import" in err


def test_torchvision_resnet18_when_present(capsys):
    pytest.importorskip("torchvision")
    code, out, _ = run(capsys, "profile", "torchvision:resnet18", "--input", "1x3x224x224", "--json")
    d = json.loads(out)
    assert (d["totals"]["macs"], d["totals"]["params"]) == (1_814_073_344, 11_689_512)


def test_crosscheck_leaves_the_model_untouched():
    import torch.nn as nn

    from scaleprof.counting.peers import crosscheck

    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    keys = list(m.state_dict())
    cc = crosscheck(m, ["1x3x8x8"])
    assert list(m.state_dict()) == keys  # thop's total_ops/total_params buffers stay on its copy
    assert all(not mod._forward_hooks for mod in m.modules())
    assert {p.name: p.status for p in cc.peers} == {"fvcore": "ok", "thop": "ok", "torch": "ok"}


def test_zoo_json_lists_every_model_with_its_cost(capsys):
    from scaleprof import zoo

    code, out, _ = run(capsys, "zoo", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == set(zoo.list_models())
    b0 = rows["efficientnet_b0"]
    assert (b0["params"], b0["macs"], b0["input"]) == (5_288_548, 385_814_752, "1x3x224x224")


@pytest.mark.parametrize("argv,needle", [
    (["profile", "googlenet", "--depth", "1.2"], "depth"),          # the family has no depth knob
    (["profile", "efficientnet_b0", "--width", "-1"], "width"),
    (["profile", "efficientnet_b99"], "efficientnet_b0"),            # the names that do exist are listed
])
def test_zoo_bad_knobs_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and needle in err and len(err.strip().splitlines()) == 1


def test_crosscheck_compares_forward_with_forward(capsys, model_file):
    # --backward counts the backward too; the peers count a forward, so the comparison uses our forward
    code, out, _ = run(capsys, "profile", f"{model_file}:net", "--input", "1x3x8x8", "--backward",
                       "--crosscheck", "--json")
    d = json.loads(out)
    assert d["phases"]["backward"]["macs"] > 0
    assert d["crosscheck"]["scaleprof_macs"] == d["phases"]["forward"]["macs"]
    torch_peer = next(p for p in d["crosscheck"]["peers"] if p["name"] == "torch")
    assert torch_peer["difference"] == 0


def test_profile_spec_leaves_a_user_module_in_its_mode():
    import torch.nn as nn

    from scaleprof import profile

    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).eval()
    profile(m, inputs=["2x4"], backward=True)
    assert not m.training


def test_compare_refuses_a_result_of_another_kind(capsys, tmp_path):
    p = tmp_path / "p.json"
    code, out, _ = run(capsys, "profile", "mobilenet_v3_small", "--json")
    p.write_text(out)
    code, out, err = run(capsys, "compare", str(p), str(p))
    assert code == 2 and "profile file" in err


# --- what a one-shot `profile --json` imports (issue 16) --------------------------------------------------

HEAVY = ("pandas", "matplotlib", "scipy", "onnx", "onnxruntime", "tabulate")

CLI_IMPORTS_SCRIPT = """
import contextlib, io, json, sys
from scaleprof import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = cli.main(["profile", "resnet18", "--json"])
print(json.dumps({"code": code, "macs": json.loads(out.getvalue())["totals"]["macs"],
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r or m == "torch._dynamo")}))
"""


@pytest.fixture(scope="module")
def cli_imports():
    import os
    import pathlib
    import subprocess
    import sys

    repo = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", CLI_IMPORTS_SCRIPT % (HEAVY,)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_profile_json_leaves_the_heavy_libraries_out(cli_imports):
    """A one-shot count pays torch's import and little else: the tables' pandas (and tabulate), the plots'
    matplotlib, scipy and ONNX load only for the verbs and formats that use them."""
    assert cli_imports["code"] == 0
    assert cli_imports["macs"] == 1_814_073_344     # ResNet-18 at 224, as fvcore counts it (reports/crosscheck)
    assert [m for m in cli_imports["loaded"] if m != "torch._dynamo"] == []


def test_profile_json_never_imports_dynamo(cli_imports):
    assert "torch._dynamo" not in cli_imports["loaded"]
