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
