"""Cost formulas: one pure function per op family, in one registry (like torch/utils/flop_counter.py).

A formula takes the op's arguments by schema name (``Args``: ``a["stride"]``, normalised once per call from
the op's schema, defaults filled in) and its output, and returns a ``Cost`` (or a list of them, for fused ops
that span several kinds, such as the MHA fast path). Shapes are all it reads, so it works on meta tensors.
The convention (what a MAC is, what each element-wise op costs in FLOPs) is written in docs/counting.md;
the per-element numbers live in ``elementwise.py``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import layers  # noqa: F401  (defines the scaleprof:: ops the deformable-conv formulas are for)
from . import kinds as K
from .elementwise import (
    ACTIVATION_COST,
    ELEMENTWISE_COST,
    LOSS_COST,
    LOSS_WEIGHT_COST,
    NORM_BACKWARD_FACTOR,
    REDUCTION_COST,
    SOFTMAX_BACKWARD_COST,
    SOFTMAX_COST,
    UPSAMPLE_COST,
    norm_cost_per_element,
)


@dataclass
class Cost:
    """What one op costs. ``kind=None`` on a product (mm, bmm …) lets the recorder decide from context
    (inside F.linear or with a parameter operand: linear; inside attention: attention; else matmul)."""

    macs: int = 0
    flops: int = 0
    kind: str | None = None
    activations: int | None = None  # None: the recorder uses the output size for conv/linear kinds
    info: dict[str, Any] = field(default_factory=dict)
    # weights that are no tensor the recorder sees (quantized packed weights): (the packed object, parameters,
    # bytes read); their parameters are counted once per object, their bytes at each call
    packed: tuple[Any, int, int] | None = None
    read_bytes: int | None = None   # None: every input read once; set where an op reads only part of one


class Args(dict):
    """One call's arguments by name, in the op's schema order, defaults filled in: what a formula reads.
    ``first`` is the first argument (the op's input, whether the schema calls it ``self`` or ``input``)."""

    __slots__ = ()

    @property
    def first(self):
        return next(iter(self.values()))


Formula = Callable[[Args, Any], "Cost | list[Cost]"]
_REGISTRY: dict[str, Formula] = {}


def _schema_signature(schema) -> tuple[tuple[str, ...], tuple]:
    args = schema.arguments
    return tuple(a.name for a in args), tuple(a.default_value if a.has_default_value() else None for a in args)


@functools.cache
def signature(func) -> tuple[tuple[str, ...], tuple]:
    """(argument names, defaults) of an OpOverload from its schema, once per op. For a torch function costed
    as a whole: its Python signature, or for a builtin (F.scaled_dot_product_attention) the aten op's."""
    schema = getattr(func, "_schema", None)
    if schema is not None:
        return _schema_signature(schema)
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return _schema_signature(getattr(torch.ops.aten, func.__name__).default._schema)
    return tuple(p.name for p in params), tuple(None if p.default is p.empty else p.default for p in params)


def arguments(func, args: tuple, kwargs: dict) -> Args:
    """The call's arguments by name: the normaliser every formula reads through."""
    names, defaults = signature(func)
    a = Args(zip(names, args, strict=False))
    for n, d in zip(names[len(args):], defaults[len(args):], strict=True):
        a[n] = kwargs.get(n, d)
    return a


@functools.cache
def op_key(func) -> str:
    """Registry key of an OpOverload: ``aten::add`` for aten.add.Tensor and aten.add_.Tensor alike."""
    name = func.overloadpacket._qualified_op_name if hasattr(func, "overloadpacket") else str(func)
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


# Namespaces of libraries that may be absent: a formula for their ops is kept for when they load.
OPTIONAL_NAMESPACES = frozenset({"torchvision", "quantized", "torchaudio", "xformers", "mmcv", "flash_attn",
                                 "torch_attn"})


@functools.cache
def _op_names() -> frozenset[str]:
    """Every op the dispatcher knows now, without overload (``aten::add``), in-place ones included."""
    return frozenset(n.split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names())


def _namespace_loaded(namespace: str) -> bool:
    return any(n.startswith(f"{namespace}::") for n in _op_names())


def is_op(key: str) -> bool:
    """Whether a registry key (``aten::relu``, the in-place ``relu_`` shares it) names an op torch has,
    or one of an optional library that is not loaded."""
    ops = _op_names()
    if key in ops or f"{key}_" in ops:
        return True
    namespace = key.split("::", 1)[0]
    if namespace in OPTIONAL_NAMESPACES and not _namespace_loaded(namespace):
        return True
    _op_names.cache_clear()  # a library may have defined ops since the set was read
    ops = _op_names()
    return key in ops or f"{key}_" in ops


def op_name(name: str) -> str:
    """The registry key for a name as formulas and the free-op lists write it (``mm``: ``aten::mm``)."""
    return name if "::" in name else f"aten::{name}"


def register(*names: str):
    """Register one formula for several ops (``aten::mm``); in-place variants share the key. A name that is
    no op, or one already registered, is refused (a misspelt key would silently count nothing)."""

    def deco(fn: Formula) -> Formula:
        for n in names:
            key = op_name(n)
            if key in _REGISTRY:
                raise ValueError(f"a formula for {key} is registered twice")
            if not is_op(key):
                raise ValueError(f"{key} is no op torch knows: no formula can be registered for it")
            _REGISTRY[key] = fn
        return fn

    return deco


def lookup(func) -> Formula | None:
    return _REGISTRY.get(op_key(func))


def registered_ops() -> list[str]:
    return sorted(_REGISTRY)


# --- helpers -----------------------------------------------------------------------------------------------

def _numel(t) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return None


def _prod(xs: Sequence[int]) -> int:
    return math.prod(int(x) for x in xs)


def _pair(v, n: int) -> list[int]:
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v] if len(v) == n else [int(v[0])] * n
    return [int(v)] * n


