"""Statistics of scaleprof.bench.stats against answers worked out by hand or by scipy/numpy directly."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from scaleprof.bench import stats


def test_median_mean_min_iqr_of_known_lists():
    xs = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert stats.median(xs) == 3.0
    assert stats.mean(xs) == 3.0
    assert stats.minimum(xs) == 1.0
    # numpy's default (linear) quartiles of 1..5 are 2 and 4
    assert stats.iqr(xs) == 2.0
    assert stats.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    # 1..100: quartiles 25.75 and 75.25 by linear interpolation at ranks 1 + 0.25 * 99 and 1 + 0.75 * 99
    assert stats.iqr(list(range(1, 101))) == pytest.approx(75.25 - 25.75)


def test_cv_of_known_list():
    xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]  # mean 5, sample variance 32 / 7
    assert stats.cv(xs) == pytest.approx(math.sqrt(32 / 7) / 5)
    assert stats.cv([3.0]) == 0.0


def test_tail_percentiles_need_enough_samples():
    assert stats.p90(list(range(63))) is None
    assert stats.p90(list(range(64))) == pytest.approx(np.percentile(np.arange(64), 90))
    assert stats.p99(list(range(661))) is None
    assert stats.p99(list(range(662))) == pytest.approx(np.percentile(np.arange(662), 99))


def test_median_ci_indices_n100_by_hand():
    # P(B <= 39) = 0.0176 <= 0.025 < P(B <= 40) = 0.0284 for B ~ Bin(100, 1/2): ranks 40 and 61 (1-based)
    assert binom.cdf(39, 100, 0.5) <= 0.025 < binom.cdf(40, 100, 0.5)
    assert stats.median_ci_indices(100) == (39, 60)
    assert stats.median_ci(list(range(1, 101))) == (40.0, 61.0)
    coverage = binom.cdf(60, 100, 0.5) - binom.cdf(39, 100, 0.5)
    assert coverage == pytest.approx(0.9648, abs=1e-4)


def test_median_ci_small_n():
    # n = 6: (min, max) covers with 1 - 2 / 64 = 0.969; n = 5: 1 - 2 / 32 = 0.9375 < 0.95, so no interval
    assert stats.median_ci_indices(6) == (0, 5)
    assert stats.median_ci_indices(5) is None
    assert stats.median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) is None


@pytest.mark.parametrize("n", [6, 7, 20, 51, 333, 1000])
def test_median_ci_indices_are_the_tightest_with_95_coverage(n):
    lo, hi = stats.median_ci_indices(n)
    assert hi == n - 1 - lo
    # coverage of order statistics (lo+1, hi+1) in 1-based ranks: P(lo+1 <= B <= hi) ... written with the cdf
    cover = binom.cdf(hi, n, 0.5) - binom.cdf(lo, n, 0.5)
    assert cover >= 0.95
    if lo + 1 < hi:
        tighter = binom.cdf(hi - 1, n, 0.5) - binom.cdf(lo + 1, n, 0.5)
        assert tighter < 0.95


def test_summary_fields():
    s = stats.summarize([float(x) for x in range(1, 101)])
    assert s.n == 100 and s.median == 50.5 and s.min == 1.0 and s.max == 100.0
    assert s.p90 == pytest.approx(90.1) and s.p99 is None
    assert s.ci95 == (40.0, 61.0)
    assert s.to_dict()["ci95"] == [40.0, 61.0]


def test_mann_whitney_separated_and_identical():
    rng = np.random.default_rng(1)
    a = rng.normal(10, 0.1, 50)
    b = rng.normal(20, 0.1, 50)
    assert stats.mann_whitney_p(a, b) < 1e-10
    assert stats.mann_whitney_p(a, a) > 0.5
    assert stats.mann_whitney_p([1.0] * 10, [1.0] * 10) == 1.0


def test_bootstrap_ratio_ci():
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 0.01, 200)
    b = 2.0 * a * rng.normal(1.0, 0.005, 200)
    r, (lo, hi) = stats.bootstrap_ratio_ci(a, b)
    assert r == pytest.approx(np.median(b / a))
    assert lo <= r <= hi
    assert lo < 2.0 < hi or abs(r - 2.0) < 0.002
    assert hi - lo < 0.01
    # exact pairs: every resample gives the same ratio
    r2, ci2 = stats.bootstrap_ratio_ci([1.0, 2.0, 3.0], [3.0, 6.0, 9.0])
    assert r2 == 3.0 and ci2 == (3.0, 3.0)
