"""The search's results log (the JSON-lines format and its resume rules: scaleprof.runlog).

    {"type": "header", "version": 1, "config": {...}}        what the search is (checked on --resume)
    {"type": "cost", "key": "1.2000,1.1000,1.1500", ...}      one per candidate: its count, or its failure
    {"type": "objective", "arch": "...", "objective": "train", "keys": [...], "metrics": {...}, ...}
                                                              one per architecture and objective

``--resume`` reads the log back, keeps every finished record and appends to it; a last line cut off by a
kill is ignored. A log whose header differs from the search asked for is an error (naming what differs),
so two searches never mix in one file.
"""

from __future__ import annotations

from ..runlog import Journal, RunLog, require_shape


def _cost_key(r: dict):
    require_shape(r, key="text", arch="text", status="text", macs="whole", flops="whole", params="whole",
                  activations="whole")
    if r.get("status") == "ok" and not isinstance(r.get("macs"), int):
        raise ValueError("an ok candidate without its macs")
    return r.get("key") or None


def _objective_key(r: dict):
    require_shape(r, arch="text", objective="text", keys="texts", metrics="object", status="text")
    return (r["arch"], r.get("objective")) if r.get("arch") else None


class MemoryLog:
    """The records of a search in memory (no --log): nothing to resume."""

    resumed = 0

    def __init__(self, rlog: RunLog | None = None):
        self._journal = Journal(rlog, {"cost": _cost_key, "objective": _objective_key})
        self.costs: dict[str, dict] = self._journal.done["cost"]
        self.objectives: dict[tuple[str, str], dict] = self._journal.done["objective"]

    def cost(self, record: dict) -> None:
        self._journal.put("cost", record)

    def objective(self, record: dict) -> None:
        self._journal.put("objective", record)

    def close(self) -> None:
        self._journal.close()


class ResultsLog(MemoryLog):
    """MemoryLog that also appends each record to a JSON-lines file (and reads one back on --resume)."""

    def __init__(self, path, config: dict, resume: bool = False):
        log = RunLog(path, config, resume=resume, tool="scaleprof scale", run="search")
        super().__init__(log)
        self.path, self.config = log.path, log.config
        self.resumed = len(self.costs)
