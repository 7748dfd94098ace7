"""Runtimes that describe themselves, the memory child's model without pickle (issue 12 item 7), bench's typed
options and the resume journal bench and scale share."""

import ast
import json
import pathlib
import textwrap

import pytest
import torch
from torch import nn

from scaleprof.bench import bench, memory, recipe
from scaleprof.bench.options import BenchOptions, CompareOptions
from scaleprof.bench.runtimes import Compile, Eager, OnnxRuntime, Runtime, environment_fields, get_runtime
from scaleprof.errors import ScaleprofError
from scaleprof.runlog import Journal, RunLog
from scaleprof.spec import load_model

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "scaleprof"


class Scaled(nn.Module):
    """A user's class with plain attributes, a function attribute and a non-persistent buffer."""

    def __init__(self, k: float = 2.0):
        super().__init__()
        self.k, self.shape, self.act = k, (4, 4), torch.tanh
        self.lin = nn.Linear(4, 4)
        self.register_buffer("offset", torch.arange(4.0), persistent=False)

    def forward(self, x):
        return self.act(self.lin(x) * self.k + self.offset)


def test_runtimes_say_what_they_add_to_the_environment():
    assert Eager().env_fields() == {}
    assert Compile("max-autotune").env_fields() == {"compile_mode": "max-autotune"}
    assert OnnxRuntime(intra_op_threads=3).env_fields() == {"ort_threads": {"intra_op": 3, "inter_op": 1}}
    # several: compile modes joined, the first ONNX Runtime's threads
    together = environment_fields([Eager(), Compile(), Compile("reduce-overhead"), OnnxRuntime(2), OnnxRuntime(5)])
    assert together == {"compile_mode": "default,reduce-overhead", "ort_threads": {"intra_op": 2, "inter_op": 1}}
    assert environment_fields([Eager()]) == {}


def test_the_web_runtime_names_its_browser_and_onnxruntime_web(tmp_path, monkeypatch):
    from scaleprof.bench import web
    from scaleprof.bench.web import Web

    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'Chromium 999.0.1.2 built on Test'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SCALEPROF_CHROMIUM", str(fake))
    monkeypatch.setattr(web, "_versions", {})
    fields = Web().env_fields()
    assert fields["browser"] == "Chromium 999.0.1.2 built on Test"
    assert set(fields) == {"browser", "ort_web"}
    from scaleprof.bench.env import environment

    env = environment(**environment_fields([Eager(), Web()]))      # what bench records for a web row
    assert env["browser"] == "Chromium 999.0.1.2 built on Test" and "browser" not in environment()


def test_runtimes_say_how_their_memory_is_measured():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for rt in (Eager(), Compile()):
        assert rt.memory_plan(cpu).method == "subprocess-rss"
        assert rt.memory_plan(cuda).method == "cuda-allocator"
    assert OnnxRuntime().memory_plan(cpu).method == "subprocess-rss"
    plan = OnnxRuntime().memory_plan(cuda)
    assert plan.method == "none" and "CUDA arena" in plan.reason


def test_runtimes_rebuild_themselves_from_their_child_job():
    assert Eager().child_job(None) == {"runtime": "eager", "needs_model": True}
    rt = Runtime.from_child_job(Compile("reduce-overhead").child_job(None), threads=2)
    assert isinstance(rt, Compile) and rt.mode == "reduce-overhead"
    assert rt.baseline_imports == ("torch._dynamo", "torch._inductor.compile_fx")

    class P:  # what OnnxRuntime.prepare leaves: the exported graph and the threads the session ran with
        onnx_path, info = "/tmp/m.onnx", {"intra_op_threads": 3, "inter_op_threads": 2}

    job = get_runtime("onnxruntime:basic", threads=3).child_job(P())
    assert job == {"runtime": "onnxruntime:basic", "needs_model": False, "onnx_path": "/tmp/m.onnx",
                   "intra_op_threads": 3, "inter_op_threads": 2}
    back = Runtime.from_child_job(json.loads(json.dumps(job)), threads=1)
    assert isinstance(back, OnnxRuntime)
    assert (back.opt_level, back.intra_op_threads, back.inter_op_threads) == ("basic", 3, 2)


def test_no_source_unpickles_with_weights_only_false():
    """Every torch.load in the package passes weights_only=True (issue 12 item 7)."""
    calls = []
    for path in PACKAGE.rglob("*.py"):
        src = path.read_text()
        assert "weights_only=False" not in src, path
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, path
                calls.append(path.name)
    assert calls == ["recipe.py"]


def test_recipe_rebuilds_the_same_module_with_tied_weights_and_no_pickle(tmp_path, monkeypatch):
    torch.manual_seed(0)
    shared = nn.Linear(4, 4)
    model = nn.Sequential(Scaled(3.0), nn.BatchNorm1d(4), shared, nn.ReLU(), shared).eval()
    rec = recipe.save(model, str(tmp_path / "w.pt"))
    rec = json.loads(json.dumps(rec))  # it travels as JSON
    loads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k) or real(*a, **k))
    back = recipe.load(rec, str(tmp_path / "w.pt")).eval()
    assert loads == [{"weights_only": True, "map_location": "cpu"}]
    x = torch.randn(3, 4)
    assert torch.equal(back(x), model(x))
    assert type(back[0]) is Scaled and back[0].k == 3.0 and back[0].shape == (4, 4) and back[0].act is torch.tanh
    assert back[2].weight is back[4].weight                       # tied stays tied
    assert "offset" not in back.state_dict() and "0.offset" in dict(back.named_buffers())
    assert sum(p.numel() for p in back.parameters()) == sum(p.numel() for p in model.parameters()) == 48


