"""hf: specs (transformers models from their configs, on meta), named inputs, and what they count by hand."""

from __future__ import annotations

import json

import pytest
import torch

from scaleprof.cli import main
from scaleprof.errors import ScaleprofError
from scaleprof.shapes import InputSpec, parse_input

transformers = pytest.importorskip("transformers")

from scaleprof import load_model  # noqa: E402
from scaleprof.counting import profile  # noqa: E402


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _gpt2_macs(layers: int, d: int, tokens: int) -> int:
    # per layer: QKV 3d², out-proj d², MLP 4d·d twice = 12d² per token; attention QKᵀ and AV: L·L·d each
    return layers * (12 * d * d * tokens + 2 * tokens * tokens * d)


# --- named inputs ----------------------------------------------------------------------------------------

def test_parse_named_input():
    s = parse_input("input_ids=1x128:int64")
    assert s == InputSpec((1, 128), torch.int64, "input_ids")
    assert str(s) == "input_ids=1x128:int64"
    assert parse_input("pixel_values=1x3x8x8") == InputSpec((1, 3, 8, 8), torch.float32, "pixel_values")
    assert str(parse_input("1x3x8x8")) == "1x3x8x8"   # unnamed ones print as before
    with pytest.raises(ScaleprofError, match="NAME=SHAPE"):
        parse_input("1ids=1x8:int64")


# --- hf: specs -------------------------------------------------------------------------------------------

def test_gpt2_small_prefill_macs():
    r = profile("hf:gpt2")   # AutoModel, the default 1x128 token ids
    assert r.inputs == ["input_ids=1x128:int64"]
    assert r.totals.macs == 11_173_625_856 == _gpt2_macs(12, 768, 128)
    assert r.uncounted_ops == {}


def test_overrides_named_input_and_tied_head(capsys):
    knobs = {"n_layer": 2, "n_embd": 64, "n_head": 4, "vocab_size": 100}
    base = profile("hf:gpt2", "input_ids=1x16:int64", knobs=knobs)
    assert base.totals.macs == _gpt2_macs(2, 64, 16)
    lm = profile("hf:gpt2", "input_ids=1x16:int64", knobs={**knobs, "task": "causal-lm"})
    # the LM head is tied to the token embedding: its MACs count, its weight does not count twice
    assert lm.totals.macs - base.totals.macs == 16 * 64 * 100
    assert lm.totals.params == base.totals.params
    code, out, _ = run(capsys, "profile", "hf:gpt2", "--arg", "n_layer=2", "--arg", "n_embd=64", "--arg", "n_head=4",
                       "--input", "input_ids=1x16:int64", "--json")
    assert code == 0 and json.loads(out)["totals"]["macs"] == _gpt2_macs(2, 64, 16)


def test_config_json_path_and_folder(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 32,
                                                    "n_head": 2, "vocab_size": 50}))
    for spec in (f"hf:{folder}", f"hf:{folder / 'config.json'}"):
        r = profile(spec, "input_ids=2x8:int64")
        assert r.totals.macs == 2 * _gpt2_macs(1, 32, 8)
    assert load_model(f"hf:{folder}", device="meta").config.n_embd == 32


def test_t5_encoder_decoder_named_defaults():
    knobs = {"d_model": 64, "d_kv": 16, "num_heads": 4, "d_ff": 128, "num_layers": 1, "num_decoder_layers": 1,
             "vocab_size": 100}
    r = profile("hf:t5", ["input_ids=1x8:int64", "decoder_input_ids=1x4:int64"], knobs=knobs)
    d, inner, ff, H, dk, L, Ld = 64, 64, 128, 4, 16, 8, 4
    encoder = 4 * L * d * inner + H * L * L * 2 * dk + 2 * L * d * ff
    decoder = (4 * Ld * d * inner + H * Ld * Ld * 2 * dk            # self-attention
               + 2 * Ld * d * inner + 2 * L * d * inner + H * Ld * L * 2 * dk  # cross-attention
               + 2 * Ld * d * ff)
    assert r.totals.macs == encoder + decoder
    assert [str(s) for s in load_model("hf:t5", device="meta", **knobs).default_input] == \
        ["input_ids=1x128:int64", "decoder_input_ids=1x128:int64"]


