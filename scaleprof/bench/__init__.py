"""How fast a model runs: latency, throughput, peak memory and training-step time, on CPU and GPU.

    from scaleprof.bench import bench, compare
    r = bench("efficientnet_b0", runtimes=("eager", "onnxruntime"), batch_sizes=(1, 8))
    r = bench("resnet18", options=BenchOptions(max_time=1, memory=False))   # the same options, typed
    r.to_dict()   # the `bench --json` contract: {"env": {...}, "results": [{runtime, ..., median_ms, ...}]}
    c = compare("resnet50", "efficientnet_b0")
    c.verdict     # faster | slower | no difference | inconclusive  (B against A)

Modules: options (BenchOptions, CompareOptions: every default once), stats (order-statistic CIs, bootstrap,
Mann-Whitney), timer (the measurement loop and its stop rules), runtimes (eager, torch.compile, ONNX Runtime;
each says its environment fields, how its memory is measured and how the memory child rebuilds it), memory
(allocator peaks, the fresh-subprocess RSS child), recipe (a module rebuilt in the child without pickle), train,
env (fingerprint, torch_threads), attribution (time per kind/module), roofline, micro (op micro-benchmarks),
compare.
"""

from ..callable_package import make_callable
from .compare import CompareResult, compare, compare_models, compare_saved
from .options import BenchOptions, CompareOptions
from .result import ROW_KEYS, BenchResult, RunResult, TrainResult
from .runner import bench

__all__ = ["ROW_KEYS", "BenchOptions", "BenchResult", "CompareOptions", "CompareResult", "RunResult", "TrainResult", "bench", "compare",
           "compare_models", "compare_saved"]


make_callable(__name__, bench)
