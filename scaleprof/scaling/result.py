"""What a search returns: the ranked candidates, the best, the φ sweep (its text table:
report/scale_tables.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

# the `scale --json` contract (design.md); every candidate dict has at least these
CANDIDATE_KEYS = ("alpha", "beta", "gamma", "width", "depth", "resolution", "macs", "params", "cost_ratio",
                  "formula_ratio", "feasible", "latency_ms", "score", "status")


@dataclass
class ScaleResult:
    family: str
    phi: float
    budget: dict
    candidates: list[dict]            # ranked: feasible by score, then the rest by distance to the budget
    best: dict | None
    phi_sweep: list[dict]
    duplicates: int                   # candidates whose architecture another candidate already had
    architectures: int                # distinct architectures among the counted candidates
    objective: str
    constraint: str
    formula_target: float
    base: dict
    grid: dict
    timing: dict
    executor: str
    notes: list[str] = field(default_factory=list)
    resumed: int = 0
    log: str | None = None
    objective_words: str | None = None  # the objective for readers: a proxy named and marked experimental
    # over the whole grid, which a streamed result (more candidates than keep_candidates) does not hold
    candidates_total: int | None = None
    candidates_kept: int | None = None      # len(candidates)
    candidates_failed: int | None = None
    feasible_total: int | None = None
    feasible_architectures: int | None = None

    def to_dict(self) -> dict:
        return {"family": self.family, "phi": self.phi, "budget": self.budget, "candidates": self.candidates,
                "best": self.best, "phi_sweep": self.phi_sweep, "duplicates": self.duplicates,
                "architectures": self.architectures, "objective": self.objective, "constraint": self.constraint,
                "formula_target": self.formula_target, "base": self.base, "grid": self.grid,
                "timing": self.timing, "executor": self.executor, "resumed": self.resumed, "log": self.log,
                "notes": list(self.notes), "objective_words": self.objective_words,
                "candidates_total": self.candidates_total, "candidates_kept": self.candidates_kept,
                "candidates_failed": self.candidates_failed, "feasible_total": self.feasible_total,
                "feasible_architectures": self.feasible_architectures}

    def to_dataframe(self, which: str = "candidates"):
        """The candidates (ranked, one row each) or, with ``which="phi_sweep"``, the scale-up table."""
        import pandas as pd

        if which == "phi_sweep":
            return pd.DataFrame(self.phi_sweep)
        df = pd.DataFrame(self.candidates)
        return df.set_index("key") if "key" in df else df

    def candidate(self, alpha: float, beta: float, gamma: float) -> dict | None:
        from .grid import key_of

        k = key_of(alpha, beta, gamma)
        return next((c for c in self.candidates if c["key"] == k), None)