def test_vision_and_audio_defaults_come_from_the_config():
    vit = load_model("hf:vit", device="meta", image_size=32, patch_size=16, num_hidden_layers=1)
    assert [str(s) for s in vit.default_input] == ["pixel_values=1x3x32x32"]
    whisper = load_model("hf:whisper", device="meta", encoder_layers=1, decoder_layers=1)
    assert [str(s) for s in whisper.default_input] == ["input_features=1x80x3000", "decoder_input_ids=1x128:int64"]


@pytest.mark.parametrize("argv, message", [
    (["hf:gpt3"], "unknown model type 'gpt3' (closest: "),
    (["hf:no/such/config.json"], "no such config file"),
    (["hf:gpt2", "--arg", "n_layerz=2"], "names no field of GPT2Config"),
    (["hf:gpt2", "--arg", "task=poetry"], "unknown task 'poetry'"),
])
def test_bad_hf_specs_exit_2_in_one_line(capsys, argv, message):
    code, out, err = run(capsys, "profile", *argv, "--json")
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_non_json_config_exits_2(capsys, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "profile", f"hf:{bad}", "--json")
    assert code == 2 and "is not a JSON config" in err and len(err.strip().splitlines()) == 1


# --- mixture of experts ----------------------------------------------------------------------------------

_MIXTRAL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
            "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": 100}


def _mixtral_macs(layers, L, d, inter, heads, kv_heads, experts, top_k) -> int:
    hd = d // heads
    per_layer = (2 * L * d * d + 2 * L * d * kv_heads * hd    # q, o; k, v (grouped-query: kv_heads)
                 + heads * L * L * 2 * hd                     # QKᵀ and AV
                 + L * d * experts                            # the router
                 + top_k * L * (d * 2 * inter + inter * d))   # only the active experts: gate+up, down
    return layers * per_layer


@pytest.mark.parametrize("impl", ["grouped_mm", "batched_mm", "eager"])
@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_moe_counts_only_the_active_experts_whatever_the_kernel(impl, dtype):
    knobs = {**_MIXTRAL, "experts_implementation": impl, **({"dtype": dtype} if dtype else {})}
    r = profile("hf:mixtral", "input_ids=1x16:int64", knobs=knobs, quiet=True)
    assert r.totals.macs == _mixtral_macs(2, 16, 64, 128, 4, 2, 4, 2)
    assert r.uncounted_ops == {}
    # grouped_mm's offsets hold no values on meta: the balanced assumption is said; eager needs real
    # routing (it reads the expert mask) and is counted on CPU, where the routing is data-driven
    from scaleprof.counting.profile import ROUTING_NOTICE
    assert (ROUTING_NOTICE in r.notices) == (impl == "grouped_mm")


def test_mixtral_8x7b_width_counts_the_top2_experts():
    # the 8x7B config itself (hidden 4096, 8 experts of 14336, top-2), two of its 32 layers, on meta
    r = profile("hf:mixtral", knobs={"num_hidden_layers": 2}, quiet=True)
    assert r.totals.macs == _mixtral_macs(2, 128, 4096, 14336, 32, 8, 8, 2)
    assert r.totals.params == 2 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 8 * 4096 + 8 * 3 * 4096 * 14336
                                   + 2 * 4096) + 32000 * 4096 + 4096


