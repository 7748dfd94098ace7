"""reports/transformers: HuggingFace configs counted from their configs on meta (no weights), prefill and decode.

For each config: prefill MACs per token (1x128 token ids, or the config's own image or audio input), decode
MACs per generated token through the model's own KV cache, the cache's size, the memory estimate (inference
with the cache; a training step with AdamW), torch's FlopCounterMode on the same prefill (on meta), the
2·N·tokens rule (N: the parameters outside embeddings), and where decode sits on the roofline.
"""

from __future__ import annotations

import pandas as pd

from ..bench.mfu import GPU_PEAK_TFLOPS
from ..report.document import Bullets, Document, Para, Table
from ..report.tables import binary_bytes, num

DECODE_STEPS = 4
# (label, spec, task, decode?): each model type's default config (transformers' own defaults: Llama 7B,
# Mistral 7B, Mixtral 8x7B ...); encoder-only and vision models have no decode
MODELS = (
    ("GPT-2", "hf:gpt2", "causal-lm", True),
    ("BERT", "hf:bert", "masked-lm", False),
    ("Llama", "hf:llama", "causal-lm", True),
    ("Mistral", "hf:mistral", "causal-lm", True),
    ("Qwen2", "hf:qwen2", "causal-lm", True),
    ("Gemma", "hf:gemma", "causal-lm", True),
    ("Phi", "hf:phi", "causal-lm", True),
    ("T5", "hf:t5", "seq2seq-lm", True),
    ("Whisper", "hf:whisper", "seq2seq-lm", True),
    ("ViT", "hf:vit", "base", False),
    ("Mixtral", "hf:mixtral", "causal-lm", True),
)
# the roofline's reference: an H100 SXM at bfloat16 (vendor peak) against its 3.35 TB/s of HBM3
REF_GPU, REF_BANDWIDTH_GBPS = "H100", 3350.0


def _ridge() -> float:
    tflops = dict(GPU_PEAK_TFLOPS)[REF_GPU]["bfloat16"]
    return tflops * 1000.0 / REF_BANDWIDTH_GBPS


def _flop_counter_macs(model, target) -> int | str:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..counting.profile import _make_inputs, _named_inputs

    args = _make_inputs(target.feeds, torch.device("meta"), None)
    kwargs = _named_inputs(target.feeds, torch.device("meta"), None)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(*args, **(kwargs or {}))
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return fc.get_total_flops() // 2


def _non_embedding_params(model) -> int:
    from torch import nn

    embedded = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in embedded:
            seen.add(id(p))
            total += p.numel()
    return total


def measure_one(label: str, spec: str, task: str, decode: bool) -> dict:
    from ..counting import profile
    from ..spec import resolve_target

    target = resolve_target(spec, knobs={"task": task})
    tokens = int(target.inputs[-1].shape[-1]) if target.inputs[-1].dtype.is_floating_point is False else None
    prefill = profile(target, quiet=True, memory=True, decode=DECODE_STEPS if decode else 0)
    train = profile(spec, knobs={"task": task}, backward=True, memory=True, optimizer="adamw", quiet=True)
    phases = {k: v.to_dict() for k, v in prefill.phases.items()} or {"prefill": prefill.totals.to_dict()}
    first = phases.get("prefill") or prefill.totals.to_dict()
    return {"label": label, "spec": spec, "task": task, "inputs": prefill.inputs, "tokens": tokens,
            "params": prefill.totals.params, "non_embedding_params": _non_embedding_params(target.model),
            "phases": phases, "prefill_macs": first["macs"], "kv_cache_bytes": prefill.kv_cache_bytes,
            "per_token": prefill.per_token() if decode else {},
            "memory_inference": prefill.memory.to_dict(), "memory_train_adamw": train.memory.to_dict(),
            "flop_counter_macs": _flop_counter_macs(target.model, target), "notices": prefill.notices,
            "uncounted_ops": prefill.uncounted_ops}


