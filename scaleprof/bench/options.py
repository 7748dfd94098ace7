"""bench's and compare's options as typed objects, each default written once, here.

`bench(spec, inputs, options=None, **overrides)` and the compare functions take an options object and/or its
fields as keywords (``scaleprof.bench("resnet18", max_time=1)``); an override of None keeps the default, which
is how the CLI passes a flag the user did not give.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ScaleprofError

DEFAULT_MAX_TIME = 10.0
COMPARE_MAX_TIME = 20.0
ALPHA = 0.01
MIN_EFFECT = 0.01  # see bench.compare: identical copies measure up to ~0.5% apart


def _with(cls, options, overrides: dict):
    base = options if options is not None else cls()
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class BenchOptions:
    """What `bench()` measures and how (see its docstring for each field's meaning)."""

    runtimes: Any = ("eager",)          # names, comma-separated or a sequence
    device: Any = "cpu"                 # comma-separated for several
    dtype: Any = "float32"
    batch_sizes: Any = None             # None: the inputs' own
    threads: int | None = None
    train: bool = False
    by: str | None = None               # kind | module
    max_time: float = DEFAULT_MAX_TIME
    target_ci: float = 0.01
    samples: bool = False
    knobs: dict | None = None
    memory: bool = True
    roofline: bool = False
    mfu: bool = True          # each row's model FLOPs utilisation (counts the model, measures the peak once)
    optimizer: str = "sgd"
    level: int | None = None
    progress: bool = False
    min_samples: int = 10
    log: Any = None
    resume: bool = False
    total_time: float | None = None     # seconds for the whole bench: rows that no longer fit are skipped
    compile_memory: bool = False        # CPU memory of torch.compile rows (the memory child compiles again)

    @classmethod
    def of(cls, options: BenchOptions | None = None, **overrides) -> BenchOptions:
        """`options` (or the defaults) with `overrides` (fields; None keeps the value), validated."""
        return _with(cls, options, overrides).validated()

    def validated(self) -> BenchOptions:
        if self.max_time <= 0:
            raise ScaleprofError(f"--max-time must be positive, got {self.max_time}")
        if not 0 < self.target_ci < 1:
            raise ScaleprofError(f"target CI must be a fraction in (0, 1), got {self.target_ci}")
        if self.by not in (None, "kind", "module"):
            raise ScaleprofError(f"--by must be kind or module, got {self.by!r}")
        if self.total_time is not None and self.total_time <= 0:
            raise ScaleprofError(f"--total-time must be positive, got {self.total_time}")
        if self.resume and self.log is None:
            raise ScaleprofError("--resume needs --log FILE (the log of the bench to continue)")
        return self

    def timer_fields(self) -> dict:
        """The TimerConfig fields every row is measured with."""
        return {"max_time": self.max_time, "target_ci": self.target_ci, "progress": self.progress,
                "min_samples": self.min_samples}


@dataclass(frozen=True)
class CompareOptions:
    """How two models are compared in interleaved rounds (see bench.compare's docstring)."""

    device: Any = "cpu"
    dtype: Any = "float32"
    runtime: Any = "eager"              # a name, or a Runtime
    max_time: float = COMPARE_MAX_TIME
    target_ci: float = 0.01
    min_rounds: int = 20
    min_effect: float = MIN_EFFECT
    seed: int = 0
    threads: int | None = None
    samples: bool = False
    progress: bool = False

    @classmethod
    def of(cls, options: CompareOptions | None = None, **overrides) -> CompareOptions:
        return _with(cls, options, overrides).validated()

    def validated(self) -> CompareOptions:
        if self.max_time <= 0:
            raise ScaleprofError(f"--max-time must be positive, got {self.max_time}")
        return self
