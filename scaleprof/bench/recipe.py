"""A user's module rebuilt in another process without pickling it (the memory child's model, issue 12).

A module that came from a spec travels as its spec and knobs. A module object travels as a *recipe*: JSON that
names each submodule's class (importable as ``module:qualname``, which the child imports), its plain-data
attributes (numbers, strings, tuples, dtypes, importable functions and classes) and where its parameters and
buffers are; the tensors themselves go in a weights-only file (`torch.save` of tensors, read back with
``weights_only=True``). The child makes each module with ``cls.__new__`` and ``nn.Module.__init__`` (never the
user's ``__init__``), fills it from the recipe and loads the tensors: the same classes, running the same
``forward``, on the same weights. Tied parameters stay tied.

What cannot travel this way (a class defined in a function or in ``__main__``, hooks, an attribute that is not
data) raises `NotRebuildable` with the reason, and that row's memory is reported as not measured.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
          "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
# nn.Module's own bookkeeping: rebuilt by nn.Module.__init__, not carried
_INTERNAL = frozenset({"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set",
                       "_is_full_backward_hook", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                       "_forward_pre_hooks_with_kwargs", *_HOOKS})


class NotRebuildable(Exception):
    """This module cannot be described as data; the message says why."""


def _ref(obj, what: str) -> str:
    """``module:name`` that imports back to `obj` itself (its qualified name, or its plain name: torch's
    builtins such as ``torch.tanh`` have a qualified name that does not import)."""
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not mod or not qual or "<locals>" in qual or mod == "__main__":
        raise NotRebuildable(f"{what} {qual or obj!r} is not importable by name (defined in a function or "
                             "in __main__)")
    for name in dict.fromkeys((qual, getattr(obj, "__name__", qual))):
        try:
            if _resolve(f"{mod}:{name}") is obj:
                return f"{mod}:{name}"
        except Exception:
            continue
    raise NotRebuildable(f"{what} {mod}.{qual} is not importable by name")


def _resolve(ref: str):
    mod, _, qual = ref.partition(":")
    obj = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _data(value, where: str):
    """A plain attribute as JSON: tagged where JSON has no such type."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        items = [_data(v, where) for v in value]
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _data(v, where) for k, v in value.items()}}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return {"ref": _ref(value, f"{where} =")}
    raise NotRebuildable(f"{where} is a {type(value).__name__}, not data")


def _undata(value):
    if isinstance(value, list):
        return [_undata(v) for v in value]
    if not isinstance(value, dict):
        return value
    (tag, inner), = value.items()
    if tag == "tuple":
        return tuple(_undata(v) for v in inner)
    if tag == "dict":
        return {k: _undata(v) for k, v in inner.items()}
    if tag == "dtype":
        return getattr(torch, inner)
    if tag == "device":
        return torch.device(inner)
    return _resolve(inner)


def describe(model: nn.Module) -> tuple[dict, dict[str, torch.Tensor]]:
    """The recipe of `model` and its tensors by key (each parameter or buffer once, however often it is tied)."""
    tensors: dict[str, torch.Tensor] = {}
    keys: dict[int, str] = {}

    def key_of(t: torch.Tensor, name: str) -> str:
        if id(t) not in keys:
            keys[id(t)] = name
            tensors[name] = t.detach()
        return keys[id(t)]

    def walk(m: nn.Module, path: str) -> dict:
        where = path or type(m).__name__
        for h in _HOOKS:
            if getattr(m, h, None):
                raise NotRebuildable(f"{where} has {h.strip('_').replace('_', ' ')}")
        params = {}
        for n, p in m._parameters.items():
            if p is not None and type(p) is not nn.Parameter:
                raise NotRebuildable(f"{where}.{n} is a {type(p).__name__}, not a plain parameter")
            params[n] = None if p is None else {"key": key_of(p, f"{path}.{n}".lstrip(".")),
                                                "requires_grad": p.requires_grad}
        buffers = {n: None if b is None else key_of(b, f"{path}.{n}".lstrip(".")) for n, b in m._buffers.items()}
        attrs = {k: _data(v, f"{where}.{k}") for k, v in vars(m).items() if k not in _INTERNAL}
        return {"class": _ref(type(m), "module class"), "attrs": attrs, "parameters": params, "buffers": buffers,
                "non_persistent": sorted(m._non_persistent_buffers_set),
                "modules": {n: None if c is None else walk(c, f"{path}.{n}".lstrip("."))
                            for n, c in m._modules.items()}}

    return walk(model, ""), tensors


def rebuild(recipe: dict, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """The module `describe` described, with `tensors` (as `torch.load(..., weights_only=True)` gives them)."""
    made: dict[str, nn.Parameter] = {}

    def param(d):
        if d is None:
            return None
        if d["key"] not in made:
            made[d["key"]] = nn.Parameter(tensors[d["key"]], requires_grad=d["requires_grad"])
        return made[d["key"]]

    def build(r: dict) -> nn.Module:
        cls = _resolve(r["class"])
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise NotRebuildable(f"{r['class']} is not a module class")
        m = cls.__new__(cls)
        nn.Module.__init__(m)
        for k, v in r["attrs"].items():
            object.__setattr__(m, k, _undata(v))
        for n, d in r["parameters"].items():
            m._parameters[n] = param(d)
        for n, k in r["buffers"].items():
            m._buffers[n] = None if k is None else tensors[k]
        m._non_persistent_buffers_set.update(r["non_persistent"])
        for n, c in r["modules"].items():
            m._modules[n] = None if c is None else build(c)
        return m

    return build(recipe)


def save(model: nn.Module, path: str) -> dict:
    """Write `model`'s tensors to `path` (weights only) and return its recipe; NotRebuildable if it has none."""
    recipe, tensors = describe(model)
    torch.save(tensors, path)
    return recipe


def load(recipe: dict, path: str) -> nn.Module:
    return rebuild(recipe, torch.load(path, weights_only=True, map_location="cpu"))


