"""The per-op latency model and its fit: pure numpy/scipy on arrays, no torch.

For one op with MACs m and least traffic b (the counter's figures), in its group g (layer kind and aten op):

    base_g(op) = c0_g + a_g · 2m/P + b_g · b/B + r_g · max(2m/P, b/B)     (P, B: the measured peaks)
    op_ms      = base_g(op) · exp(residual_g(op))

- The base is the roofline with a fixed cost: c0 is the op's framework overhead (it dominates small ops
  at batch 1), the roof terms are seeded by the machine's measured peaks so the coefficients are
  dimensionless efficiencies. It is fitted by non-negative least squares on relative error (each sample
  weighted by 1/t), a closed fit that needs a handful of samples per group, cannot go negative and
  extrapolates linearly in work, as latency does, to sizes the calibration did not reach.
- The residual is what the roofline misses about shapes (a 7×7 map or 3 input channels run below the
  roof), the log-ratio measured/base, in two parts over the group's standardised log shape features
  (harvest.FEATURES): a linear trend (ridge, clipped to ±TREND_CLIP), which carries what the samples
  say about size (the largest convs here ran 8-10% faster than the base, fitted over all sizes, put them)
  out past the last sample; and, on what the trend leaves, the inverse-distance-weighted mean of the k
  nearest samples, fading with the distance to the nearest. At distance 0 that returns the sample's own
  ratio, so a configuration that was measured is predicted as measured: a lookup table (ProxylessNAS,
  FBNet) where there is data, the fitted roofline and its trend where there is none. A group with too
  few samples falls back to its kind, then its kind's family (every conv kind), then the roofline alone.
  The trend was chosen by leave-one-family-out cross-validation on the calibration models (each model
  and its redraws predicted from the other models' samples; docs/prediction.md): 47% of them within
  ±10% without it, 57% with it (mean |error| 22% -> 17%), and no better for a ridge 0.3-3 or a clip
  of 0.4-1.2.
- Whole models add what isolated ops do not pay: per op and per module call Python overhead and a
  constant per forward, fitted on whole-model measurements (``fit_overhead``).

Why not gradient boosting or random forests (nn-Meter)? They need thousands of samples per kind to beat
this, cannot extrapolate beyond the sampled range (a forest predicts a constant past its largest sample,
which a scaling search hits at once), and would add scikit-learn to the dependencies. The kNN residual
gives the same "learned correction over shape features" locally, and the roofline base carries the
trend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

K_NEIGHBOURS = 4
TREND_MIN_SAMPLES = 8      # fewer and the group has no trend
TREND_RIDGE = 1.0          # on the standardised features (the intercept is not pulled)
TREND_CLIP = 0.7           # the trend's log-ratio at most ±0.7 (a factor of 2 either way)
MIN_GROUP_SAMPLES = 3      # fewer and the group borrows its kind's fit
MIN_FULL_FIT = 6           # fewer and the base uses only c0 and the roof term
FULL_FIT_GAIN = 0.8        # the four-term base only if its relative RMS error is 20% below [c0, roof]

# Seeded peaks and overhead when nothing was calibrated (the roofline alone): per device type, per thread
# for the FLOP rate. Rough, on purpose: the answer is labelled as uncalibrated.
SEED = {"cpu": {"gflops_per_thread": 40.0, "gbps": 10.0, "op_overhead_ms": 0.005},
        "cuda": {"gflops_per_thread": 20000.0, "gbps": 1000.0, "op_overhead_ms": 0.01}}


def seed_peaks(device: str, threads: int) -> tuple[float, float, float]:
    s = SEED["cuda" if str(device).startswith("cuda") else "cpu"]
    return s["gflops_per_thread"] * max(1, threads), s["gbps"], s["op_overhead_ms"]


def roof_columns(macs: np.ndarray, nbytes: np.ndarray, gflops: float, gbps: float) -> np.ndarray:
    """The base model's design matrix, in ms: [1, 2m/P, b/B, max(2m/P, b/B)]."""
    compute = 2.0 * macs / (gflops * 1e6)
    memory = nbytes / (gbps * 1e6)
    return np.column_stack([np.ones_like(compute), compute, memory, np.maximum(compute, memory)])


