"""The per-element FLOP table and the written list of free ops.

One rule makes the table: every arithmetic primitive (add, multiply, divide, compare, max, exp, log, erf,
tanh, sqrt …) is one FLOP per element. An op's cost is the primitives of its usual definition, e.g.
sigmoid = 1 / (1 + exp(-x)) is neg, exp, add, divide = 4. docs/counting.md prints this table.
"""

from __future__ import annotations

# per output element
ACTIVATION_COST: dict[str, int] = {
    "relu": 1,            # max(x, 0)
    "threshold": 1,
    "relu6": 2,           # min(max(x, 0), 6)
    "hardtanh": 2,
    "leaky_relu": 2,      # compare, multiply
    "prelu": 2,
    "_prelu_kernel": 2,
    "rrelu_with_noise": 2,
    "elu": 4,             # exp, subtract, multiply, select
    "celu": 4,
    "selu": 5,            # elu plus the scale
    "sigmoid": 4,         # neg, exp, add, divide
    "log_sigmoid_forward": 5,
    "silu": 5,            # x * sigmoid(x)
    "tanh": 1,
    "gelu": 5,            # 0.5 * x * (1 + erf(x / sqrt 2)); the tanh form is counted the same
    "hardsigmoid": 4,     # min(max(x + 3, 0), 6) / 6
    "hardswish": 5,       # x * hardsigmoid(x)
    "softplus": 3,        # log(1 + exp(x))
    "mish": 5,            # x * tanh(softplus(x))
    "glu": 5,             # a * sigmoid(b), per output element
    "sgn": 1,
}

# per output element
ELEMENTWISE_COST: dict[str, int] = {
    **{op: 1 for op in (
        "add", "sub", "rsub", "mul", "div", "neg", "abs", "exp", "exp2", "expm1", "log", "log1p", "log2",
        "log10", "sqrt", "rsqrt", "reciprocal", "pow", "square", "sin", "cos", "tan", "asin", "acos", "atan",
        "sinh", "cosh", "asinh", "acosh", "atanh", "atan2", "erf", "erfc", "erfinv", "sign", "floor", "ceil",
        "round", "trunc", "frac", "maximum", "minimum", "fmax", "fmin", "remainder", "fmod", "eq", "ne", "lt",
        "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
        "bitwise_or", "bitwise_xor", "bitwise_not", "where", "masked_fill", "isnan", "isinf", "isfinite",
        "nan_to_num", "copysign", "clamp_min", "clamp_max", "bernoulli", "signbit", "heaviside",
        "floor_divide", "true_divide", "logit",
    )},
    "addcmul": 2,
    "addcdiv": 2,
    "lerp": 3,            # a + w * (b - a)
    "hypot": 3,
    "xlogy": 2,
}

# per input element (a reduction reads each element once)
REDUCTION_COST: dict[str, int] = {
    **{op: 1 for op in ("sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "all", "any",
                        "cumsum", "cumprod", "count_nonzero", "nansum", "aminmax", "_cummax_helper",
                        "_cummin_helper")},
    "linalg_vector_norm": 2,   # square, accumulate
    "norm": 2,
    "var": 3, "std": 3, "var_mean": 3, "std_mean": 3,   # subtract, square, accumulate
    "logsumexp": 3,            # exp, accumulate, (log per output)
}

SOFTMAX_COST = 5            # max, subtract, exp, sum, divide
SOFTMAX_BACKWARD_COST = 4   # grad * y, sum, subtract, multiply

# per output element; interpolation as repeated lerps (3 FLOPs each): 1, 3 and 7 lerps; bicubic 5 cubics
UPSAMPLE_COST: dict[str, int] = {
    "upsample_linear1d": 3,
    "upsample_bilinear2d": 9,
    "_upsample_bilinear2d_aa": 9,
    "upsample_trilinear3d": 21,
    "upsample_bicubic2d": 35,
    "_upsample_bicubic2d_aa": 35,
    "grid_sampler_2d": 9,
    "grid_sampler_3d": 21,
    "cudnn_grid_sampler": 9,
}

