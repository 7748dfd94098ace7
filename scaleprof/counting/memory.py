"""Memory without running: weights, gradients, optimizer state, activations saved for backward, the KV cache.

The saved activations are measured, not guessed: the forward runs (on meta tensors, with the count) under
``torch.autograd.graph.saved_tensors_hooks``, which sees every tensor autograd keeps for the backward; each
storage is counted once (views of one tensor share it), and parameters and buffers are left to ``weights``.
The optimizer's state is bench's optimizer's (bench/train.py): SGD with momentum keeps one buffer per
parameter, Adam and AdamW two. The peak of a training step is taken at the start of its backward, when
every saved activation is still held and the gradients are being written: weights + gradients + optimizer
state + saved activations + the backward's scratch, taken as the gradients of the largest saved activation
and of its input (twice its size).
Inference holds the weights, the KV cache and the largest working set of one op (its inputs and output).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

# optimizer state per trainable parameter, in parameter-sized buffers (bench/train.py's optimizers)
OPTIMIZER_BUFFERS = {"sgd": 1, "adam": 2, "adamw": 2}


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
    backward_scratch: int = 0  # training: two gradients the size of the largest saved activation

    def to_dict(self) -> dict:
        return asdict(self)


def _storage(t: torch.Tensor):
    try:
        s = t.untyped_storage()
        return s._cdata, s.nbytes()
    except (RuntimeError, NotImplementedError, TypeError):
        return None, t.numel() * t.element_size()


class SavedTensors:
    """What autograd saves for the backward during the forward run inside this context, by storage."""

    def __init__(self, exclude: set[int]):
        self.exclude = exclude
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


def model_storages(model) -> set[int]:
    keys = set()
    for t in (*model.parameters(), *model.buffers()):
        key, _ = _storage(t)
        if key is not None:
            keys.add(key)
    return keys


def estimate(model, *, dtype: torch.dtype | None, backward: bool, optimizer: str | None, saved: int,
             kv_cache: int = 0, working_set: int = 0, largest_saved: int = 0) -> MemoryEstimate:
    """The parts and the peak, from the model's tensors (each counted once) at ``dtype`` (None: their own)."""
    def nbytes(t: torch.Tensor) -> int:
        size = dtype.itemsize if dtype is not None and t.is_floating_point() else t.element_size()
        return t.numel() * size

    seen: set[int] = set()
    weights = trainable = 0
    for t in (*model.parameters(), *model.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        weights += nbytes(t)
        if backward and isinstance(t, torch.nn.Parameter) and t.requires_grad:
            trainable += nbytes(t)
    opt = optimizer if backward else None
    state = OPTIMIZER_BUFFERS[opt] * trainable if opt else 0
    scratch = 2 * largest_saved if backward else 0
    peak = weights + trainable + state + saved + scratch if backward else weights + kv_cache + working_set
    return MemoryEstimate(weights=weights, gradients=trainable, optimizer_state=state,
                          activations_saved=saved if backward else 0, kv_cache=kv_cache, peak_bytes=peak,
                          optimizer=opt, working_set=0 if backward else working_set, backward_scratch=scratch)
