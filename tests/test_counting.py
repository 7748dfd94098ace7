"""The counter: exact MACs derived by hand (the arithmetic is in each comment) or by brute force."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import scaleprof
from scaleprof.errors import ScaleprofError


def macs_of(model, *inputs, **kw):
    return scaleprof.profile(model, list(inputs), **kw)


def one_kind(result):
    kinds = {k for k, v in result.by_kind().items() if v["macs"]}
    assert len(kinds) == 1, kinds
    return kinds.pop()


# --- convolutions: every kind, 1d/2d/3d, strides, padding, dilation, groups ------------------------------------

CONV_CASES = [
    # (module, input, MACs by hand, kind)
    # Hout = (32 + 2 - 2 - 1)//2 + 1 = 16: 16 Cout * 16*16 * 3 Cin * 9
    (nn.Conv2d(3, 16, 3, stride=2, padding=1), (1, 3, 32, 32), 16 * 256 * 3 * 9, "conv.standard"),
    # depthwise: N 2 * 32 * 14*14 * (Cin/g = 1) * 9
    (nn.Conv2d(32, 32, 3, padding=1, groups=32), (2, 32, 14, 14), 2 * 32 * 196 * 9, "conv.depthwise"),
    # pointwise: 2 * 64 * 196 * 32
    (nn.Conv2d(32, 64, 1), (2, 32, 14, 14), 2 * 64 * 196 * 32, "conv.pointwise"),
    # grouped: Hout 8; 64 * 64 px * (32/4 = 8) * 9
    (nn.Conv2d(32, 64, 3, groups=4), (1, 32, 10, 10), 64 * 64 * 8 * 9, "conv.grouped"),
    # dilated: Hout = 20 - 2*(3-1) = 16; 8 * 256 * 8 * 9
    (nn.Conv2d(8, 8, 3, dilation=2), (1, 8, 20, 20), 8 * 256 * 8 * 9, "conv.dilated"),
    # non-square: Hout = (9+2-3)//2+1 = 5, Wout = (11+4-5)+1 = 11; 6 * 55 * 4 * 15
    (nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2)), (1, 4, 9, 11), 6 * 55 * 4 * 15, "conv.standard"),
    # 1d: Lout = (50+4-5)//2+1 = 25; 2 * 8 * 25 * 4 * 5
    (nn.Conv1d(4, 8, 5, stride=2, padding=2), (2, 4, 50), 2 * 8 * 25 * 4 * 5, "conv.standard"),
    (nn.Conv1d(6, 6, 3, groups=6), (1, 6, 10), 6 * 8 * 3, "conv.depthwise"),
    # 3d: out 8x8x8 with stride (1,2,2), padding 1; 4 * 512 * 2 * 27
    (nn.Conv3d(2, 4, 3, padding=1, stride=(1, 2, 2)), (1, 2, 8, 16, 16), 4 * 512 * 2 * 27, "conv.standard"),
    (nn.Conv3d(4, 4, 3, groups=4, padding=1), (1, 4, 4, 4, 4), 4 * 64 * 27, "conv.depthwise"),
    # kind precedence: 1 input channel is never depthwise; 1x1 with groups > 1 is grouped; dilated+grouped: grouped
    (nn.Conv2d(1, 8, 3), (1, 1, 6, 6), 8 * 16 * 9, "conv.standard"),
    (nn.Conv2d(8, 8, 1, groups=2), (1, 8, 4, 4), 8 * 16 * 4, "conv.grouped"),
    (nn.Conv2d(8, 8, 3, groups=2, dilation=2), (1, 8, 9, 9), 8 * 25 * 4 * 9, "conv.grouped"),
    (nn.Conv2d(4, 4, 1, groups=4), (1, 4, 5, 5), 4 * 25, "conv.depthwise"),
    # transposed, per input pixel: 8 Cin * 256 px * (Cout/g = 4) * 16
    (nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), (1, 8, 16, 16), 8 * 256 * 4 * 16, "conv.transposed"),
    # grouped transposed: 2 * 8 * 25 * (12/4 = 3) * 9 (calflops gets this one wrong)
    (nn.ConvTranspose2d(8, 12, 3, stride=2, groups=4), (2, 8, 5, 5), 2 * 8 * 25 * 3 * 9, "conv.transposed"),
    (nn.ConvTranspose1d(4, 2, 3, stride=3), (1, 4, 7), 4 * 7 * 2 * 3, "conv.transposed"),
    (nn.ConvTranspose3d(2, 2, 2, stride=2), (1, 2, 3, 3, 3), 2 * 27 * 2 * 8, "conv.transposed"),
]


@pytest.mark.parametrize("module,shape,expected,kind", CONV_CASES,
                         ids=[f"{type(c[0]).__name__}-{c[3]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv_kinds_exact(module, shape, expected, kind):
    r = macs_of(module, shape)
    assert r.totals.macs == expected
    assert one_kind(r) == kind
    out_numel = module(torch.zeros(shape)).numel()
    # FLOPs: 2 per MAC plus one bias add per output element
    assert r.totals.flops == 2 * expected + out_numel
    assert r.totals.activations == out_numel
    assert r.totals.params == sum(p.numel() for p in module.parameters())
    layer = r.layers[0]
    assert layer.info["dilation"] == list(module.dilation) and layer.info["groups"] == module.groups


def _brute_conv_macs(cin, cout, groups, k, out_spatial, n, transposed, in_spatial):
    """Enumerate every (pixel, output channel, input channel of its group, tap) product one by one."""
    cin_g, cout_g = cin // groups, cout // groups
    count = 0
    pixels = in_spatial if transposed else out_spatial
    for _ in itertools.product(range(n), *(range(s) for s in pixels)):
        for co in range(cout):
            group = co // cout_g
            for _ci in range(group * cin_g, (group + 1) * cin_g):
                for _tap in itertools.product(*(range(kk) for kk in k)):
                    count += 1
    return count


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 2), groups=st.integers(1, 3), cin_g=st.integers(1, 3), cout_g=st.integers(1, 3),
       k=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       size=st.integers(4, 7), n=st.integers(1, 2), transposed=st.booleans())
def test_conv_count_matches_brute_force(nd, groups, cin_g, cout_g, k, stride, padding, dilation, size, n,
                                        transposed):
    cin, cout = cin_g * groups, cout_g * groups
    if transposed:
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d)[nd - 1]
        padding = min(padding, dilation * (k - 1))
        out_pad = 0
        mod = cls(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  output_padding=out_pad)
    else:
        cls = (nn.Conv1d, nn.Conv2d)[nd - 1]
        if size + 2 * padding < dilation * (k - 1) + 1:
            return
        mod = cls(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    shape = (n, cin) + (size,) * nd
    out = mod.to("meta")(torch.empty(shape, device="meta"))  # output size from torch itself
    brute = _brute_conv_macs(cin, cout, groups, (k,) * nd, out.shape[2:], n, transposed, shape[2:])
    assert scaleprof.profile(mod, [shape]).totals.macs == brute


# --- products and attention -----------------------------------------------------------------------------------

class Functional(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def test_linear_exact():
    r = macs_of(nn.Linear(20, 30), (4, 7, 20))
    assert r.totals.macs == 4 * 7 * 20 * 30
    assert r.totals.flops == 2 * 4 * 7 * 20 * 30 + 4 * 7 * 30  # + bias add per output
    assert r.totals.activations == 4 * 7 * 30
    assert one_kind(r) == "linear"


@pytest.mark.parametrize("fn,shapes,expected,kind", [
    (torch.bmm, [(3, 4, 5), (3, 5, 6)], 3 * 4 * 5 * 6, "matmul"),
    (torch.matmul, [(4, 5), (5, 6)], 4 * 5 * 6, "matmul"),
    (lambda a, b: torch.einsum("bij,bjk->bik", a, b), [(3, 4, 5), (3, 5, 6)], 3 * 4 * 5 * 6, "matmul"),
    (lambda q, k: torch.einsum("bhld,bhsd->bhls", q, k), [(2, 3, 4, 8), (2, 3, 5, 8)], 2 * 3 * 4 * 5 * 8, "matmul"),
    (lambda x, w: F.linear(x, w), [(6, 10), (3, 10)], 6 * 10 * 3, "linear"),   # functional linear: still linear
    (lambda a, b, c: torch.baddbmm(c, a, b), [(2, 3, 4), (2, 4, 5), (2, 3, 5)], 2 * 3 * 4 * 5, "matmul"),
])
def test_products_exact(fn, shapes, expected, kind):
    r = scaleprof.profile(Functional(fn), shapes)
    assert r.totals.macs == expected
    assert one_kind(r) == kind


def test_sdpa_exact_on_every_path():
    # B 2, H 4, L 10, S 12, E 16, Ev 8: 2*4*10*12*(16+8) MACs
    macs = 2 * 4 * 10 * 12 * (16 + 8)
    # FLOPs: 2/MAC + scaling Q (2*4*10*16) + softmax 5 per score (2*4*10*12)
    flops = 2 * macs + 2 * 4 * 10 * 16 + 5 * 2 * 4 * 10 * 12
    model = Functional(F.scaled_dot_product_attention)
    shapes = [(2, 4, 10, 16), (2, 4, 12, 16), (2, 4, 12, 8)]
    for device in ("meta", "cpu"):  # meta runs the math path, CPU the flash kernel
        r = scaleprof.profile(model, shapes, device=device)
        assert (r.totals.macs, r.totals.flops) == (macs, flops)
        assert one_kind(r) == "attention"


def _mha_expected(B, L, E, H):
    proj = B * L * E * 3 * E + B * L * E * E
    return proj, B * H * L * L * (E // H) * 2


class Block(nn.Module):
    def __init__(self, E=32, H=4):
        super().__init__()
        self.mha = nn.MultiheadAttention(E, H, batch_first=True)
        self.norm = nn.LayerNorm(E)

    def forward(self, x):
        y, _ = self.mha(x, x, x, need_weights=False)
        return self.norm(x + y)


def test_mha_same_under_no_grad_and_grad_and_meta():
    # torch's own counter (and fvcore, thop) count 0 for the MHA fast path under no_grad in eval
    B, L, E, H = 2, 9, 32, 4
    lin, att = _mha_expected(B, L, E, H)
    m = Block(E, H).eval()
    seen = set()
    for device in ("meta", "cpu"):
        for backward in (False, True):
            r = scaleprof.profile(m, [(B, L, E)], device=device, backward=backward)
            k = r.by_kind("forward")
            assert (k["linear"]["macs"], k["attention"]["macs"]) == (lin, att)
            seen.add(r.phases["forward"].flops)
    assert len(seen) == 1


def test_fused_mha_and_encoder_ops_counted_like_their_math():
    B, L, E, H = 2, 5, 16, 2
    mha = nn.MultiheadAttention(E, H, batch_first=True).eval()

    def fast(x):
        return torch._native_multi_head_attention(x, x, x, E, H, mha.in_proj_weight, mha.in_proj_bias,
                                                  mha.out_proj.weight, mha.out_proj.bias, need_weights=False)[0]

    with torch.no_grad():
        r = scaleprof.profile(Functional(fast), [torch.randn(B, L, E)], device="cpu")
    lin, att = _mha_expected(B, L, E, H)
    assert r.totals.macs == lin + att and r.uncounted_ops == {}
    layer = nn.TransformerEncoderLayer(E, H, 64, batch_first=True).eval()
    module_path = scaleprof.profile(layer, [(B, L, E)]).totals.macs
    # the math: attention block, then two linears 16->64->16 per token
    assert module_path == lin + att + 2 * B * L * E * 64


def test_deformable_conv_counted_by_formula():
    from scaleprof.layers import DeformConv2dPack

    m = DeformConv2dPack(8, 16, 3, padding=1, modulated=True)
    r = scaleprof.profile(m, [(1, 8, 10, 10)])
    k = r.by_kind()
    # offset conv: ordinary 3x3, 8 -> 27 channels (18 offsets + 9 mask) on 10x10: 27*100*8*9
    assert k["conv.standard"]["macs"] == 27 * 100 * 8 * 9
    # deformable: conv 16*100*8*9, sampling 4 per sample with 1*8*100*9 samples, mask 1 per sample
    samples = 8 * 100 * 9
    assert k["conv.deformable"]["macs"] == 16 * 100 * 8 * 9 + 4 * samples + samples
    rb = scaleprof.profile(m, [(1, 8, 10, 10)], backward=True)
    assert rb.by_kind("backward")["conv.deformable"]["macs"] > 0 and rb.uncounted_ops == {}


def test_backward_grouped_weight_grad_costs_one_forward():
    # torch's FlopCounterMode counts a grouped conv's weight gradient g times too high
    m = nn.Sequential(nn.Conv2d(4, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=16))
    r = scaleprof.profile(m, [(1, 4, 8, 8)], backward=True)
    fwd_dw = 16 * 64 * 9
    assert r.by_kind("forward")["conv.depthwise"]["macs"] == fwd_dw
    assert r.by_kind("backward")["conv.depthwise"]["macs"] == 2 * fwd_dw  # grad input + grad weight
    # the first conv's input needs no gradient: only its weight gradient
    assert r.by_kind("backward")["conv.pointwise"]["macs"] == 16 * 64 * 4


def test_linear_backward_attributed_to_its_module():
    m = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    r = scaleprof.profile(m, [(5, 8)], backward=True)
    bw = {(row.name, row.kind): row.macs for row in r.layers if row.phase == "backward"}
    assert bw[("2", "linear")] == 2 * 5 * 6 * 3    # grad input and grad weight
    assert bw[("0", "linear")] == 5 * 8 * 6        # weight gradient only


# --- other ops, free ops, uncounted ops ---------------------------------------------------------------------

def test_elementwise_norm_pool_costs_follow_the_table():
    m = nn.Sequential(nn.BatchNorm2d(4), nn.SiLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)).eval()
    r = scaleprof.profile(m, [(1, 4, 8, 8)])
    k = r.by_kind()
    n = 4 * 64
    assert k["norm"]["flops"] == 2 * n              # inference batch norm: folded scale and shift
    assert k["activation"]["flops"] == 5 * n        # silu = x * sigmoid(x): 5 per element
    # max pool 2x2: 3 comparisons per output (4*16 outputs); global average: one per input (4*16)
    assert k["pooling"]["flops"] == 3 * 4 * 16 + 4 * 16
    assert r.totals.macs == 0


def test_unknown_op_is_listed_not_dropped():
    r = scaleprof.profile(Functional(torch.special.bessel_j0), [(3, 4)], device="cpu")
    assert r.uncounted_ops == {"aten::special_bessel_j0": 1}


def test_views_are_free_and_listed():
    r = scaleprof.profile(Functional(lambda x: x.view(2, 6).t().reshape(12)), [(3, 4)])
    assert r.totals.flops == 0 and r.uncounted_ops == {}
    assert sum(r.free_ops.values()) >= 2


def test_data_dependent_forward_falls_back_to_real_tensors(capsys):
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.a(x) if x.sum().item() > 1e9 else self.b(x)

    r = scaleprof.profile(Branchy(), [(3, 4)])
    assert r.counted_on == "cpu" and r.notices
    assert r.totals.macs == 3 * 4 * 2
    assert "notice" in capsys.readouterr().err


def test_meta_and_real_counts_identical():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Hardswish(),
                      nn.Conv2d(8, 8, 3, groups=8, padding=1), nn.ConvTranspose2d(8, 4, 2, stride=2),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5), nn.Softmax(-1)).eval()
    meta = scaleprof.profile(m, [(2, 3, 16, 16)], device="meta")
    real = scaleprof.profile(m, [(2, 3, 16, 16)], device="cpu")
    assert meta.totals == real.totals
    assert meta.by_kind() == real.by_kind()


# --- the user's model is left as it was ----------------------------------------------------------------------

def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def test_model_unchanged_after_profiling():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    m(torch.randn(1, 3, 8, 8))
    m.train()
    before = copy.deepcopy(m.state_dict())
    first = scaleprof.profile(m, [(2, 3, 8, 8)], device="cpu", backward=True)
    second = scaleprof.profile(m, [(2, 3, 8, 8)], device="cpu", backward=True)
    assert first.totals == second.totals
    after = m.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)  # running stats untouched in train mode
    assert _hooks(m) == 0 and all(p.grad is None for p in m.parameters())
    from torch.nn.modules import module as mm

    assert not mm._global_forward_hooks and not mm._global_forward_pre_hooks


def test_param_counted_once_when_module_called_twice():
    shared = nn.Linear(6, 6)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = shared

        def forward(self, x):
            return self.f(self.f(x))

    r = scaleprof.profile(Twice(), [(2, 6)])
    assert r.totals.params == 42 and r.totals.macs == 2 * 2 * 36
    assert r.layers[0].calls == 2


def test_bad_input_is_a_one_line_error():
    with pytest.raises(ScaleprofError, match=r"layer 0 \(Conv2d\)"):
        scaleprof.profile(nn.Sequential(nn.Conv2d(3, 4, 3)), [(1, 5, 8, 8)])
    with pytest.raises(ScaleprofError, match="malformed"):
        scaleprof.profile(nn.Linear(2, 2), ["2xx2"])
    with pytest.raises(ScaleprofError, match="unknown dtype"):
        scaleprof.profile(nn.Linear(2, 2), [(2, 2)], dtype="float13")
    with pytest.raises(ScaleprofError):
        scaleprof.profile("not a module", [(2, 2)])


def test_7b_decoder_on_meta_matches_hand_count():
    from scaleprof.dev.counting_speed import Decoder, decoder_7b_macs

    with torch.device("meta"):
        model = Decoder()
    r = scaleprof.profile(model, ["1x128:int64"])
    assert r.totals.macs == decoder_7b_macs(128)
    # LLaMA-7B: embeddings and head 2·32000·4096, per layer 4·4096² + 3·4096·11008 + two norms, final norm
    assert r.totals.params == 2 * 32000 * 4096 + 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096
    assert r.totals.params == 6_738_415_616
    assert r.uncounted_ops == {}


def test_counts_the_same_under_inference_mode():
    # composite ops (conv2d, linear) reach the dispatcher undecomposed under inference_mode
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    plain = scaleprof.profile(m, [(1, 3, 8, 8)])
    with torch.inference_mode():
        for device in ("meta", "cpu"):
            r = scaleprof.profile(m, [(1, 3, 8, 8)], device=device)
            assert r.totals == plain.totals and r.uncounted_ops == {}
    assert plain.totals.macs == 8 * 36 * 27 + 288 * 4


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("op,extra", [
    ("native_batch_norm", (True, 0.1, 1e-5)), ("native_batch_norm", (False, 0.1, 1e-5)),
    ("_native_batch_norm_legit_no_training", (0.1, 1e-5)),
    ("relu", ()), ("relu_", ()), ("silu", ()), ("sigmoid", ()), ("hardswish", ()), ("gelu", ()),
    ("hardtanh", (0.0, 6.0)), ("leaky_relu", (0.1,)),
])
def test_meta_shortcuts_match_torch_meta_kernels(op, extra, channels_last):
    from scaleprof.counting.formulas import op_key
    from scaleprof.counting.meta_shapes import shortcut

    x = torch.empty(2, 8, 5, 5, device="meta")
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w = torch.empty(8, device="meta")
    args = (x, w, w, w, w, *extra) if "norm" in op else (x, *extra)
    func = getattr(torch.ops.aten, op).default
    ours, theirs = shortcut(op_key(func), func, args, {}), func(*args)
    assert ours is not None

    def sig(out):
        outs = out if isinstance(out, tuple) else (out,)
        return [(tuple(t.shape), t.stride(), t.dtype) for t in outs]

    assert sig(ours) == sig(theirs)
    if op.endswith("_"):
        assert ours is x  # in place: the input comes back


def test_meta_shortcut_skips_strided_inputs():
    from scaleprof.counting.meta_shapes import shortcut

    x = torch.empty(2, 8, 5, 6, device="meta")[..., ::2]   # not dense: torch's kernel decides the strides
    assert shortcut("aten::relu", torch.ops.aten.relu.default, (x,), {}) is None


def test_mha_backward_kinds_follow_the_forward():
    # a linear first, so the attention block's input needs a gradient: every product's backward is 2x
    B, L, E, H = 2, 6, 16, 2
    lin, att = _mha_expected(B, L, E, H)
    m = nn.Sequential(nn.Linear(E, E), Block(E, H))
    r = scaleprof.profile(m, [(B, L, E)], backward=True)
    bw = r.by_kind("backward")
    assert bw["attention"]["macs"] == 2 * att
    assert bw["linear"]["macs"] == 2 * lin + B * L * E * E   # the first linear: weight gradient only


def test_mv_addmv_and_embedding_backward():
    class MV(nn.Module):
        def forward(self, a, v, b):
            return torch.mv(a, v) + torch.addmv(b, a, v)

    r = scaleprof.profile(MV(), [(3, 4), (4,), (3,)])
    # two 3x4 matrix-vector products; FLOPs: 2/MAC, addmv's bias add (3), the final add (3)
    assert (r.totals.macs, r.totals.flops) == (24, 48 + 3 + 3)

    class Emb(nn.Module):
        def __init__(self):
            super().__init__()
            self.e, self.lin = nn.Embedding(100, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.lin(self.e(x))

    rb = scaleprof.profile(Emb(), ["4x5:int64"], backward=True)
    # the embedding's gradient sums 4*5 rows of 8 into the table: one add per element
    assert rb.by_kind("backward")["elementwise"]["flops"] == 4 * 5 * 8 and rb.uncounted_ops == {}


# --- no torch._dynamo (issue 16) ------------------------------------------------------------------------------

NO_DYNAMO_SCRIPT = """
import sys
import torch
from scaleprof.zoo import build
from scaleprof.counting import profile
assert "torch._dynamo" not in sys.modules, "imported before counting"
for name in ("resnet50", "efficientnet_b0", "vit_b_16", "convnext_tiny", "mobilenet_v3_large", "googlenet"):
    model = build(name, device="meta")
    assert profile(model, quiet=True).totals.macs > 0
    assert profile(model.train(), backward=True, quiet=True).totals.macs > 0