def log_features(feats: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(feats, 0.0))


def nnls_relative(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the relative error sum(((X·c - t) / t)^2); columns are
    scaled for conditioning and the coefficients scaled back."""
    from scipy.optimize import nnls

    A = X / t[:, None]
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(A / scale, np.ones(len(t)), maxiter=50 * X.shape[1])
    return coef / scale


@dataclass
class GroupFit:
    """One group's base coefficients and its samples in residual space."""

    coef: list[float]
    n: int
    feat_mean: list[float] = field(default_factory=list)
    feat_scale: list[float] = field(default_factory=list)
    points: list[list[float]] = field(default_factory=list)     # standardised log features per sample
    log_ratio: list[float] = field(default_factory=list)        # log(measured / base) less the trend
    trend: list[float] = field(default_factory=list)            # the trend's weights, then its intercept

    def to_dict(self) -> dict:
        # residual-space coordinates to 5 decimals (1e-5 of a standard deviation): a third of the file
        return {"coef": self.coef, "n": self.n, "feat_mean": self.feat_mean, "feat_scale": self.feat_scale,
                "points": np.round(np.asarray(self.points, dtype=float), 5).tolist(),
                "log_ratio": np.round(np.asarray(self.log_ratio, dtype=float), 6).tolist(), "trend": self.trend}

    @classmethod
    def from_dict(cls, d: dict) -> GroupFit:
        return cls(coef=[float(x) for x in d["coef"]], n=int(d["n"]), feat_mean=d["feat_mean"],
                   feat_scale=d["feat_scale"], points=d["points"], log_ratio=d["log_ratio"],
                   trend=[float(x) for x in d.get("trend", [])])

    def base(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(X @ np.asarray(self.coef), 1e-6)

    def _arrays(self) -> tuple:
        """points, their squared norms and log_ratio as arrays, made once per list (a predict asks every
        group for each model, and the file holds them as lists)."""
        got = self.__dict__.get("_cached")
        if got is None or got[0] is not self.points or got[1] is not self.log_ratio:
            P = np.asarray(self.points, dtype=float).reshape(len(self.points), -1)
            got = (self.points, self.log_ratio, P, (P * P).sum(axis=1), np.asarray(self.log_ratio, dtype=float))
            self.__dict__["_cached"] = got
        return got[2:]

    def _standardise(self, feats: np.ndarray) -> np.ndarray:
        return (log_features(feats) - np.asarray(self.feat_mean)) / np.asarray(self.feat_scale)

    def _distances(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distances (standard deviations in log feature space) from each distinct query to every sample,
        the index of each query's row among the distinct ones, and the distinct queries standardised."""
        uniq, inverse = np.unique(feats, axis=0, return_inverse=True)
        q = self._standardise(uniq)
        P, P2, _ = self._arrays()
        d2 = (q * q).sum(axis=1)[:, None] + P2[None, :] - 2.0 * q @ P.T
        d = np.sqrt(np.maximum(d2, 0.0))
        d[d < 1e-4] = 0.0           # rounding (the expansion; points kept to 1e-5): an exact match is 0
        return d, inverse.reshape(-1), q

    def nearest(self, feats: np.ndarray) -> np.ndarray:
        if not self.points:
            return np.full(len(feats), np.inf)
        d, inverse, _ = self._distances(feats)
        return d.min(axis=1)[inverse]

    def _trend(self, q: np.ndarray) -> np.ndarray:
        """The trend at standardised queries ``q``."""
        if not self.trend:
            return np.zeros(len(q))
        w = np.asarray(self.trend)
        return np.clip(q @ w[:-1] + w[-1], -TREND_CLIP, TREND_CLIP)

    def residual(self, feats: np.ndarray) -> np.ndarray:
        """log(measured/base) at each query: the trend, and the k nearest samples' remainder
        (inverse-distance weights, fading with the distance to the nearest)."""
        if not self.points:
            return np.zeros(len(feats))
        # a forward repeats its configurations (a stage's blocks): each distinct one is looked up once
        d, inverse, q = self._distances(feats)
        k = min(K_NEIGHBOURS, d.shape[1])
        idx = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.argsort(d, axis=1)
        dk = np.take_along_axis(d, idx, axis=1)
        order = np.argsort(dk, axis=1)
        idx, dk = np.take_along_axis(idx, order, axis=1), np.take_along_axis(dk, order, axis=1)
        w = 1.0 / (dk + 1e-9)
        r = self._arrays()[2][idx]
        # far from every sample the samples' own correction fades to the trend: exp(-d) of the nearest, in
        # standard deviations
        fade = np.exp(-dk[:, 0])
        return ((w * r).sum(axis=1) / w.sum(axis=1) * fade + self._trend(q))[inverse]


def fit_group(X: np.ndarray, feats: np.ndarray, t: np.ndarray, c0: float | None = None) -> GroupFit:
    """The group's base and residual points. With MIN_FULL_FIT samples or more, all four coefficients;
    with fewer, the fixed cost ``c0`` is not the group's to fit (one or two samples cannot tell a fixed cost
    from a rate, and a free c0 then extrapolates one big sample's time to every small op of the kind):
    it is the framework's per-op cost ``c0`` fitted on the well-sampled groups, and only the roof term's
    efficiency is fitted (``c0`` None: the old two-column fit [c0, roof], for no well-sampled group)."""
    coef = np.zeros(X.shape[1])
    if len(t) >= MIN_FULL_FIT:
        coef[[0, 3]] = nnls_relative(X[:, [0, 3]], t)
        full = nnls_relative(X, t)
        # separate compute and memory rates only where the samples tell them apart: samples all on one
        # side of the ridge leave the other rate at 0, and the op past the ridge (a GEMV at batch 1 after
        # compute-bound GEMMs) would be predicted by compute alone; the roof term max() holds both sides
        if _rel_rms(X @ full, t) < FULL_FIT_GAIN * _rel_rms(X @ coef, t):
            coef = full
    elif c0 is not None:
        coef[0] = min(c0, float(t.min()))
        rest = np.maximum(t - coef[0], 0.0)
        roof = X[:, 3]
        w = 1.0 / t
        coef[3] = float((w * w * roof * rest).sum() / max((w * w * roof * roof).sum(), 1e-30))
    else:
        coef[[0, 3]] = nnls_relative(X[:, [0, 3]], t)
    if not coef.any():
        coef[0] = float(np.median(t))
    g = GroupFit(coef=coef.tolist(), n=len(t))
    lf = log_features(feats)
    mean = lf.mean(axis=0)
    scale = lf.std(axis=0)
    scale[scale < 1e-3] = 1.0
    g.feat_mean, g.feat_scale = mean.tolist(), scale.tolist()
    P = (lf - mean) / scale
    r = np.log(t / g.base(X))
    g.points = P.tolist()
    if len(t) >= TREND_MIN_SAMPLES:
        A = np.column_stack([P, np.ones(len(t))])
        reg = TREND_RIDGE * np.eye(A.shape[1])
        reg[-1, -1] = 0.0
        w = np.linalg.solve(A.T @ A + reg, A.T @ r)
        g.trend = w.tolist()
        r = r - np.clip(A @ w, -TREND_CLIP, TREND_CLIP)
    g.log_ratio = r.tolist()
    return g


def _rel_rms(pred: np.ndarray, t: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((pred - t) / t) ** 2)))


def _shared_c0(fits: dict[str, GroupFit]) -> float | None:
    """The per-op fixed cost of the well-sampled groups (their median c0), for the sparsely sampled."""
    c0s = [f.coef[0] for f in fits.values() if f.n >= MIN_FULL_FIT and f.coef[0] > 0]
    return float(np.median(c0s)) if c0s else None


def fit_groups(groups: list[str], X: np.ndarray, feats: np.ndarray, t: np.ndarray) -> dict[str, GroupFit]:
    """One fit per group with enough samples, and one per kind (the fallback) from all of its groups."""
    out: dict[str, GroupFit] = {}
    keys = np.asarray(groups)
    kinds = np.asarray([g.split("|", 1)[0] for g in groups])
    full = [key for key in sorted(set(groups)) if (keys == key).sum() >= MIN_FULL_FIT]
    for key in full:
        out[key] = fit_group(X[keys == key], feats[keys == key], t[keys == key])
    c0 = _shared_c0(out)
    for key in sorted(set(groups) - set(full)):
        m = keys == key
        if m.sum() >= MIN_GROUP_SAMPLES:
            out[key] = fit_group(X[m], feats[m], t[m], c0)
    for kind in sorted(set(kinds.tolist())):
        m = kinds == kind
        out[kind] = fit_group(X[m], feats[m], t[m], c0)
    families = np.asarray([k.split(".", 1)[0] for k in kinds.tolist()])
    for fam in sorted(set(families.tolist()) - set(kinds.tolist())):
        m = families == fam     # every conv kind together: the fallback of a conv kind never sampled
        out[fam] = fit_group(X[m], feats[m], t[m], c0)
    return out


def fit_for(fits: dict[str, GroupFit], group: str) -> GroupFit | None:
    """The fit a group uses: its own, else its kind's, else its kind family's (conv.deformable: conv)."""
    kind = group.split("|", 1)[0]
    return fits.get(group) or fits.get(kind) or fits.get(kind.split(".", 1)[0])


def predict_ops(fits: dict[str, GroupFit], groups: list[str], X: np.ndarray, feats: np.ndarray,
                fallback_overhead_ms: float) -> np.ndarray:
    """Per-op ms, vectorised per group: its fit (``fit_for``), else the roof alone."""
    out = np.empty(len(groups))
    keys = np.asarray(groups, dtype=object)
    for key in set(groups):
        m = keys == key
        fit = fit_for(fits, key)
        if fit is None:
            out[m] = fallback_overhead_ms + X[m, 3]
        else:
            out[m] = fit.base(X[m]) * np.exp(fit.residual(feats[m]))
    return out


@dataclass
class Overhead:
    """What a whole forward adds to its ops' isolated times: per op, per module call, per forward (ms)."""

    per_op_ms: float = 0.0
    per_module_ms: float = 0.0
    per_model_ms: float = 0.0

    def to_dict(self) -> dict:
        return {"per_op_ms": self.per_op_ms, "per_module_ms": self.per_module_ms, "per_model_ms": self.per_model_ms}

    @classmethod
    def from_dict(cls, d: dict) -> Overhead:
        return cls(float(d["per_op_ms"]), float(d["per_module_ms"]), float(d["per_model_ms"]))

    def total(self, n_ops: int, n_modules: int) -> float:
        return self.per_op_ms * n_ops + self.per_module_ms * n_modules + self.per_model_ms


# An op replayed in a chain is called through its boxed OpOverload (0.5-1.6 µs more a call than the
# Python binding a model's layer calls, measured here): the per-op term may take that much back.
REPLAY_CALL_MS = 0.0015


def fit_overhead(op_sums: np.ndarray, n_ops: np.ndarray, n_modules: np.ndarray, measured: np.ndarray) -> Overhead:
    """measured ≈ op_sum + o·n_ops + u·n_modules + c on relative error; u, c ≥ 0 and o ≥ -REPLAY_CALL_MS.
    With fewer models than unknowns the constant, then the module term, are dropped."""
    from scipy.optimize import lsq_linear

    gap = measured - op_sums
    n = len(measured)
    if n == 0:
        return Overhead()
    X = np.column_stack([n_ops, n_modules, np.ones(n)]).astype(float)
    cols = [0, 1, 2] if n >= 4 else [0, 1] if n >= 2 else [0]
    coef = np.zeros(3)
    A = X[:, cols] / measured[:, None]
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    lower = np.array([-REPLAY_CALL_MS, 0.0, 0.0])[cols] * scale
    sol = lsq_linear(A / scale, gap / measured, bounds=(lower, np.inf)).x
    coef[cols] = sol / scale
    return Overhead(float(coef[0]), float(coef[1]), float(coef[2]))
