"""Building a model on meta tensors without running its weight initialisation.

Meta tensors hold no values, so ``nn.init`` and the in-place fills it uses have nothing to do; torch still
runs them (fan computations, Python reference implementations shape by shape), which is most of the time a
meta build takes. ``skip_init(device)`` is a scoped TorchFunctionMode that returns a meta tensor unchanged
from those calls; shapes, parameters and any count of the model are the same. Low level on purpose: the zoo
and ``spec.load_model`` both use it.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import no_dynamo

# In-place fills that weight initialisation uses; none changes a tensor's shape.
_TENSOR_OPS = frozenset(getattr(torch.Tensor, n) for n in (
    "normal_", "uniform_", "zero_", "fill_", "erfinv_", "mul_", "add_", "sub_", "div_", "clamp_", "copy_",
    "exponential_", "bernoulli_", "random_", "abs_", "sqrt_", "exp_", "log_", "neg_", "fmod_"))
# The public nn.init in-place functions (kaiming_uniform_, uniform_, normal_, constant_, ...). Those that
# support __torch_function__ reach the mode as themselves, the tensor in kwargs["tensor"] or args[0].
_INIT_FUNCTIONS = frozenset(getattr(nn.init, n) for n in dir(nn.init)
                            if n.endswith("_") and not n.startswith("_") and callable(getattr(nn.init, n)))


class SkipInitOnMeta(TorchFunctionMode):
    """While a model is built: in-place initialisation of a meta tensor returns the tensor untouched, and
    torch's Python kernels that a meta build runs (layer-scale fills …) run without importing torch._dynamo
    (no_dynamo.py)."""

    def __enter__(self):
        self._eager = getattr(self, "_eager", [])
        self._eager.append(no_dynamo.eager())
        self._eager[-1].__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._eager.pop().__exit__(None, None, None)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _INIT_FUNCTIONS:
            t = kwargs.get("tensor", args[0] if args else None)
            if isinstance(t, torch.Tensor) and t.is_meta:
                return t
        elif func in _TENSOR_OPS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **kwargs)


def skip_init(device) -> contextlib.AbstractContextManager:
    """SkipInitOnMeta when ``device`` is meta, else a context that does nothing."""
    if device is not None and torch.device(device).type == "meta":
        return SkipInitOnMeta()
    return contextlib.nullcontext()
