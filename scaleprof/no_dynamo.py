"""Counting without importing torch._dynamo (about 1.3 s in a fresh process).

torch wraps many of its Python kernels (the refs and decompositions that meta tensors run: add, batch norm
…) in ``torch._disable_dynamo``. That wrapper imports torch._dynamo on its first call only to build the
"dynamo disabled" version of the function, and caches it on the function as ``__dynamo_disable``. Outside
torch.compile the disabled version behaves exactly as the function itself, so while counting, and only
while dynamo is not loaded, ``eager()`` caches the function itself there, and takes the cache back on exit:
a later torch.compile in the same process builds the real one as it would have. The same scope keeps sympy
out too (no_sympy.py): those kernels' symbolic-shape helpers are answered for plain values.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator

import torch

from . import no_sympy

_ATTR = "__dynamo_disable"
_MODULES = ("torch._refs", "torch._refs.nn.functional", "torch._refs.special", "torch._refs.linalg",
            "torch._refs.fft", "torch._prims", "torch._decomp.decompositions", "torch._meta_registrations")


def _wrapper_code():
    return torch._disable_dynamo(lambda: None).__code__


def _reachable(fn) -> Iterator:
    """``fn`` and the functions it wraps: through functools.wraps' ``__wrapped__`` and the closures of
    decorators (a ref's wrapper keeps the guarded function in a closure cell, not always in __wrapped__)."""
    todo, seen = [(fn, 0)], set()
    while todo:
        f, depth = todo.pop()
        if id(f) in seen or depth > 6:
            continue
        seen.add(id(f))
        yield f
        nxt = [getattr(f, "__wrapped__", None)]
        nxt += [c.cell_contents for c in (getattr(f, "__closure__", None) or ()) if _cell_full(c)]
        todo.extend((g, depth + 1) for g in nxt if callable(g) and hasattr(g, "__code__"))


def _cell_full(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:  # an empty cell
        return False
    return True


def _guarded_by(f, code):
    """The function a dynamo-disabling wrapper ``f`` guards (its closure's ``fn``), else None."""
    if getattr(f, "__code__", None) is not code:
        return None
    return dict(zip(code.co_freevars, (c.cell_contents for c in f.__closure__), strict=True))["fn"]


@functools.cache
def guarded() -> tuple:
    """Every function behind a dynamo-disabling wrapper in torch's decomposition tables and ref modules."""
    import importlib

    from torch._decomp import global_decomposition_table

    code = _wrapper_code()
    found: dict[int, object] = {}
    candidates = [f for table in global_decomposition_table.values() for f in table.values()]
    for name in _MODULES:
        with contextlib.suppress(ImportError):
            candidates.extend(vars(importlib.import_module(name)).values())
    for c in candidates:
        if callable(c) and hasattr(c, "__code__"):
            for f in _reachable(c):
                fn = _guarded_by(f, code)
                if fn is not None:
                    found.setdefault(id(fn), fn)
    return tuple(found.values())


@contextlib.contextmanager
def eager():
    """Run torch's dynamo-disabled Python kernels as they are, without importing torch._dynamo or sympy."""
    with no_sympy.plain(), _no_dynamo():
        yield


@contextlib.contextmanager
def _no_dynamo():
    if "torch._dynamo" in sys.modules:  # already paid for: the wrappers work as torch means them to
        yield
        return
    seeded = [fn for fn in guarded() if _ATTR not in vars(fn)]
    for fn in seeded:
        setattr(fn, _ATTR, fn)
    try:
        yield
    finally:
        for fn in seeded:
            if vars(fn).get(_ATTR) is fn:
                delattr(fn, _ATTR)
