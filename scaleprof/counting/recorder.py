"""The dispatch-level recorder: every aten op a forward (and backward) runs, costed and attributed.

Three pieces work together while a model runs, and all are removed when it returns:
- global module pre/post hooks keep the stack of modules being called (so each op is attributed to the
  innermost module that ran it);
- a TorchFunctionMode marks regions that aten ops cannot tell apart: F.linear (its addmm is a linear layer,
  not a bare matmul) and the attention functions, which are costed once from their shapes by formula so
  that every backend (math, flash, memory-efficient, the CPU flash kernel, the MHA fast path) counts alike;
- a TorchDispatchMode costs each aten op by the registry in formulas.py.
Backward ops are attributed through the autograd node running them: during the forward each op's output
node is tagged with (module, kind), and the backward op takes that tag.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

from .. import no_dynamo
from . import flex
from . import kinds as K
from . import quantized as _quantized  # noqa: F401  (registers the quantized:: formulas)
from .elementwise import CREATION_OPS, MOVEMENT_OPS, VIEW_OPS
from .formulas import Args, Cost, arguments, jagged_sdpa_cost, lookup, mha_cost, op_key, sdpa_cost
from .meta_shapes import shortcut
from .result import Layer

FORWARD, BACKWARD = "forward", "backward"
RECOMPUTE = "recompute"   # forward ops a backward runs again (activation checkpointing)


@dataclass
class OpCall:
    """One forward op call as the recorder saw it: what an Observer's ``op`` receives.

    ``func`` is the aten OpOverload, or the torch.nn.functional function for an op costed as a whole
    (attention); ``args``/``kwargs``/``out`` are the call's own (meta tensors on a meta count: read shapes,
    do not compute). ``kind`` is the layer kind ("other" for views and uncounted ops, which cost framework
    time but no arithmetic); ``macs``/``flops``/``bytes`` the op's cost summed over its kinds; ``inputs`` the
    tensors it read; ``counted`` whether a formula (or the free lists) costed it.
    """

    func: Any
    args: tuple
    kwargs: dict
    out: Any
    module: str
    kind: str
    macs: int = 0
    flops: int = 0
    bytes: int = 0
    inputs: list = None  # type: ignore[assignment]
    counted: bool = False


class Observer:
    """The public per-op hook: ``profile(..., observer=obs)`` calls ``obs.start()`` when a recording begins
    (again if the count is retried on CPU), ``obs.module(name, module)`` on each module call and
    ``obs.op(OpCall)`` on each forward op call, backward ops excluded. Subclass and override what you need;
    the hooks run inside the dispatch mode, so they must not run torch ops on the tensors they are given."""

    def start(self) -> None:
        pass

    def module(self, name: str, module: nn.Module) -> None:
        pass

    def op(self, call: OpCall) -> None:
        pass


@dataclass(frozen=True)
class Tag:
    module: str
    kind: str


def _tensors(tree) -> list[torch.Tensor]:
    """Tensors in op arguments/outputs: a fast path for the flat tuples/lists/dicts aten ops take."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    out = []
    for x in (tree.values() if isinstance(tree, dict) else tree):
        if isinstance(x, torch.Tensor):
            out.append(x)
        elif isinstance(x, (list, tuple, dict)):
            out.extend(_tensors(x))
    return out


def _distinct_elements(t: torch.Tensor) -> int:
    """Elements actually stored: an expanded (stride-0) dimension is read once; a nested tensor's values."""
    if t.is_nested:
        return _distinct_elements(t._values)   # the attribute: values() would dispatch an op
    if t.is_contiguous():   # no stride-0 dimension of more than one element: every element is stored
        return t.numel()
    try:
        return int(torch.Size(s for s, st in zip(t.shape, t.stride(), strict=True) if st != 0).numel())
    except (RuntimeError, NotImplementedError):
        return t.numel()


def _nbytes(t: torch.Tensor) -> int:
    return _distinct_elements(t) * t.element_size()


def _storage_key(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, TypeError):
        return None


def _shape(t) -> list[int] | None:
    return list(t.shape) if isinstance(t, torch.Tensor) else None


