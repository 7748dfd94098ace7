"""The predictor: a fitted per-op model for one environment and target, and its file.

The file is JSON (never a pickle: it is data, readable and diffable, and loading it runs no code)::

    {"format": "scaleprof-predictor", "version": 1, "created": ISO time,
     "fingerprint": "...", "environment": {bench/env.py's fields},
     "target": {"device", "runtime", "dtype", "threads", "batch"},
     "peaks": {"gflops", "gbps"},                     measured (bench/roofline.py)
     "calibration": {"models", "elapsed_s", "stopped", "samples", "failed"},
     "samples": [{"key", "group", "kind", "macs", "bytes", "features", "ms"}],   the measured op configurations
     "models": [{"name", "measured_ms", "op_sum_ms", "n_ops", "n_modules"}],      whole-model measurements
     "fit": {"groups": {group: GroupFit}, "overhead": {"per_op_ms", "per_module_ms", "per_model_ms"}}}

The default location is the one calibrated for this environment and target:
``$XDG_CACHE_HOME/scaleprof/predictors/<fingerprint>-<device>-<runtime>-<dtype>-t<threads>.json``
(``~/.cache`` when XDG_CACHE_HOME is unset).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..bench.env import differences, environment, torch_threads
from ..errors import ScaleprofError
from ..files import atomic_write_text, read_json
from . import model as M

FORMAT, VERSION = "scaleprof-predictor", 3     # 2: the context feature; 3: channel alignment (harvest.FEATURES)
RUNTIMES = ("eager",)          # onnxruntime and compile: not calibrated yet (refused with a reason)
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Target:
    device: str = "cpu"
    runtime: str = "eager"
    dtype: str = "float32"
    threads: int = 1
    batch: int = 1

    def label(self) -> str:
        return f"{self.device}-{self.runtime}-{self.dtype}-t{self.threads}"

    def to_dict(self) -> dict:
        return asdict(self)


def make_target(device="cpu", runtime="eager", dtype=None, threads=None, batch=1) -> Target:
    """A checked target; an unknown device, runtime or dtype is a one-line error."""
    import torch

    from ..shapes import dtype_name, parse_dtype

    dev = str(device or "cpu").split(":")[0]
    if dev not in DEVICES:
        raise ScaleprofError(f"unknown device {device!r} for prediction: use cpu or cuda")
    if dev == "cuda" and not torch.cuda.is_available():
        raise ScaleprofError("device cuda requested but CUDA is not available on this machine")
    rt = str(runtime or "eager")
    if rt not in RUNTIMES:
        raise ScaleprofError(f"runtime {rt!r}: latency prediction is calibrated for eager only so far "
                             "(onnxruntime and compile fuse ops, which the per-op model does not know yet)")
    if threads is not None and int(threads) < 1:
        raise ScaleprofError(f"--threads must be positive, got {threads}")
    if int(batch) < 1:
        raise ScaleprofError(f"--batch must be positive, got {batch}")
    return Target(device=dev, runtime=rt, dtype=dtype_name(parse_dtype(dtype)),
                  threads=int(threads) if threads is not None else torch.get_num_threads(), batch=int(batch))


def current_environment(target: Target) -> dict:
    """bench/env.py's fingerprint, taken with the target's thread count."""
    with torch_threads(target.threads):
        return environment(dtype=target.dtype, devices=(target.device,))


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "scaleprof" / "predictors"


def default_path(target: Target, env: dict | None = None) -> Path:
    env = env if env is not None else current_environment(target)
    return cache_dir() / f"{env['fingerprint']}-{target.label()}.json"


_LOADED: dict[tuple, Predictor] = {}


@dataclass
class Predictor:
    target: Target
    environment: dict
    gflops: float
    gbps: float
    groups: dict[str, M.GroupFit] = field(default_factory=dict)
    overhead: M.Overhead = field(default_factory=M.Overhead)
    samples: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    calibration: dict = field(default_factory=dict)
    created: str = ""
    path: str | None = None
    calibrated: bool = True

    @property
    def fingerprint(self) -> str:
        return str(self.environment.get("fingerprint", "none"))

    @property
    def digest(self) -> str:
        """What the predictions depend on (target, peaks, fitted groups and overhead), hashed: two predictors
        with one digest predict alike (check --predicted stores it with the predicted ms)."""
        import hashlib

        if self.__dict__.get("_digest"):     # a loaded file's (set by load: a file read is not refitted)
            return self.__dict__["_digest"]
        core = {"target": self.target.to_dict(), "peaks": {"gflops": self.gflops, "gbps": self.gbps},
                "fit": {"groups": {k: g.to_dict() for k, g in self.groups.items()},
                        "overhead": self.overhead.to_dict()}}
        return hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]

    # --- the model ------------------------------------------------------------------------------------

    @classmethod
    def seeded(cls, target: Target, env: dict) -> Predictor:
        """The roofline alone, with seeded peaks and per-op overhead: what predict uses uncalibrated."""
        gflops, gbps, op_ms = M.seed_peaks(target.device, target.threads)
        return cls(target=target, environment=env, gflops=gflops, gbps=gbps,
                   overhead=M.Overhead(per_op_ms=op_ms), calibrated=False)

    def design(self, macs, nbytes) -> np.ndarray:
        return M.roof_columns(np.asarray(macs, dtype=float), np.asarray(nbytes, dtype=float), self.gflops, self.gbps)

    def op_ms(self, groups: list[str], macs, nbytes, feats: np.ndarray) -> np.ndarray:
        """Isolated time of each op (no whole-model overhead), vectorised."""
        X = self.design(macs, nbytes)
        if not len(groups):
            return np.zeros(0)
        return M.predict_ops(self.groups, groups, X, feats, 0.0)

    def events_ms(self, events) -> np.ndarray:
        """Isolated time of each harvested op event (harvest.OpEvent), in ms."""
        from .harvest import FEATURES

        feats = np.array([e.features() for e in events], dtype=float).reshape(len(events), len(FEATURES))
        return self.op_ms([e.group for e in events], [e.macs for e in events], [e.bytes for e in events], feats)

    def novelty(self, events) -> np.ndarray:
        """Per event, 1 - exp(-d) for d the distance (in the group's standard deviations) to the nearest
        sample of its group (its kind's when the group has no fit); 1 where there is none."""
        from .harvest import FEATURES

        out = np.ones(len(events))
        if not self.groups:
            return out
        feats = np.array([e.features() for e in events], dtype=float).reshape(len(events), len(FEATURES))
        keys = np.asarray([e.group for e in events], dtype=object)
        for key in set(keys.tolist()):
            fit = M.fit_for(self.groups, key)
            if fit is not None:
                m = keys == key
                out[m] = 1.0 - np.exp(-fit.nearest(feats[m]))
        return out

    def fit(self) -> None:
        """(Re)fit the groups from ``samples``."""
        ok = [s for s in self.samples if s.get("ms") is not None and s["ms"] > 0]
        if not ok:
            self.groups = {}
            return
        X = self.design([s["macs"] for s in ok], [s["bytes"] for s in ok])
        feats = np.asarray([s["features"] for s in ok], dtype=float)
        t = np.asarray([s["ms"] for s in ok], dtype=float)
        self.groups = M.fit_groups([s["group"] for s in ok], X, feats, t)

    # --- the file -------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "created": self.created, "fingerprint": self.fingerprint,
                "environment": self.environment, "target": self.target.to_dict(),
                "peaks": {"gflops": self.gflops, "gbps": self.gbps}, "calibration": self.calibration,
                "samples": self.samples, "models": self.models,
                "fit": {"groups": {k: g.to_dict() for k, g in self.groups.items()},
                        "overhead": self.overhead.to_dict()}}

    @classmethod
    def from_dict(cls, d: dict, path: str | None = None) -> Predictor:
        where = f"predictor {path}" if path else "predictor"
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ScaleprofError(f"{where} is not a scaleprof predictor file (no format {FORMAT!r})")
        if d.get("version") != VERSION:
            raise ScaleprofError(f"{where} has format version {d.get('version')!r}; this scaleprof reads "
                                 f"version {VERSION}: recalibrate")
        try:
            fit = d["fit"]
            return cls(target=Target(**d["target"]), environment=dict(d["environment"]),
                       gflops=float(d["peaks"]["gflops"]), gbps=float(d["peaks"]["gbps"]),
                       groups={k: M.GroupFit.from_dict(g) for k, g in fit["groups"].items()},
                       overhead=M.Overhead.from_dict(fit["overhead"]), samples=list(d.get("samples", [])),
                       models=list(d.get("models", [])), calibration=dict(d.get("calibration", {})),
                       created=str(d.get("created", "")), path=path)
        except (KeyError, TypeError, ValueError) as exc:
            raise ScaleprofError(f"{where} is corrupt ({type(exc).__name__}: {exc}); recalibrate") from None

    def save(self, path) -> Path:
        """Written atomically, compact (the samples and residual points are most of it; one line each would
        triple the file and its read time)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path) -> Predictor:
        """The predictor in ``path``; read once per process while the file is unchanged (a scaling search
        predicts hundreds of candidates with one predictor)."""
        p = Path(path)
        try:
            st = p.stat()
            key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        if key is not None and key in _LOADED:
            return _LOADED[key]
        pred = cls.from_dict(read_json(path, "predictor"), path=str(path))
        pred._digest = pred.digest
        if key is not None:
            _LOADED.clear()
            _LOADED[key] = pred
        return pred

    # --- where it may be used -------------------------------------------------------------------------

    def check(self, target: Target, env: dict, force: bool = False) -> list[str]:
        """Refuse (ScaleprofError naming the first field) a predictor from another environment or target;
        with ``force``, the differences come back as notices instead."""
        diffs = [f"{k}: {getattr(self.target, k)!r} != {getattr(target, k)!r}"
                 for k in ("device", "runtime", "dtype", "threads") if getattr(self.target, k) != getattr(target, k)]
        diffs += differences(self.environment, env)
        if diffs and not force:
            raise ScaleprofError(f"predictor {self.path or ''} was calibrated elsewhere ({diffs[0]}"
                                 f"{f', and {len(diffs) - 1} more' if len(diffs) > 1 else ''}): recalibrate "
                                 "with `scaleprof calibrate` or pass --force")
        return [f"predictor from another environment used (--force): {d}" for d in diffs]


def resolve(predictor, target: Target, *, force: bool = False) -> tuple[Predictor, list[str]]:
    """The predictor to use and notices: a Predictor as given, a file, or the default for this environment
    and target; with none calibrated, the roofline alone (said so)."""
    env = current_environment(target)
    if isinstance(predictor, Predictor):
        p = predictor
    elif predictor is not None:
        p = Predictor.load(predictor)
    else:
        path = default_path(target, env)
        if not path.exists():
            note = (f"no predictor calibrated for this environment and target ({target.label()}): the roofline "
                    "alone with seeded peaks; run `scaleprof calibrate` for real predictions")
            return Predictor.seeded(target, env), [note]
        p = Predictor.load(path)
    return p, p.check(target, env, force=force)
