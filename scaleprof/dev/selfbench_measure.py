"""Benchmarks of the benchmark: is scaleprof's timer honest and repeatable? (`make bench` calls
`run_selfbench`, which returns Markdown and writes the raw figures to `out_dir/selfbench_measure.json`.)

1. Overhead: scaleprof's measurement loop against a bare ``perf_counter`` loop around the same calls, on a
   small model (a fraction of a millisecond a call, where any per-call overhead would show), in rounds that
   alternate which goes first;
   the figure is the median over rounds of (scaleprof median / bare median) - 1. Goal: within 1%.
2. Agreement: scaleprof's median against ``torch.utils.benchmark.Timer.blocked_autorange``'s median on the
   zoo's ResNet-50, in rounds that alternate which goes first, same thread count; the figure is the median
   over rounds of the ratio. Goal: within 3%.
3. Spread: five repeated `bench()` runs of the same model; the CV of their medians.

All of it runs at one torch thread by default: on a small shared machine a second thread makes every
parallel region wait for whichever core another process holds, which measures the neighbours, not the
timer (pass `threads` to change it).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn

from .. import zoo
from ..bench import stats
from ..bench.env import torch_threads
from ..bench.runner import bench
from ..bench.timer import TimerConfig, measure
from ..files import atomic_write_json, writable_dir


def _small_model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
    return m.eval(), torch.randn(1, 32, 32, 32)


def _bare(model, x, seconds: float) -> float:
    """The simplest honest loop: perf_counter around each call, median in ms."""
    bare = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        model(x)
        bare.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(bare)


def measure_overhead(rounds: int = 10, seconds: float = 1.5) -> dict:
    model, x = _small_model()
    ratios, ours_all, bare_all = [], [], []
    with torch.inference_mode():
        for _ in range(20):
            model(x)
        for i in range(rounds):
            # alternate which goes first, so a drifting machine does not favour one side
            if i % 2:
                b = _bare(model, x, seconds)
            m = measure(lambda: model(x), TimerConfig(max_time=seconds, target_ci=1e-9, min_time=seconds))
            ours = m.summary.median
            if not i % 2:
                b = _bare(model, x, seconds)
            ratios.append(ours / b)
            ours_all.append(ours)
            bare_all.append(b)
    return {"model": "2 convs 32ch @ 32x32", "rounds": rounds, "scaleprof_median_ms": statistics.median(ours_all),
            "bare_median_ms": statistics.median(bare_all), "overhead": statistics.median(ratios) - 1.0,
            "round_ratios": ratios}


def measure_agreement(model: nn.Module, rounds: int = 10, seconds: float = 2.5) -> dict:
    from torch.utils import benchmark as tb

    x = torch.randn(1, 3, 224, 224)
    model = model.eval()
    ours_all, theirs_all, ratios = [], [], []
    with torch.inference_mode():
        model(x)
        for i in range(rounds):
            timer = tb.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
            # alternate which goes first, so a drifting machine does not favour one side
            if i % 2:
                theirs = timer.blocked_autorange(min_run_time=seconds).median * 1000.0
            ours = measure(lambda: model(x), TimerConfig(max_time=seconds)).summary.median
            if not i % 2:
                theirs = timer.blocked_autorange(min_run_time=seconds).median * 1000.0
            ours_all.append(ours)
            theirs_all.append(theirs)
            ratios.append(ours / theirs)
    return {"rounds": rounds, "scaleprof_median_ms": statistics.median(ours_all),
            "torch_benchmark_median_ms": statistics.median(theirs_all), "difference": statistics.median(ratios) - 1.0,
            "round_ratios": ratios}


def measure_spread(model: nn.Module, runs: int = 5, seconds: float = 5.0) -> dict:
    medians = []
    for _ in range(runs):
        r = bench(model, inputs=["1x3x224x224"], max_time=seconds, memory=False)
        medians.append(r.results[0].median_ms)
    return {"runs": runs, "medians_ms": medians, "cv": stats.cv(medians)}


def run_selfbench(out_dir: str, threads: int | None = 1) -> str:
    t0 = time.perf_counter()
    out = writable_dir(out_dir)  # before the minutes of measuring, not after
    model_name = "scaleprof.zoo resnet50"
    with torch_threads(threads):
        print("selfbench: overhead against a bare loop ...", file=sys.stderr, flush=True)
        over = measure_overhead()
        model = zoo.build("resnet50")
        print(f"selfbench: agreement with torch.utils.benchmark on {model_name} ...", file=sys.stderr, flush=True)
        agree = measure_agreement(model)
        print("selfbench: spread of 5 repeated runs ...", file=sys.stderr, flush=True)
        spread = measure_spread(model)
        nthreads = torch.get_num_threads()
    data = {"threads": nthreads, "overhead": over, "agreement": {"model": model_name, **agree}, "spread": spread,
            "seconds": time.perf_counter() - t0}
    atomic_write_json(out / "selfbench_measure.json", data)

    def ok(v, lim):
        return "yes" if abs(v) <= lim else "NO"

    lines = [
        "## Measurement (scaleprof.bench)",
        "",
        f"{nthreads} torch thread(s); {data['seconds']:.0f} s in all.",
        "",
        "| check | model | figure | goal | met |",
        "|---|---|---|---|---|",
        f"| overhead against a bare perf_counter loop | {over['model']} ({over['bare_median_ms']:.3f} ms) | "
        f"{100 * over['overhead']:+.2f}% | within 1% | {ok(over['overhead'], 0.01)} |",
        f"| agreement with torch.utils.benchmark | {model_name} ({agree['torch_benchmark_median_ms']:.1f} ms) | "
        f"{100 * agree['difference']:+.2f}% | within 3% | {ok(agree['difference'], 0.03)} |",
        f"| spread of {spread['runs']} repeated runs (CV of medians) | {model_name} | {100 * spread['cv']:.2f}% | "
        f"reported | - |",
        "",
        "Per-round ratios (scaleprof / reference): overhead "
        + ", ".join(f"{r:.4f}" for r in over["round_ratios"]) + "; agreement "
        + ", ".join(f"{r:.4f}" for r in agree["round_ratios"]) + ". Medians of the repeated runs (ms): "
        + ", ".join(f"{m:.2f}" for m in spread["medians_ms"]) + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run_selfbench(sys.argv[1] if len(sys.argv) > 1 else "reports"))
