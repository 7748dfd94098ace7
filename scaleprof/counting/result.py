"""The analysis object: counts by layer, kind, module and operator. Printing lives in report/tables.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .kinds import kind_order

METRICS = ("macs", "flops", "params", "activations", "bytes")

UNITS = {
    "macs": "multiply-accumulates of conv, linear/matmul and attention products (the papers' 'FLOPS')",
    "flops": "floating-point operations: 2 per MAC plus bias, norm, activation, pooling, softmax and "
             "element-wise work (docs/counting.md)",
    "params": "parameters, each counted once",
    "activations": "elements written by conv and linear outputs",
    "bytes": "least memory traffic: inputs and weights read once, outputs written once",
}


@dataclass
class Totals:
    macs: int = 0
    flops: int = 0
    params: int = 0
    activations: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, row) -> None:
        for m in METRICS:
            setattr(self, m, getattr(self, m) + int(getattr(row, m) if not isinstance(row, dict) else row[m]))


@dataclass
class Layer:
    """One module's work of one kind in one phase (a module running a conv and a ReLU has two rows),
    summed over its calls. The recorder fills these in as ops run."""

    name: str
    module_type: str
    kind: str
    phase: str
    macs: int = 0
    flops: int = 0
    params: int = 0
    activations: int = 0
    bytes: int = 0
    calls: int = 0
    ops: dict[str, int] = field(default_factory=Counter)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("name", "module_type", "kind", "phase", *METRICS, "calls")}
        d["ops"] = dict(self.ops)
        d.update(self.info)
        return d


def _group(rows, key) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        k = key(r)
        if k is None:
            continue
        g = out.setdefault(k, dict.fromkeys((*METRICS, "calls"), 0))
        for m in (*METRICS, "calls"):
            g[m] += getattr(r, m)
    return out


@dataclass
class ProfileResult:
    model: str
    inputs: list[str]
    device: str
    dtype: str
    layers: list[Layer]
    operators: list[Layer]
    totals: Totals
    uncounted_ops: dict[str, int]
    free_ops: dict[str, int]
    phases: dict[str, Totals]
    notices: list[str] = field(default_factory=list)
    counted_on: str = "meta"
    params_trainable: int | None = None  # of totals.params, those with requires_grad (the rest are frozen)
    kv_cache_bytes: int | None = None        # with decode: K and V of every layer at the final length
    generation: dict | None = None           # with decode: batch, prompt_tokens, decode_steps
    memory: Any = None                       # with memory: a counting.memory.MemoryEstimate

    def per_token(self) -> dict[str, dict[str, float]]:
        """A generation's prefill and decode totals per token (prefill: per prompt token; decode: per
        generated token), for the decode roofline."""
        g = self.generation or {}
        n = {"prefill": g.get("batch", 1) * g.get("prompt_tokens", 0), "decode": g.get("batch", 1) * g.get("decode_steps", 0)}
        return {ph: {m: getattr(t, m) / n[ph] for m in ("macs", "flops", "bytes")}
                for ph, t in self.phases.items() if n.get(ph)}

    # --- views ------------------------------------------------------------------------------------------

    def by_kind(self, phase: str | None = None) -> dict[str, dict[str, int]]:
        rows = [r for r in self.layers if phase is None or r.phase == phase]
        grouped = _group(rows, lambda r: r.kind)
        return dict(sorted(grouped.items(), key=lambda kv: kind_order(kv[0])))

    def by_module(self, level: int | None = None, phase: str | None = None) -> dict[str, dict[str, int]]:
        """Costs summed over each module's subtree, cut at ``level`` dots deep ("" is the whole model)."""

        def key(r):
            if phase is not None and r.phase != phase:
                return None
            parts = [p for p in r.name.split(".") if p] if r.name else []
            if r.name.startswith("("):  # "(unused parameters)" and the like
                return r.name
            return ".".join(parts[:level]) if level is not None else r.name

        return _group(self.layers, key)

    def by_operator(self) -> dict[str, dict[str, int]]:
        grouped = _group(self.operators, lambda r: r.name if r.phase in ("forward", "prefill")
                         else f"{r.name} ({r.phase})")
        for op, n in self.free_ops.items():
            grouped.setdefault(op, dict.fromkeys((*METRICS, "calls"), 0))["calls"] += n
        return grouped

    @property
    def complete(self) -> bool:
        """True when every op that ran was counted (or is free): the totals leave nothing out."""
        return not self.uncounted_ops

    def incompleteness(self) -> str:
        """One line naming the ops the totals leave out ("" when complete)."""
        if self.complete:
            return ""
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(self.uncounted_ops.items()))
        return f"INCOMPLETE: the totals leave out {len(self.uncounted_ops)} uncounted op(s) (no formula): {ops}"

    def share(self, metric: str = "macs") -> dict[str, float]:
        total = getattr(self.totals, metric) or 1
        return {k: v[metric] / total for k, v in self.by_kind().items()}

    # --- export -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = {
            "model": self.model,
            "inputs": self.inputs,
            "device": self.device,
            "dtype": self.dtype,
            "counted_on": self.counted_on,
            # params_trainable beside the totals' metrics (design.md), not in Totals: baselines keep their keys
            "totals": {**self.totals.to_dict(), "params_trainable": self.params_trainable},
            "complete": self.complete,
            "by_kind": self.by_kind(),
            "layers": [r.to_dict() for r in self.layers],
            "uncounted_ops": dict(self.uncounted_ops),
            "free_ops": dict(self.free_ops),
            "units": UNITS,
            "notices": list(self.notices),
        }
        if len(self.phases) > 1:
            d["phases"] = {k: v.to_dict() for k, v in self.phases.items()}
        if self.generation is not None:
            d["kv_cache_bytes"] = self.kv_cache_bytes
            d["generation"] = dict(self.generation)
            d["per_token"] = self.per_token()
        if self.memory is not None:
            d["memory"] = self.memory.to_dict()
        return d

    def to_dataframe(self, by: str = "layer"):
        import pandas as pd

        if by == "layer":
            return pd.DataFrame([r.to_dict() for r in self.layers])
        table = {"kind": self.by_kind, "module": self.by_module, "op": self.by_operator}[by]()
        df = pd.DataFrame.from_dict(table, orient="index")
        df.index.name = by
        return df
