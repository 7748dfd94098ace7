"""Generation: a prefill of the input's length, then ``steps`` decode steps through the model's own KV cache.

The model's own forward runs every step (on meta tensors by default), fed one new token and the cache its
previous call returned, so step i attends to L + i + 1 keys and the dispatcher stays the one source of
truth: the cache's concatenation and every read of it are counted as the model's kernels do them. This
needs a forward that takes and returns a cache the transformers way (``past_key_values``); an
encoder-decoder model runs its encoder once, in the prefill, and decodes with ``decoder_input_ids``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ScaleprofError

PREFILL, DECODE = "prefill", "decode"


def _token_feed(args: list, kwargs: dict, encoder_decoder: bool) -> tuple[str | None, torch.Tensor]:
    """The name (None: the first positional argument) and tensor of the token ids the decode steps extend."""
    name = "decoder_input_ids" if encoder_decoder else "input_ids"
    if name in kwargs:
        return name, kwargs[name]
    if not encoder_decoder and args and isinstance(args[0], torch.Tensor) and not args[0].is_floating_point():
        return None, args[0]
    raise ScaleprofError(f"--decode needs the model's token ids: pass --input {name}=BxL:int64")


def cache_tensors(cache) -> list[torch.Tensor]:
    """The K and V tensors a transformers cache holds (a DynamicCache's layers, both halves of an
    EncoderDecoderCache, or the legacy tuples of tuples)."""
    if cache is None:
        return []
    if isinstance(cache, torch.Tensor):
        return [cache]
    if hasattr(cache, "self_attention_cache"):
        return cache_tensors(cache.self_attention_cache) + cache_tensors(cache.cross_attention_cache)
    if hasattr(cache, "layers"):
        out = []
        for layer in cache.layers:
            out += [t for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
                    if isinstance(t, torch.Tensor) and t.numel()]
        return out
    if isinstance(cache, (tuple, list)):
        return [t for item in cache for t in cache_tensors(item)]
    return []


def cache_bytes(cache) -> int:
    return sum(t.numel() * t.element_size() for t in cache_tensors(cache))


def generate(rec, call: Callable, args: list, kwargs: dict | None, steps: int, *, encoder_decoder: bool) -> int:
    """Run the prefill (recorded in the recorder's forward phase) and ``steps`` decode steps (its
    ``decode`` phase); return the KV cache's bytes at the final length."""
    kwargs = dict(kwargs or {})
    name, tokens = _token_feed(args, kwargs, encoder_decoder)
    out = call(args, {**kwargs, "use_cache": True})
    cache = getattr(out, "past_key_values", None)
    if cache is None:
        raise ScaleprofError(f"--decode needs a forward that returns a KV cache (past_key_values); "
                             f"{type(out).__name__} has none")
    step_kwargs = {k: v for k, v in kwargs.items() if k not in ("input_ids", "decoder_input_ids",
                                                                "attention_mask", "decoder_attention_mask")}
    if encoder_decoder:  # the encoder ran once, in the prefill
        step_kwargs["encoder_outputs"] = (out.encoder_last_hidden_state,)
    with rec.paused():
        token = tokens[:, -1:].clone()
    rec.phase = DECODE
    try:
        for _ in range(steps):
            feed = {**step_kwargs, "past_key_values": cache, "use_cache": True}
            if name is None:
                out = call([token, *args[1:]], feed)
            else:
                out = call([] if encoder_decoder else list(args), {**feed, name: token})
            cache = out.past_key_values
    finally:
        rec.phase = "forward"
    return cache_bytes(cache)