class Recorder:
    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], *, tag_backward: bool = False,
                 observer: Observer | None = None):
        self.module_names: dict[int, str] = {}
        for name, mod in model.named_modules(remove_duplicate=False):
            self.module_names.setdefault(id(mod), name)
        self.stack: list[tuple[str, nn.Module]] = [("", model)]
        self.call_names: dict[tuple[str, int, int], str] = {}
        self.regions: list[str] = []
        self.suppress = 0
        self.phase = FORWARD
        self.active = True
        self.tag_backward = tag_backward
        self.pending: list[tuple[list[torch.Tensor], Tag]] = []
        self.node_tags: dict[Any, Tag] = {}
        self.rows: dict[tuple[str, str, str], Layer] = {}
        self.op_rows: dict[tuple[str, str], Layer] = {}
        self.uncounted: Counter = Counter()
        self.free_ops: Counter = Counter()
        # parameters by storage, claimed by the first op that reads them (each counted once)
        self.unclaimed: dict[int, tuple[str, int]] = {}
        for pname, p in params.items():
            key = _storage_key(p)
            if key is not None:
                self.unclaimed.setdefault(key, (pname, p.numel()))
        self.param_keys = frozenset(self.unclaimed)
        # packed weights seen (`_packed_key`), each kept alive: an id names one object only while it lives (a
        # packed object the dispatcher made for one call and freed gave its id to the next layer's)
        self.packed_seen: dict[Any, Any] = {}
        self.failure: dict[str, Any] | None = None
        self.formula_errors: dict[str, str] = {}
        self.observer = observer
        if observer is not None:
            observer.start()

    # --- module stack --------------------------------------------------------------------------------

    def _pre_hook(self, module, args):
        parent_name, parent = self.stack[-1]
        key = (parent_name, id(parent), id(module))
        name = self.call_names.get(key)
        if name is None:
            name = self.call_names[key] = self._call_name(parent_name, parent, module)
        self.stack.append((name, module))
        if self.observer is not None:
            self.observer.module(name, module)

    def _call_name(self, parent_name: str, parent: nn.Module, module: nn.Module) -> str:
        """The path a call came through: a module shared by two parents is named under the one calling it
        (as fvcore's analysis does); a module called from elsewhere keeps its first registered name."""
        for child_name, child in parent._modules.items():
            if child is module:
                return f"{parent_name}.{child_name}" if parent_name else child_name
        name = self.module_names.get(id(module))
        if name is None:  # a module made during forward: name it under its caller
            name = f"{parent_name}.<{type(module).__name__}>" if parent_name else f"<{type(module).__name__}>"
        return name

    def _post_hook(self, module, args, output):
        if len(self.stack) > 1 and self.stack[-1][1] is module:
            self.stack.pop()

    @contextlib.contextmanager
    def attached(self):
        """Enter the hooks and both modes; everything is removed on exit, whatever happens."""
        pre = nn.modules.module.register_module_forward_pre_hook(self._pre_hook)
        post = nn.modules.module.register_module_forward_hook(self._post_hook, always_call=True)
        try:
            with no_dynamo.eager(), flex.uncompiled(_Counting), _Regions(self), _Counting(self):
                yield self
        finally:
            pre.remove()
            post.remove()
            self.pending.clear()

    @contextlib.contextmanager
    def backward(self):
        """The backward pass of what was recorded so far: its ops are recorded as backward ops, each
        attributed through the autograd node running it to the forward op it differentiates."""
        self.resolve_pending()
        self.phase = BACKWARD
        try:
            yield self
        finally:
            self.phase = FORWARD

    @contextlib.contextmanager
    def paused(self):
        """Ops run here (the backward's seed gradients) are not the model's and are not recorded."""
        active, self.active = self.active, False
        try:
            yield self
        finally:
            self.active = active

    # --- tagging for backward attribution ------------------------------------------------------------

    def resolve_pending(self) -> None:
        for outs, tag in self.pending:
            for t in outs:
                node = t.grad_fn
                if node is not None and node not in self.node_tags:
                    self.node_tags[node] = tag
        self.pending.clear()

    def _pend(self, out, tag: Tag) -> None:
        if self.tag_backward and self.phase == FORWARD and torch.is_grad_enabled():
            self.pending.append((_tensors(out), tag))

    # --- kinds -----------------------------------------------------------------------------------------

    def _reads_param(self, args) -> bool:
        return any(_storage_key(t) in self.param_keys for t in _tensors(args))

    def module_hint(self) -> str | None:
        """The kind a torch.nn layer stands for, for element-wise ops it runs (AdaptiveAvgPool2d(1) runs
        as a mean; some norms decompose on some devices)."""
        return K.module_hint(self.stack[-1][1])

    def product_kind(self, args) -> str:
        """mm/bmm and friends: linear inside F.linear or when a parameter is an operand (MHA's projections
        call linear where no function mode sees them); attention inside an attention region, or inside an
        attention module (kinds.is_attention_module: HF's eager QKᵀ and AV)."""
        if self.regions:
            return self.regions[-1]
        if self._reads_param(args):
            return K.LINEAR
        if any(K.is_attention_module(m) for _, m in self.stack):
            return K.ATTENTION
        return K.MATMUL

    # --- recording -------------------------------------------------------------------------------------

    def on_op(self, func, args, kwargs, out) -> None:
        if not self.active:
            return
        key = op_key(func)
        module = self.stack[-1][0]
        if self.suppress:  # inside a function costed as a whole; still tag nodes for backward
            kind = self.regions[-1]
            if lookup(func) in _PROJECTION_FORMULAS and self._reads_param(args):
                kind = K.LINEAR  # MHA's in- and out-projections
            self._pend(out, Tag(module, kind))
            return
        if key in VIEW_OPS:
            self.free_ops[key] += 1
            self._pend(out, Tag(module, K.OTHER))
            return self._observe(func, args, kwargs, out, None)
        formula = lookup(func)
        if formula is None:
            if key in MOVEMENT_OPS or key in CREATION_OPS:
                costs = [Cost(0, 0, K.OTHER, activations=0)]
            else:
                self.uncounted[key] += 1
                return self._observe(func, args, kwargs, out, None)
        else:
            costs = self._apply(key, formula, func, args, kwargs, out)
            if costs is None:
                return self._observe(func, args, kwargs, out, None)
        read = 0 if key in CREATION_OPS else None
        if key == "aten::embedding":   # a gather reads the rows it looks up, not the whole table
            read = _nbytes(args[1]) + _nbytes(out)
        self._observe(func, args, kwargs, out, self.record(key, costs, args, kwargs, out, read_bytes=read))

    def _observe(self, func, args, kwargs, out, summary) -> None:
        if self.observer is None or self.phase != FORWARD:
            return
        if summary is None:
            call = OpCall(func, args, kwargs, out, self.stack[-1][0], K.OTHER,
                          inputs=[a for a in args if isinstance(a, torch.Tensor)][:1])
        else:
            call = OpCall(func, args, kwargs, out, *summary, counted=True)
        self.observer.op(call)

    def _apply(self, key, formula, func, args, kwargs, out) -> list[Cost] | None:
        """A formula that cannot read an op's arguments lists the op as uncounted, never crashes the run."""
        try:
            costs = formula(arguments(func, args, kwargs), out)
        except Exception as exc:
            self.uncounted[key] += 1
            self.formula_errors.setdefault(key, f"{type(exc).__name__}: {exc}")
            return None
        return costs if isinstance(costs, list) else [costs]

    def record(self, key: str, costs: list[Cost], args, kwargs, out, *, read_bytes: int | None = None) -> tuple:
        """Add the op's costs to the tables; returns (module, kind, macs, flops, bytes, inputs) for the observer."""
        tag = None
        # a module running inside the backward is a checkpointed forward being recomputed
        phase = RECOMPUTE if self.phase == BACKWARD and len(self.stack) > 1 else self.phase
        if phase == BACKWARD:
            node = torch._C._current_autograd_node()
            tag = self.node_tags.get(node) if node is not None else None
        module = tag.module if tag is not None else self.stack[-1][0]
        module_type = type(self.stack[-1][1]).__name__ if tag is None else ""
        ins, outs = _tensors((args, kwargs)), _tensors(out)
        if read_bytes is None and costs and costs[0].read_bytes is not None:
            read_bytes = costs[0].read_bytes   # the formula knows the op reads only part of an input
        if read_bytes is None:
            seen: set[int] = set()
            read_bytes = 0
            for t in ins:
                if id(t) not in seen:
                    seen.add(id(t))
                    read_bytes += _nbytes(t)
        # a norm's saved statistics are scratch whose size differs by kernel (per channel on meta, empty on
        # CPU in inference): only the normalised output counts as written
        written = outs[:1] if costs and costs[0].kind == K.NORM else outs
        op_bytes = read_bytes + sum(_nbytes(t) for t in written)
        claimed = self._claim(ins) if self.phase == FORWARD and self.unclaimed else 0
        for cost in costs:
            if cost.packed is not None:
                packed, n, nbytes = cost.packed
                op_bytes += nbytes
                seen = self._packed_key(packed, n, nbytes)
                if self.phase == FORWARD and seen not in self.packed_seen:
                    self.packed_seen[seen] = packed
                    claimed += n
        primary = outs[0] if outs else None
        first_kind = None
        for i, cost in enumerate(costs):
            kind = cost.kind or self.product_kind(args)
            if kind == K.ELEMENTWISE and tag is None:
                kind = self.module_hint() or kind
            if tag is not None:  # a backward op takes the kind of the forward op it differentiates
                kind = tag.kind if tag.kind != K.OTHER else kind
            first_kind = first_kind or kind
            acts = cost.activations
            if acts is None:
                acts = primary.numel() if kind in K.ACTIVATION_WRITING_KINDS and primary is not None else 0
            if self.phase == BACKWARD:
                acts = 0
            extra = {"bytes": op_bytes if i == 0 else 0, "params": claimed if i == 0 else 0}
            self._add(self.rows, (phase, module, kind), module_type, kind, key, cost, acts, extra,
                      ins, primary)
            self._add(self.op_rows, (phase, key), "", kind, key, cost, acts, extra, ins, primary)
        self._pend(out, Tag(module, first_kind or K.OTHER))
        return (module, first_kind or K.OTHER, sum(int(c.macs) for c in costs), sum(int(c.flops) for c in costs),
                op_bytes, ins)

    def _add(self, table, rkey, module_type, kind, opname, cost, acts, extra, ins, primary) -> None:
        row = table.get(rkey)
        if row is None:
            phase = rkey[0]
            name = rkey[1] if len(rkey) == 3 else opname
            row = table[rkey] = Layer(name, module_type, kind, phase)
            row.info = dict(cost.info)
            row.info["input_shapes"] = [_shape(t) for t in ins[:3]]
            row.info["output_shape"] = _shape(primary)
        row.macs += int(cost.macs)
        row.flops += int(cost.flops)
        row.activations += int(acts)
        row.bytes += extra["bytes"]
        row.params += extra["params"]
        if extra["bytes"] or cost.macs or cost.flops:
            row.calls += 1
        row.ops[opname] += 1

    def _packed_key(self, packed, n: int, nbytes: int):
        """Which weights a packed-weight op reads, for counting their parameters once. The dispatcher hands
        each call a fresh wrapper of the same packed object, so a wrapper's id names one call; inside a
        quantized module (it holds its packed weights: ``_packed_params``) the module and the weights' size
        name them across calls (a module called twice), else the wrapper, kept alive, does."""
        mod = self.stack[-1][1] if self.stack else None
        if mod is not None and hasattr(mod, "_packed_params"):
            return ("module", id(mod), n, nbytes)
        return id(packed)

    def _claim(self, tensors) -> int:
        total = 0
        for t in tensors:
            key = _storage_key(t)
            if key is not None and key in self.unclaimed:
                total += self.unclaimed.pop(key)[1]
        return total

    def note_failure(self, func, args, exc) -> None:
        if self.failure is None:
            name, mod = self.stack[-1]
            self.failure = {"module": name or "(root)", "module_type": type(mod).__name__, "op": op_key(func),
                            "shapes": [_shape(t) for t in _tensors(args)][:4], "error": exc}

    # --- functions costed as a whole ---------------------------------------------------------------------

    def run_function(self, func, args, kwargs, formula):
        self.suppress += 1
        self.regions.append(K.ATTENTION)
        try:
            out = _call_or_stand_in(func, args, kwargs)
        finally:
            self.suppress -= 1
            self.regions.pop()
        if not self.suppress and self.active:
            key = _function_key(func)
            costs = self._apply(key, formula, func, args, kwargs, out)
            if costs is not None:
                self._observe(func, args, kwargs, out, self.record(key, costs, args, kwargs, out))
        return out