# --- convolution --------------------------------------------------------------------------------------------

def conv_macs(x_shape, w_shape, out_shape, transposed: bool) -> int:
    """Forward MACs. Per output pixel for a convolution, per input pixel for a transposed one
    (weight layouts: (Cout, Cin/g, *k) and (Cin, Cout/g, *k))."""
    k = _prod(w_shape[2:])
    if transposed:
        return _prod(x_shape) * int(w_shape[1]) * k
    return _prod(out_shape) * int(w_shape[1]) * k


def _conv_info(x, w, stride, padding, dilation, transposed, groups) -> tuple[str, dict]:
    nd = w.dim() - 2
    kernel = [int(s) for s in w.shape[2:]]
    dil = _pair(dilation, nd)
    kind = K.conv_kind(in_channels=int(x.shape[1]), groups=int(groups), kernel=kernel, dilation=dil,
                       transposed=bool(transposed))
    info = {"kernel": kernel, "stride": _pair(stride, nd), "padding": _pair(padding, nd), "dilation": dil,
            "groups": int(groups), "in_channels": int(x.shape[1]),
            "out_channels": int(w.shape[1] * groups) if transposed else int(w.shape[0])}
    return kind, info


@register("convolution", "_convolution", "convolution_overrideable")
def conv_cost(a: Args, out):
    x, w, transposed = a["input"], a["weight"], bool(a["transposed"])
    kind, info = _conv_info(x, w, a["stride"], a["padding"], a["dilation"], transposed, int(a["groups"]))
    macs = conv_macs(x.shape, w.shape, out.shape, transposed)
    flops = 2 * macs + (_numel(out) if a["bias"] is not None else 0)
    return Cost(macs, flops, kind, info=info)


@register("convolution_backward")
def conv_backward_cost(a: Args, out):
    # Each of grad_input and grad_weight costs what the forward costs: a grouped/depthwise weight gradient
    # is g small products, not g times the forward (torch's own counter overcounts it by g).
    grad_out, x, w, transposed, mask = a["grad_output"], a["input"], a["weight"], bool(a["transposed"]), \
        a["output_mask"]
    kind, info = _conv_info(x, w, a["stride"], a["padding"], a["dilation"], transposed, int(a["groups"]))
    fwd = conv_macs(x.shape, w.shape, grad_out.shape, transposed)
    macs = fwd * (int(bool(mask[0])) + int(bool(mask[1])))
    flops = 2 * macs + (_numel(grad_out) if mask[2] else 0)
    return Cost(macs, flops, kind, activations=0, info=info)


# --- products -------------------------------------------------------------------------------------------------

@register("mm")
def mm_cost(args: Args, out):
    a, b = args["self"], args["mat2"]
    macs = int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])
    return Cost(macs, 2 * macs)


@register("addmm")
def addmm_cost(args: Args, out):
    a, b = args["mat1"], args["mat2"]
    macs = int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])
    return Cost(macs, 2 * macs + _numel(out))


@register("_addmm_activation")
def addmm_activation_cost(a: Args, out):
    # the fused bias + ReLU/GELU epilogue of a linear layer
    act = ACTIVATION_COST["gelu" if a["use_gelu"] else "relu"] * _numel(out)
    return [addmm_cost(a, out), Cost(0, act, K.ACTIVATION, activations=0)]


@register("bmm")
def bmm_cost(args: Args, out):
    a, b = args["self"], args["mat2"]
    macs = int(a.shape[0]) * int(a.shape[1]) * int(a.shape[2]) * int(b.shape[2])
    return Cost(macs, 2 * macs)


