"""Issue 15, bench side: what a newcomer reads from bench, compare and the micro-benchmarks (verdicts, hints,
progress, time bounds). Tiny models and tiny time limits; no wall-clock assertions."""

import pytest

from scaleprof.bench.env import environment
from scaleprof.bench.result import BenchResult, RunResult
from scaleprof.report.bench_tables import format_bench


def _busy_result(threads: int) -> BenchResult:
    env = {**environment(), "threads": threads, "cores": 2, "load": 5.0}
    row = RunResult(runtime="eager", device="cpu", dtype="float32", batch_size=1, median_ms=1.0, ci95_ms=[0.9, 1.1],
                    iqr_ms=0.1, p90_ms=1.2, throughput=1000.0, cold_ms=2.0, samples=10)
    return BenchResult(model="m", inputs=["1x3"], env=env, results=[row])


@pytest.mark.parametrize("threads, hinted", [(1, False), (2, True)])
def test_busy_machine_hint_only_when_more_than_one_thread(threads, hinted):
    text = format_bench(_busy_result(threads))
    assert "the machine was busy (load 5.0 on 2 cores)" in text
    assert ("(try --threads 1)" in text) is hinted


# --- compare: three verdicts, how much longer, saved files -------------------------------------------------

def test_three_verdicts():
    from scaleprof.bench.compare import verdict

    assert verdict((1.232, 1.868), 0.093) == "inconclusive"       # the case: was "no difference"
    assert verdict((0.995, 1.004), 0.5) == "no difference"        # inside ±1%, whatever p says
    assert verdict((1.2, 1.3), 1e-6) == "slower" and verdict((0.7, 0.8), 1e-6) == "faster"
    assert verdict((1.005, 1.03), 1e-6) == "inconclusive"         # straddles 1 + 1%
    assert verdict((1.2, 1.3), None) == "slower"                  # saved results without samples: the CI alone
    assert verdict(None, None) == "inconclusive"


def test_more_rounds_from_the_ci_shrinking_as_one_over_sqrt_n():
    from scaleprof.bench.compare import more_rounds

    # would be slower: the lower half-width 0.05 must shrink to 1.05 - 1.01 = 0.04: (0.05/0.04)^2 x 10 = 15.6
    assert more_rounds(1.05, (1.0, 1.1), 10) == 6
    # would be no difference: both half-widths 0.02 must shrink to 0.01: 4 x 20 rounds = 80, 60 more
    assert more_rounds(1.0, (0.98, 1.02), 20) == 60
    assert more_rounds(1.01, (0.99, 1.03), 20) is None              # on the bound: no run decides


def _compare_result(verdict, ci, rounds=20, stop="max_time"):
    from scaleprof.bench.compare import CompareResult, Side

    a = Side(label="a", median_ms=2.0, ci95_ms=None, samples=rounds, cold_ms=1.0, calls_per_block=1)
    b = Side(label="b", median_ms=3.0, ci95_ms=None, samples=rounds, cold_ms=1.0, calls_per_block=2)
    return CompareResult(a=a, b=b, ratio=1.0, ratio_ci95=ci, p_value=0.5, verdict=verdict, rounds=rounds,
                         stop_reason=stop, runtime="eager", device="cpu", dtype="float32", inputs=["1x3"], env={},
                         threads=1, max_time=5.0)


def test_inconclusive_says_how_much_longer_to_run():
    r = _compare_result("inconclusive", (0.98, 1.02))
    d = r.to_dict()
    # 60 more rounds (above), each one block of A (1 x 2 ms) and one of B (2 x 3 ms): 60 x 8 ms = 0.48 s
    assert d["more_rounds"] == 60 and d["more_seconds"] == pytest.approx(0.48)
    assert "run about 0.48 s longer (~60 more rounds: --max-time 6)" in r.sentence()
    assert "--target-ci 0.01" in _compare_result("inconclusive", (0.98, 1.02), stop="converged").sentence()
    done = _compare_result("no difference", (0.995, 1.005)).to_dict()
    assert done["more_rounds"] is None and done["more_seconds"] is None


def test_compare_records_the_threads_it_ran_with():
    import torch
    from torch import nn

    from scaleprof.bench import compare_models

    n = 2 if torch.get_num_threads() == 1 else 1
    m = nn.Linear(4, 4)
    d = compare_models(m, m, ["1x4"], max_time=0.2, threads=n).to_dict()
    assert d["threads"] == n and d["env"]["threads"] == n


def _saved(model, medians, ci, samples=None):
    env = environment()
    row = {"runtime": "eager", "device": "cpu", "dtype": "float32", "batch_size": 1, "status": "ok",
           "median_ms": medians, "ci95_ms": ci}
    if samples is not None:
        row["samples_ms"] = samples
    return {"model": model, "env": env, "results": [row]}


