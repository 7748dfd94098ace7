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

from ..runlog import RunLog


class MemoryLog:
    """The records of a search in memory (no --log): nothing to resume."""

    resumed = 0

    def __init__(self):
        self.costs: dict[str, dict] = {}
        self.objectives: dict[tuple[str, str], dict] = {}

    def cost(self, record: dict) -> None:
        self.costs[record["key"]] = record

    def objective(self, record: dict) -> None:
        self.objectives[(record["arch"], record["objective"])] = record

    def close(self) -> None:
        pass


class ResultsLog(MemoryLog):
    """MemoryLog that also appends each record to a JSON-lines file (and reads one back on --resume)."""

    def __init__(self, path, config: dict, resume: bool = False):
        super().__init__()
        self._log = RunLog(path, config, resume=resume, tool="scaleprof scale", run="search")
        self.path, self.config = self._log.path, self._log.config
        for r in self._log.records:
            if r.get("type") == "cost" and r.get("key"):
                super().cost(r)
            elif r.get("type") == "objective" and r.get("arch"):
                super().objective(r)
        self.resumed = len(self.costs)

    def cost(self, record: dict) -> None:
        super().cost(record)
        self._log.write({"type": "cost", **record})

    def objective(self, record: dict) -> None:
        super().objective(record)
        self._log.write({"type": "objective", **record})

    def close(self) -> None:
        self._log.close()
