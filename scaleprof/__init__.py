"""scaleprof: FLOPs/latency profiler and model-scaling analyzer for PyTorch.

The Python API is the product; the `scaleprof` CLI is a thin shell over it.
"""

from .errors import ScaleprofError
from .spec import Target, load_model, resolve_target

__version__ = "0.1.0"


def profile(model, inputs=None, **kwargs):
    """Count MACs, FLOPs, params, activations and bytes of a module or a model spec
    (``profile("resnet18", ["1x3x224x224"])``; see scaleprof.counting.profile)."""
    from .counting import profile as _profile

    return _profile(model, inputs, **kwargs)


_LAZY = {"bench": ("bench", "bench"), "compare": ("bench", "compare"), "scale": ("scaling", "scale"),
         "check": ("gate", "check"), "zoo": ("zoo", None),
         # scaleprof.predict is the package, callable as predict() (predict/__init__.py)
         "calibrate": ("predict", "calibrate"), "predict": ("predict", None),
         "export": ("bench.export", "export")}


def __getattr__(name):
    # heavier parts load on first use, so `import scaleprof` stays quick
    if name not in _LAZY:
        raise AttributeError(f"module 'scaleprof' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module if attr is None else getattr(module, attr)


__all__ = ["ScaleprofError", "Target", "load_model", "profile", "resolve_target"]
