"""Benchmarks of the benchmark: is scaleprof's timer honest and repeatable? (`make bench` calls
`run_selfbench`, which returns Markdown and writes the raw figures to `out_dir/selfbench_measure.json`.)

1. Overhead: scaleprof's measurement loop against a bare ``perf_counter`` loop around the same calls, on a
   small model (a fraction of a millisecond a call, where any per-call overhead would show), in rounds that
   alternate which goes first;
   the figure is the median over rounds of (scaleprof median / bare median) - 1. Goal: within 1%.
2. Agreement: scaleprof's median against ``torch.utils.benchmark.Timer.blocked_autorange``'s median on a
   ResNet-50 (the zoo's, else a local stack of bottlenecks of similar cost), in rounds that alternate which
   goes first, same thread count; the figure is the median over rounds of the ratio. Goal: within 3%.
3. Spread: five repeated `bench()` runs of the same model; the CV of their medians.

All of it runs at one torch thread by default: on a small shared machine a second thread makes every
parallel region wait for whichever core another process holds, which measures the neighbours, not the
timer (pass `threads` to change it).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import torch
from torch import nn

from . import stats
from .runner import bench, torch_threads
from .timer import TimerConfig, measure


def _log(msg: str) -> None:
    print(f"selfbench: {msg}", file=sys.stderr, flush=True)


def _small_model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
    return m.eval(), torch.randn(1, 32, 32, 32)


class _Bottleneck(nn.Module):
    def __init__(self, cin, mid, stride=1):
        super().__init__()
        cout = mid * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.down(x))


def _local_resnet50() -> nn.Module:
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for mid, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(n):
            layers.append(_Bottleneck(cin, mid, stride if i == 0 else 1))
            cin = mid * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000)]
    return nn.Sequential(*layers)


def _resnet50() -> tuple[nn.Module, str]:
    try:
        from .. import zoo

        return zoo.build("resnet50"), "scaleprof.zoo resnet50"
    except Exception:
        return _local_resnet50(), "local bottleneck stack (ResNet-50 layout)"


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
    os.makedirs(out_dir, exist_ok=True)
    with torch_threads(threads):
        _log("overhead against a bare loop ...")
        over = measure_overhead()
        model, model_name = _resnet50()
        _log(f"agreement with torch.utils.benchmark on {model_name} ...")
        agree = measure_agreement(model)
        _log("spread of 5 repeated runs ...")
        spread = measure_spread(model)
        nthreads = torch.get_num_threads()
    data = {"threads": nthreads, "overhead": over, "agreement": {"model": model_name, **agree}, "spread": spread,
            "seconds": time.perf_counter() - t0}
    with open(os.path.join(out_dir, "selfbench_measure.json"), "w") as fh:
        json.dump(data, fh, indent=2)

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