def _call_or_stand_in(func, args, kwargs):
    """Run a function costed as a whole. Jagged attention has kernels on CUDA only (and none for is_causal on
    CPU): where none runs, the cost is still its shapes', so the forward goes on with an output of the right
    shape, as on meta tensors."""
    if func is F.scaled_dot_product_attention:
        out = _sdpa_meta_path(*args, **kwargs)
        if out is not None:
            return out
    try:
        if func is F.multi_head_attention_forward:
            with _flash_inside_mha():
                return func(*args, **kwargs)
        return func(*args, **kwargs)
    except RuntimeError:
        q = args[0] if args else kwargs.get("query")
        v = args[2] if len(args) > 2 else kwargs.get("value")
        if func is not F.scaled_dot_product_attention or not getattr(q, "is_nested", False) \
                or v.shape[-1] != q.shape[-1]:
            raise
        return torch.empty_like(q)


def _sdpa_on_meta(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """SDPA's output on meta without its math decomposition (a dozen ops, each through the recorder and
    Python meta kernels, none of them counted: the function is costed whole from its shapes): a contiguous
    (..., L, Ev) tensor of the query's dtype, as the math path makes. Only for plain meta tensors of
    matching shapes and nothing for a backward to attribute; anything else (a bad shape torch would refuse)
    runs torch's own. tests/test_counting.py checks the output and whole counts against the real path."""
    ts = (query, key, value)
    if not _plain_meta(*ts, attn_mask) or attn_mask is not None and (
            is_causal or attn_mask.dtype not in (torch.bool, query.dtype)):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in (*ts, attn_mask) if t is not None):
        return None
    q, k, v = (t.shape for t in ts)
    if len(q) < 2 or not (len(q) == len(k) == len(v)) or q[:-2] != k[:-2] or k[:-2] != v[:-2] or q[-1] != k[-1] \
            or k[-2] != v[-2] or not (query.dtype == key.dtype == value.dtype) or not query.is_floating_point():
        return None
    out_shape = (*q[:-1], v[-1])
    if attn_mask is not None:
        full = (*q[:-2], q[-2], k[-2])
        try:
            if tuple(torch.broadcast_shapes(attn_mask.shape, full)) != full:
                return None
        except RuntimeError:
            return None
    return torch.empty(out_shape, dtype=query.dtype, device="meta")