@register("baddbmm")
def baddbmm_cost(args: Args, out):
    a, b = args["batch1"], args["batch2"]
    macs = int(a.shape[0]) * int(a.shape[1]) * int(a.shape[2]) * int(b.shape[2])
    return Cost(macs, 2 * macs + _numel(out))


@register("addbmm")
def addbmm_cost(args: Args, out):
    a, b = args["batch1"], args["batch2"]
    macs = int(a.shape[0]) * int(a.shape[1]) * int(a.shape[2]) * int(b.shape[2])
    # batch sum: (B-1) adds per output element, plus the bias add
    return Cost(macs, 2 * macs + _numel(out) * int(a.shape[0]))


@register("_grouped_mm")
def grouped_mm_cost(args: Args, out):
    """Mixture-of-experts products (transformers' default experts kernel): each row of ``self`` meets one
    group's matrix, so MACs are rows x K x N whatever the offsets (2-D x 2-D: the groups split K; 3-D x
    3-D: a plain batched product). On meta the offsets hold no values: the routing is taken as balanced,
    so min(groups, rows) experts' weights are read (decode's one token reads only its top-k experts)."""
    a, b = args["self"], args["mat2"]
    if a.dim() == 2:   # (M, K) @ (G, K, N) or (K, N): M·K·N
        macs = int(a.shape[0]) * int(a.shape[1]) * int(b.shape[-1])
    else:              # (G, M, K) @ (G, K, N) or (K, N): every output element a K-long dot product
        macs = _numel(out) * int(a.shape[-1])
    info = {}
    read = None
    if a.dim() == 2 and b.dim() == 3:
        groups, rows = int(b.shape[0]), int(a.shape[0])
        active = min(groups, rows)
        read = (a.numel() + active * _prod(b.shape[1:])) * b.element_size() + \
            (_numel(args["offs"]) * args["offs"].element_size() if args["offs"] is not None else 0)
        info = {"groups": groups, "active_groups": active, "routing": "balanced"}
    flops = 2 * macs + (_numel(out) if args["bias"] is not None else 0)
    return Cost(macs, flops, info=info, read_bytes=read)


@register("mv")
def mv_cost(a: Args, out):
    macs = int(a["self"].shape[0]) * int(a["self"].shape[1])
    return Cost(macs, 2 * macs)


@register("addmv")
def addmv_cost(a: Args, out):
    # the product plus one add per output for the bias
    macs = int(a["mat"].shape[0]) * int(a["mat"].shape[1])
    return Cost(macs, 2 * macs + _numel(out))


@register("dot", "vdot")
def dot_cost(a: Args, out):
    macs = _numel(a["self"])
    return Cost(macs, 2 * macs)


# --- attention ------------------------------------------------------------------------------------------------

def attention_cost(q_shape, k_shape, v_shape, *, masked: bool, layout: str = "bhle") -> Cost:
    """B·H·L·S·(E + Ev) MACs (QKᵀ and AV). FLOPs add the scaling of Q (one multiply per element),
    the softmax (SOFTMAX_COST per score) and a mask add per score when a mask or causal flag is given.
    A causal kernel may skip half the scores; the convention counts them all, as torch's counter does."""
    if layout == "blhe":  # (B, L, H, E): the memory-efficient/flash kernels' own layout
        q_shape = (q_shape[0], q_shape[2], q_shape[1], q_shape[3])
        k_shape = (k_shape[0], k_shape[2], k_shape[1], k_shape[3])
        v_shape = (v_shape[0], v_shape[2], v_shape[1], v_shape[3])
    *batch, L, E = (int(s) for s in q_shape)
    S, Ev = int(k_shape[-2]), int(v_shape[-1])
    bh = _prod(batch)
    scores = bh * L * S
    macs = scores * (E + Ev)
    flops = 2 * macs + bh * L * E + SOFTMAX_COST * scores + (scores if masked else 0)
    return Cost(macs, flops, K.ATTENTION, activations=0, info={"L": L, "S": S, "E": E, "Ev": Ev})


def attention_backward_cost(q_shape, k_shape, v_shape, *, masked: bool, layout: str = "bhle") -> Cost:
    """Counted like the unfused math's backward: dV, dP, dQ and dK are two products each the size of the
    forward's (2× forward MACs); the softmax backward SOFTMAX_BACKWARD_COST per score."""
    fwd = attention_cost(q_shape, k_shape, v_shape, masked=masked, layout=layout)
    scores = fwd.macs // (fwd.info["E"] + fwd.info["Ev"])
    macs = 2 * fwd.macs
    q_elems = scores // fwd.info["S"] * fwd.info["E"]  # the gradient through Q's scaling
    flops = 2 * macs + SOFTMAX_BACKWARD_COST * scores + q_elems
    return Cost(macs, flops, K.ATTENTION, activations=0, info=fwd.info)


