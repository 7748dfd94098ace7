"""Zero-cost proxies (EXPERIMENTAL): scores of an untrained network from one random minibatch.

- synflow (Tanaka et al. 2020): sum over conv/linear weights of |θ · ∂R/∂θ|, R the summed output of the
  network with |θ| weights on an all-ones input, in float64, eval mode. Reported as log10 (it spans
  hundreds of orders of magnitude across depths).
- grad_norm (Abdelfattah et al. 2021): sum of the L2 norms of the conv/linear weight gradients of the
  cross-entropy loss on random inputs and random labels, train mode.
- naswot (Mellor et al. 2021): log|det K| of the Hamming-similarity kernel of the samples' binary
  activation codes (pre-activation > 0 at every ReLU/SiLU/GELU/... module), train mode.

How well these rank trained accuracy depends on the search space; treat them as a hint, not a result.
Each proxy works on the model it is given and changes it (pass a copy to keep one): grad_norm and naswot
update batch-norm statistics (grad_norm's gradients are cleared afterwards, naswot's hooks removed), synflow
turns the weights into |θ| in float64. ``all_proxies`` runs them on one model built for the call, synflow
last, with the batch-norm statistics put back before it, so each sees the model as built.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

PROXIES = ("synflow", "grad_norm", "naswot")
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Mish, nn.LeakyReLU, nn.ELU, nn.PReLU,
                nn.Hardtanh)


def _weights(model: nn.Module):
    return [m.weight for m in model.modules() if isinstance(m, _WEIGHTED) and m.weight is not None]


def synflow(model: nn.Module, shape) -> float:
    m = model.double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.abs_()
    m.zero_grad(set_to_none=True)
    out = m(torch.ones((1, *shape[1:]), dtype=torch.float64))
    torch.sum(out).backward()
    total = sum(float((w.detach() * w.grad).abs().sum()) for w in _weights(m) if w.grad is not None)
    if not math.isfinite(total):
        raise FloatingPointError("synflow overflowed float64")
    return math.log10(total) if total > 0 else float("-inf")


def _batch(shape, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *shape[1:]), generator=g)


def grad_norm(model: nn.Module, shape, batch: int = 8, seed: int = 0) -> float:
    m = model.train()
    m.zero_grad(set_to_none=True)
    try:
        out = m(_batch(shape, batch, seed))
        g = torch.Generator().manual_seed(seed + 1)
        y = torch.randint(0, out.shape[-1], (batch,), generator=g)
        F.cross_entropy(out, y).backward()
        return float(sum(w.grad.norm() for w in _weights(m) if w.grad is not None))
    finally:
        m.zero_grad(set_to_none=True)


def naswot(model: nn.Module, shape, batch: int = 8, seed: int = 0) -> float:
    m = model.train()
    kernel = torch.zeros(batch, batch, dtype=torch.float64)

    def hook(_mod, inputs, _out):
        c = (inputs[0].detach() > 0).flatten(1).to(torch.float32)
        kernel.add_((c @ c.T + (1 - c) @ (1 - c).T).double())

    handles = [mod.register_forward_hook(hook) for mod in m.modules() if isinstance(mod, _ACTIVATIONS)]
    if not handles:
        raise ValueError("naswot needs activation modules (ReLU, SiLU, GELU, ...); the model has none")
    try:
        with torch.no_grad():
            m(_batch(shape, batch, seed))
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def all_proxies(model: nn.Module, shape, batch: int = 8, seed: int = 0) -> dict[str, float | None]:
    """Each proxy, or None with its reason under ``<name>_error`` when it cannot be computed.

    Runs on ``model`` itself and leaves it changed (see the module docstring): pass one built for the call.
    """
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}   # batch-norm statistics, as built

    def restore_then_synflow():
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
        return synflow(model, shape)

    out: dict = {}
    for name, fn in (("grad_norm", lambda: grad_norm(model, shape, batch, seed)),
                     ("naswot", lambda: naswot(model, shape, batch, seed)),
                     ("synflow", restore_then_synflow)):
        try:
            out[name] = fn()
        except Exception as exc:
            out[name] = None
            out[f"{name}_error"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return {k: out[k] for k in (*PROXIES, *(f"{p}_error" for p in PROXIES)) if k in out}
