"""What `make reports` (build_reports) and `make bench` (selfbench) share: finished pieces of work kept as
JSON so that a rerun resumes, and the command line that picks what to build (--out, --only, --force)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import ScaleprofError
from ..files import atomic_write_json, read_json, writable_dir


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Store:
    """FOLDER/data/KEY.json per finished piece of work; a rerun reads it back instead of redoing the work.

    ``force``: each piece is redone once in this run (the first ``get`` misses; what this Store put since
    is read back). ``data``: the subfolder the pieces live in.
    """

    def __init__(self, folder: Path, force: bool = False, data: str = "data"):
        self.dir = Path(folder) / data
        self.force = force
        self._fresh: set[str] = set()

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str):
        p = self.path(key)
        if not p.is_file() or (self.force and key not in self._fresh):
            return None
        try:
            return read_json(p)
        except ScaleprofError:
            return None  # a damaged piece is redone

    def put(self, key: str, obj) -> None:
        atomic_write_json(self.path(key), obj)
        self._fresh.add(key)

    def cached(self, key: str, fn: Callable[[], object], label: str = ""):
        got = self.get(key)
        if got is not None:
            return got
        if label:
            log(label)
        t0 = time.perf_counter()
        obj = fn()
        if isinstance(obj, dict):
            obj.setdefault("seconds", round(time.perf_counter() - t0, 3))
        self.put(key, obj)
        return obj


def add_target_args(p: argparse.ArgumentParser, choices: Iterable[str], *, out_help: str, force_help: str) -> None:
    p.add_argument("--out", default="reports", help=f"{out_help} (default: reports)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(choices)}")
    p.add_argument("--force", action="store_true", help=force_help)


def select_targets(prog: str, opts: argparse.Namespace, choices: Iterable[str], what: str
                   ) -> tuple[list[str], Path] | int:
    """(the names asked for by --only, in order, or all of ``choices``; the writable --out folder), or exit
    code 2 after a one-line error for an unknown name, an --only that names nothing, or an unusable folder."""
    choices = list(choices)
    names = list(dict.fromkeys(n.strip() for n in opts.only.split(",") if n.strip())) if opts.only else choices
    unknown = [n for n in names if n not in choices]
    if unknown or not names:
        said = f"unknown {what} {', '.join(unknown)}" if unknown else f"--only names no {what}"
        print(f"{prog}: error: {said}; choose from {', '.join(choices)}", file=sys.stderr)
        return 2
    try:
        out = writable_dir(opts.out)
    except ScaleprofError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return names, out
