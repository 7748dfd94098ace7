"""Memory without running: weights, gradients, optimizer state, activations saved for backward, the KV cache.

The saved activations are measured, not guessed: the forward runs (on meta tensors, with the count) under
``torch.autograd.graph.saved_tensors_hooks``, which sees every tensor autograd keeps for the backward; each
storage is counted once (views of one tensor share it), and parameters and buffers are left to ``weights``.
The optimizer's state is bench's optimizer's (bench/train.py): SGD with momentum keeps one buffer per
parameter, Adam and AdamW two.

The peak of a training step is measured on meta too (`LiveBytes`): every storage an op of the forward and
backward makes is added when it is made and taken off when it is freed (a weak reference on the storage), so
the figure follows what a real step holds: the saved activations, freed node by node as the backward runs,
the activations' gradients, and the parameters' gradients, written as the backward reaches them and held to
its end. Around that the step holds the weights, the optimizer's state (from the first step on) and the batch
(`inputs`), and as the backward starts the loss's temporaries (`loss_scratch`: bench's losses hold two
(cross-entropy) or three (mean square) float32 copies of the output then, beside its gradient). The peak is the larger of that backward peak and the optimizer's step: every gradient, with the
weights, the state, the batch and the step's temporaries (`optimizer_scratch`: torch's Adam and AdamW on CPU
make two parameter-sized temporaries for the largest parameter, `exp_avg_sq.sqrt() / bias_correction`; SGD
updates in place). Parts that sum to ``peak_bytes`` (`MemoryEstimate.parts`):
  backward peak:  weights + optimizer_state + inputs + activations_saved (less the saved inputs) + backward_scratch
  optimizer step: weights + optimizer_state + inputs + gradients + optimizer_scratch
where ``backward_scratch`` is what the backward holds at its peak beyond the saved activations and the batch
(the loss's temporaries too, when the peak is as the backward starts).
Attention saves what a CPU run's does: on meta torch would take scaled_dot_product_attention's math path
(it saves the attention matrix), so the count calls the kernel torch picks for the same call on CPU (the
flash kernel wherever it can: its inputs, output and log-sum-exp; counting/recorder.py's
`_sdpa_flash_on_meta`). A CUDA run's fused kernels save the same.
Inference holds the weights, the KV cache and the largest working set of one op (its inputs and output).
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# optimizer state per trainable parameter, in parameter-sized buffers (bench/train.py's optimizers)
OPTIMIZER_BUFFERS = {"sgd": 1, "adam": 2, "adamw": 2}
# temporaries of the optimizer's step, in sizes of the largest parameter (torch's single-tensor CPU kernels)
OPTIMIZER_SCRATCH = {"sgd": 0, "adam": 2, "adamw": 2}
# the loss's temporaries as its backward starts, beside the output's gradient, in float32 copies of the
# output (measured on meta: mean square's mean, pow and product gradients; cross-entropy's log_softmax output
# and its gradients)
LOSS_SCRATCH = {"cross_entropy": 2, "mean_square": 3}


def step_loss(out: torch.Tensor) -> str:
    """The training step's loss for output ``out`` (bench/train.py): cross-entropy on (batch, classes)
    logits, the mean square otherwise."""
    return "cross_entropy" if out.ndim == 2 and out.shape[1] > 1 else "mean_square"


@dataclass
class MemoryEstimate:
    weights: int
    gradients: int
    optimizer_state: int
    activations_saved: int
    kv_cache: int
    peak_bytes: int
    optimizer: str | None = None
    working_set: int = 0       # inference: the largest inputs + output of one op
    backward_scratch: int = 0  # training: held at the backward's peak beyond the saved activations and the batch
    inputs: int = 0            # training: the batch
    optimizer_scratch: int = 0  # training: the optimizer step's temporaries
    loss_scratch: int = 0      # training: the loss's temporaries as the backward starts
    peak_phase: str | None = None  # training: "backward" or "optimizer", where the peak is

    def parts(self) -> dict[str, int]:
        """The parts that sum to ``peak_bytes``, as the docstring of this module lists them."""
        if self.peak_phase is None:
            return {"weights": self.weights, "kv_cache": self.kv_cache, "working_set": self.working_set}
        common = {"weights": self.weights, "optimizer_state": self.optimizer_state, "inputs": self.inputs}
        if self.peak_phase == "optimizer":
            return {**common, "gradients": self.gradients, "optimizer_scratch": self.optimizer_scratch}
        return {**common, "activations_saved": self.activations_saved - self._saved_inputs,
                "backward_scratch": self.backward_scratch}

    _saved_inputs: int = 0     # the batch's storages among the saved activations (counted in inputs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_saved_inputs")
        return d


def _storage(t: torch.Tensor):
    try:
        s = t.untyped_storage()
        return s._cdata, s.nbytes()
    except (RuntimeError, NotImplementedError, TypeError):
        return None, t.numel() * t.element_size()


class SavedTensors:
    """What autograd saves for the backward during the forward run inside this context, by storage."""

    def __init__(self, exclude: set[int], inputs: set[int] = frozenset()):
        self.exclude = exclude
        self.inputs = inputs   # the batch's storages: saved, and counted apart in `saved_inputs`
        self.storages: dict[int, int] = {}
        self.loose = 0   # tensors without a storage (wrapper subclasses): their own size

    def _pack(self, t):
        if isinstance(t, torch.Tensor):
            key, nbytes = _storage(t)
            if key is None:
                self.loose += nbytes
            elif key not in self.exclude:
                self.storages.setdefault(key, nbytes)
        return t

    @contextlib.contextmanager
    def recording(self):
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self

    @property
    def bytes(self) -> int:
        return sum(self.storages.values()) + self.loose

    @property
    def largest(self) -> int:
        return max(self.storages.values(), default=0)

    @property
    def saved_inputs(self) -> int:
        return sum(n for k, n in self.storages.items() if k in self.inputs)


class LiveBytes(TorchDispatchMode):
    """The bytes of the storages the ops run inside it make, while they live, and their peak.

    A storage is counted when an op first returns it and taken off when it is freed (a weak reference on the
    storage: its Python object lives as long as the storage does), so a view or an in-place result is not
    counted twice. ``start`` (the batch) is held throughout; ``exclude`` (the parameters and buffers) is never
    counted: the weights are their own part."""

    def __init__(self, exclude: set[int], start: int = 0):
        super().__init__()
        self.exclude = exclude
        self.start = self.current = self.peak = start
        self.at_backward = 0   # live when the backward starts (the outputs' gradients seeded)
        self.loss_scratch = 0
        self._refs: dict[int, weakref.ref] = {}

    def backward_starts(self, outs) -> None:
        """The backward starts from ``outs``: what the training step's loss adds then (`loss_scratch`)."""
        self.at_backward = self.current
        first = next((o for o in outs if o.is_floating_point()), None)
        self.loss_scratch = LOSS_SCRATCH[step_loss(first)] * first.numel() * 4 if first is not None else 0
        self.peak = max(self.peak, self.at_backward + self.loss_scratch)

    def _freed(self, key: int, nbytes: int):
        def callback(_ref):
            self.current -= nbytes
            self._refs.pop(key, None)
        return callback

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            try:
                storage = t.untyped_storage()
            except (RuntimeError, NotImplementedError, TypeError):
                continue   # a wrapper subclass without one: its inner ops are seen
            key = storage._cdata
            if key in self._refs or key in self.exclude:
                continue
            nbytes = storage.nbytes()
            self._refs[key] = weakref.ref(storage, self._freed(key, nbytes))
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        return out


