"""Training-step time, per phase: forward, loss, backward, optimizer (step + zero_grad).

Each step is one sample, its phases timed between clock reads (CPU) or CUDA events recorded between the
phases and read after one synchronisation at the end of the step (GPU), so the phases sum to the step.
Warm-up and the stopping rule are the timer's (see timer.py), applied to the total step time.

The loss is cross-entropy against fixed random labels when the output is (batch, classes) logits, and
the mean square of the output otherwise: its cost is small against the model either way, and it is
named in the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..counting.memory import step_loss
from ..errors import ScaleprofError
from . import stats
from .timer import TimerConfig, sample_until_stop, warm_up

PHASES = ("forward", "loss", "backward", "optimizer")
OPTIMIZERS = ("sgd", "adam", "adamw")


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def make_optimizer(name: str, params, lr: float = 0.01):
    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr * 0.1)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr * 0.1)
    raise ScaleprofError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


class TrainStep:
    """One training step in four callable phases. Works on the module it is given (pass a copy)."""

    def __init__(self, model: nn.Module, inputs: list[torch.Tensor], optimizer: str = "sgd"):
        if not any(p.requires_grad for p in model.parameters()):
            raise ScaleprofError("the model has no trainable parameters")
        self.model = model.train()
        self.inputs = inputs
        self.opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])
        self.loss_name = None
        self._target = None
        self._out = None
        self._loss = None

    def forward(self):
        self._out = self.model(*self.inputs)

    def loss(self):
        out = _first_tensor(self._out)
        if out is None or not out.is_floating_point():
            raise ScaleprofError("training step: the model's output has no floating-point tensor to take a loss of")
        if step_loss(out) == "cross_entropy":
            if self._target is None:
                g = torch.Generator().manual_seed(0)
                self._target = torch.randint(0, out.shape[1], (out.shape[0],), generator=g).to(out.device)
            self.loss_name = "cross_entropy"
            self._loss = F.cross_entropy(out.float(), self._target)
        else:
            self.loss_name = "mean_square"
            self._loss = out.float().square().mean()

    def backward(self):
        self._loss.backward()

    def step(self):
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def phases(self) -> tuple[Callable[[], None], ...]:
        return self.forward, self.loss, self.backward, self.step

    def run(self):
        for phase in self.phases():
            phase()
        self._out = self._loss = None


@dataclass
class TrainMeasurement:
    total_ms: list[float]
    phases_ms: dict[str, list[float]]
    cold_ms: float
    stop_reason: str
    summary: stats.Summary = field(repr=False)

    def phase_summary(self) -> dict:
        out = {}
        for name, xs in self.phases_ms.items():
            ci = stats.median_ci(xs)
            out[name] = {"median_ms": stats.median(xs), "ci95_ms": list(ci) if ci else None,
                         "share": stats.median(xs) / sum(stats.median(v) for v in self.phases_ms.values())}
        return out


def _cpu_phase_times(step: TrainStep, clock) -> list[float]:
    marks = [clock()]
    for phase in step.phases():
        phase()
        marks.append(clock())
    step._out = step._loss = None
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def _cuda_phase_times(step: TrainStep, device) -> list[float]:
    events = [torch.cuda.Event(enable_timing=True) for _ in range(len(PHASES) + 1)]
    stream = torch.cuda.current_stream(device)  # the model's device, not the current one (see CudaBlockTimer)
    torch.cuda.synchronize(device)
    events[0].record(stream)
    for phase, ev in zip(step.phases(), events[1:], strict=True):
        phase()
        ev.record(stream)
    events[-1].synchronize()
    step._out = step._loss = None
    return [a.elapsed_time(b) / 1000.0 for a, b in zip(events, events[1:], strict=False)]


def measure_step(step: TrainStep, config: TimerConfig | None = None, *, device="cpu",
                 clock=time.perf_counter) -> TrainMeasurement:
    """Time training steps: the first apart (cold), warm-up, then until the CI rule or the time limit."""
    cfg = config or TimerConfig()
    cuda = str(device).startswith("cuda")

    def one() -> list[float]:
        return _cuda_phase_times(step, device) if cuda else _cpu_phase_times(step, clock)

    cold_ms = sum(one()) * 1000.0
    t_start = clock()
    warm_up([lambda _k: sum(one())], cfg, clock=clock, t_start=t_start)  # one step a sample: no blocks
    phases: dict[str, list[float]] = {p: [] for p in PHASES}

    def take() -> float:
        ts = one()
        for p, t in zip(PHASES, ts, strict=True):
            phases[p].append(t * 1000.0)
        return sum(ts) * 1000.0

    totals, reason = sample_until_stop(take, cfg, clock=clock, t_start=t_start)
    return TrainMeasurement(total_ms=totals, phases_ms=phases, cold_ms=cold_ms, stop_reason=reason,
                            summary=stats.summarize(totals))