print("dynamo" if "torch._dynamo" in sys.modules else "clean")
"""


def test_counting_never_imports_dynamo():
    """torch's Python kernels on meta (add, batch norm, rsqrt …) sit behind a wrapper that imports
    torch._dynamo on first use (~1.3 s); building and counting the zoo in a fresh process must not."""
    import os
    import pathlib
    import subprocess
    import sys

    repo = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", NO_DYNAMO_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "clean"


NO_SYMPY_SCRIPT = """
import sys
import torch
from scaleprof.zoo import build
from scaleprof.counting import profile
assert "sympy" not in sys.modules, "imported before counting"
model = build("resnet18", device="meta")
first = profile(model, quiet=True).totals.macs
assert profile(model.train(), backward=True, quiet=True).totals.macs > first
left = [m for m in ("sympy", "torch.fx.experimental.symbolic_shapes", "torch._dynamo") if m in sys.modules]
import torch._prims_common
assert not hasattr(torch._prims_common.elementwise_dtypes, "__scaleprof_original__")   # torch's own again
print(first, " ".join(left) or "clean")
from torch.fx.experimental import symbolic_shapes   # torch's own module, loaded as it would have been
assert "sympy" in sys.modules and hasattr(symbolic_shapes, "ShapeEnv")
"""


def test_counting_never_imports_sympy():
    """torch's Python kernels on meta ask symbolic_shapes (which imports sympy, ~0.5 s) about plain sizes:
    a fresh process counting resnet18, forward and backward, must load neither, nor torch._dynamo."""
    import os
    import pathlib
    import subprocess
    import sys

    repo = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", NO_SYMPY_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(1_814_073_344), "clean"]   # resnet18 (the zoo test checks it)


def test_no_sympy_helpers_answer_as_torch_and_leave_it_as_found():
    import sys
    import warnings

    import torch._meta_registrations as meta_reg
    import torch._prims_common as prims_common
    from torch.fx.experimental import symbolic_shapes as own

    from scaleprof import no_sympy

    helpers = no_sympy._stand_in()
    for name in ("guard_or_false", "guard_or_true", "statically_known_true", "expect_true", "guard_bool",
                 "guard_size_oblivious"):
        for v in (True, False):
            with warnings.catch_warnings():   # torch's guard_size_oblivious says it is deprecated
                warnings.simplefilter("ignore", FutureWarning)
                assert getattr(helpers, name)(v) is getattr(own, name)(v) is v
    assert helpers.sym_and(True, True, False) is own.sym_and(True, True, False) is False
    assert helpers.sym_or(False, True) is own.sym_or(False, True) is True
    for a, b in (([1, 2], [1, 2]), ([1, 2], (1, 3)), ([1], [1, 1]), (3, 3), (3, 4)):
        assert helpers.sym_eq(a, b) == own.sym_eq(a, b)
    assert helpers.is_nested_int(3) is own.is_nested_int(3) is False
    assert helpers.guarding_hint_or_throw(5) == own.guarding_hint_or_throw(5) == 5
    assert helpers.has_guarding_hint(5) is own.has_guarding_hint(5) is True
    t = torch.empty(2, 3, device="meta")
    assert not helpers.free_unbacked_symbols(t) and not own.free_unbacked_symbols(t)
    with pytest.raises(AssertionError):    # not a bool: torch's own answers (and refuses it)
        helpers.guard_or_false(1)
    assert helpers.ShapeEnv is own.ShapeEnv  # any other name is torch's
    # torch's module loaded already: counting changes nothing; the kernels' helpers are torch's after it
    before = (sys.modules[no_sympy.NAME], prims_common.elementwise_dtypes, meta_reg.elementwise_dtypes)
    scaleprof.profile(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()), ["1x3x8x8"])
    assert (sys.modules[no_sympy.NAME], prims_common.elementwise_dtypes, meta_reg.elementwise_dtypes) == before
    assert before[0] is own


def test_no_dynamo_leaves_torch_as_found():
    """The wrappers' cache is only borrowed while counting: afterwards none of torch's guarded functions
    keeps the eager stand-in, so a later torch.compile builds the real one."""
    from scaleprof import no_dynamo

    guarded = no_dynamo.guarded()
    assert guarded  # batch norm's and add's refs at least
    before = [vars(fn).get("__dynamo_disable") for fn in guarded]
    scaleprof.profile(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), ["1x3x8x8"])
    assert [vars(fn).get("__dynamo_disable") for fn in guarded] == before


# --- the registry's names -----------------------------------------------------------------------------------------

def _torch_ops() -> set[str]:
    return {n.split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names()}


def test_every_registered_and_free_name_is_an_op():
    """Each key names an op of this torch (its in-place form counts), or one of an optional library that is
    not loaded (torchvision's deformable conv)."""
    from scaleprof.counting import formulas
    from scaleprof.counting.elementwise import CREATION_OPS, MOVEMENT_OPS, VIEW_OPS
    from scaleprof.counting.meta_shapes import _UNARY

    ops = _torch_ops()
    loaded = {n.split("::", 1)[0] for n in ops}
    names = set(formulas.registered_ops()) | VIEW_OPS | MOVEMENT_OPS | CREATION_OPS | _UNARY
    missing = sorted(n for n in names if n not in ops and f"{n}_" not in ops
                     and not (n.split("::", 1)[0] in formulas.OPTIONAL_NAMESPACES and n.split("::", 1)[0] not in loaded))
    assert missing == []
    assert {"aten::relu_backward", "aten::_to_copy_noop", "aten::tensor"}.isdisjoint(names)
    # the free lists and the registry never both claim an op
    assert set(formulas.registered_ops()).isdisjoint(VIEW_OPS | MOVEMENT_OPS | CREATION_OPS)


def test_register_refuses_duplicates_and_non_ops():
    from scaleprof.counting import formulas

    def f(args, kwargs, out):
        return formulas.Cost()

    with pytest.raises(ValueError, match="twice"):
        formulas.register("mm")(f)
    with pytest.raises(ValueError, match="no op"):
        formulas.register("relu_backward")(f)  # relu's backward is threshold_backward
    with pytest.raises(ValueError, match="no op"):
        formulas.register("scaleprof::deform_conv3d")(f)
    assert formulas.is_op("aten::relu") and formulas.is_op("aten::bernoulli")  # in-place forms count
    assert "aten::relu_backward" not in formulas.registered_ops()
    assert formulas.lookup(torch.ops.aten.mm.default) is formulas.mm_cost  # nothing was replaced


# --- layer kinds of modules and op names (counting/kinds.py) ------------------------------------------------------

def test_module_kinds_and_op_classes():
    from scaleprof.counting import kinds as K

    assert K.module_kind(nn.Conv2d(8, 8, 3, groups=8)) == "conv.depthwise"
    assert K.module_kind(nn.Conv2d(8, 16, 1)) == "conv.pointwise"
    assert K.module_kind(nn.Conv2d(8, 16, 3, dilation=2)) == "conv.dilated"
    assert K.module_kind(nn.ConvTranspose2d(8, 4, 2)) == "conv.transposed"
    assert K.module_kind(nn.Linear(4, 4)) == "linear"
    assert K.module_kind(nn.MultiheadAttention(8, 2)) == "attention"
    assert K.module_kind(nn.BatchNorm2d(4)) == K.module_kind(nn.LayerNorm(4)) == "norm"
    assert K.module_kind(nn.AdaptiveAvgPool2d(1)) == "pooling"
    assert K.module_kind(nn.Sequential()) is None
    # element-wise ops take a norm/activation/pooling layer's kind, never MultiheadAttention's
    assert K.module_hint(nn.GELU()) == "activation" and K.module_hint(nn.MultiheadAttention(8, 2)) is None
    assert K.module_hint(nn.Linear(4, 4)) is None
    assert [K.op_class(n) for n in ("aten::conv2d", "aten::addmm", "aten::bmm", "aten::native_layer_norm",
                                    "aten::hardswish_", "aten::mean", "aten::add", "aten::view")] == \
        ["conv", "linear", "matmul", "norm", "activation", "pooling", "elementwise", "other"]


# --- arguments by schema name (formulas.arguments) --------------------------------------------------------------

def test_arguments_are_named_by_the_ops_schema():
    from scaleprof.counting import arguments

    aten = torch.ops.aten
    x = torch.empty(2, 4, 3, 3, device="meta")
    a = arguments(aten.avg_pool2d.default, (x, [2, 2]), {})
    assert a.first is x and a["kernel_size"] == [2, 2]
    assert a["stride"] == [] and a["padding"] == [0, 0] and a["divisor_override"] is None  # schema defaults
    c = arguments(aten.clamp.default, (x,), {"max": 1.0})
    assert c["min"] is None and c["max"] == 1.0
    # the same packet, two schemas: training is the 6th argument with running stats, the 4th without
    w = torch.empty(4, device="meta")
    assert arguments(aten._native_batch_norm_legit.default, (x, w, w, w, w, False, 0.1, 1e-5), {})["training"] \
        is False
    assert arguments(aten._native_batch_norm_legit.no_stats, (x, w, w, True, 0.1, 1e-5), {})["training"] is True


def test_formulas_read_names_not_positions():
    from scaleprof.counting import arguments, formulas

    aten = torch.ops.aten
    x, w = torch.empty(2, 4, 3, 3, device="meta"), torch.empty(4, device="meta")
    # batch norm without running stats, in eval: the folded scale and shift, 2 FLOPs * 72 elements
    cost = formulas.batch_norm_cost(arguments(aten._native_batch_norm_legit.no_stats, (x, w, w, False, 0.1, 1e-5),
                                              {}), None)
    assert cost.flops == 2 * 72
    # cudnn attention: (query, key, value, attn_bias, compute_log_sumexp, dropout_p, is_causal); the 5th
    # argument is compute_log_sumexp, not the causal flag. B*H = 2, L = S = 4, E = 8: 32 scores,
    # 32 * 16 = 512 MACs; FLOPs 2 * 512 + Q's scaling 2 * 4 * 8 + softmax 5 * 32 (+ 32 mask adds if causal)
    q = torch.empty(1, 2, 4, 8, device="meta")
    op = aten._scaled_dot_product_cudnn_attention.default
    plain = formulas.sdpa_cost(arguments(op, (q, q, q, None, True), {}), None)
    assert (plain.macs, plain.flops) == (512, 1024 + 64 + 160)
    causal = formulas.sdpa_cost(arguments(op, (q, q, q, None, False, 0.0, True), {}), None)
    assert causal.flops == 1024 + 64 + 160 + 32


def test_grouped_mm_float32_on_meta_counts_rows_times_k_times_n():
    # transformers' default MoE kernel; torch's meta kernel takes bf16 only, so float32 goes by a shape rule
    class Grouped(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(4, 8, 6))   # 4 experts, K=8, N=6

        def forward(self, x):
            offs = torch.tensor([3, 5, 9, 10], dtype=torch.int32, device=x.device)
            return torch._grouped_mm(x, self.w, offs=offs)

    r = scaleprof.profile(Grouped(), "10x8")
    assert r.totals.macs == 10 * 8 * 6
    assert r.by_kind()["linear"]["params"] == 4 * 8 * 6
    # x, the 4 experts' weights (min(4 groups, 10 rows) active), offsets, the output; float32
    assert r.totals.bytes == (10 * 8 + 4 * 8 * 6 + 10 * 6) * 4 + 4 * 4
    one = scaleprof.profile(Grouped(), "1x8")   # one row reads one expert's weights (balanced routing on meta)
    assert one.totals.bytes == (8 + 8 * 6 + 6) * 4 + 4 * 4


def test_memory_estimate_measures_saved_activations_on_meta():
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    r = scaleprof.profile(net, "2x8", backward=True, memory=True, optimizer="adam")
    m = r.memory
    weights = (8 * 16 + 16 + 16 * 4 + 4) * 4
    assert (m.weights, m.gradients, m.optimizer_state) == (weights, weights, 2 * weights)
    # saved for backward: the input (for the first weight's gradient) and ReLU's output (for its own
    # backward and the second weight's gradient: one storage, counted once); the weights are not activations
    assert m.activations_saved == 2 * 8 * 4 + 2 * 16 * 4
    # the peak is at Adam's step: weights, every gradient, two states, the batch (2x8 float32) and the step's
    # two temporaries the size of the largest parameter (the 16x8 weight)
    assert (m.inputs, m.optimizer_scratch, m.peak_phase) == (2 * 8 * 4, 2 * 16 * 8 * 4, "optimizer")
    assert m.peak_bytes == 4 * weights + 2 * 8 * 4 + 2 * 16 * 8 * 4 == sum(m.parts().values())
    assert r.to_dict()["memory"]["peak_bytes"] == m.peak_bytes
    sgd = scaleprof.profile(net, "2x8", backward=True, memory=True, optimizer="sgd").memory
    assert sgd.optimizer_state == weights   # momentum: one buffer per parameter
    inference = scaleprof.profile(net, "2x8", memory=True).memory
    assert (inference.gradients, inference.activations_saved, inference.optimizer_state) == (0, 0, 0)
    assert inference.peak_bytes == weights + inference.working_set


def test_checkpointed_recomputation_is_its_own_phase():
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))

        def forward(self, x):
            return checkpoint(self.body, x, use_reentrant=False)

    r = scaleprof.profile(Checkpointed(), "4x8", backward=True, quiet=True)
    # forward: 4·8·16 + 4·16·8; the backward recomputes up to the last tensor it needs (ReLU's output, the
    # second linear's input): the first linear again; the backward itself: two products per linear but the
    # first's input gradient (the input needs none)
    assert r.phases["forward"].macs == 4 * 8 * 16 + 4 * 16 * 8
    assert r.phases["recompute"].macs == 4 * 8 * 16
    assert r.phases["backward"].macs == 2 * 4 * 16 * 8 + 4 * 8 * 16


