"""The training-memory estimate's parts and the memory child's figures (counting/memory.py, bench/memory.py)."""

import pytest
import torch
from torch import nn

import scaleprof
from scaleprof.bench import memory, recipe
from scaleprof.bench.runtimes import Eager

MiB = 1 << 20


def test_backward_peak_tracked_storage_by_storage_on_meta():
    # y = x @ W.T, W 4x8, x 2x8 float32. The forward saves x (the batch) and W (a weight, not an activation).
    # Live at the backward's peak: the batch x (64 B), y (32 B), its seed of ones (32 B) and W's gradient
    # (128 B): 256 B, of which 192 B beyond the batch. SGD's step holds the batch and W's gradient: 192 B.
    net = nn.Linear(8, 4, bias=False)
    m = scaleprof.profile(net, "2x8", backward=True, memory=True, optimizer="sgd").memory
    assert (m.weights, m.gradients, m.optimizer_state, m.inputs) == (128, 128, 128, 64)
    assert (m.activations_saved, m.backward_scratch, m.optimizer_scratch) == (64, 192, 0)
    assert m.peak_phase == "backward" and m.peak_bytes == 128 + 128 + 256
    assert m.parts() == {"weights": 128, "optimizer_state": 128, "inputs": 64, "activations_saved": 0,
                         "backward_scratch": 192}
    assert sum(m.parts().values()) == m.peak_bytes
    # the (2, 4) output is logits: cross-entropy's two float32 copies as the backward starts, under the peak
    assert m.loss_scratch == 2 * 2 * 4 * 4
    d = m.to_dict()
    assert {"inputs", "optimizer_scratch", "peak_phase", "backward_scratch"} <= set(d) and "_saved_inputs" not in d


def test_mean_square_loss_temporaries_make_the_peak():
    # y = x @ W.T, W 1x8: a (2, 1) output takes the mean-square loss, three float32 copies of y (24 B) beside
    # its gradient as the backward starts: x 64 + y 8 + its gradient 8 + 24 = 104 B; then W's gradient (32 B)
    # with x, y and y's gradient: 112 B, the peak; 48 B beyond the batch
    net = nn.Linear(8, 1, bias=False)
    m = scaleprof.profile(net, "2x8", backward=True, memory=True, optimizer="sgd").memory
    assert (m.loss_scratch, m.backward_scratch, m.peak_phase) == (24, 48, "backward")
    assert m.peak_bytes == 32 + 32 + 112


def test_parts_sum_to_peak_on_a_conv_net():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    for opt in ("sgd", "adam", "adamw"):
        m = scaleprof.profile(net.train(), "4x3x8x8", backward=True, memory=True, optimizer=opt).memory
        assert sum(m.parts().values()) == m.peak_bytes
        assert m.inputs == 4 * 3 * 8 * 8 * 4 and m.backward_scratch >= 0


def test_result_of_subtracts_the_in_child_baseline_and_the_library_pages():
    run = {"maxrss_bytes": 500 * MiB, "baseline_rss_bytes": 200 * MiB, "baseline_file_rss_bytes": 50 * MiB,
           "file_rss_bytes": 80 * MiB}
    r = memory.result_of(run, {"maxrss_bytes": 210 * MiB}, memory.TRAIN_MMAP_THRESHOLD)
    assert r.peak_bytes == 290 * MiB          # unchanged: the run's peak less the import-only child's
    assert (r.rss_run_bytes, r.rss_baseline_bytes) == (500 * MiB, 210 * MiB)
    assert (r.baseline_rss_bytes, r.peak_above_baseline_bytes, r.library_pages_bytes) == (200 * MiB, 300 * MiB,
                                                                                         30 * MiB)
    assert r.model_peak_bytes == 270 * MiB and r.malloc == "MALLOC_MMAP_THRESHOLD_=131072"
    old = memory.result_of({"maxrss_bytes": 500 * MiB}, {"maxrss_bytes": 210 * MiB})   # no /proc: no new figures
    assert (old.peak_bytes, old.model_peak_bytes, old.malloc) == (290 * MiB, None, None)


def test_make_job_fixes_the_mmap_threshold_for_training_only():
    rt = Eager().child_job(None)
    train = memory.make_job(model=None, runtime=rt, inputs=[], dtype="float32", threads=1, train=True)
    infer = memory.make_job(model=None, runtime=rt, inputs=[], dtype="float32", threads=1)
    assert train["mmap_threshold"] == 128 * 1024 and infer["mmap_threshold"] is None


