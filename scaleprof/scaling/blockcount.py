"""Counting an EfficientNet block by block: each cost unit (stem, MBConv, head, pool + classifier) is counted
once per (configuration, input) and the model's totals are the sums over its chain of units.

Exact, not an estimate: the units' forwards chained are the model's forward (zoo.efficientnet.cost_units),
no op runs outside them, every op is costed from its own shapes, and every parameter lies in one unit only
(checked here), so summing the units' macs, flops, params and activations gives the whole-model profile.
tests/test_scaling.py checks this against ``scaleprof.profile`` of the whole model over the default grid.
Across a grid the same block at the same input recurs often; a model that does not qualify is counted whole.

Across resolutions, a unit in eval mode is costed by its closed form (``closed_form``): the unit's layers read
once (conv geometry, norm, activation, pooling, linear), its totals then a function of the input shape, from
the counter's own per-op rules (counting.formulas.conv_macs, counting.elementwise's tables). So a block is
costed without the dispatcher at every input the grid gives it. tests/test_scaling.py checks the closed form
of each distinct block of a grid sample against the dispatcher's count. A unit with a layer or a mode the
closed forms do not know (training, hooks, another padding) is counted by the dispatcher as before.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..counting.elementwise import ACTIVATION_COST, ELEMENTWISE_COST, REDUCTION_COST, norm_cost_per_element
from ..counting.formulas import conv_macs

FIELDS = ("macs", "flops", "params", "activations")

# per process: (unit key, input shape, strides, dtype) -> (its totals, its output's shape, strides, dtype)
_UNITS: dict[tuple, tuple[dict, tuple]] = {}
_MAX_UNITS = 100_000


def units_of(model: nn.Module) -> list[tuple[nn.Module, bytes]] | None:
    """The model's cost units, each with its key (``module_text``, see ``unit_text``); None where the model
    must be counted whole: anything but the zoo's EfficientNet class, a hook on a container whose forward
    the units skip, or a parameter shared between units (it would be counted once per unit)."""
    from ..zoo.efficientnet import EfficientNet, cost_units

    if type(model) is not EfficientNet:
        return None
    feats = model.features
    containers = [model, feats, *feats[1:-1]]
    if type(feats) is not nn.Sequential or any(type(s) is not nn.Sequential for s in feats[1:-1]):
        return None
    if any(c._forward_hooks or c._forward_pre_hooks for c in containers):
        return None
    units = cost_units(model)
    owned = [id(p) for u in units for p in u.parameters()]
    if len(owned) != len(set(owned)) or set(owned) != {id(p) for p in model.parameters()}:
        return None
    return [(u, unit_text(u)) for u in units]


def unit_text(unit: nn.Module) -> bytes:
    """``module_text`` of the unit, less the drop rate of each StochasticDepth in eval mode: there it returns
    its input before reading ``p`` (no op runs), so MBConvs differing only in their rate cost the same.
    In training the rate stays in the key."""
    from ..zoo.blocks import StochasticDepth
    from .family import module_text

    text = module_text(unit)
    for name, m in unit.named_modules():
        if name and isinstance(m, StochasticDepth) and not m.training:
            line = b"\n" + name.encode() + module_text(m)      # its own line, named as in the unit
            if text.count(line) == 1:
                text = text.replace(line, b"\n" + name.encode() + b"|StochasticDepth in eval: the identity\n")
    return text


def count_units(units: list[tuple[nn.Module, bytes]], input_shape) -> dict | None:
    """Totals (FIELDS) of the chain of units on ``input_shape``, each unit counted once per process and
    input (by its closed form where every unit has one); None if a unit does not count on meta (then the
    whole model is counted as before)."""
    forms = [_form_of(unit, text) for unit, text in units]
    if all(f is not None for f in forms):
        acc = _sum_forms(units, forms, tuple(int(d) for d in input_shape))
        if acc is not None:
            return acc
    return _count_chain(units, input_shape)


def _sum_forms(units, forms, shape) -> dict | None:
    acc = [0, 0, 0, 0]
    for (_, text), form in zip(units, forms, strict=True):
        key = (text, shape)
        hit = _UNITS.get(key)
        if hit is None:
            hit = form(shape)
            if hit is None:          # the shape does not fit the unit: the dispatcher says why
                return None
            if len(_UNITS) >= _MAX_UNITS:
                _UNITS.clear()
            _UNITS[key] = hit
        cost, shape = hit
        for i in range(4):
            acc[i] += cost[i]
    return dict(zip(FIELDS, acc, strict=True))


def _count_chain(units, input_shape) -> dict | None:
    from ..shapes import parse_input

    x = parse_input(tuple(input_shape)).make("meta")      # the input profile() makes for the whole model
    inp = (tuple(x.shape), x.stride(), x.dtype)
    acc = dict.fromkeys(FIELDS, 0)
    for unit, text in units:
        key = (text, *inp)
        hit = _UNITS.get(key)
        if hit is None:
            hit = _count_unit(unit, inp)
            if hit is None:
                return None
            if len(_UNITS) >= _MAX_UNITS:
                _UNITS.clear()
            _UNITS[key] = hit
        totals, inp = hit
        for f in FIELDS:
            acc[f] += totals[f]
    return acc


def _count_unit(unit: nn.Module, inp) -> tuple[dict, tuple] | None:
    from ..counting import profile

    shape, stride, dtype = inp
    out = []
    # the output's layout feeds the next unit; a hook reads it without running the unit a second time
    hook = unit.register_forward_hook(lambda m, args, y: out.append(y))
    try:
        res = profile(unit, [torch.empty_strided(shape, stride, dtype=dtype, device="meta")],
                      device="meta", quiet=True)
    except Exception:   # the whole-model count gives the error (or the cpu fallback) as before
        return None
    finally:
        hook.remove()
    if res.counted_on != "meta" or len(out) != 1 or not isinstance(out[0], torch.Tensor):
        return None
    y = out[0]
    return {f: getattr(res.totals, f) for f in FIELDS}, (tuple(y.shape), y.stride(), y.dtype)


# --- closed forms ---------------------------------------------------------------------------------------------
# A form maps an input shape to ((macs, flops, params, activations), output shape), or None where the shape
# does not fit. Each follows the counter's rule for the aten ops the layer runs on meta in eval mode:
# convolution (MACs per output pixel, a bias adds one FLOP per output element, the output is activations),
# batch norm in inference (the folded scale and shift), activations (ACTIVATION_COST per element),
# AdaptiveAvgPool2d(1) (a mean: one FLOP per input element), linear (addmm / mm), the SE gate's multiply and
# the residual add (one FLOP per output element); a parameter is counted by the layer that holds it.

_FORMS: dict[bytes, object] = {}      # per process: unit text -> its form (None: no closed form)
_ACTIVATIONS = {nn.SiLU: "silu", nn.Sigmoid: "sigmoid"}


def closed_form(unit: nn.Module):
    """The unit's form (see above), or None where a layer, a mode or a hook has none. Containers' own
    training flags do not matter (their forwards do not read them; the cost units' PoolClassifier is made
    fresh, in training mode); the layers that read theirs must be in eval."""
    mods = list(unit.modules())
    if any(m._forward_hooks or m._forward_pre_hooks for m in mods):
        return None
    params = [id(p) for m in mods for p in m.parameters(recurse=False)]
    if len(params) != len(set(params)):          # a shared parameter is counted once by the counter
        return None
    return _form(unit)


def _form_of(unit: nn.Module, text: bytes):
    if text not in _FORMS:
        _FORMS[text] = closed_form(unit)
    return _FORMS[text]


def _form(m: nn.Module):
    from ..zoo.blocks import SqueezeExcitation, StochasticDepth
    from ..zoo.efficientnet import MBConv, PoolClassifier

    t = type(m)
    if t is nn.Conv2d:
        return _conv_form(m)
    if t is nn.BatchNorm2d:
        return _bn_form(m)
    if t in _ACTIVATIONS:
        return _pointwise_form(ACTIVATION_COST[_ACTIVATIONS[t]])
    if t is nn.AdaptiveAvgPool2d:
        return _global_pool_form if m.output_size in (1, (1, 1)) else None
    if t is nn.Linear:
        return _linear_form(m)
    if t is nn.Identity or (t in (nn.Dropout, StochasticDepth) and not m.training):   # no op runs
        return _identity
    if t is nn.Sequential:
        return _chain([_form(c) for c in m])
    if t is SqueezeExcitation:
        gate = _chain([_form(c) for c in (m.avgpool, m.fc1, m.activation, m.fc2, m.scale_activation)])
        return _then_elementwise(gate, "mul", gated=True)
    if t is MBConv:
        block = _form(m.block)
        if not m.use_res_connect or block is None:
            return block
        return _then_elementwise(_chain([block, _form(m.stochastic_depth)]), "add", gated=False)
    if t is PoolClassifier:
        return _chain([_form(m.avgpool), _flatten, _form(m.classifier)])
    return None


def _identity(shape):
    return (0, 0, 0, 0), shape


def _numel(shape) -> int:
    return math.prod(shape)


def _chain(forms):
    if any(f is None for f in forms):
        return None

    def chained(shape):
        acc = [0, 0, 0, 0]
        for f in forms:
            hit = f(shape)
            if hit is None:
                return None
            cost, shape = hit
            for i in range(4):
                acc[i] += cost[i]
        return tuple(acc), shape
    return chained


def _then_elementwise(inner, op: str, *, gated: bool):
    """``x * inner(x)`` (gated: the SE's per-channel gate broadcast over x) or ``inner(x) + x``."""
    if inner is None:
        return None
    per = ELEMENTWISE_COST[op]

    def form(shape):
        hit = inner(shape)
        if hit is None:
            return None
        cost, out = hit
        if (gated and out != (*shape[:2], *(1,) * (len(shape) - 2))) or (not gated and out != shape):
            return None
        return (cost[0], cost[1] + per * _numel(shape), cost[2], cost[3]), shape
    return form


def _conv_form(m: nn.Conv2d):
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        return None
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = m.kernel_size, m.stride, m.padding, m.dilation
    w_shape = tuple(m.weight.shape)
    params = m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    bias = m.bias is not None

    def form(shape):
        if len(shape) != 4 or shape[1] != m.in_channels:
            return None
        n, _, h, w = shape
        ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if ho < 1 or wo < 1:
            return None
        out = (n, m.out_channels, ho, wo)
        macs, elems = conv_macs(shape, w_shape, out, False), _numel(out)
        return (macs, 2 * macs + (elems if bias else 0), params, elems), out
    return form


def _bn_form(m: nn.BatchNorm2d):
    if m.training or not m.track_running_stats or m.running_mean is None:    # batch statistics
        return None
    per = norm_cost_per_element("batch_norm", affine=m.weight is not None, training=False)
    params = sum(p.numel() for p in m.parameters(recurse=False))

    def form(shape):
        if len(shape) != 4 or shape[1] != m.num_features:
            return None
        return (0, per * _numel(shape), params, 0), shape
    return form


def _pointwise_form(per: int):
    def form(shape):
        return (0, per * _numel(shape), 0, 0), shape
    return form


def _global_pool_form(shape):
    if len(shape) != 4:
        return None
    return (0, REDUCTION_COST["mean"] * _numel(shape), 0, 0), (*shape[:2], 1, 1)


def _flatten(shape):
    return (0, 0, 0, 0), (shape[0], _numel(shape[1:]))


def _linear_form(m: nn.Linear):
    params = m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    bias = m.bias is not None

    def form(shape):
        if len(shape) != 2 or shape[1] != m.in_features:       # addmm / mm: a 2-d input
            return None
        elems = shape[0] * m.out_features
        macs = elems * m.in_features
        return (macs, 2 * macs + (elems if bias else 0), params, elems), (shape[0], m.out_features)
    return form


# --- an EfficientNet layout's text and units without building the model --------------------------------------
# Across a grid most layouts differ only in how many blocks each stage repeats: the fine grid's 76 module
# trees hold 1,691 blocks but 77 distinct ones. ``assemble`` builds each distinct block once per process
# (its drop rate aside: in eval it is only the StochasticDepth's own line) and writes the model's
# ``module_text`` from the blocks' texts, line by line in named_modules order, as ``family.build`` followed
# by ``module_text`` would. tests/test_scaling.py checks it equal over a grid sample.

_PARTS: dict[tuple, tuple] = {}       # per process: (part, its arguments, dtype) -> (module, module_text, unit_text)


def assembled(family, width=None, depth=None, resolution=None) -> tuple[bytes, list] | None:
    """``assemble`` for the family at these knobs where it builds the zoo's EfficientNet, else None."""
    from ..zoo.efficientnet import EfficientNetLayout

    lay = family.layout(width, depth, resolution)
    return assemble(lay) if type(lay) is EfficientNetLayout else None


def assemble(layout) -> tuple[bytes, list[tuple[nn.Module, bytes]]]:
    """(module_text of ``EfficientNet(layout)`` in eval, its cost units with their ``unit_text``)."""
    from ..zoo import efficientnet as E

    norm = (layout.bn_eps, layout.bn_momentum)
    stem = _part(("stem", layout.stem, norm), lambda: E.stem_of(layout))
    head = _part(("head", layout.stages[-1].cout, layout.head, norm), lambda: E.head_of(layout))
    pool = _part(("pool", layout.dropout, layout.head, layout.num_classes), lambda: _pool_classifier(layout))
    seq = _part(("sequential",), nn.Sequential)[1]
    stages = E.block_args(layout)
    text = [_part(("root",), _root)[1], _prefixed(seq, "features"), _prefixed(stem[1], "features.0")]
    units = [(stem[0], stem[2])]
    for j, stage in enumerate(stages, 1):
        text.append(_prefixed(seq, f"features.{j}"))
        for i, (*args, drop) in enumerate(stage):
            block, block_text, block_unit = _part(("mbconv", *args, norm),
                                                  lambda a=args: E.MBConv(*a, 0.0, E.norm_of(layout)))
            text.append(_prefixed(_with_drop(block, block_text, drop), f"features.{j}.{i}"))
            units.append((block, block_unit))
    text.append(_prefixed(head[1], f"features.{len(stages) + 1}"))
    text.append(pool[1].split(b"\n", 1)[1])      # the wrapper's own line is no module of the model
    units += [(head[0], head[2]), (pool[0], pool[2])]
    return b"".join(text), units


def _part(key: tuple, make) -> tuple:
    from ..meta_init import skip_init
    from .family import module_text

    key = (*key, torch.get_default_dtype())
    hit = _PARTS.get(key)
    if hit is None:
        with torch.device("meta"), skip_init("meta"):      # as zoo.build makes the model on meta
            m = make().eval()
        hit = _PARTS[key] = (m, module_text(m), unit_text(m))
    return hit


def _root() -> nn.Module:
    # EfficientNet keeps no attribute of its own: its line is the same for every layout (the test checks it)
    from ..zoo.efficientnet import EfficientNet

    shell = EfficientNet.__new__(EfficientNet)
    nn.Module.__init__(shell)
    return shell


def _pool_classifier(layout) -> nn.Module:
    from ..zoo.efficientnet import PoolClassifier, classifier_of

    return PoolClassifier(nn.AdaptiveAvgPool2d(1), classifier_of(layout))


def _with_drop(block: nn.Module, text: bytes, drop: float) -> bytes:
    """The block's text with its StochasticDepth's drop rate (the block is built with 0)."""
    if drop == block.stochastic_depth.p:
        return text
    from ..zoo.blocks import StochasticDepth
    from .family import module_text

    old = b"\n" + _prefixed(module_text(block.stochastic_depth), "stochastic_depth")
    new = b"\n" + _prefixed(module_text(StochasticDepth(drop).eval()), "stochastic_depth")
    if text.count(old) != 1:
        raise RuntimeError("MBConv's StochasticDepth line is not where assemble expects it")
    return text.replace(old, new)


def _prefixed(text: bytes, prefix: str) -> bytes:
    """``text``'s lines named as under the module ``prefix`` ("" is the module itself)."""
    p = prefix.encode()
    out = []
    for line in text.splitlines(keepends=True):
        name, rest = line.split(b"|", 1)
        out.append(p + (b"." + name if name else b"") + b"|" + rest)
    return b"".join(out)
