"""What a check found: one row per metric, and the verdict with its notes (the `check --json` contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_CODES = {"pass": 0, "regression": 1, "error": 2}


@dataclass
class CheckRow:
    metric: str            # "macs", "params[conv.depthwise]", "latency"
    baseline: float | None
    current: float | None
    change: float | None   # relative: (current - baseline) / baseline; None when the baseline is 0
    limit: float           # relative limit on |change| (latency: on the slowdown)
    verdict: str           # pass | regression | changed
    unit: str = ""
    p_value: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        d = {"metric": self.metric, "baseline": self.baseline, "current": self.current, "change": self.change,
             "limit": self.limit, "verdict": self.verdict}
        if self.unit:
            d["unit"] = self.unit
        if self.p_value is not None:
            d["p_value"] = self.p_value
        if self.note:
            d["note"] = self.note
        return d

    @property
    def failed(self) -> bool:
        return self.verdict != "pass"


@dataclass
class CheckResult:
    verdict: str                      # pass | regression | error
    checks: list[CheckRow] = field(default_factory=list)
    model: str = ""
    baseline: str | None = None
    saved: str | None = None
    against: str | None = None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None         # for verdict "error"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict:
        d = {"verdict": self.verdict, "checks": [c.to_dict() for c in self.checks], "model": self.model,
             "baseline": self.baseline, "against": self.against, "saved": self.saved, "notes": list(self.notes)}
        if self.reason:
            d["reason"] = self.reason
        return d


def error_result(reason: str, model: str = "") -> CheckResult:
    return CheckResult(verdict="error", model=model, reason=reason)