def sdpa_masked(a: Args) -> bool:
    """Whether an attention call adds a mask to its scores: a mask or bias tensor, or the causal flag."""
    mask = a.get("attn_mask", a.get("attn_bias"))
    return mask is not None or bool(a.get("is_causal", False))


@register("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
          "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_fused_attention_overrideable",
          "_scaled_dot_product_efficient_attention")
def sdpa_cost(a: Args, out):
    q, k, v = a["query"], a["key"], a["value"]
    return attention_cost(q.shape, k.shape, v.shape, masked=sdpa_masked(a))


@register("_flash_attention_forward")
def attention_kernel_cost(a: Args, out):
    q, k, v = a["query"], a["key"], a["value"]
    if a["cum_seq_q"] is not None:   # variable length: (total, H, E) with cumulative sequence offsets
        return varlen_attention_cost(q, k, v, a["cum_seq_q"], a["cum_seq_k"], a["max_q"], a["max_k"],
                                     masked=bool(a["is_causal"]))
    return attention_cost(q.shape, k.shape, v.shape, masked=False, layout="blhe")


@register("_efficient_attention_forward")
def efficient_attention_kernel_cost(a: Args, out):
    q, k, v = a["query"], a["key"], a["value"]
    if a["cu_seqlens_q"] is not None:   # variable length: (1, total, H, E) with cumulative sequence offsets
        return varlen_attention_cost(q[0], k[0], v[0], a["cu_seqlens_q"], a["cu_seqlens_k"], a["max_seqlen_q"],
                                     a["max_seqlen_k"], masked=a["bias"] is not None or a["custom_mask_type"] != 0)
    return attention_cost(q.shape, k.shape, v.shape, masked=False, layout="blhe")


def sequence_lengths(offsets, max_len) -> list[int]:
    """Each sequence's length from cumulative offsets; where their values cannot be read (meta tensors), each
    is bounded by ``max_len``, as torch's counter bounds them."""
    if offsets.device.type == "meta":
        return [int(max_len)] * (int(offsets.numel()) - 1)
    o = [int(x) for x in offsets.tolist()]
    return [b - a for a, b in zip(o, o[1:], strict=False)]


def varlen_attention_cost(q, k, v, cum_q, cum_k, max_q, max_k, *, masked: bool) -> Cost:
    """Variable-length attention on packed (total, H, E) tensors: the sum over the sequences of the dense
    cost of each (sequence i: Lq_i queries against Lk_i keys)."""
    lq = sequence_lengths(cum_q, max_q)
    lk = sequence_lengths(cum_k if cum_k is not None else cum_q, max_k if cum_k is not None else max_q)
    H, E, Hk, Ev = int(q.shape[-2]), int(q.shape[-1]), int(k.shape[-2]), int(v.shape[-1])
    return sum_costs([attention_cost((1, H, a, E), (1, Hk, b, E), (1, Hk, b, Ev), masked=masked)
                      for a, b in zip(lq, lk, strict=True)])


def sum_costs(costs: list[Cost]) -> Cost:
    """One Cost of several of the same kind (the info of the first, with ``sequences``)."""
    first = costs[0] if costs else Cost(0, 0, K.ATTENTION, activations=0)
    return Cost(sum(c.macs for c in costs), sum(c.flops for c in costs), first.kind, activations=0,
                info={**first.info, "sequences": len(costs)} if costs else {})


@register("torch_attn::_varlen_attn")
def torch_varlen_attn_cost(a: Args, out):
    return varlen_attention_cost(a["query"], a["key"], a["value"], a["cu_seq_q"], a["cu_seq_k"], a["max_q"],
                                 a["max_k"], masked=bool(a["is_causal"]))


def jagged_sdpa_cost(a: Args) -> Cost:
    """F.scaled_dot_product_attention on nested (jagged) tensors, (B, H, j, E) with the ragged dimension 2:
    the sum over the batch's sequences, each costed as a dense call."""
    q, k, v = a["query"], a["key"], a["value"]

    def lengths(t):
        if not t.is_nested:
            return [int(t.shape[-2])] * int(t.shape[0])
        return sequence_lengths(t._offsets, getattr(t, "_max_seqlen", None) or 0)   # offsets() would dispatch

    H, E, Hk, Ev = int(q.shape[1]), int(q.shape[-1]), int(k.shape[1]), int(v.shape[-1])
    return sum_costs([attention_cost((1, H, lq, E), (1, Hk, lk, E), (1, Hk, lk, Ev), masked=sdpa_masked(a))
                      for lq, lk in zip(lengths(q), lengths(k), strict=True)])


@register("_scaled_dot_product_flash_attention_for_cpu_backward", "_scaled_dot_product_flash_attention_backward",
          "_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward")
