"""Issue 11: the counter against the outside world (models it was not tuned to, silent incompleteness)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import scaleprof
from scaleprof import cli
from scaleprof.gate import check


class Bessel(nn.Module):
    """A linear layer, then an op no formula covers (special_bessel_j0)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.special.bessel_j0(self.fc(x))


# --- item 11: incompleteness is loud ------------------------------------------------------------------------

def test_profile_says_complete_or_not_in_every_format(capsys):
    r = scaleprof.profile(Bessel(), [(2, 4)])
    assert r.uncounted_ops == {"aten::special_bessel_j0": 1} and r.complete is False
    d = r.to_dict()
    assert d["complete"] is False and d["uncounted_ops"] == {"aten::special_bessel_j0": 1}
    assert scaleprof.profile(nn.Linear(4, 3), [(2, 4)]).to_dict()["complete"] is True

    from scaleprof.report.tables import format_profile

    text = format_profile(r)
    # said in the header, above the numbers, not only in a footnote
    head = text.split("\n\n")[0]
    assert "INCOMPLETE" in head and "aten::special_bessel_j0 x1" in head
    assert "INCOMPLETE" in format_profile(r, fmt="markdown")
    assert "INCOMPLETE" not in format_profile(scaleprof.profile(nn.Linear(4, 3), [(2, 4)]))


def test_cli_profile_warns_on_stderr_and_json_carries_complete(write_model, capsys):
    path = write_model("""
        import torch
        from torch import nn

        class Bessel(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                return torch.special.bessel_j0(self.fc(x))
    """, "bessel.py")
    assert cli.main(["profile", f"{path}:Bessel", "--input", "2x4", "--json"]) == 0
    out = capsys.readouterr()
    d = json.loads(out.out)
    assert d["complete"] is False and d["totals"]["macs"] == 2 * 4 * 3
    assert "INCOMPLETE" in out.err and "aten::special_bessel_j0" in out.err
    assert cli.main(["profile", f"{path}:Bessel", "--input", "2x4", "--format", "csv"]) == 0
    assert "INCOMPLETE" in capsys.readouterr().err


def test_crosscheck_says_when_every_peer_misses_the_same_op():
    pytest.importorskip("fvcore")
    from scaleprof.counting.peers import crosscheck
    from scaleprof.report.tables import format_crosscheck

    m = Bessel()
    cc = crosscheck(m, [torch.randn(2, 4)], peers=("fvcore", "torch"))
    # both peers agree with scaleprof's 24 MACs, and all three leave bessel_j0 out
    assert cc.ours_macs == 24 and all(p.macs_equivalent == 24 for p in cc.peers)
    assert cc.missed_by_all() == ["aten::special_bessel_j0"]
    assert cc.to_dict()["missed_by_all"] == ["aten::special_bessel_j0"]
    text = format_crosscheck(cc)
    assert "every counter misses aten::special_bessel_j0" in text
    # an op only scaleprof misses is still named, but not as missed by all
    full = crosscheck(nn.Linear(4, 3), [torch.randn(2, 4)], peers=("torch",))
    assert full.missed_by_all() == [] and full.missing_lines() == []


CHECK_MODEL = """
    import torch
    from torch import nn

    def make(bessel=0):
        layers = [nn.Linear(4, 3)]
        if int(bessel):
            layers.append(Bessel())
        m = nn.Sequential(*layers)
        m.default_input = (2, 4)
        return m

    class Bessel(nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(x)
"""