def _plain_meta(*ts) -> bool:
    """Every tensor given (None skipped) a plain tensor on meta: what the SDPA shortcuts take."""
    return all(t is None or (type(t) in _PLAIN_TYPES and t.device.type == "meta") for t in ts)


def _sdpa_meta_path(*args, **kwargs):
    """SDPA on meta without torch's math path where one of the shortcuts applies (None: torch's own): the
    output alone where nothing needs a backward (`_sdpa_on_meta`), the CPU's kernel where something does
    (`_sdpa_flash_on_meta`)."""
    out = _sdpa_on_meta(*args, **kwargs)
    return out if out is not None else _sdpa_flash_on_meta(*args, **kwargs)


def _sdpa_flash_on_meta(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                        enable_gqa=False):
    """SDPA with a backward on meta, through the kernel a CPU run picks for the same call. On meta torch
    picks the math path, which saves the (L, S) attention matrix for the backward and runs a decomposed
    backward; the CPU's flash kernel (which torch picks for these shapes whenever it can: no dropout, a
    dense last dimension) saves only its inputs, output and log-sum-exp, and its backward is one op. So the
    memory estimate's saved activations and the backward's ops are the ones a CPU step has. None where the
    CPU would take the math path too (then torch's own runs) or the call is not plain meta tensors."""
    ts = (query, key, value)
    if not _plain_meta(*ts, attn_mask) or enable_gqa:
        return None
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in ts)) or query.dim() != 4:
        return None
    if _cpu_sdp_choice(ts, attn_mask, dropout_p, is_causal, scale) != int(SDPBackend.FLASH_ATTENTION):
        return None
    if attn_mask is not None and attn_mask.dtype == torch.bool:   # as torch converts it before the kernel
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill_(~attn_mask, float("-inf"))
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale)[0]


