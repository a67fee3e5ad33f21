"""A fuzz of the public statistics: any input gives finite numbers or a ValueError, never nan,
inf or another exception (a naive version crashed on sd=1e-9 and power=0.999)."""
import math
import random

import pytest

from recommendations.experiments.stats import (
    ArmTotals,
    arm_report,
    interleaving_report,
    mde_for,
    mean_ci,
    msprt,
    msprt_means,
    msprt_proportions,
    proportion_ci,
    ratio_variance,
    sample_size,
    srm,
)
from recommendations.experiments.tests.test_stats import walk

SPECIALS = [0, 1, 2, -1, 0.5, 1e-9, 1e-300, 1e300, float("nan"), float("inf"), 0.999, 0.99,
            0.001, 10**16, 5, 100, 10**6, 1.5, True, None, "x"]


def totals_report(*args):
    totals = ArmTotals(*args)
    return arm_report(totals, totals), srm([args[0], args[1]], [1, 1])


@pytest.mark.parametrize(("function", "arity"), [
    (proportion_ci, 3), (mean_ci, 4), (msprt, 4), (msprt_proportions, 4), (msprt_means, 6),
    (sample_size, 4), (mde_for, 4), (interleaving_report, 4), (ratio_variance, 6),
    (totals_report, 7), (lambda *a: srm(a[:2], a[2:4], a[4]), 5),
])
def test_only_finite_results_or_value_errors(function, arity):
    rng = random.Random(arity * 7919 + 1)
    for _ in range(400):
        args = [rng.choice(SPECIALS) if rng.random() < 0.7 else rng.uniform(-1e3, 1e3)
                for _ in range(arity)]
        try:
            result = function(*args)
        except ValueError:
            continue
        assert all(math.isfinite(value) for value in walk(result)), (args, result)


def test_the_crashes_of_the_naive_version_are_named():
    with pytest.raises(ValueError, match="power must be <= 0.99"):
        sample_size(0.05, 0.01, power=0.999)
    with pytest.raises(ValueError, match="alpha must be >= 1e-09"):
        mean_ci(10, 30, 4, alpha=1e-300)
    with pytest.raises(ValueError, match="variance must be >= 1e-100"):
        msprt(0.1, 1e-300, 0.1)
    # A sample with sd about 1e-9 is fine: a tiny interval around its mean, not a crash.
    values = [1.0, 1.0 + 2e-9, 1.0, 1.0 + 2e-9]
    low, high = mean_ci(sum(values), sum(v * v for v in values), 4)
    assert low <= 1.000000001 <= high and high - low < 1e-6
