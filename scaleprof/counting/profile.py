"""`profile()`: run a model once under the recorder, on meta tensors by default, and collect the result.

The user's model is never touched: the forward runs through torch.func.functional_call with stand-in
parameters and buffers (meta tensors, or on a real device copies of the model's own, so batch-norm statistics
and weights a forward edits in place stay as they were), and every hook and mode is removed on return.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from typing import Any

import torch
from torch import nn

from ..errors import ScaleprofError
from ..shapes import InputSpec, as_input_list, dtype_name
from ..spec import Target, resolve_target
from .host_memory import guard as memory_guard
from .memory import OPTIMIZER_BUFFERS, LiveBytes, SavedTensors, estimate, model_storages
from .recorder import FORWARD, Observer, Recorder, _storage_key
from .result import Layer, ProfileResult, Totals
from .snapshot import preserved

_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)

# Said with every count whose mixture-of-experts routing was not data-driven (grouped_mm on meta tensors)
ROUTING_NOTICE = ("mixture of experts: routing on meta tensors is not data-driven; counted the configured "
                  "top-k experts per token with tokens spread evenly over the experts")


def _materialize(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None, *, param: bool) -> torch.Tensor:
    """A stand-in for a parameter or buffer on ``device``."""
    target_dtype = dtype if dtype is not None and t.is_floating_point() else t.dtype
    if device.type == "meta":
        return torch.empty_like(t, device="meta", dtype=target_dtype)
    if t.device.type != "meta":
        moved = t.detach().to(device=device, dtype=target_dtype)
        # a stand-in never shares memory with the model: buffers change in place (batch-norm running stats),
        # and a forward may edit even its parameters in place; a move or a cast made a copy already
        shares = moved.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
        return moved.clone() if shares or not param else moved
    # the model lives on meta (built without weights): invent values that keep the forward sane
    out = torch.empty(t.shape, device=device, dtype=target_dtype)
    if out.is_floating_point():
        out.normal_(0, 0.02) if param else out.fill_(1.0)
    else:
        out.zero_()
    return out


def _stand_ins(model: nn.Module, device: torch.device, dtype: torch.dtype | None, backward: bool):
    """Parameters and buffers to run with; None when the model's own will do: a model already on meta
    holds no values to protect, so it runs as it is (functional_call costs ~15% of a meta forward)."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    if device.type == "meta" and all(t.device.type == "meta" and (dtype is None or not t.is_floating_point()
                                                                  or t.dtype == dtype) for t in tensors):
        return None, None
    params = {n: _materialize(p, device, dtype, param=True) for n, p in model.named_parameters()}
    if backward:
        for n, p in model.named_parameters():
            if p.requires_grad and params[n].is_floating_point():
                params[n].requires_grad_(True)
    buffers = {n: _materialize(b, device, dtype, param=False) for n, b in model.named_buffers()}
    return params, buffers


def _make_inputs(feeds: tuple, device: torch.device, dtype: torch.dtype | None) -> list:
    """The forward's arguments on ``device``: InputSpecs made there, the caller's tensors cast and moved.
    Named InputSpecs are left out: ``_named_inputs`` makes them, as keyword arguments."""
    made = []
    for x in feeds:
        if isinstance(x, InputSpec):
            if x.name is None:
                made.append(x.make(device))
            continue
        t = x.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        if t.is_nested:   # kept as given: a jagged tensor's offsets are data the count needs
            made.append(t)
            continue
        if t.device != device:
            t = torch.empty_like(t, device="meta") if device.type == "meta" else t.to(device)
        made.append(t)
    return made


def _named_inputs(feeds: tuple, device: torch.device, kwargs: dict | None) -> dict | None:
    """The caller's keyword arguments plus the named inputs (``input_ids=1x128:int64``) made on ``device``."""
    named = {x.name: x.make(device) for x in feeds if isinstance(x, InputSpec) and x.name is not None}
    return {**(kwargs or {}), **named} if named else kwargs


def _batch_storages(args, kwargs) -> dict[int, int]:
    """The inputs' storages and their bytes (the batch a training step holds throughout)."""
    from torch.utils._pytree import tree_flatten

    out = {}
    for t in tree_flatten((list(args), dict(kwargs or {})))[0]:
        if isinstance(t, torch.Tensor):
            key = _storage_key(t)
            if key is not None:
                out.setdefault(key, t.untyped_storage().nbytes())
    return out


def _outputs_for_backward(out) -> list[torch.Tensor]:
    from torch.utils._pytree import tree_flatten

    return [t for t in tree_flatten(out)[0]
            if isinstance(t, torch.Tensor) and t.requires_grad and t.is_floating_point()]