def sdpa_backward_cost(a: Args, out):
    q, k, v = a["query"], a["key"], a["value"]
    return attention_backward_cost(q.shape, k.shape, v.shape, masked=False)


@register("_flash_attention_backward", "_efficient_attention_backward")
def attention_kernel_backward_cost(a: Args, out):
    q, k, v = a["query"], a["key"], a["value"]
    return attention_backward_cost(q.shape, k.shape, v.shape, masked=False, layout="blhe")


def mha_cost(*, B: int, L: int, S: int, E: int, H: int, kdim: int, vdim: int, in_bias: bool, out_bias: bool,
             masked: bool, need_weights: bool) -> list[Cost]:
    """nn.MultiheadAttention, whichever path runs it: in-projections and out-projection are linear,
    QKᵀ and AV are attention (with head dim E/H)."""
    proj_macs = B * L * E * E + B * S * kdim * E + B * S * vdim * E
    proj_bias = (B * L * E + 2 * B * S * E) if in_bias else 0
    d = E // H
    att = attention_cost((B, H, L, d), (B, H, S, d), (B, H, S, d), masked=masked)
    if need_weights:  # averaging the returned weights over heads
        att.flops += B * H * L * S
    out_macs = B * L * E * E
    return [Cost(proj_macs, 2 * proj_macs + proj_bias, K.LINEAR, activations=B * L * E + 2 * B * S * E),
            att,
            Cost(out_macs, 2 * out_macs + (B * L * E if out_bias else 0), K.LINEAR, activations=B * L * E)]


@register("_native_multi_head_attention")
def native_mha_cost(a: Args, out):
    q, k = a["query"], a["key"]
    E, H = int(a["embed_dim"]), int(a["num_head"])
    qkv_bias, proj_bias, mask, need_weights = a["qkv_bias"], a["proj_bias"], a["mask"], bool(a["need_weights"])
    B, L, S = int(q.shape[0]), int(q.shape[-2]), int(k.shape[-2])
    if q.dim() == 2:
        B = 1
    return mha_cost(B=B, L=L, S=S, E=E, H=H, kdim=E, vdim=E, in_bias=qkv_bias is not None,
                    out_bias=proj_bias is not None, masked=mask is not None, need_weights=need_weights)


@register("_transformer_encoder_layer_fwd")
def transformer_encoder_layer_cost(a: Args, out):
    src, E, H, use_gelu = a["src"], int(a["embed_dim"]), int(a["num_heads"]), bool(a["use_gelu"])
    F_ = int(a["ffn_weight_1"].shape[0])
    B, L = (int(src.shape[0]), int(src.shape[1])) if src.dim() == 3 else (1, int(src.shape[0]))
    parts = mha_cost(B=B, L=L, S=L, E=E, H=H, kdim=E, vdim=E, in_bias=True, out_bias=True,
                     masked=a["mask"] is not None, need_weights=False)
    tokens = B * L
    norm = norm_cost_per_element("layer_norm", affine=True)
    ffn = tokens * E * F_
    parts += [
        Cost(0, 2 * norm * tokens * E, K.NORM),
        Cost(2 * ffn, 4 * ffn + tokens * (F_ + E), K.LINEAR, activations=tokens * (F_ + E)),
        Cost(0, ACTIVATION_COST["gelu" if use_gelu else "relu"] * tokens * F_, K.ACTIVATION),
        Cost(0, 2 * tokens * E, K.ELEMENTWISE),  # the two residual adds
    ]
    return parts


# --- deformable convolution ---------------------------------------------------------------------------------

def deform_conv_cost_parts(x_shape, w_shape, out_shape, use_mask: bool) -> tuple[int, int, int]:
    """(conv MACs, bilinear-sampling MACs, mask MACs): the conv's MACs, 4 MACs per sampled value
    (N·Cin·Hout·Wout·kh·kw samples), and one multiply per sample for the v2 modulation mask."""
    n, cin = int(x_shape[0]), int(x_shape[1])
    kh, kw = int(w_shape[2]), int(w_shape[3])
    hw = int(out_shape[2]) * int(out_shape[3])
    conv = conv_macs(x_shape, w_shape, out_shape, False)
    samples = n * cin * hw * kh * kw
    return conv, 4 * samples, samples if use_mask else 0


def _deform_info(a: Args) -> dict:
    x, w = a["input"], a["weight"]
    return {"kernel": [int(w.shape[2]), int(w.shape[3])], "stride": [int(a["stride_h"]), int(a["stride_w"])],
            "padding": [int(a["pad_h"]), int(a["pad_w"])], "dilation": [int(a["dilation_h"]), int(a["dilation_w"])],
            "groups": int(a["groups"]), "offset_groups": int(a["offset_groups"]), "modulated": bool(a["use_mask"]),
            "in_channels": int(x.shape[1]), "out_channels": int(w.shape[0])}


