"""The results log of a long run (``scale --log``, ``bench --log``): JSON lines, one written and flushed as
each piece of work finishes, after a header that names the work::

    {"type": "header", "version": 1, "config": {...}}     what the run is (checked on --resume)
    {"type": ..., ...}                                     one per finished piece, in the order finished

`Journal` is what bench and scale keep of it: the finished pieces by key, those an earlier run logged and
each new one as it finishes. ``--resume`` reads the log back and appends to it; a last line cut off by a kill is dropped (that piece is
done again). A log whose header differs from the run asked for is an error naming what differs, so two
runs never mix in one file. A run without ``--resume`` refuses a log that already has content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from pathlib import Path

from .errors import ScaleprofError

VERSION = 1


class RunLog:
    """Open (or, with ``resume``, read back and reopen) the log at ``path`` for a run described by ``config``.

    ``tool`` and ``run`` name the log in messages ("scaleprof scale", "search"). ``records``: what an
    earlier run finished, header excluded, in order.
    """

    def __init__(self, path, config: dict, *, resume: bool = False, tool: str = "scaleprof", run: str = "run"):
        self.path = Path(path)
        self.tool, self.run = tool, run
        self.config = json.loads(json.dumps(config, default=str))   # as it reads back from the file
        self.records: list[dict] = []
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume:
            raise ScaleprofError(f"--log {self.path} already exists: pass --resume to continue that {run}, "
                                 "or remove the file")
        if exists:
            self._read()
        elif self.path.parent and not self.path.parent.exists():
            raise ScaleprofError(f"--log {self.path}: no such folder {self.path.parent}")
        try:
            self._fh = open(self.path, "a", encoding="utf-8")   # noqa: SIM115 - open for the run's lifetime
        except OSError as exc:
            raise ScaleprofError(f"--log {self.path}: cannot write it ({exc.strerror or exc})") from None
        if not exists:
            self.write({"type": "header", "version": VERSION, "config": self.config})

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
                raise ScaleprofError(f"--log {self.path}: line {n + 1} is not JSON; not a {self.tool} log") \
                    from None
            keep += len(line) + 1
        if keep > len(raw):            # a whole last record without its newline
            with open(self.path, "ab") as f:
                f.write(b"\n")
        elif keep < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(keep)
        if not records or records[0].get("type") != "header":
            raise ScaleprofError(f"--log {self.path}: no header line; not a {self.tool} log")
        old = records[0].get("config", {})
        diff = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
        if diff:
            k = diff[0]
            raise ScaleprofError(f"--resume: {self.path} is a different {self.run} ({k}: {old.get(k)!r} in the "
                                 f"log, {self.config.get(k)!r} now)")
        self.records = records[1:]

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class Journal:
    """The finished pieces of a run by record type and key: those an earlier run wrote to `log` (read back
    on --resume) and each new one, appended to `log` as it finishes (no log: kept in memory only).

    ``keys`` maps each record type to the function giving a record's key; a record whose key is None is
    written but not kept (bench: a failed row, tried again on resume). ``done[type]`` is the dict of kept
    records by key; ``resumed[type]`` how many came from the log."""

    def __init__(self, log: RunLog | None, keys: dict[str, Callable[[dict], Hashable | None]]):
        self.log, self.keys = log, keys
        self.done: dict[str, dict] = {t: {} for t in keys}
        for r in log.records if log is not None else ():
            key_of = keys.get(r.get("type"))
            key = key_of(r) if key_of is not None else None
            if key is not None:
                self.done[r["type"]][key] = r
        self.resumed = {t: len(d) for t, d in self.done.items()}

    def get(self, kind: str, key: Hashable) -> dict | None:
        return self.done[kind].get(key)

    def put(self, kind: str, record: dict) -> None:
        key = self.keys[kind](record)
        if key is not None:
            self.done[kind][key] = record
        if self.log is not None:
            self.log.write({"type": kind, **record})

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