def _cpu_sdp_choice(ts, attn_mask, dropout_p, is_causal, scale) -> int | None:
    """Torch's own SDPA selection for a CPU call of these sizes, asked on CPU stand-ins whose last dimension
    is dense (it reads sizes, dtypes, the last stride and the flags; an expanded row keeps them without the
    memory), outside every mode (it is no op to count)."""
    with _disable_current_modes():
        def stand_in(t):
            row = torch.empty(t.shape[-1], dtype=t.dtype, device="cpu")
            return row.expand(t.shape).requires_grad_(t.requires_grad)
        try:
            mask = None if attn_mask is None else \
                torch.empty((), dtype=attn_mask.dtype, device="cpu").expand(attn_mask.shape)
            return torch._fused_sdp_choice(*(stand_in(t) for t in ts), attn_mask=mask, dropout_p=dropout_p,
                                           is_causal=is_causal, scale=scale)
        except (RuntimeError, TypeError):
            return None


@contextlib.contextmanager
def _flash_inside_mha():
    """nn.MultiheadAttention's function calls SDPA itself, out of the function modes' sight (a mode is off
    while its handler runs): for the length of that call the module's global name is `_sdpa_meta_path`'s
    wrapper (torch's own wherever that does not apply), so its backward saves and runs what a CPU run's does,
    and without one it skips the math path as a direct call does."""
    real = F.scaled_dot_product_attention

    def sdpa(*args, **kwargs):
        out = _sdpa_meta_path(*args, **kwargs)
        return real(*args, **kwargs) if out is None else out

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = real


