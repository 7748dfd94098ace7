"""The results log: JSON lines, one written and flushed as each piece of work finishes.

    {"type": "header", "version": 1, "config": {...}}        what the search is (checked on --resume)
    {"type": "cost", "key": "1.2000,1.1000,1.1500", ...}      one per candidate: its count, or its failure
    {"type": "objective", "arch": "...", "objective": "train", "keys": [...], "metrics": {...}, ...}
                                                              one per architecture and objective

``--resume`` reads the log back, keeps every finished record and appends to it; a last line cut off by a
kill is ignored. A log whose header differs from the search asked for is an error (naming what differs),
so two searches never mix in one file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ScaleprofError

VERSION = 1


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
        self.path = Path(path)
        self.config = json.loads(json.dumps(config, default=str))
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume:
            raise ScaleprofError(f"--log {self.path} already exists: pass --resume to continue that search, "
                                 "or remove the file")
        if exists:
            self._read()
        elif self.path.parent and not self.path.parent.exists():
            raise ScaleprofError(f"--log {self.path}: no such folder {self.path.parent}")
        self._fh = open(self.path, "a", encoding="utf-8")   # noqa: SIM115 - open for the search's lifetime
        if not exists:
            self._write({"type": "header", "version": VERSION, "config": self.config})

    def _read(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        complete = raw.endswith(b"\n")
        records, keep = [], 0          # keep: bytes of whole, parsed lines
        for n, line in enumerate(lines):
            last = n == len(lines) - 1
            if last and not line:
                break
            try:
                if line.strip():
                    records.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                if last and not complete:
                    break             # the line a kill cut off: dropped below, then redone
                raise ScaleprofError(f"--log {self.path}: line {n + 1} is not JSON; not a scaleprof scale log") \
                    from None
            keep += len(line) + 1
        if keep > len(raw):            # a whole last record without its newline
            with open(self.path, "ab") as f:
                f.write(b"\n")
        elif keep < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(keep)
        if not records or records[0].get("type") != "header":
            raise ScaleprofError(f"--log {self.path}: no header line; not a scaleprof scale log")
        old = records[0].get("config", {})
        diff = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
        if diff:
            k = diff[0]
            raise ScaleprofError(f"--resume: {self.path} is a different search ({k}: {old.get(k)!r} in the log, "
                                 f"{self.config.get(k)!r} now)")
        for r in records[1:]:
            if r.get("type") == "cost" and r.get("key"):
                super().cost(r)
            elif r.get("type") == "objective" and r.get("arch"):
                super().objective(r)
        self.resumed = len(self.costs)

    def _write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()

    def cost(self, record: dict) -> None:
        super().cost(record)
        self._write({"type": "cost", **record})

    def objective(self, record: dict) -> None:
        super().objective(record)
        self._write({"type": "objective", **record})

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
