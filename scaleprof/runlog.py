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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_SHAPES = {   # shape: (what it is called in a message, the test)
    "number": ("a number", _is_number),
    "whole": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "numbers": ("a list of numbers", lambda v: isinstance(v, list) and all(_is_number(x) for x in v)),
    "pair": ("a pair of numbers", lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_number, v))),
    "text": ("a string", lambda v: isinstance(v, str)),
    "object": ("an object", lambda v: isinstance(v, dict)),
    "texts": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
}


def require_shape(record: dict, **shapes: str) -> None:
    """Raise ValueError naming the first key whose value (when present and not None) is not of its shape
    (number, whole, numbers, pair, text, object, texts): a key function of `Journal` calls it on a record
    read back from a log, which a person may have edited, before the run relies on it."""
    for key, shape in shapes.items():
        v = record.get(key)
        what, test = _SHAPES[shape]
        if v is not None and not test(v):
            raise ValueError(f"{key} is {v!r}, not {what}")


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
        self.lines: list[int] = []
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
        records, numbers, keep = [], [], 0          # keep: bytes of whole, parsed lines
        for n, line in enumerate(lines):
            last = n == len(lines) - 1
            if last and not line:
                break
            try:
                if line.strip():
                    records.append(json.loads(line))
                    numbers.append(n + 1)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if last and not complete:
                    break             # the line a kill cut off: dropped below, then redone
                raise ScaleprofError(f"--log {self.path}: line {n + 1} is not JSON; not a {self.tool} log") \
                    from None
            if records and not isinstance(records[-1], dict):
                raise ScaleprofError(f"--log {self.path}: line {n + 1} is a JSON {type(records[-1]).__name__}, not "
                                     f"an object; not a {self.tool} log")
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
        if not isinstance(old, dict):
            raise ScaleprofError(f"--log {self.path}: line {numbers[0]}: the header's config is not an object; "
                                 f"not a {self.tool} log")
        diff = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
        if diff:
            k = diff[0]
            raise ScaleprofError(f"--resume: {self.path} is a different {self.run} ({k}: {old.get(k)!r} in the "
                                 f"log, {self.config.get(k)!r} now)")
        self.records = records[1:]
        self.lines = numbers[1:]       # each record's line in the file, for messages

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
        for r, line in zip(log.records, log.lines, strict=True) if log is not None else ():
            try:
                key_of = keys.get(r.get("type"))
                key = key_of(r) if key_of is not None else None
                hash(key)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:   # a hand-edited record
                raise ScaleprofError(f"--log {log.path}: line {line}: a {r.get('type')!r} record of the wrong "
                                     f"shape ({type(exc).__name__}: {exc}); not a {log.tool} log") from None
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