@register("scaleprof::deform_conv2d", "torchvision::deform_conv2d")
def deform_conv_cost(a: Args, out):
    # the schema is torchvision's (input, weight, offset, mask, bias, stride_h … use_mask) in both libraries
    x, w, bias = a["input"], a["weight"], a["bias"]
    conv, sampling, mask = deform_conv_cost_parts(x.shape, w.shape, out.shape, bool(a["use_mask"]))
    macs = conv + sampling + mask
    flops = 2 * macs + (_numel(out) if bias is not None and bias.numel() else 0)
    info = _deform_info(a) | {"sampling_macs": sampling, "mask_macs": mask}
    return Cost(macs, flops, K.CONV_DEFORMABLE, info=info)


@register("scaleprof::deform_conv2d_backward", "torchvision::_deform_conv2d_backward")
def deform_conv_backward_cost(a: Args, out):
    # grad_input and grad_weight cost the conv's MACs each; the sampling is differentiated w.r.t. the input
    # values and both offset coordinates (3× its forward MACs); the mask multiply w.r.t. the mask and the
    # sampled value (2×).
    grad, x, w = a["grad"], a["input"], a["weight"]
    conv, sampling, mask = deform_conv_cost_parts(x.shape, w.shape, grad.shape, bool(a["use_mask"]))
    macs = 2 * conv + 3 * sampling + 2 * mask
    return Cost(macs, 2 * macs + _numel(grad), K.CONV_DEFORMABLE, activations=0, info=_deform_info(a))


# --- norms ----------------------------------------------------------------------------------------------------

def _norm(name: str, x, weight, *, training: bool = True, factor: float = 1.0) -> Cost:
    per = norm_cost_per_element(name, affine=weight is not None, training=training)
    return Cost(0, int(per * factor * _numel(x)), K.NORM, activations=0)


@register("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
          "cudnn_batch_norm", "miopen_batch_norm")
def batch_norm_cost(a: Args, out):
    return _norm("batch_norm", a["input"], a["weight"], training=bool(a["training"]))


@register("_native_batch_norm_legit_no_training", "_batch_norm_no_update")
def batch_norm_eval_cost(a: Args, out):
    return _norm("batch_norm", a["input"], a["weight"], training=False)


@register("_batch_norm_with_update", "_batch_norm_with_update_functional")
def batch_norm_update_cost(a: Args, out):
    return _norm("batch_norm", a["input"], a["weight"], training=True)


@register("native_batch_norm_backward", "batch_norm_backward", "cudnn_batch_norm_backward",
          "miopen_batch_norm_backward")
def batch_norm_backward_cost(a: Args, out):
    return _norm("batch_norm", a["input"], a["weight"], factor=NORM_BACKWARD_FACTOR)


@register("native_layer_norm")
def layer_norm_cost(a: Args, out):
    return _norm("layer_norm", a["input"], a["weight"])


@register("native_layer_norm_backward")
def layer_norm_backward_cost(a: Args, out):
    return _norm("layer_norm", a["input"], a["weight"], factor=NORM_BACKWARD_FACTOR)


@register("native_group_norm")
def group_norm_cost(a: Args, out):
    return _norm("group_norm", a["input"], a["weight"])


@register("native_group_norm_backward")
def group_norm_backward_cost(a: Args, out):
    return _norm("group_norm", a["input"], a["weight"], factor=NORM_BACKWARD_FACTOR)


@register("_fused_rms_norm")
def rms_norm_cost(a: Args, out):
    return _norm("rms_norm", a["input"], a["weight"])


@register("_fused_rms_norm_backward")
def rms_norm_backward_cost(a: Args, out):
    return _norm("rms_norm", a["input"], a["weight"], factor=NORM_BACKWARD_FACTOR)


# --- activations, softmax, element-wise, reductions -------------------------------------------------------------

def _per_output(cost: float, kind: str):
    def formula(a: Args, out):
        return Cost(0, int(cost * _numel(_first_tensor(out))), kind, activations=0)

    return formula


def _per_input(cost: float, kind: str):
    def formula(a: Args, out):
        return Cost(0, int(cost * _numel(a.first)), kind, activations=0)

    return formula


# The backward op of an activation where torch has one of its own: relu's is threshold_backward, relu6's
# hardtanh_backward, celu's and selu's elu_backward, prelu's _prelu_kernel_backward; sgn has none.
_SHARED_BACKWARD = frozenset({"relu", "relu6", "celu", "selu", "prelu", "sgn"})
_BACKWARD_NAME = {"log_sigmoid_forward": "log_sigmoid_backward"}