@pytest.mark.skipif(not memory._status("VmRSS"), reason="needs /proc/self/status (Linux)")
def test_child_measures_a_linear_trained_with_adam(tmp_path):
    # 1024x4096 weights, no bias: 16 MiB float32. Adam's step holds weights, gradient, two states and two
    # temporaries the size of the weight: 6 x 16 MiB = 96 MiB (the batch, 8x4096, is 128 KiB).
    torch.manual_seed(0)
    model = nn.Linear(4096, 1024, bias=False)
    est = scaleprof.profile(model, "8x4096", backward=True, memory=True, optimizer="adam").memory
    assert est.peak_phase == "optimizer" and est.peak_bytes == 6 * 16 * MiB + 8 * 4096 * 4
    path = str(tmp_path / "w.pt")
    job = memory.make_job(model={"recipe": recipe.save(model, path), "weights": path},
                          runtime=Eager().child_job(None), inputs=["8x4096"], dtype="float32", threads=1,
                          train=True, optimizer="adam")
    r = memory.cpu_peak(job)
    assert r.reason is None and r.malloc == "MALLOC_MMAP_THRESHOLD_=131072"
    assert r.peak_above_baseline_bytes == r.rss_run_bytes - r.baseline_rss_bytes
    assert r.model_peak_bytes == r.peak_above_baseline_bytes - r.library_pages_bytes
    # the tensors by hand, and a few MiB of the process's own (autograd's graph, Python objects) around them
    assert 0.9 * est.peak_bytes <= r.model_peak_bytes <= 1.15 * est.peak_bytes


def test_memory_estimate_report_rows(monkeypatch):
    from scaleprof.dev import memory_estimate as me

    monkeypatch.setattr(me, "LIMIT_BYTES", 1)   # every estimate is above it: nothing is run
    d = me.measure_one("mobilenet_v1_025", "adamw")
    assert d["status"] == "skipped" and "above the" in d["reason"] and "measured" not in d
    assert d["inputs"] == ["8x3x224x224"] and sum(d["parts"].values()) == d["estimate"]["peak_bytes"]
    row = me._row(d)
    assert row["within ±10%"].startswith("skipped: estimated peak") and row["ratio"] == ""
    ok = {**d, "status": "ok", "measured": {"model_peak_bytes": int(d["estimate"]["peak_bytes"] / 1.08),
                                            "rss_run_bytes": 10 * MiB}}
    assert me._row(ok)["within ±10%"] == "yes" and me._row(ok)["ratio"] == "1.080"
    ok["measured"]["model_peak_bytes"] = int(d["estimate"]["peak_bytes"] / 1.2)
    assert me._row(ok)["within ±10%"] == "no"


class _QKVAttention(nn.Module):
    """x -> one qkv projection -> SDPA over 2 heads of 8 -> (B, L, 16)."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.qkv, self.dropout = nn.Linear(16, 48, bias=False), dropout

    def forward(self, x):
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, 2, 8).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout)
        return y.transpose(1, 2).reshape(B, L, 16)


def test_attention_saves_what_the_cpu_flash_kernel_saves():
    # B=2, L=16: the linear saves the batch x (2*16*16*4 = 2048 B); CPU's flash kernel saves q, k, v (views of
    # the one qkv output, 2*16*48*4 = 6144 B), its output (2*2*16*8*4 = 2048 B) and log-sum-exp (2*2*16*4 =
    # 256 B). The math path (what meta picks by itself) would keep the 2x2x16x16 attention matrix too.
    m = scaleprof.profile(_QKVAttention(), "2x16x16", backward=True, memory=True, optimizer="sgd").memory
    assert m.activations_saved == 2048 + 6144 + 2048 + 256
    # dropout: CPU takes the math path as well, and so does the count (a mask and the probabilities saved)
    md = scaleprof.profile(_QKVAttention(0.1), "2x16x16", backward=True, memory=True, optimizer="sgd").memory
    assert md.activations_saved > m.activations_saved + 2 * 2 * 16 * 16 * 4


@pytest.mark.parametrize("make", [lambda: _QKVAttention(),
                                  lambda: nn.MultiheadAttention(16, 2, batch_first=True)])
def test_attention_on_meta_saves_and_counts_as_on_cpu(make):
    # the independent method: the same step on real CPU tensors, where torch picks the flash kernel itself
    torch.manual_seed(0)
    net = make()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            out = self.net(x, x, x, need_weights=False)[0] if isinstance(self.net, nn.MultiheadAttention) \
                else self.net(x)
            return out

    meta = scaleprof.profile(Wrap(), "2x16x16", backward=True, memory=True, optimizer="adamw")
    cpu = scaleprof.profile(Wrap(), "2x16x16", backward=True, memory=True, optimizer="adamw", device="cpu")
    assert meta.memory.activations_saved == cpu.memory.activations_saved
    assert meta.by_kind("backward") == cpu.by_kind("backward")
    assert torch.nn.functional.scaled_dot_product_attention is torch._C._nn.scaled_dot_product_attention