def test_check_fails_when_an_op_becomes_uncounted(write_model, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    spec = f"{write_model(CHECK_MODEL, 'net.py')}:make"
    base = tmp_path / "base.json"
    assert check(spec, save=base).verdict == "pass"
    assert "uncounted_ops" not in json.loads(base.read_text())["cost"]   # a complete model's baseline as before
    # the new op adds no MAC, FLOP or param it can count: only the uncounted row catches it
    code = cli.main(["check", spec, "--arg", "bessel=1", "--baseline", str(base), "--json"])
    assert code == 1
    rows = {r["metric"]: r for r in json.loads(capsys.readouterr().out)["checks"]}
    row = rows["uncounted[aten::special_bessel_j0]"]
    assert row["verdict"] == "regression" and (row["baseline"], row["current"]) == (0, 1)
    assert all(r["verdict"] == "pass" for m, r in rows.items() if not m.startswith("uncounted"))
    # a baseline that already lists it: passes (the model did not change)
    base2 = tmp_path / "base2.json"
    check(spec, save=base2, knobs={"bessel": 1})
    assert json.loads(base2.read_text())["cost"]["uncounted_ops"] == {"aten::special_bessel_j0": 1}
    assert check(spec, baseline=base2, knobs={"bessel": 1}).verdict == "pass"


# --- item 1: the meta attempt leaves the model as found, and the CPU retry counts ----------------------------

class CachesAnchors(nn.Module):
    """Like torchvision's AnchorGenerator: a plain list of tensors moved to the input's device and cached,
    then a data-dependent op (meta tensors hold no values: the forward must be retried on CPU)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.cell_anchors = [torch.ones(4), torch.full((4,), 2.0)]

    def forward(self, x):
        self.cell_anchors = [a.to(x.device) for a in self.cell_anchors]
        self.seen = x.device.type   # a new attribute: gone afterwards too
        y = self.fc(x) * self.cell_anchors[1]
        keep = int((y > -1e9).sum())   # data-dependent: needs values
        return y.flatten()[:keep]


def test_meta_attempt_does_not_survive_and_cpu_retry_counts(capsys):
    m = CachesAnchors()
    anchors, first = m.cell_anchors, m.cell_anchors[0]
    r = scaleprof.profile(m, [(2, 4)])
    assert r.counted_on == "cpu" and "counted on cpu" in r.notices[0]
    assert r.totals.macs == 2 * 4 * 4 and r.totals.params == 20
    # the model as found: the same list object holding the same CPU tensors, no new attribute
    assert m.cell_anchors is anchors and m.cell_anchors[0] is first
    assert all(a.device.type == "cpu" for a in m.cell_anchors) and not hasattr(m, "seen")
    assert m(torch.ones(2, 4)).shape == (8,)   # the user's model still runs


@pytest.mark.slow   # a detection model's forward on CPU: `make test-slow`
@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn"])
def test_torchvision_detection_counts_and_is_left_as_found(name):
    detection = pytest.importorskip("torchvision.models.detection")
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    m = getattr(detection, name)(weights=None, weights_backbone=None).eval()
    x = torch.randn(1, 3, 320, 320)
    # AnchorGenerator caches cell_anchors, a plain list of tensors: after the meta attempt they must not be meta
    r = scaleprof.profile(m, [x], quiet=True)
    assert r.counted_on == "cpu"
    anchors = m.anchor_generator.cell_anchors
    assert all(a.device.type == "cpu" for a in anchors)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m([x[0]])   # the user's model still runs
    # products only, 2 FLOPs per MAC; torch has no formula for the roi_align/nms custom ops, nor does scaleprof
    # count a MAC in them
    assert r.totals.macs == fc.get_total_flops() // 2


def test_in_place_changes_to_a_cached_list_are_undone():
    class InPlace(CachesAnchors):
        def forward(self, x):
            self.cell_anchors[0] = self.cell_anchors[0].to(x.device)
            self.register_buffer("scratch", torch.zeros(1, device=x.device))
            return self.fc(x)

    m = InPlace()
    first = m.cell_anchors[0]
    scaleprof.profile(m, [(2, 4)])
    assert m.cell_anchors[0] is first and "scratch" not in dict(m.named_buffers())


# --- item 4: the CPU fallback refuses what it cannot allocate ----------------------------------------------

META_BUILT = """
    import torch
    from torch import nn

    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1000, 1000)
            self.register_buffer("scale", torch.ones(1000))

        def forward(self, x):
            y = self.fc(x) * self.scale
            return y[: int((y > 0).sum())]   # needs values: no meta run

    def make():
        with torch.device("meta"):
            m = DataDependent()
        m.default_input = (2, 1000)
        return m
