"""Leave the user's model as found: what a forward does to its modules' attributes is undone afterwards.

functional_call swaps parameters and buffers in and out, but a forward may also assign plain attributes
(torchvision's AnchorGenerator caches ``cell_anchors``, a list of tensors, moved to the input's device), and on
the meta attempt those would stay meta: the CPU retry, and the user's own later calls, then fail with
"Cannot copy out of meta tensor". ``preserved(model)`` records every module's attributes, and the contents of
its containers, and puts them back on exit, whatever happened.
"""

from __future__ import annotations

import contextlib

from torch import nn

_CONTAINERS = (list, dict)


def _contents(v):
    if isinstance(v, list):
        return list(v)
    if isinstance(v, dict):
        return dict(v)
    return None


def _snapshot(mod: nn.Module) -> tuple[dict, dict]:
    attrs = dict(mod.__dict__)
    # the contents of mutable containers (lists of tensors, _parameters, _buffers, _modules): a forward may
    # change them in place (self.cell_anchors[i] = ..., self.register_buffer(...))
    inner = {k: _contents(v) for k, v in attrs.items() if isinstance(v, _CONTAINERS)}
    return attrs, inner


def _restore(mod: nn.Module, attrs: dict, inner: dict) -> None:
    d = mod.__dict__
    for k in [k for k in d if k not in attrs]:
        del d[k]
    for k, v in attrs.items():
        if d.get(k, _MISSING) is not v:
            d[k] = v
        saved = inner.get(k)
        if saved is not None:
            if isinstance(v, list):
                if len(v) != len(saved) or any(a is not b for a, b in zip(v, saved, strict=True)):
                    v[:] = saved
            elif v.keys() != saved.keys() or any(v[x] is not saved[x] for x in saved):
                v.clear()
                v.update(saved)


_MISSING = object()


@contextlib.contextmanager
def preserved(model: nn.Module):
    """Every module of ``model`` has the attributes it had on entry when this exits."""
    mods = list(model.modules())
    saved = [(m, *_snapshot(m)) for m in mods]
    try:
        yield model
    finally:
        for m, attrs, inner in saved:
            _restore(m, attrs, inner)