def _function_key(func) -> str:
    return f"F.{getattr(func, '__name__', str(func))}"


def _mha_function_cost(a: Args, out) -> list[Cost]:
    q, k = a["query"], a["key"]
    E, H = int(a["embed_dim_to_check"]), int(a["num_heads"])
    batched = q.dim() == 3
    L, B = (int(q.shape[0]), int(q.shape[1])) if batched else (int(q.shape[0]), 1)
    S = int(k.shape[0]) + (1 if a["bias_k"] is not None else 0) + (1 if a["add_zero_attn"] else 0)
    if a["use_separate_proj_weight"]:
        kdim, vdim = int(a["k_proj_weight"].shape[1]), int(a["v_proj_weight"].shape[1])
    else:
        kdim = vdim = E
    masked = a["attn_mask"] is not None or a["key_padding_mask"] is not None or bool(a["is_causal"])
    return mha_cost(B=B, L=L, S=S, E=E, H=H, kdim=kdim, vdim=vdim, in_bias=a["in_proj_bias"] is not None,
                    out_bias=a["out_proj_bias"] is not None, masked=masked, need_weights=bool(a["need_weights"]))


def _sdpa_function_cost(a: Args, out) -> Cost:
    return jagged_sdpa_cost(a) if a["query"].is_nested else sdpa_cost(a, out)


_WHOLE_FUNCTIONS = {
    F.scaled_dot_product_attention: _sdpa_function_cost,  # named by aten::scaled_dot_product_attention's schema
    F.multi_head_attention_forward: _mha_function_cost,
}
_LINEAR_FUNCTIONS = {F.linear}
# inside a function costed as a whole, a 2-D product reading a parameter is a projection (MHA's in- and
# out-projections run as mm/addmm); a batched product (bmm) is attention's own even when Q, K or V are parameters
_PROJECTION_FORMULAS = {lookup(getattr(torch.ops.aten, n).default) for n in ("mm", "addmm")}


class _Regions(TorchFunctionMode):
    def __init__(self, rec: Recorder):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        formula = _WHOLE_FUNCTIONS.get(func)
        if formula is not None:
            return self.rec.run_function(func, args, kwargs, formula)
        if func in _LINEAR_FUNCTIONS:
            self.rec.regions.append(K.LINEAR)
            try:
                return func(*args, **kwargs)
            finally:
                self.rec.regions.pop()
        return func(*args, **kwargs)


@functools.cache
def _decomposable(func) -> bool:
    key = op_key(func)
    if lookup(func) is not None or key in VIEW_OPS or key in MOVEMENT_OPS or key in CREATION_OPS:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), "CompositeImplicitAutograd")


_PLAIN_TYPES = frozenset({torch.Tensor, nn.Parameter, nn.Buffer})


class _Counting(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in its dynamo-disabling decorator unless the mode opts out,
        # and that decorator imports torch._dynamo (~1.3 s) on the first op. Counting never runs under
        # torch.compile, so there is nothing for the wrapper to guard.
        return False

    def __init__(self, rec: Recorder):
        super().__init__()
        self.rec = rec

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        if rec.pending:
            rec.resolve_pending()
        if not _PLAIN_TYPES.issuperset(types):
            # a tensor subclass (a nested/jagged tensor) implements the op itself, and may call it again on
            # the same subclass (is_contiguous on a jagged tensor decomposes back into itself): never
            # decompose or shortcut it; its formula reads its shapes, or it is listed as uncounted
            out = func(*args, **kwargs)
            rec.on_op(func, args, kwargs, out)
            return out
        if _decomposable(func):
            # A composite op (conv2d, linear …) reaches here undecomposed under inference_mode: run its
            # decomposition with this mode re-entered so its aten ops are counted one by one.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = shortcut(op_key(func), func, args, kwargs)
        if out is None:
            try:
                out = func(*args, **kwargs)
            except Exception as exc:
                rec.note_failure(func, args, exc)
                raise
        rec.on_op(func, args, kwargs, out)
        return out
