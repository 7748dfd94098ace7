"""scaleprof: FLOPs/latency profiler and model-scaling analyzer for PyTorch.

The Python API is the product; the `scaleprof` CLI is a thin shell over it.
"""

from .errors import RegressionFound, ScaleprofError
from .spec import load_model

__version__ = "0.1.0"


def profile(model, inputs=None, **kwargs):
    """Count MACs, FLOPs, params, activations and bytes (see scaleprof.counting.profile)."""
    from .counting import profile as _profile

    return _profile(model, inputs, **kwargs)


def __getattr__(name):
    # heavier parts load on first use, so `import scaleprof` stays quick
    if name in ("bench", "compare"):
        from . import bench as _bench

        return getattr(_bench, name)
    if name == "scale":
        from .scaling import scale

        return scale
    if name == "check":
        from .report.check import check

        return check
    if name == "zoo":
        from . import zoo

        return zoo
    raise AttributeError(f"module 'scaleprof' has no attribute {name!r}")


__all__ = ["RegressionFound", "ScaleprofError", "load_model", "profile"]
