"""Peers' counters beside scaleprof's: fvcore, thop and torch's FlopCounterMode, with each difference
explained by layer group. Peers run on deep copies with real tensors, so nothing they attach (thop's
total_ops buffers, hooks) can reach the user's model; a peer that fails is reported failed and the run goes on.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import kinds as K

GROUPS = ("conv", "conv.transposed", "conv.deformable", "linear/matmul", "attention", "norm", "activation", "pooling",
          "elementwise", "other")

# Why each peer parts from the convention, by group; where a group matches, nothing is said.
REASONS = {
    "fvcore": {
        "attention": "fvcore does not count scaled_dot_product_attention or the MHA fast path (reported as "
                     "unsupported ops): attention products are missed",
        "norm": "fvcore counts norms by its own per-element rule (1 per element in eval), not MACs",
        "pooling": "fvcore counts adaptive average pooling as one op per input element; MACs count none",
        "elementwise": "fvcore counts upsampling and some element-wise ops; MACs count none",
        "linear/matmul": "fvcore traces with the JIT and counts matmul/einsum/linear by its own handles",
        "conv": "fvcore counts convolution MACs per output pixel, as the convention does",
        "conv.transposed": "fvcore counts transposed convolutions by its conv handle",
        "conv.deformable": "fvcore has no handle for deformable convolution (scaleprof::deform_conv2d, "
                           "torchvision::deform_conv2d): listed as an unsupported op, counted as 0",
    },
    "thop": {
        "conv.transposed": "thop counts a transposed convolution per output pixel (stride² times too high); "
                           "the convention counts per input pixel",
        "conv": "thop counts convolutions by its own per-output rule (calculate_conv2d_flops)",
        "linear/matmul": "thop counts nn.Linear modules only: functional matmul/linear calls in a forward "
                         "are missed",
        "attention": "thop counts modules only: attention products inside forward code are missed",
        "norm": "thop counts norms as 2 ops per element (4 with affine), not MACs",
        "activation": "thop counts most activations as zero, a few as one op per element",
        "pooling": "thop counts pooling ops per output element, not MACs",
        "other": "thop counts some other modules by its own rules",
        "conv.deformable": "thop does not know deformable-convolution modules: counted as 0 (only the "
                           "offset-predicting conv inside is counted)",
    },
    "torch": {
        "attention": "torch.utils.flop_counter has no formula for the CPU flash kernel or the MHA fast path "
                     "under no_grad: they count as 0",
        "linear/matmul": "torch counts 2 FLOPs per MAC (halved here); under no_grad in eval the MHA fast path "
                         "(aten::_native_multi_head_attention) has no formula, so its in- and out-projections "
                         "count as 0",
        "conv": "torch counts 2 FLOPs per MAC (halved here)",
        "conv.transposed": "torch counts 2 FLOPs per MAC (halved here)",
        "conv.deformable": "torch.utils.flop_counter has no formula for a custom deformable-convolution op: 0",
    },
}


def _group(kind: str) -> str:
    if kind in (K.CONV_TRANSPOSED, K.CONV_DEFORMABLE):
        return kind
    if kind.startswith("conv"):
        return "conv"
    if kind in (K.LINEAR, K.MATMUL):
        return "linear/matmul"
    return kind if kind in GROUPS else "other"


def ours_by_group(result) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, v in result.by_kind("forward").items():
        out[_group(kind)] = out.get(_group(kind), 0) + v["macs"]
    return out


@dataclass
class PeerCount:
    name: str
    status: str
    unit: str = ""
    reported: float | None = None
    macs_equivalent: int | None = None
    by_group: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _module_group(mod: nn.Module) -> str:
    return _group(K.module_kind(mod) or K.OTHER)


_FVCORE_GROUPS = {"conv": "conv", "linear": "linear/matmul", "addmm": "linear/matmul", "matmul": "linear/matmul",
                  "mm": "linear/matmul", "bmm": "linear/matmul", "einsum": "linear/matmul",
                  "batch_norm": "norm", "group_norm": "norm", "layer_norm": "norm", "instance_norm": "norm",
                  "adaptive_avg_pool2d": "pooling", "upsample_nearest2d": "elementwise",
                  "upsample_bilinear2d": "elementwise", "scaled_dot_product_attention": "attention"}


def run_fvcore(model, inputs) -> PeerCount:
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(model, tuple(inputs))
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    fca.tracer_warnings("none")
    total = int(fca.total())
    by_group: dict[str, int] = {}
    for op, n in fca.by_operator().items():
        g = _FVCORE_GROUPS.get(op, "other")
        by_group[g] = by_group.get(g, 0) + int(n)
    # fvcore's conv handle counts transposed convs too; split them out by module so groups line up
    for name, n in fca.by_module().items():
        mod = model.get_submodule(name) if name else model
        if isinstance(mod, nn.modules.conv._ConvTransposeNd) and n:
            by_group["conv"] = by_group.get("conv", 0) - int(n)
            by_group["conv.transposed"] = by_group.get("conv.transposed", 0) + int(n)
    unsupported = dict(fca.unsupported_ops())
    notes = [f"unsupported ops: {unsupported}"] if unsupported else []
    return PeerCount("fvcore", "ok", "MACs (one fused multiply-add = 1)", total, total, by_group, notes=notes)


def run_thop(model, inputs) -> PeerCount:
    import thop

    macs, _params, layer_info = thop.profile(model, inputs=tuple(inputs), verbose=False, ret_layer_info=True,
                                             report_missing=False)
    by_group: dict[str, int] = {}

    def walk(mod: nn.Module, info: dict) -> None:
        for name, (ops, _p, children) in info.items():
            child = mod.get_submodule(name)
            if children:
                walk(child, children)
            else:
                g = _module_group(child)
                by_group[g] = by_group.get(g, 0) + int(ops)

    walk(model, layer_info)
    return PeerCount("thop", "ok", "MACs (its own rules per module type)", float(macs), int(macs), by_group)


_TORCH_GROUPS = {"convolution": "conv", "mm": "linear/matmul", "addmm": "linear/matmul", "bmm": "linear/matmul",
                 "baddbmm": "linear/matmul"}


def run_torch(model, inputs) -> PeerCount:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(*inputs)
    total = int(fc.get_total_flops())
    by_group: dict[str, int] = {}
    for op, n in fc.get_flop_counts().get("Global", {}).items():
        name = str(op).split(".")[1] if "." in str(op) else str(op)
        g = _TORCH_GROUPS.get(name, "attention" if "attention" in name else "other")
        by_group[g] = by_group.get(g, 0) + int(n) // 2
    # transposed convs: split out by module, as for fvcore
    for name, counts in fc.get_flop_counts().items():
        if name == "Global":
            continue
        path = name.split(".", 1)[1] if "." in name else ""
        try:
            mod = model.get_submodule(path) if path else None
        except AttributeError:
            continue
        if isinstance(mod, nn.modules.conv._ConvTransposeNd):
            n = sum(int(v) for k, v in counts.items() if "convolution" in str(k)) // 2
            by_group["conv"] = by_group.get("conv", 0) - n
            by_group["conv.transposed"] = by_group.get("conv.transposed", 0) + n
    return PeerCount("torch", "ok", "FLOPs (2 per MAC; halved for MACs)", total, total // 2, by_group)


PEERS = {"fvcore": run_fvcore, "thop": run_thop, "torch": run_torch}


@dataclass
class Crosscheck:
    ours_macs: int
    ours_by_group: dict[str, int]
    peers: list[PeerCount]

    def explanations(self, peer: PeerCount) -> list[str]:
        lines = []
        for g in GROUPS:
            ours, theirs = self.ours_by_group.get(g, 0), peer.by_group.get(g, 0)
            if ours == theirs:
                continue
            why = REASONS.get(peer.name, {}).get(g, "counted by a different rule")
            lines.append(f"{g}: {peer.name} {theirs:,} vs scaleprof {ours:,} MACs ({theirs - ours:+,}): {why}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"scaleprof_macs": self.ours_macs, "scaleprof_by_group": self.ours_by_group,
                "peers": [p.to_dict() | {"difference": (p.macs_equivalent - self.ours_macs)
                                         if p.macs_equivalent is not None else None,
                                         "explanations": self.explanations(p) if p.status == "ok" else []}
                          for p in self.peers]}


def crosscheck(model: nn.Module, inputs, ours=None, peers=("fvcore", "thop", "torch")) -> Crosscheck:
    """Run each peer on a deep copy of ``model`` (real tensors, eval mode) and explain the differences.
    ``inputs`` are tensors or shapes; ``ours`` is scaleprof's result for the same model and inputs."""
    from ..shapes import parse_input
    from .profile import profile

    tensors = [x if isinstance(x, torch.Tensor) else parse_input(x).make("cpu") for x in inputs]
    if ours is None:
        ours = profile(model, tensors, quiet=True)  # on meta: the peers do the real arithmetic
    results = []
    for name in peers:
        clone = copy.deepcopy(model).eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results.append(PEERS[name](clone, tensors))
        except Exception as exc:  # a peer's failure is a result, not a crash
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            results.append(PeerCount(name, "failed", reason=f"{type(exc).__name__}: {first}"))
    # peers count a forward pass: compare with scaleprof's forward, also when ours counted a backward too
    forward = ours.phases.get("forward")
    return Crosscheck(forward.macs if forward else 0, ours_by_group(ours), results)
