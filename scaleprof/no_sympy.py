"""Counting without importing sympy (about 0.5 s in a fresh process: most of what a first count paid).

On meta tensors nearly every op runs one of torch's Python kernels (refs, decompositions, meta
registrations), and those ask torch.fx.experimental.symbolic_shapes whether a size condition holds
(``guard_or_false``, ``sym_and``, ``torch._check``'s ``expect_true`` …). That module imports sympy at its top,
although for plain ints and bools, which is all a count ever holds, each of those helpers returns its
argument or a Python ``and``/``or``/``==`` of them.

``plain()`` puts, while counting and only while symbolic_shapes is not loaded, a small module under its name
whose helpers answer plain values themselves, and pass anything else (a SymInt or SymBool) to torch's own
module, loading it then; any other name is torch's own, loaded on first use. On exit the name is torch's
again (or free, as found). A module imported for the first time meanwhile that keeps a helper gets one that
gives the answer torch's would, so nothing outside the count sees a difference but the time.

One kernel helper imports sympy itself: ``torch._prims_common.elementwise_dtypes`` (the type promotion of
every element-wise ref), only to ask whether an argument is a ``sympy.Basic``. While sympy is not loaded no
object can be one, so during the count that function runs with, for the length of its call, a stand-in
``sympy`` whose ``Basic`` nothing is an instance of (torch's code runs nothing else meanwhile).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import operator
import sys
import threading
import types

import torch

NAME = "torch.fx.experimental.symbolic_shapes"
_PARENT, _, _CHILD = NAME.rpartition(".")
_lock = threading.Lock()


def _torch_own() -> types.ModuleType:
    """torch's symbolic_shapes, imported now if it is not yet (the stand-in leaves its name first)."""
    mod = sys.modules.get(NAME)
    if isinstance(mod, _Plain):
        with _lock:
            if sys.modules.get(NAME) is mod:
                del sys.modules[NAME]
    return importlib.import_module(NAME)


def _passing(name: str):
    """A helper returning a plain bool as it is (what torch's own does for one), else torch's answer."""
    def helper(a, *args, **kwargs):
        if type(a) is bool:
            return a
        return getattr(_torch_own(), name)(a, *args, **kwargs)

    helper.__name__ = name
    return helper


def _joining(name: str, op):
    """sym_and / sym_or: torch's is ``op`` folded over its arguments; for plain bools that is all."""
    def helper(x, *others):
        if type(x) is bool and all(type(y) is bool for y in others):
            return functools.reduce(op, others, x)
        return getattr(_torch_own(), name)(x, *others)

    helper.__name__ = name
    return helper


def _plain_ints(x) -> bool:
    if isinstance(x, (tuple, list)):
        return all(_plain_ints(v) for v in x)
    return type(x) in (int, bool)


def sym_eq(x, y):
    """torch's: element-wise == of (nested) lists joined with and; for plain ints the same."""
    if _plain_ints(x) and _plain_ints(y) and isinstance(x, (tuple, list)) == isinstance(y, (tuple, list)):
        if isinstance(x, (tuple, list)):
            return len(x) == len(y) and all(sym_eq(a, b) for a, b in zip(x, y, strict=True))
        return x == y
    return _torch_own().sym_eq(x, y)


def is_nested_int(s) -> bool:
    return isinstance(s, torch.SymInt) and _torch_own().is_nested_int(s)


def has_guarding_hint(a) -> bool:
    if isinstance(a, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return _torch_own().has_guarding_hint(a)
    return True


def guarding_hint_or_throw(a):
    if type(a) in (bool, int):
        return a
    return _torch_own().guarding_hint_or_throw(a)


def free_unbacked_symbols(x):
    """A dense tensor of plain sizes and strides holds no symbols (torch's collects them from those)."""
    if type(x) in (torch.Tensor, torch.nn.Parameter) and x.layout == torch.strided \
            and all(type(v) is int for v in (*x.shape, *x.stride(), x.storage_offset())):
        from torch.utils._ordered_set import OrderedSet

        return OrderedSet()
    return _torch_own().free_unbacked_symbols(x)


_HELPERS = {
    **{n: _passing(n) for n in ("guard_or_false", "guard_or_true", "statically_known_true", "expect_true",
                                "guard_bool", "guard_size_oblivious")},
    "sym_and": _joining("sym_and", operator.and_), "sym_or": _joining("sym_or", operator.or_),
    "sym_eq": sym_eq, "is_nested_int": is_nested_int, "has_guarding_hint": has_guarding_hint,
    "guarding_hint_or_throw": guarding_hint_or_throw, "free_unbacked_symbols": free_unbacked_symbols,
}


class _Plain(types.ModuleType):
    """The stand-in: the helpers above; any other name is torch's own module's."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_torch_own(), name)


def _stand_in() -> _Plain:
    mod = _Plain(NAME, "plain-value helpers standing in for torch's while scaleprof counts (scaleprof/no_sympy.py)")
    mod.__dict__.update(_HELPERS)
    return mod


class _NoSympy(types.ModuleType):
    class Basic:   # sympy's base class, while sympy is not loaded: no object is an instance of it
        pass


_NO_SYMPY = _NoSympy("sympy", "stands in while sympy is not loaded, for the length of one call (no_sympy.py)")
_DTYPES_HOMES = ("torch._prims_common", "torch._meta_registrations")


def _without_sympy(original):
    @functools.wraps(original)
    def elementwise_dtypes(*args, **kwargs):
        with _lock:
            if "sympy" in sys.modules:
                stood_in = False
            else:
                sys.modules["sympy"] = _NO_SYMPY
                stood_in = True
        if not stood_in:
            return original(*args, **kwargs)
        try:
            return original(*args, **kwargs)
        finally:
            with _lock:
                if sys.modules.get("sympy") is _NO_SYMPY:
                    del sys.modules["sympy"]

    elementwise_dtypes.__scaleprof_original__ = original
    return elementwise_dtypes


@contextlib.contextmanager
def _dtypes_without_sympy():
    homes = [importlib.import_module(h) for h in _DTYPES_HOMES]
    patched = [h for h in homes if not hasattr(h.elementwise_dtypes, "__scaleprof_original__")]
    for h in patched:
        h.elementwise_dtypes = _without_sympy(h.elementwise_dtypes)
    try:
        yield
    finally:
        for h in patched:
            h.elementwise_dtypes = h.elementwise_dtypes.__scaleprof_original__


@contextlib.contextmanager
def plain():
    """While counting: torch's symbolic-shape helpers answered for plain values without importing sympy."""
    importlib.import_module(_PARENT)
    parent = sys.modules[_PARENT]
    with _lock:
        if NAME in sys.modules:   # loaded already (paid for), or a count is under way: nothing to do
            mod = None
        else:
            mod = sys.modules[NAME] = _stand_in()
            setattr(parent, _CHILD, mod)
    if mod is None:
        yield
        return
    try:
        with _dtypes_without_sympy():
            yield
    finally:
        with _lock:
            if sys.modules.get(NAME) is mod:
                del sys.modules[NAME]
            if vars(parent).get(_CHILD) is mod:
                own = sys.modules.get(NAME)
                if own is None:
                    delattr(parent, _CHILD)
                else:
                    setattr(parent, _CHILD, own)