def _row(d: dict, ridge: float) -> dict:
    tokens = d["tokens"]
    per = d["per_token"]
    fc = d["flop_counter_macs"]
    row = {"model": d["label"], "input": ", ".join(d["inputs"]), "params": num(d["params"]),
           "prefill MACs": num(d["prefill_macs"])}
    if tokens:
        rule = d["non_embedding_params"] * tokens
        row["prefill MACs/token"] = num(d["prefill_macs"] // tokens)
        row["vs N·tokens"] = f"{d['prefill_macs'] / rule:.2f}x"
    row["FlopCounterMode"] = fc if isinstance(fc, str) else ("equal" if fc == d["prefill_macs"]
                                                            else f"{fc - d['prefill_macs']:+,}")
    if per:
        dec = per["decode"]
        intensity = 2 * dec["macs"] / dec["bytes"] if dec["bytes"] else 0.0
        row["decode MACs/token"] = num(int(dec["macs"]))
        row["KV cache/token"] = binary_bytes(d["kv_cache_bytes"] // (tokens + DECODE_STEPS))
        row["decode FLOP/byte"] = f"{intensity:.2f} ({'memory' if intensity < ridge else 'compute'}-bound)"
    row["inference peak"] = binary_bytes(d["memory_inference"]["peak_bytes"])
    row["training peak (AdamW)"] = binary_bytes(d["memory_train_adamw"]["peak_bytes"])
    return row


def build_transformers(store, costs, opts) -> Document:
    del costs
    done = []
    for i, (label, spec, task, decode) in enumerate(MODELS, 1):
        def run(label=label, spec=spec, task=task, decode=decode):
            try:
                return measure_one(label, spec, task, decode)
            except Exception as exc:
                from ..errors import one_line

                return {"label": label, "spec": spec, "status": "failed", "reason": one_line(exc)}

        done.append(store.cached(f"transformers-{spec[3:]}", run, f"[transformers {i}/{len(MODELS)}] {label}"))
    ridge = _ridge()
    rows = [_row(d, ridge) for d in done if d.get("status") != "failed"]
    failed = [f"{d['label']}: {d['reason']}" for d in done if d.get("status") == "failed"]
    failed += [f"FlopCounterMode on {d['label']}: {d['flop_counter_macs']} (torch's meta kernel for "
               "aten::_grouped_mm takes bfloat16 only; scaleprof counts float32 through a shape rule)"
               for d in done if isinstance(d.get("flop_counter_macs"), str) and "uncounted_ops" in d]
    notes = sorted({n for d in done for n in d.get("notices", [])})
    doc = Document("Transformers from their configs: prefill, decode, KV cache and memory")
    doc.add(Para("Each model type's default transformers config (`hf:MODEL_TYPE`, built on meta: no weights, no "
                 "download), float32, batch 1, 128 token ids (Whisper: its 80x3000 features and 128 decoder "
                 "tokens; ViT: 224x224). Prefill: the prompt's forward. Decode: "
                 f"{DECODE_STEPS} steps of one token through the model's own KV cache (step i attends to "
                 "L + i + 1 keys), per generated token. MACs are multiply-accumulates (docs/counting.md)."),
            Para("FlopCounterMode: torch's counter on the same prefill on meta (its FLOPs halved), the "
                 "difference from scaleprof in MACs. vs N·tokens: scaleprof's prefill MACs over the "
                 "2·N·tokens rule's (N: parameters outside embeddings; one MAC per parameter per token): above 1 "
                 "where attention's L² products count, far below 1 for a mixture of experts, whose N holds "
                 "every expert while a token runs only its top-k."),
            Para(f"Decode FLOP/byte: the counted FLOPs of one decode step over its least memory traffic (weights, "
                 f"the KV cache and activations read once); against an {REF_GPU} SXM's ridge at bfloat16 "
                 f"({ridge:.0f} FLOP/byte: vendor peak over {REF_BANDWIDTH_GBPS / 1000:.2f} TB/s) every decoder "
                 "is memory-bound at batch 1. Memory: the estimate without running (counting/memory.py); "
                 "training: weights, gradients, AdamW's two states and the activations saved for backward, "
                 "measured on meta."),
            Table(pd.DataFrame(rows).fillna("")))
    if notes or failed:
        doc.add(Bullets([f"notice: {n}" for n in notes] + [f"failed: {f}" for f in failed]))
    return doc
