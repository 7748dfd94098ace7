"""One spec edge (issue 10): shapes.py is a leaf, resolve_target turns a module or a spec into a Target once,
and every API function takes either."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import scaleprof
from scaleprof import zoo
from scaleprof.errors import ScaleprofError
from scaleprof.shapes import InputSpec
from scaleprof.spec import Target, resolve_target

ROOT = Path(scaleprof.__file__).parent

MODEL_FILE = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()

def net(c=4):
    return Net(c)

def net_default(c=4):
    m = Net(c)
    m.default_input = (2, 3, 16, 16)
    return m
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODEL_FILE)
    return str(path)


def _conv_macs(c_out, side, n=1, c_in=3, k=3):
    out = side - k + 1
    return n * c_out * out * out * c_in * k * k


def test_shapes_imports_nothing_of_scaleprof_but_errors():
    tree = ast.parse((ROOT / "shapes.py").read_text())
    ours, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                ours.add(node.module or ".")
            elif node.module != "__future__":
                others.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            others.update(a.name.split(".")[0] for a in node.names)
    assert ours == {"errors"}
    assert {m for m in others if m not in sys.stdlib_module_names} == {"torch"}, others


def test_the_zoo_stamps_its_default_input_with_the_knobs_applied():
    assert zoo.build("efficientnet_b0", device="meta", resolution=160).default_input == (1, 3, 160, 160)
    assert zoo.build("efficientnet_b3", device="meta").default_input == (1, 3, 300, 300)   # its own, B3's 300
    t = resolve_target("efficientnet_b0", knobs={"resolution": 96, "width": 0.5})
    assert t.inputs == (InputSpec((1, 3, 96, 96)),) and t.feeds == t.inputs


def test_a_spec_resolves_once_into_a_built_target(model_file):
    t = resolve_target(f"{model_file}:net", ["1x3x8x8"], knobs={"c": 6})
    assert (t.built, t.label, t.device, t.dtype, t.knobs) == (True, f"{model_file}:net", torch.device("meta"),
                                                              None, {"c": 6})
    assert not t.model.training and t.model.conv.out_channels == 6
    assert all(p.device.type == "meta" for p in t.model.parameters())
    assert resolve_target(f"{model_file}:net", ["1x3x8x8"], train=True).model.training
    # the real-weights twin (what --crosscheck counts): the same architecture on CPU, in the same mode
    real = t.materialize("cpu")
    assert real is not t.model and not real.training and real.conv.out_channels == 6
    assert all(p.device.type == "cpu" for p in real.parameters())
    on_cpu = resolve_target(f"{model_file}:net", ["1x3x8x8"], device="cpu")
    assert on_cpu.materialize("cpu") is on_cpu.model     # already there: not built twice


def test_a_users_module_is_taken_as_it_is():
    m = nn.Sequential(nn.Linear(4, 3)).train()
    t = resolve_target(m, [(2, 4)], dtype="float16")
    assert (t.built, t.model, t.label, t.dtype) == (False, m, "Sequential", torch.float16)
    assert t.inputs == (InputSpec((2, 4), torch.float16),)      # float inputs take the dtype
    assert m.training and t.materialize("cpu") is m
    with pytest.raises(ScaleprofError, match="apply to a model spec, not to a module"):
        resolve_target(m, [(2, 4)], knobs={"width": 2.0})
    with pytest.raises(ScaleprofError, match="no input shape known"):
        resolve_target(m)


def test_tensor_inputs_are_fed_as_given():
    x = torch.arange(6).reshape(1, 6)
    t = resolve_target(nn.Embedding(10, 4), [x], dtype="float16")
    assert t.inputs == (InputSpec((1, 6), torch.int64),) and t.feeds[0] is x


def test_a_target_passes_through_and_takes_no_overrides():
    t = resolve_target(nn.Linear(4, 3), ["2x4"])
    assert isinstance(t, Target) and resolve_target(t) is t
    with pytest.raises(AttributeError):
        t.device = torch.device("cpu")                  # frozen: resolved once
    with pytest.raises(ScaleprofError, match="carries its own"):
        scaleprof.profile(t, ["2x4"])


def test_profile_takes_a_spec():
    r = scaleprof.profile("resnet18", ["1x3x224x224"])
    assert (r.model, r.inputs, r.device) == ("resnet18", ["1x3x224x224"], "meta")
    assert (r.totals.macs, r.totals.params) == (1_814_073_344, 11_689_512)   # torchvision's published figures


def test_profile_of_a_spec_equals_profile_of_the_built_module(model_file):
    spec = "mobilenet_v1_025"
    of_spec = scaleprof.profile(spec, knobs={"resolution": 64}).to_dict()
    built = scaleprof.load_model(spec, device="meta", resolution=64)
    of_module = scaleprof.profile(built, name=spec).to_dict()
    assert of_spec == of_module and of_spec["inputs"] == ["1x3x64x64"]
    # a file spec with keyword arguments, counted on cpu: the conv's MACs by hand
    r = scaleprof.profile(f"{model_file}:net", "1x3x8x8", knobs={"c": 6}, device="cpu")
    assert r.totals.macs == _conv_macs(6, 8) == 5832
    # a spec is built in eval mode (batch norm then reads its running stats instead of updating them)
    module = scaleprof.load_model(f"{model_file}:net", c=6).eval()
    assert r.to_dict()["layers"] == scaleprof.profile(module, "1x3x8x8", device="cpu").to_dict()["layers"]
    # the model's own default input (the file's callable stamps it)
    d = scaleprof.profile(f"{model_file}:net_default")
    assert d.inputs == ["2x3x16x16"] and d.totals.macs == _conv_macs(4, 16, n=2)


def test_profile_at_a_dtype_counts_bytes_at_that_dtype_on_every_device(model_file):
    # float inputs follow --dtype: every tensor of this model is float, so float16 halves every byte
    f32 = scaleprof.profile(f"{model_file}:net", "1x3x8x8")
    f16 = scaleprof.profile(f"{model_file}:net", "1x3x8x8", dtype="float16")
    assert f16.inputs == ["1x3x8x8:float16"] and f16.totals.bytes * 2 == f32.totals.bytes
    cpu = scaleprof.profile(f"{model_file}:net", "1x3x8x8", dtype="float16", device="cpu")
    assert cpu.totals.bytes == f16.totals.bytes and cpu.counted_on == "cpu"


def test_profile_with_keyword_inputs_only():
    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, *, x):
            return self.fc(x)

    r = scaleprof.profile(Kw(), kwargs={"x": torch.randn(2, 4)})
    assert r.inputs == [] and r.totals.macs == 2 * 4 * 3
    t = resolve_target(Kw(), [])
    assert t.inputs == () and scaleprof.profile(t, kwargs={"x": torch.randn(2, 4)}).totals.macs == 24


def test_bench_takes_a_spec_or_a_module(model_file):
    by_spec = scaleprof.bench(f"{model_file}:net_default", knobs={"c": 6}, max_time=0.05, min_samples=3,
                              memory=False)
    assert by_spec.model == f"{model_file}:net_default" and by_spec.inputs == ["2x3x16x16"]
    assert [r.status for r in by_spec.results] == ["ok"]
    module = scaleprof.load_model(f"{model_file}:net", c=6)
    by_module = scaleprof.bench(module, "1x3x8x8", max_time=0.05, min_samples=3, memory=False)
    assert by_module.model == "Net" and [r.status for r in by_module.results] == ["ok"]


def test_cli_profile_at_float16_on_cpu(model_file, capsys):
    # it failed before the one resolver (float32 inputs met float16 weights); inputs now follow --dtype
    import json

    from scaleprof import cli

    code = cli.main(["profile", f"{model_file}:net", "--input", "1x3x8x8", "--dtype", "float16", "--device", "cpu",
                     "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and d["inputs"] == ["1x3x8x8:float16"] and d["totals"]["macs"] == _conv_macs(4, 8)


def test_hf_spec_without_transformers_says_how_to_install(monkeypatch, capsys):
    import sys

    from scaleprof.cli import main

    monkeypatch.setitem(sys.modules, "transformers", None)   # import transformers now raises ImportError
    assert main(["profile", "hf:gpt2", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'scaleprof[hf]'" in err and len(err.splitlines()) == 1