"""


def test_memory_estimate_by_hand():
    from scaleprof.counting.host_memory import available_bytes, stand_in_bytes
    from scaleprof.shapes import InputSpec

    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(1000, 1000), nn.BatchNorm1d(1000))
    cpu = torch.device("cpu")
    parts = stand_in_bytes(m, cpu, None, [InputSpec((2, 1000))])
    # weights 1000·1000 + 1000 bias + 2·1000 affine, float32; buffers: running mean and var 2·1000 float32 and
    # num_batches_tracked one int64; input 2·1000 float32
    assert parts == {"parameters": 4 * 1_003_000, "buffers": 4 * 2000 + 8, "inputs": 4 * 2000}
    half = stand_in_bytes(m, cpu, torch.float16, [InputSpec((2, 1000), torch.float16)])
    assert half == {"parameters": 2 * 1_003_000, "buffers": 2 * 2000 + 8, "inputs": 2 * 2000}
    # a model already on cpu at its dtype: its parameters are used, not copied
    assert stand_in_bytes(nn.Linear(10, 10), cpu, None, [])["parameters"] == 0
    assert available_bytes("MemTotal: 100 kB\nMemAvailable:    2048 kB\n") == 2048 * 1024
    assert available_bytes("nothing here") is None


def test_cpu_fallback_refuses_beyond_available_memory(write_model, monkeypatch, capsys, tmp_path):
    from scaleprof.counting import host_memory
    from scaleprof.errors import ScaleprofError

    spec = f"{write_model(META_BUILT, 'dd.py')}:make"
    r = scaleprof.profile(spec, quiet=True)   # enough memory: counted on cpu
    assert r.counted_on == "cpu" and r.totals.macs == 2 * 1000 * 1000
    monkeypatch.setattr(host_memory, "available_bytes", lambda: 1 << 20)
    with pytest.raises(ScaleprofError, match=r"needs about 5\.7 MiB .* but 1\.0 MiB is available"):
        scaleprof.profile(spec, quiet=True)
    # the CLI: exit 2 with one line; and check, with the baseline's inputs driving the count, the same guard
    assert cli.main(["profile", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1.0 MiB is available" in err[0]
    base = tmp_path / "b.json"
    monkeypatch.setattr(host_memory, "available_bytes", lambda: None)   # unreadable: no guard
    assert check(spec, save=base, inputs=["3x1000"]).verdict == "pass"
    monkeypatch.setattr(host_memory, "available_bytes", lambda: 1 << 20)
    assert cli.main(["check", spec, "--baseline", str(base)]) == 2
    assert "1.0 MiB is available" in capsys.readouterr().err


# --- item 5: --dtype float16 / bfloat16 in profile and check --------------------------------------------------

HALF_TOY = """
    import torch
    from torch import nn

    def make(data_dependent=0):
        layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)]
        if int(data_dependent):
            layers.append(Nonzero())
        m = nn.Sequential(*layers).eval()
        m.default_input = (1, 3, 8, 8)
        return m

    class Nonzero(nn.Module):
        def forward(self, x):
            return x[: int((x > -1e9).sum())]
"""


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cli_dtype_halves_bytes_in_profile_and_check(write_model, tmp_path, capsys, monkeypatch, dtype):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    spec = f"{write_model(HALF_TOY, 'half.py')}:make"
    got = {}
    for dt in ("float32", dtype):
        assert cli.main(["profile", spec, "--dtype", dt, "--json"]) == 0
        got[dt] = json.loads(capsys.readouterr().out)
    half, full = got[dtype], got["float32"]
    assert half["dtype"] == dtype and half["inputs"] == [f"1x3x8x8:{dtype}"]
    # every tensor this model reads or writes is floating point: bytes exactly half, every count the same
    assert half["totals"]["bytes"] * 2 == full["totals"]["bytes"] == 34_640
    assert {k: v for k, v in half["totals"].items() if k != "bytes"} == \
           {k: v for k, v in full["totals"].items() if k != "bytes"}
    # the CPU fallback counts at the dtype too (the inputs are made at it)
    assert cli.main(["profile", spec, "--arg", "data_dependent=1", "--dtype", dtype, "--json"]) == 0
    fb = json.loads(capsys.readouterr().out)
    assert fb["counted_on"] == "cpu" and fb["totals"]["macs"] == full["totals"]["macs"]
    assert fb["by_kind"]["linear"]["bytes"] * 2 == full["by_kind"]["linear"]["bytes"]
    # check: a baseline saved at the dtype keeps it, is checked at it, and a float32 count differs from it
    base = tmp_path / "b.json"
    assert cli.main(["check", spec, "--dtype", dtype, "--save", str(base)]) == 0
    stored = json.loads(base.read_text())
    assert stored["dtype"] == dtype and stored["cost"]["totals"]["bytes"] == 17_320
    assert cli.main(["check", spec, "--baseline", str(base)]) == 0
    capsys.readouterr()
    assert cli.main(["check", spec, "--dtype", "float32", "--baseline", str(base), "--json"]) == 1
    rows = {r["metric"]: r for r in json.loads(capsys.readouterr().out)["checks"]}
    assert (rows["bytes"]["baseline"], rows["bytes"]["current"]) == (17_320, 34_640)


# --- item 6: nested (jagged) tensors, and nothing left behind on any path -------------------------------------

def _jagged(lengths, heads=2, dim=4):
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    values = torch.randn(int(offsets[-1]), heads * dim)
    nt = torch.nested.nested_tensor_from_jagged(values, offsets)
    return nt.view(len(lengths), -1, heads, dim).transpose(1, 2)


class JaggedAttention(nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def _left_behind() -> dict:
    """Everything a count could leave behind: torch's mode stacks, global module hooks, patched functions."""
    from torch.nn.modules import module as M

    from scaleprof import no_dynamo

    return {"dispatch modes": torch._C._len_torch_dispatch_stack(),
            "function modes": len(torch.overrides._get_current_function_mode_stack()),
            "hooks": (len(M._global_forward_pre_hooks), len(M._global_forward_hooks)),
            "patched": sum(vars(f).get("__dynamo_disable") is f for f in no_dynamo.guarded()),
            "sdpa": torch.nn.functional.scaled_dot_product_attention}


