"""``hf:`` model specs: a HuggingFace transformers model built from its config, no weights, no network.

``hf:MODEL_TYPE`` builds the model type's default config (``AutoConfig.for_model``), ``hf:path/config.json``
(or a folder holding config.json) a given one; ``AutoModel*.from_config`` on the caller's device (meta: no
weights allocated). Keyword arguments override config fields; ``task`` picks the Auto class with a head.
transformers is optional (``pip install 'scaleprof[hf]'``): it is imported only when an hf: spec is loaded.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from .errors import ScaleprofError, one_line
from .shapes import InputSpec

PREFIX = "hf:"
INSTALL = "hf: model specs need transformers: pip install 'scaleprof[hf]' (transformers==5.23.0)"
TEXT_TOKENS = 128   # the default sequence length of a text model's token ids (capped by its positions)

# task -> the Auto classes that carry its head, tried in order (speech seq2seq: Whisper and the like)
TASKS = {
    "base": ("AutoModel",),
    "causal-lm": ("AutoModelForCausalLM",),
    "seq2seq-lm": ("AutoModelForSeq2SeqLM", "AutoModelForSpeechSeq2Seq"),
    "masked-lm": ("AutoModelForMaskedLM",),
    "classification": ("AutoModelForSequenceClassification", "AutoModelForImageClassification",
                       "AutoModelForAudioClassification"),
}


def is_hf_spec(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def _transformers():
    try:
        import transformers
    except Exception as exc:  # missing, or broken against this torch
        raise ScaleprofError(f"{INSTALL} ({type(exc).__name__}: {one_line(exc)})") from None
    transformers.logging.set_verbosity_error()  # "from_config on meta" chatter is not the user's business
    return transformers


def _known_types(tf) -> list[str]:
    return list(tf.models.auto.configuration_auto.CONFIG_MAPPING_NAMES)


def _unknown_type(tf, name: str) -> ScaleprofError:
    known = _known_types(tf)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"closest: {', '.join(close)}; " if close else ""
    return ScaleprofError(f"hf: unknown model type {name!r} ({hint}{len(known)} known, e.g. "
                          f"{', '.join(k for k in ('gpt2', 'bert', 'llama', 't5') if k in known)}); "
                          "or give a config.json path")


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.endswith(".json") or text.startswith(".") or Path(text).exists()


def _read_config_file(tf, text: str):
    path = Path(text)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ScaleprofError(f"hf:{text}: no such config file {str(path)!r}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScaleprofError(f"hf:{text}: {str(path)!r} is not a JSON config ({one_line(exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise ScaleprofError(f"hf:{text}: {str(path)!r} has no \"model_type\": not a transformers config")
    model_type = data.pop("model_type")
    if model_type not in _known_types(tf):
        raise _unknown_type(tf, model_type)
    return tf.CONFIG_MAPPING[model_type].from_dict(data)


def load_config(text: str, overrides: dict | None = None):
    """The config an hf: spec (without its prefix) names, with ``overrides`` applied; an override naming no
    field of the config is an error (a misspelt field would silently change nothing)."""
    tf = _transformers()
    if not text:
        raise ScaleprofError("hf: spec needs a model type or a config path, e.g. hf:gpt2 or hf:path/config.json")
    if _looks_like_path(text):
        config = _read_config_file(tf, text)
    elif text in _known_types(tf):
        config = tf.AutoConfig.for_model(text)
    else:
        raise _unknown_type(tf, text)
    for key, value in (overrides or {}).items():
        if key.startswith("_") or not hasattr(config, key) or callable(getattr(config, key)):
            raise ScaleprofError(f"hf:{text}: --arg {key}={value!r} names no field of {type(config).__name__}")
        setattr(config, key, value)
    return config


def _auto_class(tf, config, task: str):
    names = TASKS.get(task)
    if names is None:
        raise ScaleprofError(f"hf: unknown task {task!r}; known: {', '.join(TASKS)}")
    last = None
    for name in names:
        cls = getattr(tf, name)
        if type(config) in cls._model_mapping:
            return cls
        last = name
    raise ScaleprofError(f"hf: {config.model_type} has no {task} head ({last} does not map it)")


def default_inputs(config) -> tuple[InputSpec, ...]:
    """What the model's forward is fed by default: token ids for a text model (``1x128``, capped by its
    positions), the config's own image or audio size for a vision or audio one; an encoder-decoder model also
    gets decoder token ids."""
    inputs: list[InputSpec] = []
    if getattr(config, "num_mel_bins", None) and getattr(config, "max_source_positions", None):
        # Whisper-style: the encoder's two stride-2 convs halve the frames to max_source_positions
        inputs.append(InputSpec((1, int(config.num_mel_bins), 2 * int(config.max_source_positions)),
                                name="input_features"))
    elif getattr(config, "image_size", None) and getattr(config, "num_channels", None):
        size = config.image_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        inputs.append(InputSpec((1, int(config.num_channels), int(h), int(w)), name="pixel_values"))
    else:
        inputs.append(InputSpec((1, _tokens(config)), _int64(), name="input_ids"))
    if getattr(config, "is_encoder_decoder", False):
        inputs.append(InputSpec((1, _tokens(config)), _int64(), name="decoder_input_ids"))
    return tuple(inputs)


def _int64():
    import torch

    return torch.int64


def _tokens(config) -> int:
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return min(TEXT_TOKENS, int(limit)) if limit else TEXT_TOKENS


def build(text: str, *, task: str = "base", attn_implementation: str | None = None,
          experts_implementation: str | None = None, **overrides):
    """The model ``hf:TEXT`` names (TEXT without the prefix), built on the current device (the caller
    enters ``torch.device("meta")`` for a count without weights), its default input stamped on it as
    ``default_input`` (named InputSpecs, fed as keyword arguments). ``attn_implementation`` (eager, sdpa)
    and ``experts_implementation`` (grouped_mm, batched_mm, eager) choose transformers' kernels; None keeps
    its defaults."""
    tf = _transformers()
    config = load_config(text, overrides)
    cls = _auto_class(tf, config, task)
    chosen = {k: v for k, v in (("attn_implementation", attn_implementation),
                                ("experts_implementation", experts_implementation)) if v is not None}
    try:
        model = cls.from_config(config, **chosen)
    except Exception as exc:
        raise ScaleprofError(f"hf:{text}: building {cls.__name__} from the config failed: {one_line(exc)}") from exc
    model.eval()
    model.default_input = default_inputs(config)
    return model
