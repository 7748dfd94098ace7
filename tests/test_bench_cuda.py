"""The CUDA paths of bench.

Two halves. The first runs everywhere: torch.cuda's event, synchronisation and allocator calls are
replaced by a fake GPU with its own clock, so the order of the calls (synchronisation outside the timed
region, events on the model's device's stream, peak counters reset before the calls they measure) and the
arithmetic on what they return are checked on a CPU-only machine. The IO binding the CUDA execution
provider uses is run on CPU tensors, and the attribution of kernels to modules on synthetic profiler
events shaped as torch builds them on CUDA.

The second half needs a real GPU and skips without one; `make verify-cuda` runs it with a bench on CUDA.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.autograd.profiler_util import DeviceType, FunctionEvent

from scaleprof.bench import memory as mem
from scaleprof.bench import train as train_mod
from scaleprof.bench.attribution import _RANGE, self_ms_by_module_op
from scaleprof.bench.runtimes import OnnxRuntime, RuntimeUnavailable, export_onnx, iobinding_call
from scaleprof.bench.timer import CudaBlockTimer, TimerConfig, block_timer_for, measure

HAS_CUDA = torch.cuda.is_available()


class FakeGpu:
    """A stand-in for torch.cuda: a clock in ms that calls advance, a log of what was called, an allocator."""

    SYNC_MS = 1000.0  # a synchronisation costs far more than the calls: if it were timed, it would show

    def __init__(self):
        self.t = 0.0
        self.log: list[tuple] = []
        self.allocated = self.peak = 0
        gpu = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.at = None

            def record(self, stream=None):
                gpu.log.append(("record", stream))
                self.at = gpu.t

            def synchronize(self):
                gpu.log.append(("event-sync",))
                gpu.t += gpu.SYNC_MS

            def elapsed_time(self, other):
                return other.at - self.at

        self.Event = Event

    def synchronize(self, device=None):
        self.log.append(("sync", str(device)))
        self.t += self.SYNC_MS

    def current_stream(self, device=None):
        return f"stream:{device}"

    def reset_peak_memory_stats(self, device=None):
        self.log.append(("reset-peak", str(device)))
        self.peak = self.allocated

    def max_memory_allocated(self, device=None):
        return self.peak

    def max_memory_reserved(self, device=None):
        return 2 * self.peak  # the caching allocator holds more than the tensors

    def work(self, ms: float, nbytes: int = 0):
        """A call that takes `ms` of GPU time and holds `nbytes` at its peak."""
        def call():
            self.log.append(("call", ms))
            self.t += ms
            self.peak = max(self.peak, self.allocated + nbytes)
        return call


@pytest.fixture
def gpu(monkeypatch):
    fake = FakeGpu()
    for name in ("Event", "synchronize", "current_stream", "reset_peak_memory_stats", "max_memory_allocated",
                 "max_memory_reserved"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    return fake


def test_cuda_block_is_timed_between_events_with_synchronisation_outside(gpu):
    dev = torch.device("cuda:1")
    timer = block_timer_for(dev)
    assert isinstance(timer, CudaBlockTimer)
    s = timer.time_block(gpu.work(2.0), 3)
    assert s == pytest.approx(0.006)  # 3 calls of 2 ms; the two 1000 ms synchronisations are not in it
    assert gpu.log == [("sync", "cuda:1"), ("record", "stream:cuda:1"), ("call", 2.0), ("call", 2.0),
                       ("call", 2.0), ("record", "stream:cuda:1"), ("event-sync",)]


@pytest.mark.parametrize(("call_ms", "k"), [(2.0, 1), (0.3, 2), (0.07, 8), (0.003, 167)])
def test_cuda_blocks_grow_until_event_resolution_is_a_thousandth(gpu, call_ms, k):
    # k = ceil(0.5 us / (0.1% of a call)): the event resolution stays under the overhead budget
    cfg = TimerConfig(max_time=1000.0, min_time=0.0)
    m = measure(gpu.work(call_ms), cfg, block_timer=CudaBlockTimer(torch.device("cuda")),
                clock=lambda: gpu.t / 1000.0)
    assert m.calls_per_block == k
    assert m.summary.median == pytest.approx(call_ms)
    assert m.cold_ms == pytest.approx(call_ms)
    assert m.stop_reason == "converged"


def test_cuda_training_phases_come_from_events_read_after_one_sync(gpu):
    class Step:
        _out = _loss = "kept"

        def phases(self):
            return tuple(gpu.work(ms) for ms in (4.0, 1.0, 8.0, 2.0))

    step = Step()
    got = train_mod._cuda_phase_times(step, torch.device("cuda:0"))
    assert got == pytest.approx([0.004, 0.001, 0.008, 0.002])
    kinds = [e[0] for e in gpu.log]
    # one sync before the first event, one event sync after the last: none between the phases
    assert kinds == ["sync", "record"] + ["call", "record"] * 4 + ["event-sync"]
    assert {e[1] for e in gpu.log if e[0] == "record"} == {"stream:cuda:0"}
    assert step._out is None and step._loss is None  # the step's graph is released

    cfg = TimerConfig(max_time=1000.0, min_time=0.0)
    m = train_mod.measure_step(step, cfg, device="cuda:0", clock=lambda: gpu.t / 1000.0)
    assert m.summary.median == pytest.approx(15.0)
    assert {p: s["median_ms"] for p, s in m.phase_summary().items()} == pytest.approx(
        {"forward": 4.0, "loss": 1.0, "backward": 8.0, "optimizer": 2.0})


def test_gpu_peak_resets_the_counters_before_the_calls_and_labels_both_figures(gpu):
    gpu.allocated = 100 << 20  # weights already resident count in the peak
    r = mem.gpu_peak(gpu.work(1.0, nbytes=30 << 20), torch.device("cuda:0"), iters=2)
    assert [e[0] for e in gpu.log] == ["sync", "reset-peak", "call", "call", "sync"]
    assert r.method == "cuda-allocator"
    assert r.peak_bytes == r.tensors_bytes == 130 << 20
    assert r.allocator_bytes == 260 << 20


# --- ONNX Runtime's CUDA provider -------------------------------------------------------------------------

class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x, y):
        return self.fc(self.conv(x).mean((2, 3))) + y


def test_io_binding_runs_in_place_and_gives_the_models_outputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = Small().eval()
    xs = [torch.randn(2, 3, 8, 8), torch.randn(2, 5)]
    path, _ = export_onnx(model, xs, str(tmp_path / "m.onnx"), "torchscript")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    call = iobinding_call(sess, [i.name for i in sess.get_inputs()], xs, torch.device("cpu"))
    want = model(*xs).detach().numpy()
    got = call().copy_outputs_to_cpu()[0]
    assert got == pytest.approx(want, abs=1e-5)
    xs[0].mul_(2)  # bound in place: the next run reads the tensors as they are now
    assert call().copy_outputs_to_cpu()[0] == pytest.approx(model(*xs).detach().numpy(), abs=1e-5)


@pytest.mark.skipif(HAS_CUDA, reason="checks the reason given where CUDA is absent")
def test_onnxruntime_without_cuda_provider_says_what_to_install():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(RuntimeUnavailable, match="no CUDAExecutionProvider.*onnxruntime-gpu"):
        OnnxRuntime().prepare(Small(), [torch.randn(1, 3, 8, 8), torch.randn(1, 5)], torch.device("cuda"))


# --- time attribution on CUDA: synthetic events as torch's profiler builds them -----------------------------

def _cpu_event(i, name, parent=None, kernels_us=(), cpu_us=10):
    ev = FunctionEvent(id=i, name=name, thread=0, start_us=0, end_us=cpu_us, use_device="cuda")
    for k in kernels_us:
        ev.append_kernel(f"kernel_of_{name}", 0, k)
    if parent is not None:
        ev.set_cpu_parent(parent)
        parent.append_cpu_child(ev)
    return ev


def test_cuda_attribution_counts_each_kernel_once_on_the_top_op_of_its_module():
    # block.conv: aten::conv2d -> aten::convolution -> aten::cudnn_convolution (launches a 300 us kernel)
    # block.act:  aten::silu (launches a 40 us kernel); a kernel's own device event has no CPU parent
    block = _cpu_event(1, _RANGE + "block")
    conv = _cpu_event(2, _RANGE + "block.conv", block)
    top = _cpu_event(3, "aten::conv2d", conv)
    mid = _cpu_event(4, "aten::convolution", top)
    leaf = _cpu_event(5, "aten::cudnn_convolution", mid, kernels_us=(300,))
    act = _cpu_event(6, _RANGE + "block.act", block)
    silu = _cpu_event(7, "aten::silu", act, kernels_us=(25, 15))
    outside = _cpu_event(8, "aten::copy_", kernels_us=(99,))  # not under the model's forward
    kernel = FunctionEvent(id=9, name="kernel_of_aten::cudnn_convolution", thread=0, start_us=0, end_us=300,
                           use_device="cuda", device_type=DeviceType.CUDA)
    events = [block, conv, top, mid, leaf, act, silu, outside, kernel]
    got = self_ms_by_module_op(events, device_time=True)
    assert got == pytest.approx({("block.conv", "aten::conv2d"): 0.300, ("block.act", "aten::silu"): 0.040})


# --- a real GPU ----------------------------------------------------------------------------------------------

cuda_only = pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")


@pytest.mark.slow  # asserts a wall-clock ratio: `make test-slow`
@cuda_only
def test_real_events_agree_with_the_wall_clock():
    import time

    dev = torch.device("cuda")
    cycles = 50_000_000  # tens of ms on any recent GPU
    timer = CudaBlockTimer(dev)
    timer.time_block(lambda: torch.cuda._sleep(cycles), 1)  # warm
    torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    events_s = timer.time_block(lambda: torch.cuda._sleep(cycles), 1)
    wall_s = time.perf_counter() - t0
    assert 0.005 < events_s <= wall_s
    assert events_s == pytest.approx(wall_s, rel=0.1)


@cuda_only
def test_real_gpu_peak_sees_a_known_allocation():
    dev = torch.device("cuda")
    n = 64 << 20

    def call():
        x = torch.empty(n, dtype=torch.uint8, device=dev)
        x.fill_(1)

    r = mem.gpu_peak(call, dev)
    assert n <= r.tensors_bytes <= r.allocator_bytes


@cuda_only
def test_real_bench_on_cuda_times_eager_and_training_and_counts_alike():
    from scaleprof import profile
    from scaleprof.bench import bench
    from scaleprof.zoo import build

    r = bench("resnet18", inputs=["2x3x64x64"], device="cuda", runtimes="eager,onnxruntime", train=True,
              by="kind", max_time=2.0)
    rows = {x.runtime: x for x in r.results}
    eager = rows["eager"]
    assert eager.status == "ok" and eager.details["memory"]["method"] == "cuda-allocator"
    assert eager.peak_memory_bytes > 11_689_512 * 4  # the weights are resident
    ort = rows["onnxruntime"]
    assert ort.status == "ok" or "CUDAExecutionProvider" in (ort.reason or "")
    if ort.status == "ok":
        assert ort.details["providers"][0] == "CUDAExecutionProvider"
    assert r.train[0].status == "ok"
    assert r.env["gpu"] and r.env["cuda"]
    assert r.attribution is not None
    model = build("resnet18")
    assert (profile(model, ["1x3x224x224"], device="cuda").totals.macs
            == profile(model, ["1x3x224x224"], device="meta").totals.macs == 1_814_073_344)