def test_jagged_sdpa_is_the_sum_over_its_sequences():
    before = _left_behind()
    lq, lk = [3, 5, 2], [4, 6, 1]
    r = scaleprof.profile(JaggedAttention(), [_jagged(lq), _jagged(lk), _jagged(lk)])
    # per sequence B·H·L·S·(E + Ev) = 2·Lq·Lk·8
    assert r.totals.macs == sum(2 * a * b * 8 for a, b in zip(lq, lk, strict=True)) == 2 * 8 * (12 + 30 + 2)
    assert r.uncounted_ops == {}
    assert _left_behind() == before
    # plain jagged attention still runs after the count, with nothing of scaleprof's in the way
    out = torch.nn.functional.scaled_dot_product_attention(_jagged(lq), _jagged(lk), _jagged(lk))
    assert out.is_nested


class Boom(RuntimeError):
    pass


def _raise(*a, **k):
    raise Boom("forced")


@pytest.mark.parametrize("stage", ["pre_hook", "post_hook", "on_op", "run_function", "backward", "forward_meta",
                                   "forward_both", "formula"])
def test_nothing_is_left_behind_when_a_stage_fails(stage, monkeypatch):
    from scaleprof.counting import formulas, recorder
    from scaleprof.errors import ScaleprofError

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            if stage.startswith("forward") and (x.device.type == "meta" or stage == "forward_both"):
                raise Boom("the model's own failure")
            y = self.fc(x).view(1, 1, 2, 8)
            return torch.nn.functional.scaled_dot_product_attention(y, y, y)

    before = _left_behind()
    target = {"pre_hook": (recorder.Recorder, "_pre_hook"), "post_hook": (recorder.Recorder, "_post_hook"),
              "on_op": (recorder.Recorder, "on_op"), "run_function": (recorder.Recorder, "run_function"),
              "backward": (recorder.Recorder, "backward")}.get(stage)
    if target is not None:
        monkeypatch.setattr(*target, _raise)
    if stage == "formula":   # a formula's failure lists the op and the count goes on
        monkeypatch.setitem(formulas._REGISTRY, "aten::addmm", _raise)
        r = scaleprof.profile(Net(), [(2, 8)], quiet=True)
        assert r.uncounted_ops == {"aten::addmm": 1} and not r.complete
    elif stage == "forward_meta":   # fails on meta, counted on the CPU retry
        assert scaleprof.profile(Net(), [(2, 8)], quiet=True).counted_on == "cpu"
    else:
        with pytest.raises((Boom, ScaleprofError)):
            scaleprof.profile(Net(), [(2, 8)], backward=stage == "backward", quiet=True)
    assert _left_behind() == before


def test_varlen_attention_sums_sequences_when_offsets_are_readable():
    from scaleprof.counting.formulas import varlen_attention_cost

    q = torch.empty(123, 4, 16, device="meta")
    real = torch.tensor([0, 30, 60, 90, 123], dtype=torch.int32)
    meta = torch.empty(5, dtype=torch.int32, device="meta")
    # 4 heads · (30² + 30² + 30² + 33²) scores · (16 + 16)
    assert varlen_attention_cost(q, q, q, real, real, 40, 40, masked=False).macs == 4 * (3 * 900 + 1089) * 32
    # unreadable offsets: each of the 4 sequences bounded by max_seqlen 40 (torch's figure)
    assert varlen_attention_cost(q, q, q, meta, meta, 40, 40, masked=False).macs == 4 * 4 * 1600 * 32