def test_qwen2_moe_shared_expert_and_top_k():
    knobs = {"num_hidden_layers": 1, "hidden_size": 64, "moe_intermediate_size": 32,
             "shared_expert_intermediate_size": 128, "num_experts": 8, "num_experts_per_tok": 2,
             "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 100}
    r = profile("hf:qwen2_moe", "input_ids=1x16:int64", knobs=knobs, quiet=True)
    L, d = 16, 64
    hand = (4 * L * d * d + 4 * L * L * 2 * 16   # attention projections and products
            + L * d * 8                          # router
            + 2 * L * 3 * d * 32                 # top-2 routed experts (gate, up, down)
            + 3 * L * d * 128 + L * d)           # the shared expert and its gate
    assert r.totals.macs == hand


# --- generation: prefill and decode through the model's own KV cache -------------------------------------

def test_gpt2_small_prefill_and_one_decode_step(capsys):
    code, out, _ = run(capsys, "profile", "hf:gpt2", "--decode", "1", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["phases"]["prefill"]["macs"] == 11_173_625_856
    # one new token: the weights' 12·12·768² MACs, and attention over 129 keys (12 layers × 12 heads × 2·64)
    assert d["phases"]["decode"]["macs"] == 84_934_656 + 2_377_728 == 87_312_384
    assert d["totals"]["macs"] == 11_173_625_856 + 87_312_384
    assert d["kv_cache_bytes"] == 2 * 12 * 768 * 129 * 4 == 9_510_912
    assert d["generation"] == {"batch": 1, "prompt_tokens": 128, "decode_steps": 1}
    assert d["per_token"]["decode"]["macs"] == 87_312_384
    # decode reads every weight for one token: memory-bound (under one MAC per byte), the prefill is not
    assert d["per_token"]["decode"]["macs"] / d["per_token"]["decode"]["bytes"] < 0.5
    assert d["phases"]["prefill"]["macs"] / d["phases"]["prefill"]["bytes"] > 10


def test_decode_steps_attend_to_a_growing_cache_gqa():
    knobs = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100}
    r = profile("hf:llama", "input_ids=2x16:int64", knobs=knobs, decode=4)
    B, L, T, d, kvd, inter = 2, 16, 4, 64, 2 * 16, 128
    weights = 2 * (2 * d * d + 2 * d * kvd + 3 * d * inter)   # per token, both layers
    attention = 2 * 4 * 2 * 16 * sum(L + i + 1 for i in range(T))   # L + i + 1 keys at step i
    assert r.phases["decode"].macs == B * (T * weights + attention)
    assert r.phases["prefill"].macs == B * (L * weights + 2 * 4 * L * L * 2 * 16)
    # K and V of both layers, 2 KV heads of 16 (grouped-query), at the final length L + T, float32
    assert r.kv_cache_bytes == B * 2 * 2 * 2 * 16 * (L + T) * 4


def test_t5_decodes_with_its_encoder_run_once():
    knobs = {"d_model": 64, "d_kv": 16, "num_heads": 4, "d_ff": 128, "num_layers": 1, "num_decoder_layers": 1,
             "vocab_size": 100}
    r = profile("hf:t5", ["input_ids=1x8:int64", "decoder_input_ids=1x4:int64"], knobs=knobs, decode=2)
    # per step: self-attention q, k, v, o; cross-attention q, o (its K, V of the encoder are cached);
    # attention over 8 encoder keys and 5, then 6, decoder keys; the FFN
    per_step = 4 * 64 * 64 + 2 * 64 * 64 + 4 * 8 * 32 + 2 * 64 * 128
    assert r.phases["decode"].macs == 2 * per_step + 4 * (5 + 6) * 32
    # self-attention cache at 6 tokens plus the cross-attention cache of 8, one layer, 4 heads of 16
    assert r.kv_cache_bytes == 2 * 4 * 16 * (6 + 8) * 4


def test_decode_needs_a_cache(capsys):
    code, _, err = run(capsys, "profile", "resnet18", "--decode", "2", "--json")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_memory_with_decode_holds_the_kv_cache(capsys):
    code, out, _ = run(capsys, "profile", "hf:gpt2", "--arg", "n_layer=2", "--decode", "1", "--memory", "--json")
    mem = json.loads(out)["memory"]
    assert mem["kv_cache"] == 2 * 2 * 768 * 129 * 4
    assert mem["weights"] == 4 * (50257 * 768 + 1024 * 768 + 2 * (12 * 768 * 768 + 13 * 768) + 2 * 768)
    assert mem["peak_bytes"] == mem["weights"] + mem["kv_cache"] + mem["working_set"]


def test_moe_backward_stays_on_meta_in_float32():
    # grouped_mm's backward passes transposed operands; float32 on meta goes by the shape rule too
    knobs = {**_MIXTRAL, "num_hidden_layers": 1}
    r = profile("hf:mixtral", "input_ids=1x16:int64", knobs=knobs, backward=True, quiet=True)
    assert r.counted_on == "meta" and r.uncounted_ops == {}
    fwd = _mixtral_macs(1, 16, 64, 128, 4, 2, 4, 2)
    assert r.phases["forward"].macs == fwd and r.phases["backward"].macs == 2 * fwd