def _run(rec: Recorder, model, params, buffers, args, kwargs, backward: bool, decode: int = 0,
         saved=None, live=None) -> int | None:
    """One forward (and its backward), or with ``decode`` a prefill and that many decode steps: then the KV
    cache's bytes at the final length are returned. ``saved`` (memory.SavedTensors) sees what the forward
    saves for the backward, ``live`` (memory.LiveBytes) the storages both make."""
    def call(a, kw):
        if params is None:
            return model(*a, **kw)
        return torch.func.functional_call(model, (params, buffers), tuple(a), kw, strict=False, tie_weights=True)

    grad = torch.enable_grad() if backward else torch.no_grad()
    with grad, rec.attached():
        if decode:
            from .decode import generate

            enc_dec = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
            return generate(rec, call, args, kwargs, decode, encoder_decoder=enc_dec)
        with live if live is not None else contextlib.nullcontext():
            with saved.recording() if saved is not None else contextlib.nullcontext():
                out = call(args, kwargs or {})
            if backward:
                outs = _outputs_for_backward(out)
                wrt = [p for p in (params.values() if params is not None else model.parameters())
                       if p.requires_grad]
                if outs and wrt:
                    with rec.paused():
                        seeds = [torch.ones_like(o) for o in outs]
                    if live is not None:
                        live.backward_starts(outs)
                    del out
                    with rec.backward():
                        grads = torch.autograd.grad(outs, wrt, grad_outputs=seeds, allow_unused=True)
                    del grads
    return None


def _failure_message(rec: Recorder | None, exc: Exception, labels: list[str]) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if rec is not None and rec.failure is not None:
        f = rec.failure
        return (f"the model rejects input {', '.join(labels)}: layer {f['module']} ({f['module_type']}) "
                f"failed in {f['op']} with shapes {f['shapes']}: {first}")
    return f"the model rejects input {', '.join(labels)}: {type(exc).__name__}: {first}"


def profile(model: nn.Module | str | Target, inputs: Any = None, *, kwargs: dict | None = None,
            knobs: dict | None = None, device=None, dtype=None, backward: bool = False, name: str | None = None,
            quiet: bool = False, decode: int = 0, memory: bool = False, optimizer: str = "sgd",
            observer: Observer | None = None) -> ProfileResult:
    """Count what ``model`` costs on ``inputs`` (shapes like ``"1x3x224x224"``/``(1, 3, 224, 224)``,
    InputSpecs or tensors; default: the model's own input).

    ``model``: a module, a spec (a zoo name with ``knobs``, ``file.py:callable`` with its keyword arguments in
    ``knobs`` ...; see spec.resolve_target) or a resolved Target. Counts on meta tensors by default (a spec
    is built there): no weights are allocated and no arithmetic is done. A forward that needs real data (it
    reads values, or makes CPU tensors of its own) is rerun on CPU tensors, with a notice, unless the
    stand-ins that needs (parameters, buffers, inputs, with a margin) exceed the memory available: then a
    one-line ScaleprofError names both, before anything is allocated. A module is counted
    in the mode it is in (train/eval); a model built from a spec in eval mode, or train mode with
    ``backward=True``, which adds the backward pass (gradients of the parameters, as in a training step).
    ``decode=T``: generation, a prefill of the input's length then T decode steps through the model's own
    KV cache (counting/decode.py); ``phases`` holds ``prefill`` and ``decode``, ``kv_cache_bytes`` the cache.
    ``memory=True``: the memory estimate (counting/memory.py) as ``result.memory``, with the ``optimizer``'s
    state (sgd, adam, adamw) when ``backward``.
    ``observer``: a recorder.Observer seeing each forward op call and module call (the latency predictor's
    harvest uses it).
    """
    if kwargs and not isinstance(model, Target) and not as_input_list(inputs):
        inputs = ()   # keyword inputs only: no default positional input
    target = resolve_target(model, inputs, knobs=knobs, device=device, dtype=dtype, train=backward)
    return _count(target, kwargs=kwargs, backward=backward, name=name, quiet=quiet, decode=decode, memory=memory,
                  optimizer=optimizer, observer=observer)


