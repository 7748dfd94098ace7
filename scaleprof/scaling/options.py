"""What a search is asked for, as typed options: each holds its defaults once and checks itself.

    GridOptions       the family, the α/β/γ ranges, φ, the resolution rounding, the scale-up sweep
    BudgetOptions     the budget, its tolerance and what decides feasible (bound to the base's cost later:
                      budget.BoundBudget)
    ExecutorOptions   where candidates run (local | process | ray), how many at once, torch threads
    LogOptions        the results log and whether to resume it
    TrainOptions, LatencyOptions, ProxyOptions, PredictedOptions   one per objective that has options
    ObjectiveOptions  the objectives asked for ("cost", "train+latency", ...) and the options above; an
                      objective with options of its own adds one field here (a dataclass, its own defaults)

``ScaleOptions.from_kwargs(**kw)`` routes ``scale()``'s keyword arguments (alpha=, budget=, jobs=, steps=,
...) to the option that owns the field of that name; a field not given keeps its default here. The CLI
passes only the flags the user gave, so no default is written anywhere else. Each ``__post_init__`` raises
ScaleprofError with one line for bad input.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..errors import ScaleprofError
from . import grid as gridmod
from .budget import check_constraint, check_tolerance, parse_budget
from .executors import check_executor, worker_threads


def _whole(value, flag: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ScaleprofError(f"{flag} must be a whole number >= {low}, got {value!r}")
    return value


@dataclass(frozen=True)
class GridOptions:
    family: object = "efficientnet"    # a zoo family or named model, module:callable, or a callable
    alpha: object = None               # None: grid.DEFAULT_RANGES (where the family has the knob)
    beta: object = None
    gamma: object = None
    phi: float = 1.0
    family_kwargs: dict | None = None
    base_resolution: int | None = None
    resolution_multiple: int = 1
    sweep: object = "0:7"              # φ values of the scale-up; None or "": none
    sweep_from: object = "best"        # best | paper | (α, β, γ) or "A,B,G"
    max_candidates: int = 1_000_000
    # the most candidate rows a result holds: a larger grid (cost objective) is streamed, keeping the first
    # rows of the ranking, the Pareto front and the paper's point (scaling/stream.py)
    keep_candidates: int = 20_000

    def __post_init__(self):
        object.__setattr__(self, "phi", gridmod.check_phi(self.phi))
        _whole(self.resolution_multiple, "--resolution-multiple")
        _whole(self.keep_candidates, "keep_candidates")
        gridmod.parse_phis(self.sweep)
        self.sweep_coefficients()

    @property
    def sweep_phis(self) -> tuple[int, ...]:
        return gridmod.parse_phis(self.sweep)

    def sweep_coefficients(self) -> tuple[float, float, float] | None:
        """None for the best candidate, else the (α, β, γ) the scale-up uses."""
        value = self.sweep_from
        if value is None or value == "best":
            return None
        if value == "paper":
            return gridmod.PAPER_POINT
        parts = value.split(",") if isinstance(value, str) else list(value)
        try:
            abc = tuple(float(p) for p in parts)
        except (TypeError, ValueError):
            abc = ()
        if len(abc) != 3 or any(not (math.isfinite(x) and x >= 1) for x in abc):
            raise ScaleprofError(f"--sweep-from must be best, paper or α,β,γ (each >= 1), got {value!r}")
        return abc

    def ranges(self, fam, notes: list[str]) -> dict[str, tuple[float, ...]]:
        """Each coefficient's values; a knob the family lacks is fixed at 1 (with a note)."""
        out = {}
        for coef, knob in gridmod.KNOB_OF.items():
            value = getattr(self, coef)
            if fam.has(knob):
                out[coef] = gridmod.parse_range(gridmod.DEFAULT_RANGES[coef] if value is None else value, coef)
                continue
            if value is not None and gridmod.parse_range(value, coef) != (1.0,):
                raise ScaleprofError(f"--family {fam.label} has no {knob} knob, so it cannot scale "
                                     f"{gridmod.SYMBOL[coef]}: leave --{coef} out (or give 1)")
            out[coef] = (1.0,)
            notes.append(f"{fam.label} has no {knob} knob: {gridmod.SYMBOL[coef]} is fixed at 1")
        gridmod.check_scale(out, max((self.phi, *self.sweep_phis)))
        n_grid = math.prod(len(v) for v in out.values())
        if n_grid > self.max_candidates:
            raise ScaleprofError(f"{n_grid} candidates; at most {self.max_candidates}: use coarser steps")
        return out


