"""Model FLOPs utilisation: the counted FLOPs of a call per second, over the device's peak.

MFU counts the model's own FLOPs (the forward, and for a training step its backward: counting/ on meta);
HFU adds what the hardware also does when activations are checkpointed: the forward ops the backward
recomputes (the counter's ``recompute`` phase). The peak: on CPU this machine's measured matmul rate
(roofline.measure_peaks, once per device and dtype in a process); on a GPU the vendor's dense peak for the
dtype from the table below (the measured matmul peak is kept beside it), else the measured one.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch

from ..shapes import dtype_name

# Dense (no sparsity) peak TFLOP/s per dtype, from the vendors' data sheets; float32 is the non-tensor-core
# rate (TF32 is opt-in in torch). Matched by substring of torch.cuda.get_device_name, first match wins.
GPU_PEAK_TFLOPS = (
    ("H200", {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0}),
    ("H100 PCIe", {"bfloat16": 756.0, "float16": 756.0, "float32": 51.0}),
    ("H100", {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0}),
    ("A100", {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5}),
    ("L40S", {"bfloat16": 362.0, "float16": 362.0, "float32": 91.6}),
    ("L4", {"bfloat16": 121.0, "float16": 121.0, "float32": 30.3}),
    ("A10", {"bfloat16": 125.0, "float16": 125.0, "float32": 31.2}),
    ("V100", {"float16": 125.0, "float32": 15.7}),
    ("T4", {"float16": 65.0, "float32": 8.1}),
)
PEAK_MEASURE_S = 1.0


@dataclass(frozen=True)
class DevicePeak:
    device: str
    dtype: str
    gflops: float                 # the peak MFU is taken against
    source: str                   # vendor table | measured matmul
    measured_gflops: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def vendor_peak_gflops(name: str, dtype: torch.dtype) -> float | None:
    for key, table in GPU_PEAK_TFLOPS:
        if key in name:
            tf = table.get(dtype_name(dtype))
            return tf * 1000.0 if tf else None
    return None


@functools.cache
def device_peak(device: str, dtype: torch.dtype) -> DevicePeak:
    from .roofline import measure_peaks

    dev = torch.device(device)
    measured = measure_peaks(dev, dtype, max_time=PEAK_MEASURE_S).gflops
    if dev.type == "cuda":
        vendor = vendor_peak_gflops(torch.cuda.get_device_name(dev), dtype)
        if vendor is not None:
            return DevicePeak(str(dev), dtype_name(dtype), vendor, "vendor table", measured)
    return DevicePeak(str(dev), dtype_name(dtype), measured, "measured matmul", measured)


def utilisation(flops: int | None, median_ms: float | None, peak_gflops: float | None) -> float | None:
    """FLOPs per second over the peak; None where a figure is missing."""
    if not flops or not median_ms or not peak_gflops:
        return None
    return flops / (median_ms * 1e-3) / (peak_gflops * 1e9)


def counted_flops(model, specs, dtype: torch.dtype, *, train: bool) -> tuple[int, int] | None:
    """(model FLOPs, hardware FLOPs) of one call, or of one training step's forward and backward (the
    loss and the optimizer are not the model's); None when the model cannot be counted."""
    from ..counting import profile

    try:
        r = profile(model, specs, dtype=dtype, backward=train, quiet=True)
    except Exception:
        return None
    recompute = r.phases["recompute"].flops if "recompute" in r.phases else 0
    return r.totals.flops - recompute, r.totals.flops