def test_mfu_is_counted_flops_per_second_over_the_peak():
    from scaleprof.bench.mfu import utilisation, vendor_peak_gflops

    assert utilisation(2_000_000_000, 10.0, 400.0) == pytest.approx(0.5)  # 200 GFLOP/s of 400
    assert utilisation(None, 10.0, 400.0) is None
    assert vendor_peak_gflops("NVIDIA H100 80GB HBM3", torch.bfloat16) == 989_000.0
    assert vendor_peak_gflops("NVIDIA H100 PCIe", torch.float16) == 756_000.0
    assert vendor_peak_gflops("NVIDIA A100-SXM4-40GB", torch.float32) == 19_500.0
    assert vendor_peak_gflops("Some GPU", torch.float32) is None


# --- SDPA on meta without its decomposition (issue 16: HF decoders near a bare forward) ---------------------------

@pytest.mark.parametrize("q,k,v,mask,causal", [
    ((2, 4, 16, 8), (2, 4, 16, 8), (2, 4, 16, 8), None, True),
    ((2, 4, 5, 8), (2, 4, 7, 8), (2, 4, 7, 6), None, False),
    ((3, 5, 8), (3, 7, 8), (3, 7, 8), "bool", False),
    ((1, 2, 5, 8), (1, 2, 7, 8), (1, 2, 7, 8), "float", False),
])
def test_sdpa_on_meta_is_the_math_paths_output(q, k, v, mask, causal):
    from scaleprof.counting.recorder import _sdpa_on_meta

    t = [torch.empty(s, device="meta") for s in (q, k, v)]
    m = None if mask is None else torch.empty(q[-2], k[-2], device="meta",
                                              dtype=torch.bool if mask == "bool" else torch.float32)
    ours = _sdpa_on_meta(*t, attn_mask=m, is_causal=causal)
    theirs = F.scaled_dot_product_attention(*t, attn_mask=m, is_causal=causal)
    assert (ours.shape, ours.stride(), ours.dtype, ours.device) == \
        (theirs.shape, theirs.stride(), theirs.dtype, theirs.device)


