"""A package that is also its own API function: ``scaleprof.bench(...)`` beside ``scaleprof.bench.timer``.

Importing any submodule binds the package to its name on the parent (``scaleprof.bench`` becomes the
package, not the function ``bench``), so the package's module object forwards calls to the function.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable


def make_callable(module_name: str, fn: Callable) -> None:
    """Calls of the package ``module_name`` go to ``fn``."""

    class CallablePackage(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return fn(*args, **kwargs)

    CallablePackage.__doc__ = f"The package {module_name}, callable as {fn.__name__}()."
    sys.modules[module_name].__class__ = CallablePackage
