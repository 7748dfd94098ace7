"""One candidate of a search as the result reports it: its grid point and knobs, its count, whether it is
feasible, what the objectives made of it and its rank.

``to_dict()`` is the ``scale --json`` candidate (design.md; result.CANDIDATE_KEYS): the fields below in
this order; the ones after ``rank`` appear only once a step has set them (``activation_ratio`` for a
counted candidate, ``metrics`` and the latency/accuracy fields where an objective ran, ``pareto`` for a
feasible one, ``latency_tie`` where a latency interval exists), then anything an objective put in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


class _Absent:
    def __repr__(self):
        return "ABSENT"


ABSENT = _Absent()       # a key the candidate does not have (yet): left out of to_dict


@dataclass(eq=False)
class CandidateRow:
    key: str
    index: int
    alpha: float
    beta: float
    gamma: float
    width: float | None
    depth: float | None
    resolution: int | None
    macs: int | None
    params: int | None
    activations: int | None
    flops: int | None
    cost_ratio: float | None
    formula_ratio: float
    formula_ok: bool
    budget_ok: bool
    feasible: bool
    latency_ms: float | None = None
    score: float | None = None
    status: str = "failed"
    reason: str | None = None
    arch: str | None = None
    input: str | None = None
    duplicate_of: str | None = None
    rank: int | None = None
    # set by later steps; ABSENT until then
    activation_ratio: object = ABSENT
    metrics: object = ABSENT
    latency_ratio: object = ABSENT
    latency_ci95: object = ABSENT
    accuracy: object = ABSENT
    accuracy_std: object = ABSENT
    proxies: object = ABSENT
    reward: object = ABSENT
    latency_target_ms: object = ABSENT
    pareto_rank: object = ABSENT
    pareto: object = ABSENT
    latency_tie: object = ABSENT
    extra: dict = field(default_factory=dict)     # an objective's own keys, last

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def get(self, name: str, default=None):
        """The field, or ``default`` where it is ABSENT (or None)."""
        v = getattr(self, name, ABSENT)
        return default if v is ABSENT or v is None else v

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "extra":
                out.update(v)
            elif v is not ABSENT:
                out[f.name] = v
        return out

    def identity(self) -> dict:
        """What an objective's worker needs of the candidate."""
        return {k: getattr(self, k) for k in ("key", "alpha", "beta", "gamma", "width", "depth", "resolution",
                                               "arch")}