def _count(target: Target, *, kwargs: dict | None = None, backward: bool = False, name: str | None = None,
           quiet: bool = False, decode: int = 0, memory: bool = False, optimizer: str = "sgd",
           observer: Observer | None = None) -> ProfileResult:
    """``profile`` of a resolved Target: its device, dtype and inputs are taken as they are."""
    model, dev, dt = target.model, target.device, target.dtype
    notices: list[str] = []
    labels = [str(s) for s in target.inputs]
    rec: Recorder | None = None
    if decode < 0 or (decode and backward):
        raise ScaleprofError("--decode takes a positive number of steps, and counts inference (no --backward)")
    kv_bytes = None
    saved = live = None
    if memory and optimizer not in OPTIMIZER_BUFFERS:
        raise ScaleprofError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZER_BUFFERS)}")

    # a data-parallel wrapper is counted as the module it replicates (functional_call refuses the wrapper),
    # named as the wrapper names it ("module.…")
    runner, prefix = (model.module, "module.") if isinstance(model, _WRAPPERS) else (model, "")

    def attempt(device: torch.device) -> Recorder:
        nonlocal rec, kv_bytes, saved, live
        params, buffers = _stand_ins(runner, device, dt, backward)
        args = _make_inputs(target.feeds, device, dt)
        kw = _named_inputs(target.feeds, device, kwargs)
        named = params if params is not None else dict(runner.named_parameters())
        rec = Recorder(model, {prefix + n: p for n, p in named.items()}, tag_backward=backward, observer=observer)
        if memory and backward:
            own = (*params.values(), *buffers.values()) if params is not None else ()
            weights = model_storages(runner) | {k for k in map(_storage_key, own) if k is not None}
            batch = _batch_storages(args, kw)
            saved = SavedTensors(weights, set(batch))
            live = LiveBytes(weights | set(batch), start=sum(batch.values()))
        with preserved(model):   # attributes a forward assigns (on meta, meta tensors) do not outlive it
            kv_bytes = _run(rec, runner, params, buffers, args, kw, backward, decode, saved, live)
        return rec

    counted_on = dev
    try:
        attempt(dev)
    except ScaleprofError:
        raise
    except Exception as exc:
        if dev.type != "meta":
            raise ScaleprofError(_failure_message(rec, exc, labels)) from exc
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        notice = f"the forward does not run on meta tensors ({type(exc).__name__}: {first[:120]}); " \
                 "counted on cpu with real tensors"
        counted_on = torch.device("cpu")
        rec = None
        memory_guard(model, counted_on, dt, target.feeds,
                     why=f"the forward does not run on meta tensors ({type(exc).__name__}: {first[:80]})")
        try:
            attempt(counted_on)
        except ScaleprofError:
            raise
        except Exception as exc2:
            raise ScaleprofError(_failure_message(rec, exc2, labels)) from exc2
        notices.append(notice)
        if not quiet:
            print(f"scaleprof: notice: {notice}", file=sys.stderr)
    result = _collect(model, rec, name or target.label, labels, dev, dt, counted_on, notices)
    if decode:
        _as_generation(result, target, decode, kv_bytes)
    if memory:
        working = max((r.bytes // r.calls for r in result.operators if r.calls), default=0)
        result.memory = estimate(model, dtype=dt, backward=backward, optimizer=optimizer,
                                 saved=saved.bytes if saved is not None else 0, kv_cache=kv_bytes or 0,
                                 working_set=working, live_peak=live.peak if live is not None else 0,
                                 inputs=live.start if live is not None else 0,
                                 saved_inputs=saved.saved_inputs if saved is not None else 0,
                                 loss_scratch=live.loss_scratch if live is not None else 0)
    return result


def _as_generation(result: ProfileResult, target: Target, steps: int, kv_bytes: int | None) -> None:
    """A generation count: the forward's rows are the prefill's; the prompt's shape and the cache recorded."""
    from .decode import PREFILL

    for row in (*result.layers, *result.operators):
        if row.phase == FORWARD:
            row.phase = PREFILL
    result.phases = {(PREFILL if k == FORWARD else k): v for k, v in result.phases.items()}
    tokens = next((s for s in target.inputs if s.name in ("decoder_input_ids", "input_ids")), target.inputs[0])
    result.kv_cache_bytes = kv_bytes
    result.generation = {"batch": int(tokens.shape[0]), "prompt_tokens": int(tokens.shape[-1]),
                         "decode_steps": steps}


def _collect(model, rec: Recorder, name, labels, dev, dt, counted_on, notices) -> ProfileResult:
    layers = [r for r in rec.rows.values() if r.calls or r.params]
    unused = sum(n for _, n in rec.unclaimed.values())
    if unused:
        names = [n for n, _ in rec.unclaimed.values()]
        layers.append(Layer("(unused parameters)", "", "other", FORWARD, 0, 0, unused, 0, 0, 0, {},
                            {"parameters": names[:20] + (["…"] if len(names) > 20 else [])}))
    operators = list(rec.op_rows.values())
    notices = notices + [f"formula failed for {op} ({err}); the op is listed as uncounted"
                         for op, err in rec.formula_errors.items()]
    if counted_on.type == "meta" and any(r.info.get("routing") == "balanced" for r in operators):
        notices.append(ROUTING_NOTICE)
    phases: dict[str, Totals] = {}
    totals = Totals()
    for layer in layers:
        phases.setdefault(layer.phase, Totals()).add(layer)
        totals.add(layer)
    dtype = dt or next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    # each Parameter once (parameters() skips repeats), as totals.params counts them
    trainable = min(totals.params, sum(p.numel() for p in model.parameters() if p.requires_grad))
    return ProfileResult(model=name, inputs=labels, device=str(dev), dtype=dtype_name(dtype), layers=layers,
                         operators=operators, totals=totals, uncounted_ops=dict(rec.uncounted),
                         free_ops=dict(rec.free_ops), phases=phases, notices=notices,
                         counted_on=str(counted_on), params_trainable=trainable)