NORM_BACKWARD_FACTOR = 2.0   # a norm's backward: twice its forward


def norm_cost_per_element(name: str, *, affine: bool, training: bool = True) -> int:
    """Batch norm in inference is the folded per-channel scale and shift (2). Otherwise statistics
    (mean 1, variance 3), normalisation (subtract, multiply by rsqrt: 2) and the affine (2).
    RMS norm: square-accumulate 2, scale 1, affine 1."""
    if name == "batch_norm" and not training:
        return 2
    if name == "rms_norm":
        return 3 + (1 if affine else 0)
    return 6 + (2 if affine else 0)


# Ops that do no arithmetic. VIEW_OPS touch no memory; MOVEMENT_OPS copy (bytes counted, zero FLOPs);
# CREATION_OPS only write their output.
VIEW_OPS = frozenset(f"aten::{n}" for n in (
    "view", "_unsafe_view", "reshape", "_reshape_alias", "as_strided", "permute", "transpose", "t", "expand",
    "expand_as", "squeeze", "unsqueeze", "slice", "select", "split", "split_with_sizes", "unsafe_split",
    "chunk", "unbind", "narrow", "detach", "alias", "lift_fresh", "lift", "view_as", "view_as_real",
    "view_as_complex", "unfold", "diagonal", "movedim", "flatten", "unflatten", "numpy_T",
    "_local_scalar_dense", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "is_same_size",
    "_has_compatible_shallow_copy_type", "set", "resize", "_resize_output", "_nested_tensor_size",
    "item", "_assert_async", "_assert_scalar", "sym_constrain_range_for_size", "_functional_assert_async",
    "record_stream", "dim", "size", "stride", "contiguous", "real", "imag", "conj", "_conj", "_neg_view",
    "resolve_conj", "resolve_neg", "split_copy", "detach_copy",
))
MOVEMENT_OPS = frozenset(f"aten::{n}" for n in (
    "clone", "_to_copy", "copy", "cat", "stack", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d",
    "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d", "flip", "roll",
    "repeat", "repeat_interleave", "index", "_unsafe_index", "index_select", "gather", "scatter",
    "embedding", "masked_select", "masked_scatter", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "native_channel_shuffle", "im2col", "col2im", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
    "upsample_nearest1d_backward", "upsample_nearest2d_backward", "upsample_nearest3d_backward",
    "tril", "triu", "take", "take_along_dim", "narrow_copy", "slice_scatter", "select_scatter",
    "as_strided_scatter", "diagonal_scatter", "select_backward", "slice_backward", "as_strided_copy",
    "permute_copy", "transpose_copy", "view_copy", "expand_copy", "unsqueeze_copy", "squeeze_copy",
    "t_copy", "unbind_copy", "split_with_sizes_copy", "alias_copy", "lift_fresh_copy",
    "nonzero", "_unique2", "unique_consecutive", "sort", "argsort", "topk", "kthvalue", "mode",
    "to", "_pin_memory", "pin_memory",
))
CREATION_OPS = frozenset(f"aten::{n}" for n in (
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
    "ones", "ones_like", "full", "full_like", "new_zeros", "new_ones", "new_full", "arange", "linspace",
    "logspace", "eye", "scalar_tensor", "randn", "randn_like", "rand", "rand_like", "randint",
    "randint_like", "randperm", "normal", "uniform", "fill", "zero", "_efficientzerotensor",
    "exponential", "geometric", "cauchy", "log_normal", "random", "multinomial",
    "tril_indices", "triu_indices", "empty_permuted", "_empty_affine_quantized",
))

# Ops no formula covers yet that still must be listed (never silently zero) are simply absent from all of
# the above: the recorder reports them in `uncounted_ops`. sort/topk sit in MOVEMENT_OPS deliberately:
# they compare, but the convention (like every peer's) gives selection ops no FLOPs; docs/counting.md says so.
