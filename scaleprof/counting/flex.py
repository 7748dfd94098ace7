"""flex_attention, a higher-order op: costed as attention from its shapes (QKᵀ and ·V), plus its score_mod's
element-wise work per score where the score_mod can be traced (run once on 0-d tensors, each op it runs costed
by the formula registry).

The rule is registered on the higher-order op for the recorder's dispatch mode (``py_impl``): torch calls it
with the mode popped, so running the op again inside it takes torch's dense implementation, whose own products
are not counted a second time.
"""

from __future__ import annotations

import contextlib
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .elementwise import VIEW_OPS
from .formulas import Cost, arguments, attention_cost, lookup, op_key

KEY = "higher_order::flex_attention"


class _ScoreModCounter(TorchDispatchMode):
    """The FLOPs of one score_mod call on 0-d tensors, by the formula registry; ops without one are listed."""

    def __init__(self):
        super().__init__()
        self.flops = 0
        self.untraced: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        key = op_key(func)
        formula = lookup(func)
        if formula is not None:
            costs = formula(arguments(func, args, kwargs), out)
            self.flops += sum(int(c.flops) for c in (costs if isinstance(costs, list) else [costs]))
        elif key not in VIEW_OPS:
            self.untraced.append(key)
        return out


def score_mod_flops(score_mod, dtype: torch.dtype, n_buffers_args: tuple = ()) -> tuple[int, list[str]]:
    """FLOPs per score of ``score_mod`` (score, batch, head, q_idx, kv_idx), and the ops it ran that no
    formula covers; (0, ["score_mod"]) when it cannot be run on 0-d tensors."""
    score = torch.zeros((), dtype=dtype)
    idx = [torch.zeros((), dtype=torch.int32) for _ in range(4)]
    counter = _ScoreModCounter()
    try:
        with counter:
            score_mod(score, *idx, *n_buffers_args)
    except Exception:   # a score_mod that reads captured buffers by index or needs vmap: not traceable here
        return 0, ["score_mod"]
    return counter.flops, counter.untraced


def flex_attention_cost(query, key, value, score_mod, *, other_buffers: tuple = ()) -> Cost:
    """B·Hq·L·S·(E + Ev) MACs and attention's FLOPs (docs/counting.md), plus the score_mod's per score. Every
    score is counted, whatever a block mask skips (as for a causal kernel)."""
    B, Hq, L, E = (int(s) for s in query.shape)
    S, Ev = int(key.shape[-2]), int(value.shape[-1])
    cost = attention_cost((B, Hq, L, E), (B, Hq, S, E), (B, Hq, S, Ev), masked=False)
    per_score, untraced = score_mod_flops(score_mod, query.dtype, other_buffers)
    cost.flops += per_score * B * Hq * L * S
    cost.info = {**cost.info, "score_mod_flops_per_score": per_score}
    if untraced:
        cost.info["score_mod_untraced"] = sorted(set(untraced))
    return cost


@contextlib.contextmanager
def uncompiled(mode_class):
    """Eager flex_attention wraps its op in torch.compile (backend "eager"), which cannot trace through the
    recorder: while counting, torch's own debug flag makes it call the op directly (the same unfused dense
    implementation); the flag is put back on exit. Only when the model has imported flex attention."""
    mod = sys.modules.get("torch.nn.attention.flex_attention")
    if mod is None or not hasattr(mod, "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG"):
        yield
        return
    install(mode_class)   # here, not at import: only a model that uses flex attention pays for importing it
    before = mod._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG
    mod._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True
    try:
        yield
    finally:
        mod._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = before


def install(mode_class) -> None:
    """Register the rule for ``mode_class`` (the recorder's dispatch mode) on torch's flex_attention op."""
    try:
        from torch._higher_order_ops.flex_attention import flex_attention as hop
    except ImportError:   # a torch without flex attention
        return
    if mode_class in hop.python_key_table:
        return

    @hop.py_impl(mode_class)
    def _counted(mode, query, key, value, score_mod, block_mask, scale, kernel_options, score_mod_other_buffers=(),
                 mask_mod_other_buffers=()):
        args = (query, key, value, score_mod, block_mask, scale, kernel_options, score_mod_other_buffers,
                mask_mod_other_buffers)
        out = hop(*args)
        rec = mode.rec
        if rec.active and not rec.suppress:
            try:
                costs = [flex_attention_cost(query, key, value, score_mod, other_buffers=score_mod_other_buffers)]
            except Exception as exc:   # listed, as any formula that cannot read its op
                rec.uncounted[KEY] += 1
                rec.formula_errors.setdefault(KEY, f"{type(exc).__name__}: {exc}")
                return out
            rec.record(KEY, costs, (query, key, value), {}, out[0])
        return out

    del _counted
