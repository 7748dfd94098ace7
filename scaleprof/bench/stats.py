"""Statistics over timing samples: pure functions, no torch.

Latency samples are skewed (a long right tail from interrupts, page faults, other tenants), so the centre
is the median and its uncertainty is a distribution-free confidence interval from order statistics: no
normality is assumed anywhere. Tail percentiles are only reported when there are enough samples for the
percentile to sit between two observed values with room to spare (p90 from 64 samples, p99 from 662);
below that they are None rather than a guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

P90_MIN_SAMPLES = 64
P99_MIN_SAMPLES = 662
# The smallest n for which the extreme order statistics cover the median with >= 95%: 1 - 2 * 0.5**6 = 0.969.
MEDIAN_CI_MIN_SAMPLES = 6


def _arr(xs: Sequence[float]) -> np.ndarray:
    a = np.asarray(xs, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError("need a non-empty list of samples")
    return a


def median(xs: Sequence[float]) -> float:
    return float(np.median(_arr(xs)))


def mean(xs: Sequence[float]) -> float:
    return float(np.mean(_arr(xs)))


def minimum(xs: Sequence[float]) -> float:
    return float(np.min(_arr(xs)))


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, type 7)."""
    return float(np.percentile(_arr(xs), q))


def iqr(xs: Sequence[float]) -> float:
    a = _arr(xs)
    q1, q3 = np.percentile(a, [25, 75])
    return float(q3 - q1)


def p90(xs: Sequence[float]) -> float | None:
    return percentile(xs, 90) if len(xs) >= P90_MIN_SAMPLES else None


def p99(xs: Sequence[float]) -> float | None:
    return percentile(xs, 99) if len(xs) >= P99_MIN_SAMPLES else None


def cv(xs: Sequence[float]) -> float:
    """Coefficient of variation: sample standard deviation / mean (0 for a single sample)."""
    a = _arr(xs)
    if a.size < 2:
        return 0.0
    m = float(np.mean(a))
    return float(np.std(a, ddof=1) / m) if m else float("nan")


def median_ci_indices(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """0-based order-statistic indices (lo, hi) with P(x_(lo) <= true median <= x_(hi)) >= confidence.

    The number of samples below the median is Binomial(n, 1/2); the lower rank l (1-based) is the largest
    with P(B <= l - 1) <= (1 - confidence) / 2, and the upper rank is n + 1 - l by symmetry. For n = 100 at
    95% that is ranks 40 and 61 (coverage 0.9648). None when n is too small for any pair to reach the level.
    """
    from scipy.stats import binom

    if n < 1:
        return None
    alpha = (1.0 - confidence) / 2.0
    cdf = binom.cdf(np.arange(n), n, 0.5)  # cdf[i] = P(B <= i)
    ok = np.nonzero(cdf <= alpha)[0]
    if ok.size == 0:  # even (min, max) does not reach the level
        return None
    lo = int(ok[-1])  # P(B <= lo) <= alpha, so rank lo + 1 is the lower bound: 0-based index lo
    return lo, n - 1 - lo


def median_ci(xs: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median; None below MEDIAN_CI_MIN_SAMPLES at 95%."""
    a = np.sort(_arr(xs))
    idx = median_ci_indices(a.size, confidence)
    if idx is None:
        return None
    return float(a[idx[0]]), float(a[idx[1]])


def ci_within(ci: tuple[float, float] | None, centre: float, rel: float) -> bool:
    """True when the interval lies within ±rel of centre."""
    if ci is None or not centre > 0:
        return False
    return ci[0] >= centre * (1.0 - rel) and ci[1] <= centre * (1.0 + rel)


def ci_halfwidth_rel(median: float | None, ci: Sequence[float] | None) -> float | None:
    """Largest distance from the median to a CI bound, relative to the median (0.01 = ±1%); None without
    a CI or a positive median."""
    if not ci or median is None or not median > 0:
        return None
    return max(median - ci[0], ci[1] - median) / median


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    aa, bb = _arr(a), _arr(b)
    if aa.size != bb.size:
        raise ValueError("paired samples need equal lengths")
    return bb / aa


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                       n_boot: int = 4000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Median of the paired ratios b_i / a_i and its percentile-bootstrap confidence interval.

    Pairs (a_i, b_i) are measured close together in time, so slow drift of the machine cancels in each
    ratio; the rounds are resampled as pairs.
    """
    r = paired_ratios(a, b)
    point = float(np.median(r))
    if r.size < 2:
        return point, (point, point)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, r.size, size=(n_boot, r.size))
    boots = np.median(r[idx], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return point, (float(lo), float(hi))


def bootstrap_median_ratio_ci(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                              n_boot: int = 4000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """median(b) / median(a) and its percentile-bootstrap CI, a and b resampled apart: for samples measured
    at different times, which cannot be paired (saved results)."""
    aa, bb = _arr(a), _arr(b)
    point = float(np.median(bb) / np.median(aa))
    if aa.size < 2 or bb.size < 2:
        return point, (point, point)
    rng = np.random.default_rng(seed)
    ma = np.median(aa[rng.integers(0, aa.size, size=(n_boot, aa.size))], axis=1)
    mb = np.median(bb[rng.integers(0, bb.size, size=(n_boot, bb.size))], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(mb / ma, [alpha, 1.0 - alpha])
    return point, (float(lo), float(hi))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when every value is tied (nothing to tell apart)."""
    from scipy.stats import mannwhitneyu

    aa, bb = _arr(a), _arr(b)
    if np.all(aa == aa[0]) and np.all(bb == aa[0]):
        return 1.0
    p = float(mannwhitneyu(aa, bb, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p


@dataclass(frozen=True)
class Summary:
    """What one list of per-call samples says (all in the samples' unit, ms in this package)."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    iqr: float
    p90: float | None
    p99: float | None
    ci95: tuple[float, float] | None
    cv: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95) if self.ci95 is not None else None
        return d


def summarize(xs: Sequence[float]) -> Summary:
    a = _arr(xs)
    return Summary(n=int(a.size), median=median(a), mean=mean(a), min=minimum(a), max=float(np.max(a)),
                   iqr=iqr(a), p90=p90(a), p99=p99(a), ci95=median_ci(a), cv=cv(a))