def test_torch_attn_varlen_attn_is_counted():
    varlen = pytest.importorskip("torch.nn.attention.varlen")
    assert varlen is not None and hasattr(torch.ops.torch_attn, "_varlen_attn")

    class Varlen(nn.Module):
        def forward(self, x, offsets):
            return torch.ops.torch_attn._varlen_attn(x, x, x, offsets, offsets, 40, 40)[0]

    x = torch.empty(123, 4, 16, dtype=torch.bfloat16, device="meta")
    r = scaleprof.profile(Varlen(), [x, torch.empty(5, dtype=torch.int32, device="meta")])
    assert r.uncounted_ops == {} and r.totals.macs == 4 * 4 * 1600 * 32


# --- item 7: nn.DataParallel with real weights -----------------------------------------------------------------

def test_data_parallel_counts_its_module_under_its_names():
    inner = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    dp = nn.DataParallel(inner)
    before = {k: v.clone() for k, v in inner.state_dict().items()}
    r = scaleprof.profile(dp, [(3, 10)], backward=True)
    fwd = 3 * (10 * 20 + 20 * 5)
    # backward: both weight gradients (fwd) and the input gradient of the second linear, 3·5·20, to reach the first
    assert r.phases["forward"].macs == fwd and r.phases["backward"].macs == fwd + 3 * 5 * 20
    assert r.totals.params == 220 + 105
    mods = r.by_module()
    assert mods["module.0"]["macs"] == 2 * 3 * 200 and mods["module.2"]["params"] == 105
    assert all(torch.equal(before[k], v) for k, v in inner.state_dict().items())


# --- item 8: a module shared by two parents -------------------------------------------------------------------