for _name, _c in ACTIVATION_COST.items():
    register(_name)(_per_output(_c, K.ACTIVATION))
    if _name not in _SHARED_BACKWARD:
        # The backward of an activation: its forward's work plus the chain-rule multiply.
        register(_BACKWARD_NAME.get(_name, f"{_name}_backward"))(
            _per_output(1 if _name == "threshold" else _c + 1, K.ACTIVATION))
for _name, _c in ELEMENTWISE_COST.items():
    register(_name)(_per_output(_c, K.ELEMENTWISE))
for _name, _c in REDUCTION_COST.items():
    register(_name)(_per_input(_c, K.ELEMENTWISE))
for _name in ("_softmax", "_log_softmax", "_safe_softmax"):
    register(_name)(_per_output(SOFTMAX_COST, K.ACTIVATION))
for _name in ("_softmax_backward_data", "_log_softmax_backward_data"):
    register(_name)(_per_output(SOFTMAX_BACKWARD_COST, K.ACTIVATION))
for _name, _c in UPSAMPLE_COST.items():
    register(_name, f"{_name}_backward")(_per_output(_c, K.ELEMENTWISE))


@register("clamp")
def clamp_cost(a: Args, out):
    lo, hi = a["min"], a["max"]
    return Cost(0, _numel(out) * ((lo is not None) + (hi is not None)), K.ELEMENTWISE, activations=0)


@register("native_dropout")
def dropout_cost(a: Args, out):
    # a random draw compared with p, then one multiply by the scaled mask; free in eval (train=None: train)
    return Cost(0, 2 * _numel(a["input"]) if a["train"] is not False else 0, K.ELEMENTWISE, activations=0)


@register("native_dropout_backward")
def dropout_backward_cost(a: Args, out):
    return Cost(0, _numel(out), K.ELEMENTWISE, activations=0)


def _accumulate(source: str, *, accumulate_flag: bool = False):
    """Scatter-adds: one add per element of the ``source`` argument (index_put without ``accumulate`` only
    moves data)."""

    def formula(a: Args, out):
        if accumulate_flag and not a["accumulate"]:
            return Cost(0, 0, K.OTHER, activations=0)
        return Cost(0, _numel(a[source]), K.ELEMENTWISE, activations=0)

    return formula


register("embedding_dense_backward")(_accumulate("grad_output"))  # grad rows summed per index
register("embedding_backward")(_accumulate("grad"))
register("index_add", "index_reduce")(_accumulate("source"))
register("scatter_add", "scatter_reduce")(_accumulate("src"))
register("index_put", "_index_put_impl", "_unsafe_index_put")(_accumulate("values", accumulate_flag=True))

# the experts kernel's token count per expert: a scale and an offset per element to find its bin
register("histc")(_per_input(2, K.ELEMENTWISE))


# --- pooling --------------------------------------------------------------------------------------------------

@register("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
          "max_pool1d_with_indices")
def max_pool_cost(a: Args, out):
    x, ks = a["self"], a["kernel_size"]
    nd = len(ks) if isinstance(ks, (list, tuple)) and len(ks) > 1 else max(1, x.dim() - 2)
    k = _prod(_pair(ks, nd))
    return Cost(0, _numel(_first_tensor(out)) * (k - 1), K.POOLING, activations=0, info={"kernel": _pair(ks, nd)})


@register("avg_pool1d", "avg_pool2d", "avg_pool3d")
def avg_pool_cost(a: Args, out):
    x, ks = a["self"], a["kernel_size"]
    nd = len(ks) if isinstance(ks, (list, tuple)) and len(ks) > 1 else max(1, x.dim() - 2)
    k = _prod(_pair(ks, nd))
    return Cost(0, _numel(out) * k, K.POOLING, activations=0, info={"kernel": _pair(ks, nd)})


@register("max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward")
def max_pool_backward_cost(a: Args, out):
    return Cost(0, _numel(a["grad_output"]), K.POOLING, activations=0)


@register("avg_pool2d_backward", "avg_pool3d_backward")
def avg_pool_backward_cost(a: Args, out):
    k = _prod(_pair(a["kernel_size"], a["self"].dim() - 2))
    return Cost(0, _numel(a["grad_output"]) * k, K.POOLING, activations=0)


