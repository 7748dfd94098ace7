"""Spec-level entry points the CLI calls: load a model from a spec, pick its inputs, run the API."""

from __future__ import annotations

from .counting import ProfileResult, profile
from .spec import load_model, parse_device, resolve_inputs


def profile_spec(spec, *, inputs=None, dtype=None, device="meta", backward=False, knobs=None) -> ProfileResult:
    """`scaleprof profile SPEC`: build the model (on meta unless a device is named), in eval mode for a
    forward count and train mode with --backward, and count it on its inputs (the zoo's default when none)."""
    knobs = dict(knobs or {})
    dev = parse_device(device)
    model = load_model(spec, device=dev, **knobs)
    if isinstance(spec, str):  # a model we built; a user's module keeps the mode it is in
        model.train(backward)
    specs = resolve_inputs(spec, model, inputs, knobs)
    return profile(model, specs, device=dev, dtype=dtype, backward=backward,
                   name=spec if isinstance(spec, str) else type(spec).__name__)