def model_storages(model) -> set[int]:
    keys = set()
    for t in (*model.parameters(), *model.buffers()):
        key, _ = _storage(t)
        if key is not None:
            keys.add(key)
    return keys


def estimate(model, *, dtype: torch.dtype | None, backward: bool, optimizer: str | None, saved: int,
             kv_cache: int = 0, working_set: int = 0, live_peak: int = 0, inputs: int = 0,
             saved_inputs: int = 0, loss_scratch: int = 0) -> MemoryEstimate:
    """The parts and the peak, from the model's tensors (each counted once) at ``dtype`` (None: their own).

    Training: ``saved`` the saved activations' bytes (``saved_inputs`` of them the batch's), ``live_peak``
    the forward and backward's peak of live storages with the batch (``inputs``) and the loss's
    ``loss_scratch`` in it (`LiveBytes`)."""
    def nbytes(t: torch.Tensor) -> int:
        size = dtype.itemsize if dtype is not None and t.is_floating_point() else t.element_size()
        return t.numel() * size

    seen: set[int] = set()
    weights = trainable = largest = 0
    for t in (*model.parameters(), *model.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        weights += nbytes(t)
        if backward and isinstance(t, torch.nn.Parameter) and t.requires_grad:
            trainable += nbytes(t)
            largest = max(largest, nbytes(t))
    if not backward:
        return MemoryEstimate(weights=weights, gradients=0, optimizer_state=0, activations_saved=0,
                              kv_cache=kv_cache, peak_bytes=weights + kv_cache + working_set,
                              working_set=working_set)
    state = OPTIMIZER_BUFFERS[optimizer] * trainable if optimizer else 0
    opt_scratch = OPTIMIZER_SCRATCH[optimizer] * largest if optimizer else 0
    live_peak = max(live_peak, inputs + saved - saved_inputs)   # the saved activations are live at once
    step = inputs + trainable + opt_scratch
    phase = "optimizer" if step > live_peak else "backward"
    return MemoryEstimate(weights=weights, gradients=trainable, optimizer_state=state, activations_saved=saved,
                          kv_cache=kv_cache, peak_bytes=weights + state + max(live_peak, step), optimizer=optimizer,
                          backward_scratch=live_peak - inputs - (saved - saved_inputs), inputs=inputs,
                          optimizer_scratch=opt_scratch, loss_scratch=loss_scratch, peak_phase=phase,
                          _saved_inputs=saved_inputs)