def adaptive_bin_total(in_size: int, out_size: int) -> int:
    """Sum of the bin sizes of adaptive pooling along one axis (bins overlap when sizes do not divide)."""
    return sum(math.ceil((i + 1) * in_size / out_size) - (i * in_size) // out_size for i in range(out_size))


def _adaptive_reads(x, out) -> int:
    nd = len(out.shape) - 2 if out.dim() >= 3 else out.dim() - 1
    lead = _prod(out.shape[: out.dim() - nd])
    return lead * _prod(adaptive_bin_total(int(x.shape[-nd + i]), int(out.shape[-nd + i])) for i in range(nd))


@register("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d")
def adaptive_avg_pool_cost(a: Args, out):
    # each bin: (n - 1) adds and one divide = n FLOPs per output, n = the bin's size
    return Cost(0, _adaptive_reads(a["self"], out), K.POOLING, activations=0)


@register("adaptive_max_pool2d", "adaptive_max_pool3d", "adaptive_max_pool1d")
def adaptive_max_pool_cost(a: Args, out):
    o = _first_tensor(out)
    return Cost(0, _adaptive_reads(a["self"], o) - _numel(o), K.POOLING, activations=0)


@register("_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward", "adaptive_max_pool2d_backward",
          "adaptive_max_pool3d_backward")
def adaptive_pool_backward_cost(a: Args, out):
    return Cost(0, _numel(out), K.POOLING, activations=0)


# --- losses ---------------------------------------------------------------------------------------------------
# by LOSS_COST (elementwise.py): per element (nll: per target), a weight once more, the reduction one add each
_REDUCED = (1, 2)   # at::Reduction: 0 none, 1 mean, 2 sum


def _loss(name: str, terms: int, *, weighted: bool, reduction: int, backward: bool) -> Cost:
    per = LOSS_COST[name][1 if backward else 0] + (LOSS_WEIGHT_COST if weighted else 0)
    reduce = terms + (1 if reduction == 1 else 0) if reduction in _REDUCED and not backward else 0
    return Cost(0, per * terms + reduce, K.ELEMENTWISE, activations=0)


@register("nll_loss_forward", "nll_loss2d_forward")
def nll_loss_cost(a: Args, out):
    return _loss("nll_loss", _numel(a["target"]), weighted=a["weight"] is not None, reduction=int(a["reduction"]),
                 backward=False)


@register("nll_loss_backward", "nll_loss2d_backward")
def nll_loss_backward_cost(a: Args, out):
    return _loss("nll_loss", _numel(a["target"]), weighted=a["weight"] is not None, reduction=int(a["reduction"]),
                 backward=True)


def _elementwise_loss(name: str, *, backward: bool):
    def formula(a: Args, out):
        weighted = a.get("weight") is not None or a.get("pos_weight") is not None
        return _loss(name, _numel(a["self"]), weighted=weighted, reduction=int(a["reduction"]), backward=backward)

    formula.__name__ = f"{name}{'_backward' if backward else ''}_cost"
    return formula


for _name in LOSS_COST:
    if _name != "nll_loss":
        register(_name)(_elementwise_loss(_name, backward=False))
        if is_op(f"aten::{_name}_backward"):
            register(f"{_name}_backward")(_elementwise_loss(_name, backward=True))


# --- fp8 products ---------------------------------------------------------------------------------------------

@register("_scaled_mm")
def scaled_mm_cost(a: Args, out):
    """(M × K) @ (K × N) in fp8 with per-tensor or per-row scales: M·K·N MACs; FLOPs add the scaling of each
    output (one multiply) and the bias add."""
    m, k = a["self"].shape
    n = a["mat2"].shape[-1]
    macs = int(m) * int(k) * int(n)
    outputs = int(m) * int(n)
    return Cost(macs, 2 * macs + outputs + (outputs if a["bias"] is not None else 0))


# --- recurrent layers (the oneDNN kernel nn.LSTM runs on CPU) -------------------------------------------------

@register("mkldnn_rnn_layer")
def mkldnn_rnn_layer_cost(a: Args, out):
    """One LSTM layer in one direction, costed as its meta decomposition is (so CPU and meta agree): per token
    and step the two gate products, x·W_ihᵀ (4H × I) and h·W_hhᵀ (4H × H), their bias adds (2 × 4H), and per
    hidden unit 3 sigmoids and 2 tanh (activation: 3·4 + 2) and the gate sum, cell update and output (4H + 4
    adds and multiplies: elementwise)."""
    x, w_ih = a["input"], a["weight0"]
    gates, width = int(w_ih.shape[0]), int(w_ih.shape[1])
    hidden = int(a["hidden_size"])
    tokens = _numel(x) // width
    macs = tokens * gates * (width + hidden)
    bias = 2 * tokens * gates if a["has_biases"] else 0
    return [Cost(macs, 2 * macs + bias, K.LINEAR, activations=2 * tokens * gates),
            Cost(0, tokens * hidden * (3 * ACTIVATION_COST["sigmoid"] + 2 * ACTIVATION_COST["tanh"]), K.ACTIVATION,
                 activations=0),
            Cost(0, tokens * (gates + 4 * hidden), K.ELEMENTWISE, activations=0)]