def test_shared_module_is_charged_to_the_path_of_each_call():
    shared = nn.Linear(6, 4)

    class Branch(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.shared = shared
            self.own = nn.Linear(4, width)

        def forward(self, x):
            return self.own(self.shared(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Branch(3), Branch(5)
            self.helpers = [shared]   # a plain list: no parent names it; called from the root

        def forward(self, x):
            return self.a(x).sum() + self.b(x).sum() + self.helpers[0](x).sum()

    r = scaleprof.profile(Net(), [(2, 6)])
    mods = r.by_module()
    # each call of the shared 6→4 linear on 2 rows: 48 MACs, filed under the parent that called it; the root's
    # call through the plain list (the root does not hold it as a child) under its first registered name, a.shared
    assert mods["b.shared"]["macs"] == 48 and mods["a.shared"]["macs"] == 48 + 48
    assert mods["a.own"]["macs"] == 2 * 4 * 3 and mods["b.own"]["macs"] == 2 * 4 * 5
    assert r.by_module(level=1)["a"]["macs"] == 48 + 48 + 24 and r.by_module(level=1)["b"]["macs"] == 48 + 40
    # its parameters once, with the first call that read them
    assert r.totals.params == 28 + 15 + 25 and mods["a.shared"]["params"] == 28 and mods["b.shared"]["params"] == 0


# --- item 10: missing formulas --------------------------------------------------------------------------------

@pytest.mark.parametrize("lstm", [nn.LSTM(8, 16, num_layers=2), nn.LSTM(8, 16, bidirectional=True, bias=False)],
                         ids=["2-layer", "bidirectional-no-bias"])
def test_lstm_counts_the_same_on_cpu_as_on_meta(lstm):
    meta = scaleprof.profile(lstm, [(5, 3, 8)], quiet=True)
    cpu = scaleprof.profile(lstm, [(5, 3, 8)], device="cpu", quiet=True)
    assert cpu.uncounted_ops == {} and "aten::mkldnn_rnn_layer" in cpu.by_operator()
    strip = lambda r: {k: {m: v[m] for m in ("macs", "flops", "params", "activations")}   # noqa: E731
                       for k, v in r.by_kind().items() if k != "other"}
    assert strip(cpu) == strip(meta)
    # 15 tokens; per layer and direction 4H·(I + H) MACs each: 2-layer 64·24 + 64·32; bidirectional 2 × 64·24
    per_token = 64 * 24 + 64 * 32 if lstm.num_layers == 2 else 2 * 64 * 24
    assert cpu.totals.macs == 15 * per_token


LOSSES = [
    # (loss, input shape, target, FLOPs by hand)
    # nll, mean over 4 targets: 4 negations + 4 adds + 1 divide
    (torch.nn.functional.nll_loss, (4, 5), torch.tensor([0, 1, 2, 3]), 4 + 4 + 1),
    # cross-entropy = log-softmax (5 per element, 20 elements) + the nll above
    (torch.nn.functional.cross_entropy, (4, 5), torch.tensor([0, 1, 2, 3]), 100 + 9),
    # mse, mean over 20: subtract and square 2·20, reduce 20 + 1
    (torch.nn.functional.mse_loss, (4, 5), torch.zeros(4, 5), 40 + 21),
    # 2-d cross-entropy over 2·3·3 pixels of 5 classes: log-softmax 5·90, nll 18 + 18 + 1
    (torch.nn.functional.cross_entropy, (2, 5, 3, 3), torch.zeros(2, 3, 3, dtype=torch.long), 450 + 37),
]


@pytest.mark.parametrize(("loss", "shape", "target", "flops"), LOSSES)
def test_losses_are_counted(loss, shape, target, flops):
    class Loss(nn.Module):
        def forward(self, x, y):
            return loss(x, y)

    r = scaleprof.profile(Loss(), [torch.randn(shape), target])
    assert r.uncounted_ops == {} and r.totals.flops == flops and r.totals.macs == 0


def test_loss_backward_is_counted():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 5, bias=False)

        def forward(self, x, y):
            return torch.nn.functional.nll_loss(self.fc(x), y, weight=torch.ones(5))

    r = scaleprof.profile(Net(), [torch.randn(4, 5), torch.tensor([0, 1, 2, 3])], backward=True)
    assert r.uncounted_ops == {}
    # weighted: forward 4·(1 + 1) + 4 + 1; backward 4·(1 + 1)
    assert r.by_operator()["aten::nll_loss_forward"]["flops"] == 13
    assert r.by_operator()["aten::nll_loss_backward (backward)"]["flops"] == 8


def test_scaled_mm_fp8():
    class Scaled(nn.Module):
        def forward(self, a, b):
            one = torch.ones((), device=a.device)
            return torch._scaled_mm(a, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    fp8 = torch.float8_e4m3fn
    r = scaleprof.profile(Scaled(), [torch.empty(48, 80, dtype=fp8, device="meta"),
                                     torch.empty(112, 80, dtype=fp8, device="meta")])
    assert r.uncounted_ops == {} and r.totals.macs == 48 * 80 * 112
    # 2 per MAC + the scaling of each of the 48·112 outputs
    assert r.by_operator()["aten::_scaled_mm"]["flops"] == 2 * 48 * 80 * 112 + 48 * 112


def _eager_attention(name):
    class Eager(nn.Module):
        """HF's eager attention: projections, then QKᵀ and AV as plain matmuls of two activations."""

        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)

        def forward(self, x):
            B, L, _ = x.shape
            q, k, v = (p(x).view(B, L, 2, 8).transpose(1, 2) for p in (self.q, self.k, self.v))
            w = torch.softmax(torch.matmul(q, k.transpose(2, 3)) / 8 ** 0.5, dim=-1)
            return torch.matmul(w, v)

    Eager.__name__ = name
    return Eager()


def test_eager_attention_products_are_attention_like_sdpa():
    r = scaleprof.profile(_eager_attention("LlamaAttention"), [(2, 5, 16)])
    k = r.by_kind()
    # QKᵀ and AV: B·H·L·S·(E + Ev) = 2·2·5·5·16; the projections 3 · 2·5·16·16
    assert k["attention"]["macs"] == 2 * 2 * 5 * 5 * 16 and k["linear"]["macs"] == 3 * 2 * 5 * 256
    assert "matmul" not in k
    # the same products in a module that is not an attention layer stay matmul
    other = scaleprof.profile(_eager_attention("Mixer"), [(2, 5, 16)]).by_kind()
    assert other["matmul"]["macs"] == 1600 and "attention" not in other


def test_sdpa_backward_kind_with_parameter_qkv_in_float32():
    class Params(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Parameter(torch.randn(1, 2, 4, 8))
            self.kv = nn.Parameter(torch.randn(1, 2, 6, 8))

        def forward(self, x):
            return torch.nn.functional.scaled_dot_product_attention(self.q, self.kv, self.kv) * x

    r = scaleprof.profile(Params(), [(1,)], backward=True)
    # backward 2 × forward, all attention: 2 · 2·4·6·16
    assert r.by_kind("backward")["attention"]["macs"] == 2 * 2 * 4 * 6 * 16
    assert "linear" not in r.by_kind("backward")


# --- item 3: quantized (int8) models count as their float model ------------------------------------------------

class _QuantNet(nn.Module):
    def __init__(self):
        super().__init__()
        import torch.ao.quantization as Q

        self.quant, self.dequant = Q.QuantStub(), Q.DeQuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.add = torch.ao.nn.quantized.FloatFunctional()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = self.quant(x)
        y = self.relu(self.conv(x))
        y = self.pool(self.add.add_relu(self.conv2(y), y))
        return self.dequant(self.fc(y.flatten(1)))


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    for e in ("fbgemm", "qnnpack"):
        if e in engines:
            return e
    pytest.skip("no quantized engine (fbgemm, qnnpack)")


def test_quantized_model_counts_as_its_float_model(monkeypatch):
    import warnings

    import torch.ao.quantization as Q

    engine = _engine()
    monkeypatch.setattr(torch.backends.quantized, "engine", engine)
    m = _QuantNet().eval()
    fl = scaleprof.profile(m, [(1, 3, 8, 8)], quiet=True)
    m.qconfig = Q.get_default_qconfig(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Q.prepare(m, inplace=True)
        m(torch.randn(1, 3, 8, 8))
        Q.convert(m, inplace=True)
    q = scaleprof.profile(m, [(1, 3, 8, 8)], quiet=True)
    assert q.uncounted_ops == {}
    # conv 8·64·27 + depthwise 8·64·9 + fc 128·10 MACs; params 224 + 80 + 1290 from the packed weights
    assert q.totals.macs == fl.totals.macs == 8 * 64 * 27 + 8 * 64 * 9 + 1280
    assert q.totals.params == fl.totals.params == 224 + 80 + 1290
    for metric in ("flops", "activations"):
        assert getattr(q.totals, metric) == getattr(fl.totals, metric), metric
    kinds = q.by_kind()
    assert kinds["conv.depthwise"]["macs"] == 8 * 64 * 9 and kinds["linear"]["macs"] == 1280
    # bytes at int8: the fc reads a 128-byte quint8 input, 1280 int8 weights and a 40-byte bias, writes 10 bytes
    assert q.by_operator()["quantized::linear"]["bytes"] == 128 + 1280 + 40 + 10
    assert q.totals.bytes < fl.totals.bytes / 3


def test_dynamic_quantized_linear(monkeypatch):
    import warnings

    import torch.ao.quantization as Q

    monkeypatch.setattr(torch.backends.quantized, "engine", _engine())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = Q.quantize_dynamic(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)), {nn.Linear},
                               dtype=torch.qint8)
    r = scaleprof.profile(m, [(2, 16)], quiet=True)
    assert r.uncounted_ops == {} and r.totals.macs == 2 * (16 * 8 + 8 * 4) and r.totals.params == 136 + 36


def test_a_quantized_module_called_twice_counts_its_parameters_once(monkeypatch):
    import warnings

    import torch.ao.quantization as Q

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.other = nn.Linear(8, 8), nn.Linear(8, 8)   # the same shape: two sets of weights

        def forward(self, x):
            return self.other(self.fc(self.fc(x)))

    monkeypatch.setattr(torch.backends.quantized, "engine", _engine())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = Q.quantize_dynamic(Twice(), {nn.Linear}, dtype=torch.qint8)
    r = scaleprof.profile(m, [(2, 8)], quiet=True)
    # three 2x8x8 products; the parameters of two linears (72 each), the shared one counted once
    assert r.uncounted_ops == {} and r.totals.macs == 3 * 2 * 64 and r.totals.params == 2 * 72


# --- item 9: flex_attention ----------------------------------------------------------------------------------

def test_flex_attention_counts_products_and_score_mod():
    fa = pytest.importorskip("torch.nn.attention.flex_attention")

    def relative(score, b, h, q_idx, kv_idx):
        return score + (q_idx - kv_idx)   # 2 FLOPs per score

    class Flex(nn.Module):
        def __init__(self, score_mod=None):
            super().__init__()
            self.score_mod = score_mod

        def forward(self, q, k, v):
            return fa.flex_attention(q, k, v, score_mod=self.score_mod)

    flag = fa._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG
    shapes = [(1, 2, 16, 8), (1, 2, 32, 8), (1, 2, 32, 8)]
    plain = scaleprof.profile(Flex(), shapes, quiet=True).by_operator()["higher_order::flex_attention"]
    # B·H·L·S·(E + Ev) = 2·16·32·16; FLOPs 2 per MAC + Q's scaling (2·16·8) + softmax 5 per score (1024 scores)
    assert plain["macs"] == 16384 and plain["flops"] == 2 * 16384 + 256 + 5 * 1024
    r = scaleprof.profile(Flex(relative), shapes, quiet=True)
    assert r.uncounted_ops == {} and r.by_kind()["attention"]["macs"] == 16384
    assert r.by_operator()["higher_order::flex_attention"]["flops"] == plain["flops"] + 2 * 1024
    assert fa._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG == flag   # put back


# --- item 12: a library adds its own formula (scaleprof.counting.register) ------------------------------------

def test_register_a_formula_for_a_torch_library_custom_op():
    from scaleprof.counting import Args, Cost, register

    @torch.library.custom_op("outside_test::gated_linear", mutates_args=())
    def gated_linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x @ w.t()) * (x @ w.t())

    @gated_linear.register_fake
    def _(x, w):
        return x.new_empty(x.shape[0], w.shape[0])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 4))

        def forward(self, x):
            return torch.ops.outside_test.gated_linear(x, self.w)

    before = scaleprof.profile(Net(), [(3, 4)])
    assert before.uncounted_ops == {"outside_test::gated_linear": 1} and not before.complete

    @register("outside_test::gated_linear")
    def gated_linear_cost(a: Args, out) -> Cost:
        # the arguments by the op's schema names; kind None: a product with a parameter operand is "linear"
        macs = a["x"].shape[0] * a["x"].shape[1] * a["w"].shape[0]
        return Cost(macs, 2 * macs + 6 * out.numel())   # + sigmoid (4) and the gate multiply, twice the product

    r = scaleprof.profile(Net(), [(3, 4)])
    assert r.complete and r.totals.macs == 3 * 4 * 6 and r.totals.flops == 2 * 72 + 6 * 18
    assert r.by_kind()["linear"]["params"] == 24
    with pytest.raises(ValueError, match="registered twice"):
        register("outside_test::gated_linear")(gated_linear_cost)
    with pytest.raises(ValueError, match="no op torch knows"):
        register("outside_test::no_such_op")(gated_linear_cost)