def test_compare_saved_gives_verdict_ci_and_names_and_report_takes_it(tmp_path, capsys):
    import json

    from scaleprof.bench import compare_saved
    from scaleprof.cli import main
    from scaleprof.detect import result_kind
    from scaleprof.report.writer import write_report

    # without samples: the widest ratio the medians' CIs allow, 14/11 .. 16/9
    d = compare_saved(_saved("old", 10.0, [9.0, 11.0]), _saved("new", 15.0, [14.0, 16.0]))
    row = d["rows"][0]
    assert d["a_model"] == "old" and d["b_model"] == "new"
    assert row["ratio_ci95"] == pytest.approx([14 / 11, 16 / 9]) and row["verdict"] == "slower"
    # with samples: bootstrap of each side apart, and Mann-Whitney; B exactly 1.5x A
    xs = [10.0 + 0.1 * i for i in range(20)]
    d2 = compare_saved(_saved("old", 10.95, None, xs), _saved("new", 16.425, None, [1.5 * x for x in xs]))
    r2 = d2["rows"][0]
    assert r2["ratio_ci95"][0] > 1.3 and r2["ratio_ci95"][1] < 1.7 and r2["p_value"] < 0.01
    assert r2["verdict"] == "slower"
    assert result_kind(d2) == "compare_saved"
    paths = write_report([d2], tmp_path / "rep")
    text = paths.markdown.read_text()
    assert "new against old" in text and "slower" in text
    fa, fb = tmp_path / "a.json", tmp_path / "b.json"
    fa.write_text(json.dumps(_saved("old", 10.0, [9.0, 11.0])))
    fb.write_text(json.dumps(_saved("new", 10.01, [9.9, 10.1])))
    assert main(["compare", str(fa), str(fb), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["verdict"] == "inconclusive" and out["b_model"] == "new"


# --- micro-benchmarks: warmed, interleaved, honest time, wide CIs flagged -----------------------------------

class _FakeTime:
    """A clock that moves only when a fake op runs: op i takes (i + 1) ms."""

    def __init__(self):
        self.t = 0.0
        self.log = []

    def clock(self):
        return self.t

    def op(self, i):
        def call():
            self.log.append(i)
            self.t += (i + 1) * 1e-3
        return call


def test_interleaved_rounds_warm_every_call_then_shuffle_the_rounds():
    from scaleprof.bench.compare import interleaved_rounds
    from scaleprof.bench.micro import _EveryMedianStop
    from scaleprof.bench.timer import TimerConfig

    ft = _FakeTime()
    cfg = TimerConfig(max_time=5.0, min_time=0.1, min_samples=10)
    samples, colds, ks, reason = interleaved_rounds([ft.op(i) for i in range(3)], "cpu", cfg, clock=ft.clock,
                                                    stop=lambda t0: _EveryMedianStop(cfg, t0))
    assert colds == pytest.approx([1.0, 2.0, 3.0]) and ks == [1, 1, 1]
    assert [xs == pytest.approx([i + 1.0] * len(xs)) for i, xs in enumerate(samples)] == [True] * 3
    assert reason == "converged" and len({len(xs) for xs in samples}) == 1
    # cold calls, then the warm-up in lockstep (10 blocks each: two settled windows of 5), then the rounds
    warm = 3 + 3 * 10
    assert ft.log[:3] == [0, 1, 2] and ft.log[3:warm] == [0, 1, 2] * 10
    rounds = [tuple(ft.log[j:j + 3]) for j in range(warm, len(ft.log), 3)]
    assert all(sorted(r) == [0, 1, 2] for r in rounds) and len(set(rounds)) > 1  # every op each round, shuffled


def test_micro_suite_runs_in_interleaved_rounds_and_flags_wide_cis():
    from scaleprof.bench.micro import _row, run_micro
    from scaleprof.report.bench_tables import format_micro

    res = run_micro("activations", shape=(1, 8, 16, 16), max_time=0.3)
    d = res.to_dict()
    assert d["rounds"] >= 6 and all(r["samples"] == d["rounds"] for r in d["rows"])  # one sample a round each
    assert d["stop_reason"] in ("converged", "max_time") and all("wide_ci" in r for r in d["rows"])
    narrow = _row("a", "", [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0], None, 8)
    wide = _row("b", "", [1.0, 3.0, 0.5, 1.0, 2.0, 0.2, 1.0, 4.0], None, 8)
    assert not narrow.wide_ci and wide.wide_ci
    res.rows = [narrow, wide]
    text = format_micro(res)
    assert text.count("wide CI") == 2 and "over 10% of the median" in text  # one row flagged, and the note


def test_cli_micro_honours_max_time(monkeypatch, capsys):
    from scaleprof.bench import micro
    from scaleprof.cli import main

    seen = {}

    def fake(suite, **kw):
        seen.update(kw)
        return micro.MicroResult(suite=suite, device="cpu", dtype="float32", rows=[], rounds=0, stop_reason="x")

    monkeypatch.setattr(micro, "run_micro", fake)
    assert main(["bench", "--micro", "activations", "--max-time", "7", "--json"]) == 0
    assert seen["max_time"] == 7.0  # no silent 2 s cap


# --- bench: the cost said up front, --total-time, tickers, compile's memory ---------------------------------

def test_run_plan_says_the_cost_and_skips_what_no_longer_fits():
    from scaleprof.bench.progress import MEMORY_CHILD_GUESS_S, RunPlan
    from scaleprof.bench.runtimes import Compile, Eager

    t = [0.0]
    plan = RunPlan(max_time=10.0, memory=True, total_time=100.0, clock=lambda: t[0])
    rts = [Eager(), Compile()]
    assert plan.row_cost(rts[1]) == 10.0 + 60.0 + MEMORY_CHILD_GUESS_S   # compile's guess, before a row ran
    plan.saw_setup(rts[1], 20.0)
    assert plan.row_cost(rts[1]) == 10.0 + 20.0 + MEMORY_CHILD_GUESS_S   # then what a row really took
    line = plan.describe(rts, 4, 0)
    assert line.startswith("bench: 4 row(s) x up to 10 s") and "--total-time 100 s" in line
    assert plan.skip_reason(50.0) is None
    t[0] = 60.0
    assert plan.skip_reason(50.0) == "skipped: --total-time 100 s: 60 s used, this row needs about 50 s more"
    assert RunPlan(max_time=1.0, memory=False).skip_reason(1e9) is None     # no bound, nothing skipped


def test_bench_total_time_skips_rows_with_the_reason(monkeypatch, capsys):
    import torch
    from torch import nn

    from scaleprof.bench import bench, runner
    from scaleprof.bench.progress import RunPlan

    ticks = iter(range(1000))  # a clock that moves one second at each reading
    monkeypatch.setattr(runner, "RunPlan", lambda **kw: RunPlan(clock=lambda: float(next(ticks)), **kw))
    torch.manual_seed(0)
    r = bench(nn.Linear(4, 4), inputs=["1x4"], batch_sizes=[1, 2, 3], max_time=0.2, memory=False, total_time=2.5,
              progress=True)
    # readings: start 0; row 1 at 1 s (+0.2 fits), row 2 at 2 s (fits), row 3 at 3 s: over 2.5 s
    assert [x.status for x in r.results] == ["ok", "ok", "skipped"]
    assert r.results[2].reason.startswith("skipped: --total-time 2.5 s") and r.ok()
    err = capsys.readouterr().err
    assert "bench: 3 row(s) x up to 0.2 s" in err and "--total-time 2.5 s skips" in err
    assert "skipped" in format_bench(r)


def test_ticker_and_compile_memory_plan(capsys):
    import time

    import torch

    from scaleprof.bench.progress import ticker
    from scaleprof.bench.runtimes import Compile

    with ticker("compiling", every=0.01):
        time.sleep(0.05)
    assert "compiling: done in" in capsys.readouterr().err
    with ticker("quiet", enabled=False):
        time.sleep(0.02)
    assert capsys.readouterr().err == ""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    plan = Compile(memory_child=False).memory_plan(cpu)   # as bench makes it unless --compile-memory
    assert plan.method == "none" and "compile the model a second time" in plan.reason
    assert Compile(memory_child=True).memory_plan(cpu).method == "subprocess-rss"
    assert Compile(memory_child=False).memory_plan(cuda).method == "cuda-allocator"  # in process: no recompile


def test_bench_makes_compile_rows_skip_the_second_compilation(monkeypatch):
    from scaleprof.bench import runner
    from scaleprof.bench.options import BenchOptions

    seen = []
    real = runner.parse_runtimes

    def spy(*a, **k):
        rts = real(*a, **k)
        seen.extend(rts)
        return rts

    monkeypatch.setattr(runner, "parse_runtimes", spy)
    monkeypatch.setattr(runner, "_inference", lambda *a: ([], None, None))  # nothing runs: the set-up is the point
    runner.bench("resnet18", runtimes="compile", memory=False, progress=False)
    assert seen[0].memory_child is False and seen[0].progress is False
    assert BenchOptions().compile_memory is False
