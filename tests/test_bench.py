"""bench / compare end to end on tiny models defined here (no wall-clock assertions: only ratios, verdicts,
structure, and figures derived by hand)."""

import json

import pytest
import torch
from torch import nn

from scaleprof.bench import ROW_KEYS, bench, compare_models, compare_saved
from scaleprof.bench.attribution import attribute
from scaleprof.bench.env import differences, environment
from scaleprof.bench.micro import conv_configs, run_micro
from scaleprof.bench.roofline import Peaks, measure_peaks, place
from scaleprof.cli import main
from scaleprof.errors import ScaleprofError

CONTRACT = {"runtime", "device", "dtype", "batch_size", "median_ms", "mean_ms", "min_ms", "iqr_ms", "p90_ms",
            "p99_ms", "ci95_ms", "samples", "throughput", "cold_ms", "peak_memory_bytes", "mfu", "status", "reason"}


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))


def conv_block(c=64):
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU())


class Twice(nn.Module):
    """The same module run twice: twice the work of `m`."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(self.m(x))


class NoExport(nn.Module):
    """Runs eagerly, refuses every exporter."""

    def forward(self, x):
        if torch.jit.is_tracing() or torch.compiler.is_exporting() or torch.compiler.is_compiling():
            raise RuntimeError("this model refuses to be exported")
        return x * 2


def test_contract_keys_match_the_design():
    assert set(ROW_KEYS) == CONTRACT


def test_bench_rows_follow_the_contract_and_a_failing_device_does_not_stop_the_others():
    r = bench(tiny(), inputs=["1x3x32x32"], device="cuda,cpu", batch_sizes=[1, 2], max_time=0.3, memory=False,
              samples=True)
    d = json.loads(json.dumps(r.to_dict()))
    assert {"torch", "python", "cpu", "threads", "gpu", "fingerprint"} <= set(d["env"])
    rows = d["results"]
    assert [(x["device"], x["batch_size"]) for x in rows] == [("cuda", 1), ("cuda", 2), ("cpu", 1), ("cpu", 2)]
    for row in rows:
        assert set(row) == CONTRACT | {"samples_ms"}
    for row in rows[:2]:
        assert row["status"] == "failed" and "CUDA" in row["reason"] and "\n" not in row["reason"]
        assert row["median_ms"] is None
    for row in rows[2:]:
        assert row["status"] == "ok" and row["reason"] is None
        xs = sorted(row["samples_ms"])
        assert row["samples"] == len(xs)
        assert row["min_ms"] == xs[0]
        assert row["median_ms"] == pytest.approx((xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2)
        assert row["ci95_ms"][0] <= row["median_ms"] <= row["ci95_ms"][1]
        assert row["throughput"] == pytest.approx(row["batch_size"] / (row["median_ms"] / 1000))
        assert row["cold_ms"] > 0
    # without samples asked for, the rows are exactly the contract
    d2 = bench(tiny(), inputs=["1x3x32x32"], max_time=0.2, memory=False).to_dict()
    assert set(d2["results"][0]) == CONTRACT


def test_onnxruntime_graph_optimisation_level_reaches_the_session(capsys):
    r = bench(tiny(), inputs=["1x3x32x32"], runtimes="onnxruntime:disable,ort:basic,onnxruntime", max_time=0.2,
              memory=False)
    assert [(x.runtime, x.status, x.details["graph_optimization_level"]) for x in r.results] == [
        ("onnxruntime:disable", "ok", "disable"), ("onnxruntime:basic", "ok", "basic"), ("onnxruntime", "ok", "all")]
    assert main(["bench", "resnet18", "--runtime", "onnxruntime:fast"]) == 2
    err = capsys.readouterr().err
    assert "optimization level 'fast'" in err and "disable,basic,extended,all" in err


def test_unexportable_model_fails_onnxruntime_only():
    r = bench(NoExport(), inputs=["4x8"], runtimes="onnxruntime,eager", max_time=0.2, memory=False)
    ort, eager = r.results
    assert ort.status == "failed" and "ONNX export failed" in ort.reason and "\n" not in ort.reason
    assert eager.status == "ok" and eager.median_ms > 0


def test_onnxruntime_runs_a_tiny_model():
    r = bench(tiny(), inputs=["1x3x32x32"], runtimes="onnxruntime", max_time=0.3, memory=False)
    row = r.results[0]
    assert row.status == "ok", row.reason
    assert row.details["exporter"] in ("dynamo", "torchscript")
    assert row.details["intra_op_threads"] >= 1
    # export and session creation are setup: in the cold start, not in steady state
    assert row.cold_ms >= row.details["setup_ms"] > 0


def test_bad_input_is_a_scaleprof_error():
    with pytest.raises(ScaleprofError):
        bench(tiny(), inputs=["1x3x32x32"], runtimes="tensorrt")
    with pytest.raises(ScaleprofError):
        bench(tiny(), inputs=["1x3x32x32"], device="tpu")
    with pytest.raises(ScaleprofError):
        bench(tiny(), inputs=["1x3x32x32"], batch_sizes="1,x")
    with pytest.raises(ScaleprofError):
        bench(tiny())  # no input known for a plain module


def test_user_model_is_left_untouched():
    m = tiny().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    bench(m, inputs=["1x3x16x16"], max_time=0.2, memory=False, train=True, by="kind", dtype="float64")
    assert m.training
    for k, v in m.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k])
    for mod in m.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_training_step_phases_and_memory():
    # 4 convs of 256 channels: 4 * 256 * 256 * 9 weights = 2.36M parameters = 9.4 MB in float32;
    # SGD with momentum keeps weights, gradients and momentum: at least 3 * 9.4 MB resident.
    model = nn.Sequential(*[nn.Conv2d(256, 256, 3, padding=1, bias=False) for _ in range(4)])
    params = sum(p.numel() for p in model.parameters())
    r = bench(model, inputs=["1x256x8x8"], max_time=0.5, memory=True, train=True)
    (t,) = r.train
    assert t.status == "ok", t.reason
    assert set(t.phases) == {"forward", "loss", "backward", "optimizer"}
    assert all(p["median_ms"] > 0 for p in t.phases.values())
    assert sum(p["share"] for p in t.phases.values()) == pytest.approx(1.0)
    assert t.loss == "mean_square"
    assert t.memory["method"] == "subprocess-rss"
    assert t.peak_memory_bytes >= 3 * params * 4
    # the counter's estimate beside it: weights, gradients and momentum exactly, activations from meta
    est = t.memory_estimate
    assert (est["weights"], est["gradients"], est["optimizer_state"]) == (params * 4,) * 3
    assert est["activations_saved"] == 4 * 256 * 8 * 8 * 4 and est["peak_bytes"] > 3 * params * 4
    # utilisation: the counted forward + backward FLOPs per second over this machine's measured matmul peak
    assert 0 < t.mfu < 1.5 and t.hfu == t.mfu   # nothing checkpointed: nothing recomputed
    assert 0 < r.results[0].mfu < 1.5 and "mfu" in r.results[0].to_dict()
    # inference holds the weights but no gradients or momentum
    inf = r.results[0]
    assert params * 4 <= inf.peak_memory_bytes
    assert inf.details["memory"]["rss_run_bytes"] - inf.details["memory"]["rss_baseline_bytes"] == inf.peak_memory_bytes


@pytest.mark.slow  # asserts a wall-clock ratio: `make test-slow`
def test_compare_detects_double_work_and_calls_identical_models_equal():
    torch.manual_seed(0)
    base = conv_block()
    slow = compare_models(base, Twice(base), ["1x64x32x32"], max_time=4.0, threads=1)
    assert slow.verdict == "slower"
    assert slow.ratio_ci95[0] > 1.0 and slow.p_value < 0.01
    assert 1.5 < slow.ratio < 2.5  # twice the convolutions; generous for a noisy machine
    same = compare_models(base, base, ["1x64x32x32"], max_time=4.0, threads=1)
    assert same.verdict == "no difference", same.sentence()
    d = same.to_dict()
    assert {"a", "b", "ratio", "ratio_ci95", "p_value", "verdict", "rule", "env"} <= set(d)
    assert d["a"]["samples"] == d["b"]["samples"] == d["rounds"]


@pytest.mark.slow  # asserts a wall-clock ratio: `make test-slow`
def test_compare_gives_b_its_own_inputs():
    # the same net at 32 and 64 pixels: B does 4x the work only if it really runs on its own input
    base = conv_block()
    r = compare_models(base, base, ["1x64x32x32"], inputs_b=["1x64x64x64"], max_time=0.5, threads=1)
    assert r.verdict == "slower", r.sentence()
    assert r.ratio > 2.0  # 4x the pixels; generous for a noisy machine
    d = r.to_dict()
    assert d["inputs"] == ["1x64x32x32"] and d["inputs_b"] == ["1x64x64x64"]
    assert "inputs_b" not in compare_models(base, base, ["1x64x8x8"], max_time=0.2, threads=1).to_dict()


def test_verdict_rule():
    from scaleprof.bench.compare import verdict

    assert verdict((1.9, 2.1), 1e-9) == "slower"
    assert verdict((0.4, 0.6), 1e-9) == "faster"
    assert verdict((0.98, 1.03), 1e-9) == "inconclusive"    # CI includes 1 but not inside ±1% (issue 15)
    assert verdict((1.01, 1.03), 0.02) == "inconclusive"    # p >= 0.01 (issue 15: was "no difference")
    assert verdict((1.01, 1.03), 1e-9, min_effect=0.05) == "no difference"


def test_compare_saved_flags_environment_differences():
    env_a = environment(dtype="float32")
    env_b = {**env_a, "threads": env_a["threads"] + 1}
    row = {"runtime": "eager", "device": "cpu", "dtype": "float32", "batch_size": 1, "status": "ok"}
    a = {"env": env_a, "results": [{**row, "median_ms": 10.0}]}
    b = {"env": env_b, "results": [{**row, "median_ms": 15.0}]}
    d = compare_saved(a, b)
    assert d["rows"][0]["ratio"] == pytest.approx(1.5)
    assert not d["same_environment"]
    assert any(s.startswith("threads") for s in d["env_differences"])
    assert compare_saved(a, a)["same_environment"]


def test_env_fingerprint_is_stable_and_sensitive():
    a = environment(dtype="float32")
    b = environment(dtype="float32")
    c = environment(dtype="float16")
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    assert differences(a, c) == ["dtype: 'float32' != 'float16'"]
    assert a["cores"] >= 1 and a["threads"] == torch.get_num_threads()


def test_attribution_by_kind_joins_the_counter():
    model = tiny().eval()
    x = torch.randn(1, 3, 64, 64)
    a = attribute(model, [x], by="kind", iterations=5)
    rows = {r.name: r for r in a.rows}
    # MACs by hand: conv 3->16 k3 on 64x64: 16*64*64*3*9; depthwise 16 k3: 16*64*64*9; linear 16->10: 160
    std, dw, lin = 16 * 64 * 64 * 3 * 9, 16 * 64 * 64 * 9, 160
    if a.counted:
        assert rows["conv.standard"].macs == std
        assert rows["conv.depthwise"].macs == dw
        assert rows["conv.depthwise"].macs_share == pytest.approx(dw / (std + dw + lin))
        assert rows["conv.standard"].gflops > 0
    assert {"conv.standard", "conv.depthwise", "norm", "activation", "pooling", "linear"} <= set(rows)
    assert sum(r.time_share for r in a.rows) == pytest.approx(1.0)
    assert all(r.time_ms >= 0 for r in a.rows)
    for mod in model.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_attribution_by_module():
    model = tiny().eval()
    a = attribute(model, [torch.randn(1, 3, 32, 32)], by="module", iterations=3)
    names = {r.name for r in a.rows}
    assert {"0", "1", "2", "3", "4", "6"} <= names
    kinds = {r.name: r.kind for r in a.rows}
    assert kinds["3"] == "conv.depthwise" and kinds["0"] == "conv.standard"


def test_roofline_placement_and_plot(tmp_path):
    from scaleprof.bench.attribution import AttributionRow

    peaks = Peaks(device="cpu", dtype="float32", gflops=100.0, gbps=10.0, matmul_n=1, copy_bytes=1)
    rows = [AttributionRow("conv.standard", "conv.standard", 1.0, 0.6, intensity=50.0, gflops=60.0),
            AttributionRow("conv.depthwise", "conv.depthwise", 1.0, 0.4, intensity=2.0, gflops=5.0)]
    pts = place(peaks, rows)
    assert peaks.ridge == 10.0
    assert pts[0].roof_gflops == 100.0 and pts[0].bound == "compute" and pts[0].efficiency == pytest.approx(0.6)
    assert pts[1].roof_gflops == 20.0 and pts[1].bound == "memory" and pts[1].efficiency == pytest.approx(0.25)
    from scaleprof.report.plots import roofline

    png = roofline(peaks.to_dict(), [p.to_dict() for p in pts])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    measured = measure_peaks("cpu", matmul_n=128, copy_elems=1 << 16, max_time=0.2)
    assert measured.gflops > 0 and measured.gbps > 0


def test_micro_convs_have_equal_macs():
    from torch.utils.flop_counter import FlopCounterMode

    macs = []
    for _name, conv, shape, m, nbytes in conv_configs(side=8):
        x = torch.randn(shape)
        with FlopCounterMode(display=False) as fc:
            out = conv(x)
        assert fc.get_total_flops() == 2 * m  # torch counts 2 FLOPs per MAC
        # least traffic: input and weight read once, output written once, 4 bytes each in float32
        assert nbytes == 4 * (x.numel() + conv.weight.numel() + out.numel())
        macs.append(m)
    assert len(set(macs)) == 1 and macs[0] == 8 * 8 * 36864
    res = run_micro("convs", side=8, max_time=0.2)
    assert [r.name for r in res.rows] == [c[0] for c in conv_configs()]
    assert all(r.median_ms > 0 and r.gmacs_per_s > 0 for r in res.rows)
    act = run_micro("activations", shape=(1, 8, 16, 16), max_time=0.1)
    assert {r.name for r in act.rows} >= {"relu", "silu", "hardswish", "gelu"}
    assert all(r.bytes == 2 * 8 * 16 * 16 * 4 for r in act.rows)  # the tensor read once and written once


def _spec_file(write_model):
    f = write_model("""
        from torch import nn

        def tiny(width=8):
            return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    """, "tinymodel.py")
    return f"{f}:tiny"


def test_cli_bench_json_parses(write_model, capsys):
    spec = _spec_file(write_model)
    rc = main(["bench", spec, "--input", "1x3x16x16", "--max-time", "0.3", "--no-memory", "--json",
               "--arg", "width=4", "--batch", "1,2"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    d = json.loads(out.out)
    assert [r["batch_size"] for r in d["results"]] == [1, 2]
    assert all(set(r) == CONTRACT and r["status"] == "ok" for r in d["results"])


def test_cli_bench_table_and_errors(write_model, capsys):
    spec = _spec_file(write_model)
    rc = main(["bench", spec, "--input", "1x3x16x16", "--max-time", "0.2", "--no-memory", "--device", "cuda"])
    out = capsys.readouterr()
    assert rc == 2 and "failed" in out.out and "CUDA" in out.err
    rc = main(["bench", spec, "--input", "1x3x16x16", "--runtime", "nope"])
    out = capsys.readouterr()
    assert rc == 2 and out.err.count("\n") == 1 and "unknown runtime" in out.err
    rc = main(["bench", spec, "--input", "1x3x16x16", "--max-time", "0.2", "--no-memory", "--by", "kind"])
    out = capsys.readouterr()
    assert rc == 0 and "median ms" in out.out and "time by kind" in out.out


def test_cli_compare_json(write_model, capsys):
    spec = _spec_file(write_model)
    rc = main(["compare", spec, spec, "--input", "1x3x16x16", "--max-time", "1", "--json", "--threads", "1"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    d = json.loads(out.out)
    assert d["verdict"] in ("faster", "slower", "no difference", "inconclusive")
    assert d["ratio_ci95"][0] <= d["ratio"] <= d["ratio_ci95"][1]


def test_bench_log_resumes_after_a_kill_without_measuring_finished_rows_again(tmp_path, capsys):
    log = tmp_path / "bench.jsonl"
    kw = dict(inputs=["1x3x16x16"], runtimes="eager", device="cuda,cpu", batch_sizes=[1, 2], max_time=0.2,
              memory=False, train=True)
    first = bench(tiny(), log=log, **kw)
    lines = log.read_text().splitlines()
    records = [json.loads(x) for x in lines]
    assert [r["type"] for r in records] == ["header"] + ["run"] * 4 + ["train"] * 4
    assert [(r["device"], r["batch_size"], r["status"]) for r in records[1:5]] == [
        ("cuda", 1, "failed"), ("cuda", 2, "failed"), ("cpu", 1, "ok"), ("cpu", 2, "ok")]
    # killed while writing the cpu batch-2 row: header, two failed cuda rows, the cpu batch-1 row, half a line
    log.write_text("\n".join(lines[:4]) + "\n" + lines[4][:25])
    again = bench(tiny(), log=log, resume=True, **kw)
    kept = again.results[2]
    assert kept.median_ms == first.results[2].median_ms and kept.samples_ms == first.results[2].samples_ms
    assert again.results[3].status == "ok" and again.results[3].median_ms != first.results[3].median_ms
    assert [t.status for t in again.train] == [t.status for t in first.train]
    assert again.notes[0] == f"1 row(s) taken from {log}, measured by an earlier run"
    after = [json.loads(x) for x in log.read_text().splitlines()]   # the cut line is gone, no line is broken
    # failed rows are tried again (a failure may be passing: memory, a killed subprocess), ok rows are not
    assert [(r["type"], r["device"], r["batch_size"]) for r in after[4:]] == [
        ("run", "cuda", 1), ("run", "cuda", 2), ("run", "cpu", 2)] + [
        ("train", d, b) for d in ("cuda", "cpu") for b in (1, 2)]

    assert main(["bench", "resnet18", "--log", str(log), "--max-time", "0.1"]) == 2
    assert "already exists: pass --resume" in capsys.readouterr().err
    assert main(["bench", "resnet18", "--log", str(log), "--resume", "--max-time", "0.1", "--no-memory"]) == 2
    assert "is a different bench (batch_sizes: [1, 2] in the log, [1] now)" in capsys.readouterr().err
    assert main(["bench", "resnet18", "--resume"]) == 2
    assert "--resume needs --log FILE" in capsys.readouterr().err