@dataclass(frozen=True)
class BudgetOptions:
    budget: object = None              # "2x" | "0.8G" | "<=2x"; None: 2^φ x
    tolerance: float = 0.05            # relative, for the real cost and α·β²·γ² alike
    constraint: str = "cost"           # what decides feasible: cost | formula | both

    def __post_init__(self):
        object.__setattr__(self, "tolerance", check_tolerance(self.tolerance))
        check_constraint(self.constraint)
        parse_budget(self.budget, self.tolerance)      # its syntax now; bound to φ and the base later


@dataclass(frozen=True)
class ExecutorOptions:
    executor: str | None = None        # None: local with jobs=1, process with more
    jobs: int = 1
    address: str | None = None         # a Ray cluster (None: a local instance)
    threads: int | None = None         # torch threads; None: torch's own here, cores / jobs in workers

    def __post_init__(self):
        object.__setattr__(self, "executor", check_executor(self.executor, self.jobs))
        if self.threads is not None:
            _whole(self.threads, "--threads")

    @property
    def worker_threads(self) -> int | None:
        """Torch threads of a task run by the executor (in process: the user's, None = torch's own)."""
        if self.threads is None and self.executor != "local":
            return worker_threads(self.jobs)
        return self.threads

    def notes(self) -> list[str]:
        if self.executor == "local" and self.jobs > 1:
            return [f"--jobs {self.jobs} is ignored by the local executor; use --executor process or ray"]
        return []


@dataclass(frozen=True)
class LogOptions:
    log: object = None                 # a JSON-lines file; every finished piece of work is appended
    resume: bool = False

    def __post_init__(self):
        if self.resume and not self.log:
            raise ScaleprofError("--resume needs --log FILE (the log of the search to continue)")


OPTIMIZERS = ("adam", "sgd")       # the train objective's (training._optimizer builds them)


@dataclass(frozen=True)
class TrainOptions:
    data: str | None = None            # an image folder or an .npz (needed by the train objective)
    steps: int = 20
    seeds: object = (0, 1, 2)          # a sequence or "0,1,2"
    batch_size: int = 16
    lr: float = 1e-3                   # the chosen optimizer's own learning rate
    optimizer: str = "adam"
    image_size: int | None = None      # image folders are resized to this (None: the base's resolution)

    def __post_init__(self):
        seeds = self.seeds
        if isinstance(seeds, str):
            seeds = [s for s in seeds.split(",") if s.strip()]
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        if self.data:
            from .training import check_data

            object.__setattr__(self, "data", check_data(self.data))
        if int(self.steps) < 1 or not self.seeds:
            raise ScaleprofError("--steps must be >= 1 and --seeds non-empty")
        if self.optimizer not in OPTIMIZERS:
            raise ScaleprofError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")


@dataclass(frozen=True)
class LatencyOptions:
    latency_time: float = 5.0          # seconds of interleaved rounds per candidate
    latency_batch: int = 1
    latency_target_ms: float | None = None    # the reward's T; None: the base's latency × the budget's ratio
    reward_w: float = -0.07            # the reward's exponent (MnasNet)

    def __post_init__(self):
        t = self.latency_time
        if isinstance(t, bool) or not (isinstance(t, (int, float)) and t > 0):
            raise ScaleprofError(f"--latency-time must be positive, got {t!r}")


@dataclass(frozen=True)
class ProxyOptions:
    proxy: str = "naswot"              # which zero-cost proxy is the score
    proxy_batch: int = 8

    def __post_init__(self):
        from .proxies import PROXIES

        if self.proxy not in PROXIES:
            raise ScaleprofError(f"--proxy must be one of {', '.join(PROXIES)}, got {self.proxy!r}")


@dataclass(frozen=True)
class PredictedOptions:
    predictor: str | None = None       # a predictor file; None: the one calibrated for this environment
    predict_threads: int | None = None     # the target's threads (None: the file's own, else torch's)
    confirm: int = 3                   # the best candidates timed to confirm the prediction (0: none)
    confirm_time: float = 3.0          # seconds of timing per confirmed candidate
    predictor_force: bool = False      # use a predictor from another environment (with a note)

    def __post_init__(self):
        if self.predict_threads is not None:
            _whole(self.predict_threads, "--threads")
        _whole(self.confirm, "--confirm", 0)
        t = self.confirm_time
        if isinstance(t, bool) or not (isinstance(t, (int, float)) and t > 0):
            raise ScaleprofError(f"--confirm-time must be positive, got {t!r}")