def test_sdpa_on_meta_leaves_what_torch_would_refuse_or_differentiate_to_torch():
    from scaleprof.counting.recorder import _sdpa_on_meta

    q = torch.empty(2, 4, 5, 8, device="meta")
    assert _sdpa_on_meta(q, torch.empty(2, 4, 7, 6, device="meta"), torch.empty(2, 4, 7, 8, device="meta")) is None
    assert _sdpa_on_meta(q, q, q, attn_mask=torch.empty(5, 5, device="meta", dtype=torch.bool), is_causal=True) is None
    assert _sdpa_on_meta(q, q, q, attn_mask=torch.empty(3, 5, device="meta", dtype=torch.bool)) is None
    assert _sdpa_on_meta(q, q, torch.empty(2, 4, 5, 8)) is None                         # not all on meta
    with torch.enable_grad():
        assert _sdpa_on_meta(q.requires_grad_(), q, q) is None                      # a backward to attribute


def test_counts_with_sdpa_on_meta_equal_the_decomposed_ones(monkeypatch):
    from scaleprof.counting import recorder

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.out = nn.Linear(16, 48), nn.Linear(16, 16)

        def forward(self, x):
            q, k, v = self.qkv(x).view(2, 6, 3, 2, 8).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            mask = torch.ones(6, 6, dtype=torch.bool, device=x.device).tril()
            b = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.out((a + b).transpose(1, 2).reshape(2, 6, 16))

    m = Attn()
    runs = {}
    for name, fn in (("whole", recorder._sdpa_on_meta), ("decomposed", lambda *a, **k: None)):
        monkeypatch.setattr(recorder, "_sdpa_on_meta", fn)
        runs[name] = [scaleprof.profile(m, ["2x6x16"], backward=b).to_dict() for b in (False, True)]
    assert runs["whole"] == runs["decomposed"]
    # the projections (12 tokens), then per SDPA B·H·L·S·(E + Ev)
    assert runs["whole"][0]["totals"]["macs"] == 12 * 16 * 48 + 12 * 16 * 16 + 2 * (2 * 2 * 6 * 6 * 16)