# --- the crosscheck report gains the outside world --------------------------------------------------------------

def test_crosscheck_report_outside_rows_and_misses(tmp_path):
    pytest.importorskip("fvcore")
    from scaleprof.dev import build_reports as B
    from scaleprof.dev.driver import Store
    from scaleprof.dev.outside_models import engine
    from scaleprof.report.document import Document

    if engine() is None:
        pytest.skip("no quantized engine")
    done = B._outside_rows(Store(tmp_path))
    quant = [d for d in done if d["group"] == "quantized"]
    assert len(quant) == 2 and all(d.get("status") != "failed" for d in quant)
    for d in quant:   # counted as the float model it came from
        assert d["scaleprof_macs"] == d["float_model"]["macs"] > 0 and d["scaleprof_uncounted_ops"] == {}
    # conv 16·1024·27 + depthwise 16·1024·9 + fc 4096·10
    assert quant[0]["scaleprof_macs"] == 16 * 1024 * 27 + 16 * 1024 * 9 + 4096 * 10
    doc = Document("t")
    doc.add(*B.outside_section(done), *B.misses_section(done + [
        {"name": "bessel", "scaleprof_uncounted_ops": {"aten::special_bessel_j0": 1},
         "missed_by_all": ["aten::special_bessel_j0"]}]))
    from scaleprof.report.writer import write_document

    md = write_document(doc, tmp_path / "out", stem="README").markdown.read_text()
    assert "Outside the zoo" in md and "quantized conv net (int8, static)" in md
    assert "What every counter misses" in md and "`aten::special_bessel_j0` ×1 (every peer too)" in md
    assert list((tmp_path / "data").glob("outside-*.json"))   # resumable like every other piece


def test_efficient_attention_varlen_is_counted():
    class Varlen(nn.Module):
        def forward(self, x, offsets):
            return torch.ops.aten._efficient_attention_forward(x, x, x, None, offsets, offsets, 40, 40, 0.0, 0)[0]

    # (1, 123 tokens, 4 heads, 16): 4 sequences bounded by max_seqlen 40 on meta
    x = torch.empty(1, 123, 4, 16, dtype=torch.bfloat16, device="meta")
    r = scaleprof.profile(Varlen(), [x, torch.empty(5, dtype=torch.int32, device="meta")])
    assert r.uncounted_ops == {} and r.totals.macs == 4 * 4 * 1600 * 32
