"""Deformable convolution (DCNv1/v2) as the torch custom ops ``scaleprof::deform_conv2d`` and its backward.

The schemas are torchvision's (``torchvision::deform_conv2d`` and ``torchvision::_deform_conv2d_backward``), so
one cost formula serves both libraries. The kernels are pure PyTorch and device-agnostic
(CompositeExplicitAutograd): bilinear sampling exactly as torchvision's ``bilinear_interpolate`` (zero outside
the image), im2col-style columns, then one grouped matmul. Fake kernels give shapes, so the ops run on the meta
device and under FakeTensorMode / torch.compile. The backward is its own op so a dispatch-level counter sees a
single backward call.
"""

from __future__ import annotations

import torch

_INTS = (
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, "
    "SymInt groups, SymInt offset_groups, bool use_mask"
)
FORWARD_SCHEMA = (
    "(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, " + _INTS + ") -> Tensor"
)
BACKWARD_SCHEMA = (
    "(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, " + _INTS + ") "
    "-> (Tensor grad_input, Tensor grad_weight, Tensor grad_offset, Tensor grad_mask, Tensor grad_bias)"
)
FORWARD_NAME = "scaleprof::deform_conv2d"
BACKWARD_NAME = "scaleprof::deform_conv2d_backward"


def out_size(size, pad, dilation, kernel, stride):
    """Output side of a convolution: floor((H + 2p - d(k - 1) - 1) / s) + 1."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _check(input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask):
    """Shape checks shared by the real and fake kernels (torch._check so they also hold for symbolic shapes)."""
    torch._check(input.dim() == 4, lambda: f"deform_conv2d: input must be NxCxHxW, got {tuple(input.shape)}")
    torch._check(weight.dim() == 4, lambda: f"deform_conv2d: weight must be 4-d, got {tuple(weight.shape)}")
    torch._check(offset.dim() == 4, lambda: f"deform_conv2d: offset must be 4-d, got {tuple(offset.shape)}")
    torch._check(sh > 0 and sw > 0, lambda: "deform_conv2d: stride must be positive")
    torch._check(dh > 0 and dw > 0, lambda: "deform_conv2d: dilation must be positive")
    torch._check(ph >= 0 and pw >= 0, lambda: "deform_conv2d: padding must be non-negative")
    torch._check(groups > 0 and offset_groups > 0, lambda: "deform_conv2d: groups must be positive")
    n, cin, h, w = input.shape
    cout, cin_g, kh, kw = weight.shape
    torch._check(
        cin == cin_g * groups, lambda: f"deform_conv2d: {cin} input channels != {cin_g} x {groups} groups"
    )
    torch._check(
        cout % groups == 0, lambda: f"deform_conv2d: {cout} output channels not divisible by {groups}"
    )
    torch._check(
        cin % offset_groups == 0,
        lambda: f"deform_conv2d: {cin} input channels not divisible by {offset_groups} offset groups",
    )
    hout, wout = out_size(h, ph, dh, kh, sh), out_size(w, pw, dw, kw, sw)
    torch._check(hout > 0 and wout > 0, lambda: "deform_conv2d: output would be empty (input too small)")
    k = kh * kw
    torch._check(
        tuple(offset.shape) == (n, 2 * offset_groups * k, hout, wout),
        lambda: (
            f"deform_conv2d: offset shape {tuple(offset.shape)} != {(n, 2 * offset_groups * k, hout, wout)}"
        ),
    )
    if use_mask:
        torch._check(
            tuple(mask.shape) == (n, offset_groups * k, hout, wout),
            lambda: f"deform_conv2d: mask shape {tuple(mask.shape)} != {(n, offset_groups * k, hout, wout)}",
        )
    torch._check(
        bias.numel() == cout, lambda: f"deform_conv2d: bias has {bias.numel()} elements, expected {cout}"
    )
    return n, cin, h, w, cout, kh, kw, hout, wout


def _corners(offset, h, w, kh, kw, hout, wout, sh, sw, ph, pw, dh, dw, offset_groups):
    """Bilinear sampling plan: for each of the 4 corners (weight, d weight/dy, d weight/dx, flat index).

    Each tensor is (N, G, K * Hout * Wout), K = kh * kw. Weights follow torchvision's bilinear_interpolate: 0
    when y <= -1, y >= H, x <= -1 or x >= W, and a corner outside the image contributes 0. Validity is folded
    into the weights and their derivatives, so the offset gradient is torchvision's col2im_coord.
    """
    n = offset.shape[0]
    k, dev, dt = kh * kw, offset.device, offset.dtype
    # Regular grid p0 + pk, (K, Hout, Wout).
    oy = torch.arange(hout, device=dev, dtype=dt) * sh - ph
    ox = torch.arange(wout, device=dev, dtype=dt) * sw - pw
    ky = torch.arange(kh, device=dev, dtype=dt) * dh
    kx = torch.arange(kw, device=dev, dtype=dt) * dw
    base_y = (ky.view(kh, 1, 1, 1) + oy.view(1, 1, hout, 1)).expand(kh, kw, hout, wout).reshape(k, hout, wout)
    base_x = (kx.view(1, kw, 1, 1) + ox.view(1, 1, 1, wout)).expand(kh, kw, hout, wout).reshape(k, hout, wout)
    # torchvision layout: channel = ((group * K) + kernel position) * 2 + (0: dy, 1: dx).
    off = offset.reshape(n, offset_groups, k, 2, hout, wout)
    y = (base_y + off[:, :, :, 0]).reshape(n, offset_groups, k * hout * wout)
    x = (base_x + off[:, :, :, 1]).reshape(n, offset_groups, k * hout * wout)

    inside = ((y > -1) & (y < h) & (x > -1) & (x < w)).to(dt)
    y0, x0 = torch.floor(y), torch.floor(x)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    y0i, x0i = y0.to(torch.long), x0.to(torch.long)
    y1i, x1i = y0i + 1, x0i + 1
    vy0, vy1 = (y0i >= 0) & (y0i < h), (y1i >= 0) & (y1i < h)
    vx0, vx1 = (x0i >= 0) & (x0i < w), (x1i >= 0) & (x1i < w)
    y0c, y1c = y0i.clamp(0, h - 1) * w, y1i.clamp(0, h - 1) * w
    x0c, x1c = x0i.clamp(0, w - 1), x1i.clamp(0, w - 1)
    plan = []
    for wy, wx, dwy, dwx, valid, index in (
        (hy, hx, -hx, -hy, vy0 & vx0, y0c + x0c),
        (hy, lx, -lx, hy, vy0 & vx1, y0c + x1c),
        (ly, hx, hx, -ly, vy1 & vx0, y1c + x0c),
        (ly, lx, lx, ly, vy1 & vx1, y1c + x1c),
    ):
        keep = valid.to(dt) * inside
        plan.append((wy * wx * keep, dwy * keep, dwx * keep, index))
    return plan


def _gather(src, index):
    """src (N, G, C, H*W) at index (N, G, M) -> (N, G, C, M)."""
    n, g, c, _ = src.shape
    return torch.gather(src, 3, index.unsqueeze(2).expand(n, g, c, index.shape[-1]))


def _sample(src, plan):
    """Bilinear samples (N, G, C, K*L): the deformable im2col before the mask."""
    out = None
    for wgt, _, _, index in plan:
        term = _gather(src, index) * wgt.unsqueeze(2)
        out = term if out is None else out + term
    return out


def deform_conv2d_math(
    input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
):
    """The forward in plain PyTorch (what the op's kernel runs; differentiable, so also a reference)."""
    n, cin, h, w, cout, kh, kw, hout, wout = _check(
        input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
    )
    k, hw_out = kh * kw, hout * wout
    plan = _corners(offset, h, w, kh, kw, hout, wout, sh, sw, ph, pw, dh, dw, offset_groups)
    cols = _sample(input.reshape(n, offset_groups, cin // offset_groups, h * w), plan)
    if use_mask:
        cols = cols * mask.reshape(n, offset_groups, 1, k * hw_out)
    # Columns rows are (channel, ki, kj), matching weight.reshape(Cout, Cin/g * kh * kw).
    cols = cols.reshape(n, groups, (cin // groups) * k, hw_out)
    wmat = weight.reshape(groups, cout // groups, (cin // groups) * k)
    out = torch.matmul(wmat, cols).reshape(n, cout, hout, wout)
    return out + bias.reshape(1, cout, 1, 1)


def _forward_kernel(
    input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
):
    return deform_conv2d_math(
        input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
    )


def _forward_fake(input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask):
    n, _, _, _, cout, _, _, hout, wout = _check(
        input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
    )
    return input.new_empty((n, cout, hout, wout))


def _backward_kernel(
    grad, input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
):
    # Hand-written (torchvision's col2im / col2im_coord, vectorised) rather than autograd inside the kernel, so it
    # runs unchanged under dispatch modes, inference mode and no_grad.
    n, cin, h, w, cout, kh, kw, hout, wout = _check(
        input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
    )
    k, hw_out, cpg = kh * kw, hout * wout, cin // offset_groups
    src = input.reshape(n, offset_groups, cpg, h * w)
    plan = _corners(offset, h, w, kh, kw, hout, wout, sh, sw, ph, pw, dh, dw, offset_groups)
    g_out = grad.reshape(n, groups, cout // groups, hw_out)
    wmat = weight.reshape(groups, cout // groups, (cin // groups) * k)

    grad_bias = grad.sum((0, 2, 3)).reshape(bias.shape)
    # d loss / d columns, back in the (N, G, C/G, K*L) sampling layout.
    grad_cols = torch.matmul(wmat.transpose(1, 2), g_out).reshape(n, offset_groups, cpg, k * hw_out)
    m = mask.reshape(n, offset_groups, 1, k * hw_out) if use_mask else None
    grad_samples = grad_cols * m if use_mask else grad_cols

    grad_src = torch.zeros_like(src)
    grad_y = grad_x = samples = None
    for wgt, dwy, dwx, index in plan:
        values = _gather(src, index)
        idx = index.unsqueeze(2).expand_as(grad_samples)
        grad_src.scatter_add_(3, idx, grad_samples * wgt.unsqueeze(2))
        per_point = (grad_samples * values).sum(2)  # (N, G, K*L)
        term_y, term_x, term_s = dwy * per_point, dwx * per_point, values * wgt.unsqueeze(2)
        if samples is None:
            grad_y, grad_x, samples = term_y, term_x, term_s
        else:
            grad_y, grad_x, samples = grad_y + term_y, grad_x + term_x, samples + term_s

    cols = samples * m if use_mask else samples
    cols = cols.reshape(n, groups, (cin // groups) * k, hw_out)
    grad_weight = torch.einsum("ngol,ngcl->goc", g_out, cols).reshape(weight.shape)
    grad_offset = torch.stack(
        (grad_y.reshape(n, offset_groups, k, hw_out), grad_x.reshape(n, offset_groups, k, hw_out)), dim=3
    ).reshape(offset.shape)
    if use_mask:
        grad_mask = (grad_cols * samples).sum(2).reshape(mask.shape)
    else:
        grad_mask = torch.zeros_like(mask)
    return grad_src.reshape(input.shape), grad_weight, grad_offset, grad_mask, grad_bias


def _backward_fake(grad, input, weight, offset, mask, bias, *params):
    _check(input, weight, offset, mask, bias, *params)
    return tuple(torch.empty_like(t) for t in (input, weight, offset, mask, bias))


def _setup_context(ctx, inputs, output):
    input, weight, offset, mask, bias, *params = inputs
    ctx.save_for_backward(input, weight, offset, mask, bias)
    ctx.params = tuple(params)


def _autograd_backward(ctx, grad):
    input, weight, offset, mask, bias = ctx.saved_tensors
    gi, gw, go, gm, gb = torch.ops.scaleprof.deform_conv2d_backward.default(
        grad, input, weight, offset, mask, bias, *ctx.params
    )
    use_mask = ctx.params[-1]
    return (gi, gw, go, gm if use_mask else None, gb) + (None,) * len(ctx.params)


def _registered(name):
    try:
        getattr(torch.ops.scaleprof, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def register():
    """Define both ops once per process (a re-import or reload finds them and does nothing)."""
    if not _registered("deform_conv2d_backward"):
        torch.library.define(BACKWARD_NAME, BACKWARD_SCHEMA)
        torch.library.impl(BACKWARD_NAME, "CompositeExplicitAutograd", _backward_kernel)
        torch.library.register_fake(BACKWARD_NAME, _backward_fake)
    if not _registered("deform_conv2d"):
        torch.library.define(FORWARD_NAME, FORWARD_SCHEMA)
        torch.library.impl(FORWARD_NAME, "CompositeExplicitAutograd", _forward_kernel)
        torch.library.register_fake(FORWARD_NAME, _forward_fake)
        torch.library.register_autograd(FORWARD_NAME, _autograd_backward, setup_context=_setup_context)
    return torch.ops.scaleprof.deform_conv2d.default, torch.ops.scaleprof.deform_conv2d_backward.default