def test_recipe_refuses_what_is_not_data_with_the_reason():
    class Local(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(recipe.NotRebuildable, match="not importable by name"):
        recipe.describe(Local())
    hooked = nn.Linear(2, 2)
    hooked.register_forward_hook(lambda *a: None)
    with pytest.raises(recipe.NotRebuildable, match="Linear has forward hooks"):
        recipe.describe(hooked)
    odd = Scaled()
    odd.table = object()
    with pytest.raises(recipe.NotRebuildable, match=r"Scaled\.table is a object, not data"):
        recipe.describe(odd)


def test_memory_child_rebuilds_a_module_object_from_its_recipe(tmp_path):
    """The child's model record for a module object is a recipe and a weights-only file; run in-process here."""
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
    src = memory.ModelSource(model, model, None)
    rec = src.job()
    assert set(rec) == {"recipe", "weights"} and rec["weights"].endswith(".pt")
    job = memory.make_job(model=rec, runtime=Eager().child_job(None), inputs=["2x64"], dtype="float32",
                          threads=1)
    assert memory._child_run({**json.loads(json.dumps(job)), "mode": "run"}) > 0
    src.close()
    assert not pathlib.Path(rec["weights"]).exists()


def test_an_unrebuildable_module_gets_no_memory_figure_with_the_reason():
    class Local(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return self.lin(x)

    r = bench(Local(), inputs=["1x8"], max_time=0.2, memory=True)
    row = r.results[0]
    assert row.status == "ok" and row.peak_memory_bytes is None
    assert row.details["memory"]["method"] == "subprocess-rss"
    assert row.details["memory"]["reason"].startswith("the model cannot be rebuilt in the memory subprocess "
                                                      "without pickling it: module class")


def test_memory_child_loads_a_zoo_spec_and_a_file_spec(tmp_path):
    # the zoo model: its spec and knobs travel, not the module
    assert memory.ModelSource("mobilenet_v3_small", None, {"resolution": 64}).job() == {
        "spec": "mobilenet_v3_small", "knobs": {"resolution": 64}}
    r = bench("mobilenet_v3_small", knobs={"resolution": 64}, max_time=0.2, memory=True)
    row = r.results[0]
    assert row.status == "ok", row.reason
    m = row.details["memory"]
    assert m["method"] == "subprocess-rss" and m["reason"] is None
    assert row.peak_memory_bytes == m["rss_run_bytes"] - m["rss_baseline_bytes"]
    # its float32 weights (2.5M of them) are resident in the child
    params = sum(p.numel() for p in load_model("mobilenet_v3_small", resolution=64).parameters())
    assert params > 2_500_000 and row.peak_memory_bytes >= params * 4
    # a file.py:callable spec: the child imports the file itself
    path = tmp_path / "mymodel.py"
    path.write_text(textwrap.dedent("""
        from torch import nn
        def make():
            return nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(3)])
    """))
    r = bench(f"{path}:make", inputs=["1x1024"], max_time=0.2, memory=True)
    row = r.results[0]
    assert row.status == "ok" and row.details["memory"]["reason"] is None
    assert row.peak_memory_bytes >= 3 * 1025 * 1024 * 4


def test_bench_options_hold_the_defaults_once():
    o = BenchOptions.of(max_time=None, runtimes=None, threads=None)   # None: as the CLI passes unset flags
    assert (o.max_time, o.runtimes, o.target_ci, o.memory, o.optimizer) == (10.0, ("eager",), 0.01, True, "sgd")
    assert BenchOptions.of(BenchOptions(max_time=2.0), target_ci=0.05).max_time == 2.0
    with pytest.raises(TypeError):
        BenchOptions.of(max_tim=1)
    with pytest.raises(ScaleprofError, match="--max-time must be positive, got -1"):
        bench(nn.Linear(2, 2), inputs=["1x2"], max_time=-1)
    with pytest.raises(ScaleprofError, match="--resume needs --log FILE"):
        BenchOptions.of(resume=True)
    assert (CompareOptions.of().max_time, CompareOptions.of().min_rounds) == (20.0, 20)


def test_journal_keeps_what_its_key_takes_and_writes_everything(tmp_path):
    path = tmp_path / "run.jsonl"
    keys = {"row": lambda r: r["n"] if r.get("ok") else None}
    j = Journal(RunLog(path, {"what": 1}), keys)
    j.put("row", {"n": 1, "ok": True})
    j.put("row", {"n": 2, "ok": False})
    j.close()
    assert [json.loads(x)["type"] for x in path.read_text().splitlines()] == ["header", "row", "row"]
    again = Journal(RunLog(path, {"what": 1}, resume=True), keys)
    assert again.resumed == {"row": 1} and again.get("row", 1) == {"type": "row", "n": 1, "ok": True}
    assert again.get("row", 2) is None
    again.close()
    memory_only = Journal(None, keys)
    memory_only.put("row", {"n": 3, "ok": True})
    assert memory_only.get("row", 3) == {"n": 3, "ok": True}
