"""Deformable convolution op: checked against F.conv2d, hand-derived bilinear values, gradcheck and opcheck."""

import importlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import scaleprof.layers as layers
from scaleprof.errors import ScaleprofError
from scaleprof.layers import DEFORM_OPS, DeformConv2d, DeformConv2dPack, deform_conv2d, deform_op

D64 = torch.float64


def out_side(size, k, s=1, p=0, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# (N, Cin, H, W, Cout, kh, kw, stride, padding, dilation, groups, offset_groups)
CONFIGS = [
    (2, 3, 7, 6, 4, 3, 3, 1, 0, 1, 1, 1),
    (1, 4, 9, 8, 6, 3, 3, 2, 1, 1, 1, 1),  # stride 2 + padding
    (2, 2, 9, 9, 3, 3, 3, 1, 2, 2, 1, 1),  # dilation 2
    (1, 4, 6, 7, 6, 3, 3, 1, 1, 1, 2, 1),  # groups 2
    (2, 4, 6, 6, 2, 3, 3, 1, 1, 1, 1, 2),  # offset groups 2
    (1, 6, 8, 7, 4, 2, 3, (2, 1), (0, 1), (1, 2), 2, 3),  # non-square kernel, stride, padding, dilation
    (1, 2, 5, 5, 2, 1, 1, 1, 0, 1, 1, 1),  # 1x1
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def make(cfg, seed=0):
    n, cin, h, w, cout, kh, kw, s, p, d, g, og = cfg
    gen = torch.Generator().manual_seed(seed)
    (sh, sw), (ph, pw), (dh, dw) = _pair(s), _pair(p), _pair(d)
    ho, wo = out_side(h, kh, sh, ph, dh), out_side(w, kw, sw, pw, dw)
    x = torch.randn(n, cin, h, w, generator=gen, dtype=D64)
    weight = torch.randn(cout, cin // g, kh, kw, generator=gen, dtype=D64)
    bias = torch.randn(cout, generator=gen, dtype=D64)
    offset = torch.zeros(n, 2 * og * kh * kw, ho, wo, dtype=D64)
    mask = torch.ones(n, og * kh * kw, ho, wo, dtype=D64)
    return x, weight, bias, offset, mask, dict(stride=s, padding=p, dilation=d), g


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("v2", [False, True])
def test_zero_offset_is_conv2d(cfg, v2):
    x, weight, bias, offset, mask, geo, g = make(cfg)
    got = deform_conv2d(x, offset, weight, bias, mask=mask if v2 else None, **geo)
    want = F.conv2d(x, weight, bias, groups=g, **geo)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_mask_scales_samples():
    # A constant mask m multiplies every sample, so the output is m * conv + bias.
    x, weight, bias, offset, mask, geo, g = make(CONFIGS[1])
    got = deform_conv2d(x, offset, weight, bias, mask=0.3 * mask, **geo)
    want = 0.3 * F.conv2d(x, weight, None, groups=g, **geo) + bias.view(1, -1, 1, 1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_integer_shift_is_conv_of_shifted_image():
    # Every sample moved by (dy, dx) = (1, -2): a plain conv over z[a, b] = x[a - p + 1, b - p - 2], the padded
    # image shifted (zero where that leaves x), gives the same output.
    p, dy, dx, margin = 1, 1, -2, 3
    x, weight, bias, offset, _, geo, _ = make((2, 3, 8, 9, 4, 3, 3, 1, p, 1, 1, 1))
    offset = offset.view(2, 9, 2, 8, 9)
    offset[:, :, 0], offset[:, :, 1] = float(dy), float(dx)
    big = F.pad(x, (margin,) * 4)
    top, left = margin - p + dy, margin - p + dx
    z = big[:, :, top : top + 8 + 2 * p, left : left + 9 + 2 * p]
    got = deform_conv2d(x, offset.reshape(2, 18, 8, 9), weight, bias, **geo)
    torch.testing.assert_close(got, F.conv2d(z, weight, bias), rtol=1e-12, atol=1e-12)


def test_half_pixel_offset_averages_neighbours():
    # dx = +0.5 samples 0.5 * (x[i, j] + x[i, j + 1]); outside the image a neighbour is 0, also in the padding.
    p = 1
    x, weight, bias, offset, _, geo, _ = make((1, 2, 6, 5, 3, 3, 3, 1, p, 1, 1, 1))
    offset.view(1, 9, 2, 6, 5)[:, :, 1] = 0.5
    xp = F.pad(x, (p, p + 1, p, p))
    averaged = 0.5 * (xp[..., :-1] + xp[..., 1:])
    got = deform_conv2d(x, offset, weight, bias, **geo)
    torch.testing.assert_close(got, F.conv2d(averaged, weight, bias), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "dy, dx, want",
    [
        (0.25, 0.5, 0.75 * 0.5 * 1 + 0.75 * 0.5 * 2 + 0.25 * 0.5 * 3 + 0.25 * 0.5 * 4),  # interior: 2.0
        (-0.5, 0.0, 0.5 * 1),  # half above the image: only the row-0 neighbour, weight 0.5
        (-1.0, 0.0, 0.0),  # y <= -1: zero
        (1.5, 1.5, 0.25 * 4),  # bottom-right: only x[1, 1] is inside
        (2.0, 0.0, 0.0),  # y >= H: zero
        (0.0, -0.25, 0.75 * 1),  # left of the image
    ],
)
def test_bilinear_point_by_hand(dy, dx, want):
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=D64)
    weight = torch.ones(1, 1, 1, 1, dtype=D64)
    offset = torch.zeros(1, 2, 2, 2, dtype=D64)
    offset[0, 0, 0, 0], offset[0, 1, 0, 0] = dy, dx  # output pixel (0, 0) samples at (dy, dx)
    got = deform_conv2d(x, offset, weight)
    assert got[0, 0, 0, 0].item() == pytest.approx(want, abs=1e-12)
    # The other pixels are untouched samples of x.
    assert got[0, 0, 1, 1].item() == 4.0 and got[0, 0, 0, 1].item() == 2.0


def off_grid_offsets(shape, gen):
    # Integer part in [-2, 2] plus a fraction in [0.2, 0.8]: away from the bilinear kinks at integers.
    whole = torch.randint(-2, 3, shape, generator=gen).to(D64)
    return whole + 0.2 + 0.6 * torch.rand(shape, generator=gen, dtype=D64)


GRAD_CONFIGS = [
    (1, 2, 4, 5, 2, 2, 2, 1, 1, 1, 1, 1),
    (2, 4, 5, 6, 2, 2, 3, (2, 1), (1, 0), (1, 2), 2, 2),
]


@pytest.mark.parametrize("cfg", GRAD_CONFIGS)
@pytest.mark.parametrize("v2", [False, True])
def test_gradcheck(cfg, v2):
    x, weight, bias, offset, mask, geo, _ = make(cfg, seed=1)
    gen = torch.Generator().manual_seed(2)
    offset = off_grid_offsets(offset.shape, gen)
    mask = torch.rand(mask.shape, generator=gen, dtype=D64)
    leaves = [t.clone().requires_grad_() for t in (x, offset, weight, bias, mask)]

    def fn(x, offset, weight, bias, mask):
        return deform_conv2d(x, offset, weight, bias, mask=mask if v2 else None, **geo)

    if not v2:
        leaves[4].requires_grad_(False)
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


def test_backward_matches_autograd_of_forward_math():
    # The hand-written backward against autograd through the plain forward, with samples far outside the image.
    x, weight, bias, offset, mask, geo, g = make((2, 4, 6, 5, 4, 3, 3, 2, 1, 1, 2, 2), seed=3)
    gen = torch.Generator().manual_seed(4)
    offset = 3 * torch.randn(offset.shape, generator=gen, dtype=D64)
    mask = torch.rand(mask.shape, generator=gen, dtype=D64)
    params = (2, 2, 1, 1, 1, 1, g, 2, True)
    leaves = [t.clone().requires_grad_() for t in (x, weight, offset, mask, bias)]
    out = deform_op.deform_conv2d_math(*leaves, *params)
    grad = torch.randn(out.shape, generator=gen, dtype=D64)
    want = torch.autograd.grad(out, leaves, grad)
    got = DEFORM_OPS[1](grad, x, weight, offset, mask, bias, *params)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_opcheck():
    x, weight, bias, offset, mask, _, _ = make((1, 4, 5, 5, 4, 3, 3, 1, 1, 1, 2, 2))
    gen = torch.Generator().manual_seed(5)
    offset = off_grid_offsets(offset.shape, gen)
    params = (1, 1, 1, 1, 1, 1, 2, 2)
    for use_mask, m in ((True, mask), (False, x.new_zeros(0))):
        plain = (x, weight, offset, m, bias, *params, use_mask)
        torch.library.opcheck(DEFORM_OPS[0], plain)
        grads = tuple(t.clone().requires_grad_() for t in (x, weight, offset, m, bias))
        torch.library.opcheck(DEFORM_OPS[0], (*grads, *params, use_mask))
        out = DEFORM_OPS[0](*plain)
        torch.library.opcheck(DEFORM_OPS[1], (torch.randn_like(out), *plain))


def test_schema_is_torchvision_s():
    fwd, bwd = (str(op._schema) for op in DEFORM_OPS)
    ints = (
        "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, "
        "SymInt groups, SymInt offset_groups, bool use_mask"
    )
    assert fwd == (
        "scaleprof::deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
        + ints
        + ") -> Tensor"
    )
    assert bwd.startswith(
        "scaleprof::deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, "
        "Tensor mask, Tensor bias, " + ints + ") -> (Tensor"
    )


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        return func(*args, **(kwargs or {}))


def test_dispatch_sees_one_forward_and_one_backward_op():
    x, weight, bias, offset, mask, geo, _ = make(CONFIGS[1])
    leaves = [t.requires_grad_() for t in (x, weight, offset, mask)]
    with OpLog() as log:
        out = deform_conv2d(leaves[0], leaves[2], leaves[1], bias, mask=leaves[3], **geo)
        out.sum().backward()
    assert log.ops.count(DEFORM_OPS[0]) == 1 and log.ops.count(DEFORM_OPS[1]) == 1
    # The kernels' own aten ops stay below the op: no gather or matmul reaches the mode.
    assert not any("gather" in str(op) or "mm" in str(op) for op in log.ops)
    assert all(t.grad is not None for t in leaves)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_meta_forward_shape(cfg):
    n, cin, h, w, cout, kh, kw, s, p, d, g, og = cfg
    (sh, sw), (ph, pw), (dh, dw) = _pair(s), _pair(p), _pair(d)
    ho, wo = out_side(h, kh, sh, ph, dh), out_side(w, kw, sw, pw, dw)
    meta = dict(device="meta", dtype=torch.float32)
    out = deform_conv2d(
        torch.empty(n, cin, h, w, **meta),
        torch.empty(n, 2 * og * kh * kw, ho, wo, **meta),
        torch.empty(cout, cin // g, kh, kw, **meta),
        mask=torch.empty(n, og * kh * kw, ho, wo, **meta),
        stride=s,
        padding=p,
        dilation=d,
    )
    assert out.device.type == "meta" and tuple(out.shape) == (n, cout, ho, wo)


def test_pack_on_meta_forward_and_backward():
    block = DeformConv2dPack(8, 16, 3, stride=2, padding=1, offset_groups=2).to("meta")
    x = torch.randn(2, 8, 15, 15, device="meta", requires_grad=True)
    out = block(x)
    assert out.device.type == "meta" and tuple(out.shape) == (2, 16, 8, 8)
    out.sum().backward()
    assert x.grad.shape == x.shape and block.weight.grad.shape == block.weight.shape
    assert block.conv_offset.weight.grad.shape == (2 * 3 * 9, 8, 3, 3)


@pytest.mark.parametrize("modulated", [False, True])
def test_pack_at_init_is_plain_conv(modulated):
    torch.manual_seed(0)
    block = DeformConv2dPack(
        4,
        6,
        (3, 2),
        stride=(1, 2),
        padding=1,
        dilation=(2, 1),
        groups=2,
        offset_groups=2,
        modulated=modulated,
    ).double()
    assert isinstance(block.conv_offset, nn.Conv2d)
    assert block.conv_offset.out_channels == (3 if modulated else 2) * 2 * 6
    assert not block.conv_offset.weight.any() and not block.conv_offset.bias.any()
    x = torch.randn(2, 4, 7, 8, dtype=D64)
    conv = F.conv2d(x, block.weight, None, stride=(1, 2), padding=1, dilation=(2, 1), groups=2)
    # Offsets are 0; the v2 mask is sigmoid(0) = 0.5 on every sample (DCNv2's initialisation).
    scale = 0.5 if modulated else 1.0
    torch.testing.assert_close(block(x), scale * conv + block.bias.view(1, -1, 1, 1), rtol=1e-12, atol=1e-12)


def test_modules_init_like_conv2d():
    torch.manual_seed(7)
    ref = nn.Conv2d(6, 4, (3, 2), groups=2)
    for cls in (DeformConv2d, DeformConv2dPack):
        torch.manual_seed(7)
        mod = cls(6, 4, (3, 2), groups=2)
        torch.testing.assert_close(mod.weight, ref.weight)
        torch.testing.assert_close(mod.bias, ref.bias)
    assert DeformConv2d(6, 4, 3, bias=False).bias is None


def test_module_forward_equals_functional():
    x, _, _, offset, mask, _, _ = make((1, 4, 6, 6, 2, 3, 3, 1, 1, 1, 2, 1))
    mod = DeformConv2d(4, 2, 3, padding=1, groups=2).double()
    offset = offset + 0.3
    want = deform_conv2d(x, offset, mod.weight, mod.bias, padding=1, mask=mask * 0.7)
    torch.testing.assert_close(mod(x, offset, mask * 0.7), want)


def test_bad_input_raises_scaleprof_error():
    x = torch.randn(1, 4, 5, 5)
    weight = torch.randn(2, 4, 3, 3)
    with pytest.raises(ScaleprofError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 17, 3, 3), weight)
    with pytest.raises(ScaleprofError, match="input channels"):
        deform_conv2d(x, torch.zeros(1, 18, 3, 3), torch.randn(2, 3, 3, 3))
    with pytest.raises(RuntimeError, match="offset shape"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), weight)


def test_reimport_is_harmless():
    importlib.reload(deform_op)
    assert deform_op.register() == tuple(DEFORM_OPS)
    importlib.reload(layers)
    assert tuple(layers.DEFORM_OPS) == tuple(DEFORM_OPS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x, weight, bias, offset, mask, geo, _ = make(CONFIGS[5])
    offset = off_grid_offsets(offset.shape, torch.Generator().manual_seed(8))
    want = deform_conv2d(x, offset, weight, bias, mask=mask * 0.5, **geo)
    got = deform_conv2d(*(t.cuda() for t in (x, offset, weight, bias)), mask=(mask * 0.5).cuda(), **geo)
    torch.testing.assert_close(got.cpu(), want)


def test_matches_torchvision():
    tv_ops = pytest.importorskip("torchvision.ops")
    for cfg in CONFIGS:
        x, weight, bias, offset, mask, geo, _ = make(cfg, seed=9)
        gen = torch.Generator().manual_seed(10)
        offset = 2 * torch.randn(offset.shape, generator=gen, dtype=D64)
        mask = torch.rand(mask.shape, generator=gen, dtype=D64)
        for m in (None, mask):
            leaves_a = [t.clone().requires_grad_() for t in (x, offset, weight, bias)]
            leaves_b = [t.clone().requires_grad_() for t in (x, offset, weight, bias)]
            a = deform_conv2d(*leaves_a, mask=m, **geo)
            b = tv_ops.deform_conv2d(*leaves_b, mask=m, **geo)
            torch.testing.assert_close(a, b)
            a.sum().backward()
            b.sum().backward()
            for la, lb in zip(leaves_a, leaves_b, strict=True):
                torch.testing.assert_close(la.grad, lb.grad)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(11)
    block = DeformConv2dPack(4, 6, 3, padding=1, offset_groups=2)
    nn.init.normal_(block.conv_offset.weight, std=0.3)
    x = torch.randn(2, 4, 7, 7)
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), block(x))