SEED = 0       # the seed a candidate's weights are drawn with (proxy, python scorer, latency)


@dataclass(frozen=True)
class ObjectiveOptions:
    objective: str = "cost"            # names joined by "+" (objectives.REGISTRY, python:module:function)
    train: TrainOptions = field(default_factory=TrainOptions)
    latency: LatencyOptions = field(default_factory=LatencyOptions)
    proxy: ProxyOptions = field(default_factory=ProxyOptions)
    predicted: PredictedOptions = field(default_factory=PredictedOptions)

    def __post_init__(self):
        from .objectives import make_objective, parse_objectives

        for name in parse_objectives(self.objective):     # each checks what it needs now, not per worker
            make_objective(name).check(self)

    @property
    def names(self) -> tuple[str, ...]:
        from .objectives import parse_objectives

        return parse_objectives(self.objective)

    def words(self) -> str:
        """The objective as a reader of a table needs it: a proxy named, and marked experimental."""
        return " + ".join(f"proxy {self.proxy.proxy} (EXPERIMENTAL: a zero-cost proxy at initialisation, not "
                          "trained accuracy)" if n == "proxy" else n for n in self.names)

    def objectives(self) -> list:
        from .objectives import make_objective

        return [make_objective(n) for n in self.names]

    def to_config(self) -> dict:
        """The options as the results log's header has always held them (checked on --resume); the options
        of an objective added later go under their field's name, and only when not the defaults, so a log
        written before it was added still resumes."""
        t, lat, p = self.train, self.latency, self.proxy
        out = {"data": t.data, "steps": int(t.steps), "seeds": list(t.seeds), "batch_size": int(t.batch_size),
               "lr": float(t.lr), "optimizer": t.optimizer, "image_size": t.image_size,
               "latency_time": float(lat.latency_time), "latency_batch": int(lat.latency_batch),
               "proxy": p.proxy, "proxy_batch": int(p.proxy_batch), "seed": SEED}
        for f in fields(self):
            sub = getattr(self, f.name)
            if f.name not in _FLAT and f.name != "objective" and sub != f.default_factory():
                out[f.name] = asdict(sub)
        return out

    @classmethod
    def from_config(cls, config: dict | None, objective: str = "cost") -> ObjectiveOptions:
        """The inverse of to_config (a worker task's plain-dict options; missing keys keep the defaults)."""
        config = config or {}
        parts = {}
        for f in fields(cls):
            if f.name in _FLAT:
                parts[f.name] = _pick(_FLAT[f.name], config)
            elif f.name != "objective" and f.name in config:
                parts[f.name] = f.default_factory().__class__(**config[f.name])
        return cls(objective, **parts)


# the options written flat into the log's header (as they always were); each field name is unique among them
_FLAT = {"train": TrainOptions, "latency": LatencyOptions, "proxy": ProxyOptions}


def _pick(cls, kw: dict):
    return cls(**{f.name: kw[f.name] for f in fields(cls) if f.name in kw})


@dataclass(frozen=True)
class ScaleOptions:
    grid: GridOptions = field(default_factory=GridOptions)
    budget: BudgetOptions = field(default_factory=BudgetOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    log: LogOptions = field(default_factory=LogOptions)
    objectives: ObjectiveOptions = field(default_factory=ObjectiveOptions)

    @classmethod
    def from_kwargs(cls, **kw) -> ScaleOptions:
        """``scale()``'s keyword arguments, each to the option with a field of its name."""
        subs = {f.name: f.default_factory().__class__ for f in fields(ObjectiveOptions) if f.name != "objective"}
        owners = [GridOptions, BudgetOptions, ExecutorOptions, LogOptions, *subs.values()]
        known = {f.name for o in owners for f in fields(o)} | {"objective"}
        unknown = sorted(set(kw) - known)
        if unknown:
            raise TypeError(f"scale() got an unexpected keyword argument {unknown[0]!r}")
        parts = {name: _pick(sub, kw) for name, sub in subs.items()}
        objective = {"objective": kw["objective"]} if "objective" in kw else {}
        return cls(grid=_pick(GridOptions, kw), budget=_pick(BudgetOptions, kw),
                   executor=_pick(ExecutorOptions, kw), log=_pick(LogOptions, kw),
                   objectives=ObjectiveOptions(**objective, **parts))
