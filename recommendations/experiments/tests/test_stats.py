"""The statistics: exact intervals, the mSPRT's always-valid p-value (its formula, its monotone
running minimum, its error rate under repeated looks against a naive test's), sample size and MDE,
sample-ratio mismatch, the reports, and validation that names the bad field."""
import math
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from recommendations.experiments.stats import (
    METRICS,
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


def walk(value):
    """Every number in a nested result."""
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item)
    elif isinstance(value, float):
        yield value


def test_wilson_interval_exact():
    assert proportion_ci(5, 100) == pytest.approx((0.021543679154367966, 0.11175046923191914), abs=1e-15)
    for successes, n in [(0, 10), (10, 10), (37, 1000), (1, 3)]:
        low, high = proportion_confint(successes, n, alpha=0.1, method="wilson")
        assert proportion_ci(successes, n, alpha=0.1) == pytest.approx((low, high), abs=1e-12)


def test_mean_interval_exact():
    # 1, 2, 3, 4: mean 2.5, sd 1.29099, t(0.975, 3) = 3.18245
    assert mean_ci(10, 30, 4) == pytest.approx((0.4457397432394794, 4.554260256760521), abs=1e-12)
    assert mean_ci(6, 12, 3) == (2.0, 2.0)  # a constant sample: no spread, no nan


def test_msprt_is_the_normal_mixture_likelihood_ratio():
    estimate, variance, tau = 0.004, 1e-6, 0.005
    ratio = (math.sqrt(variance / (variance + tau**2))
             * math.exp(estimate**2 * tau**2 / (2 * variance * (variance + tau**2))))
    result = msprt(estimate, variance, tau)
    assert result["p_value"] == pytest.approx(1 / ratio, rel=1e-12)
    radius = math.sqrt(variance * (variance + tau**2) / tau**2
                       * (2 * math.log(20) + math.log((variance + tau**2) / variance)))
    assert result["ci"] == pytest.approx((estimate - radius, estimate + radius), rel=1e-12)
    assert msprt(0.0, variance, tau)["p_value"] == 1.0


def test_zero_is_outside_the_sequence_exactly_when_significant():
    for estimate in np.linspace(-0.01, 0.01, 41):
        result = msprt(float(estimate), 4e-6, 0.005)
        low, high = result["ci"]
        assert result["significant"] == (not low < 0 < high)


def test_p_value_falls_as_the_same_effect_gathers_evidence():
    p_values = [msprt_proportions(int(0.05 * n), n, int(0.06 * n), n)["p_value"]
                for n in range(2_000, 200_001, 2_000)]
    assert all(later <= earlier for earlier, later in zip(p_values, p_values[1:]))
    assert p_values[0] > 0.5 and p_values[-1] < 1e-10


def test_the_running_minimum_never_rises():
    first = msprt(0.01, 1e-5, 0.005)
    later = msprt(0.0, 1e-6, 0.005, previous=first)
    assert msprt(0.0, 1e-6, 0.005)["p_value"] == 1.0
    assert later["p_value"] == first["p_value"] < 1.0
    low, high = later["ci"]
    assert first["ci"][0] <= low and high <= first["ci"][1]


def test_daily_looks_under_h0_rarely_reject_while_a_naive_test_does():
    rng = np.random.default_rng(7)
    runs, looks, per_look, rate = 300, 20, 2000, 0.1
    msprt_rejections = naive_rejections = 0
    final_p = []
    for _ in range(runs):
        a = b = 0
        previous, naive = None, False
        for look in range(1, looks + 1):
            a += rng.binomial(per_look, rate)
            b += rng.binomial(per_look, rate)
            n = look * per_look
            previous = msprt_proportions(a, n, b, n, previous=previous)
            pa, pb = a / n, b / n
            z = (pb - pa) / math.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
            naive = naive or 2 * scipy_stats.norm.sf(abs(z)) < 0.05
        msprt_rejections += previous["significant"]
        naive_rejections += naive
        final_p.append(previous["p_value"])
    # Peeking at a fixed-horizon test 20 times rejects a true H0 several times more often than 5%.
    assert naive_rejections / runs > 0.12
    assert msprt_rejections / runs <= 0.06
    # Always-valid p-values are conservative: P(p <= x) <= x for every x.
    for x in (0.1, 0.3, 0.5):
        assert np.mean(np.array(final_p) <= x) <= x + 0.03


def test_the_confidence_sequence_covers_the_true_difference():
    rng = np.random.default_rng(3)
    misses = 0
    for _ in range(200):
        a = b = 0
        previous = None
        for look in range(1, 11):
            a += rng.binomial(5000, 0.05)
            b += rng.binomial(5000, 0.06)
            previous = msprt_proportions(a, look * 5000, b, look * 5000, previous=previous)
            low, high = previous["ci"]
            if not low <= 0.01 <= high:
                misses += 1
                break
    assert misses / 200 <= 0.06


def test_msprt_means_uses_the_welch_variance():
    # arm a: 1, 2, 3, 4 (var 5/3); arm b: 2, 4, 6, 8 (var 20/3)
    result = msprt_means(10, 30, 4, 20, 120, 4, tau=1.0)
    assert result["estimate"] == 2.5
    assert result["variance"] == pytest.approx(5 / 12 + 20 / 12)
    assert msprt_means(10, 30, 1, 20, 120, 4)["enough_data"] is False


def test_too_little_data_is_said_not_guessed():
    for result in (msprt_proportions(0, 0, 5, 10), msprt_proportions(0, 100, 0, 100)):
        assert result["enough_data"] is False
        assert result["p_value"] == 1.0 and result["significant"] is False


def test_sample_size_and_mde_from_statsmodels():
    assert sample_size(0.05, 0.005) == 31218
    assert sample_size(0.1, 0.01, 0.05, 0.9) == 19739
    assert mde_for(31218, 0.05) == pytest.approx(0.005, rel=1e-3)
    assert mde_for(1000, 0.05) > mde_for(10_000, 0.05) > mde_for(100_000, 0.05) > 0


def test_srm_flags_52_48_at_large_n_only():
    flagged = srm([5200, 4800], [0.5, 0.5])
    assert flagged["mismatch"] is True and flagged["p_value"] == pytest.approx(6.334248366623988e-05)
    assert srm([5020, 4980], [1, 1])["mismatch"] is False
    assert srm([52, 48], [1, 1])["mismatch"] is False
    assert srm([2500, 7500], [1, 3])["mismatch"] is False
    assert srm([0, 0], [1, 1]) == {"p_value": 1.0, "statistic": 0.0, "expected": [0.0, 0.0],
                                   "mismatch": False, "enough_data": False}


def test_ctr_variance_by_visit_is_the_delta_method():
    rng = np.random.default_rng(5)
    impressions = rng.integers(1, 20, size=500)
    clicks = rng.binomial(impressions, rng.beta(1, 10, size=500))
    variance = ratio_variance(clicks.sum(), (clicks**2).sum(), impressions.sum(),
                              (impressions**2).sum(), (clicks * impressions).sum(), 500)
    ratio = clicks.sum() / impressions.sum()
    residuals = (clicks - ratio * impressions) / impressions.mean()
    assert variance == pytest.approx(residuals.var(ddof=1) / 500, rel=1e-9)
    # Clustered clicks: wider than the binomial variance that treats impressions as independent.
    assert variance > ratio * (1 - ratio) / impressions.sum()


CONTROL = ArmTotals(visits=10_000, impressions=100_000, clicks=5_000, add_to_carts=800, orders=300,
                    revenue=9_000.0, revenue_sq=270_000.0)
ARM = ArmTotals(visits=10_000, impressions=100_000, clicks=5_500, add_to_carts=850, orders=330,
                revenue=9_900.0, revenue_sq=297_000.0)


def test_arm_report_exact():
    report = arm_report(CONTROL, ARM)
    assert set(report) == set(METRICS)
    ctr = report["ctr"]
    assert ctr["control"]["value"] == 0.05 and ctr["arm"]["value"] == 0.055
    assert ctr["control"]["ci"] == proportion_ci(5_000, 100_000)
    assert ctr["difference"] == pytest.approx(0.005)
    assert ctr["relative_difference"] == pytest.approx(0.1)
    assert ctr["p_value"] == msprt_proportions(5_000, 100_000, 5_500, 100_000)["p_value"]
    assert ctr["p_value"] == pytest.approx(2.8957920602667036e-05, rel=1e-9)
    assert ctr["significant"] is True
    assert report["conversion"]["arm"]["value"] == 0.033
    assert report["conversion"]["significant"] is False
    assert report["revenue_per_visit"]["control"]["value"] == 0.9
    assert report["revenue_per_visit"]["control"]["ci"] == mean_ci(9_000.0, 270_000.0, 10_000)
    assert all(math.isfinite(value) for value in walk(report))


def test_arm_report_uses_the_visit_level_ctr_variance_when_given():
    clustered = ArmTotals(10_000, 100_000, 5_000, 800, 300, 9_000.0, 270_000.0,
                          impressions_sq=1_000_000, clicks_sq=40_000, clicks_impressions=50_000)
    clustered_arm = ArmTotals(10_000, 100_000, 5_500, 850, 330, 9_900.0, 297_000.0,
                              impressions_sq=1_000_000, clicks_sq=45_000, clicks_impressions=55_000)
    report = arm_report(clustered, clustered_arm)
    # Clicks bunch in few visits (sum of squares 8x the count): far less evidence than binomial.
    assert report["ctr"]["p_value"] > arm_report(CONTROL, ARM)["ctr"]["p_value"]
    assert report["ctr"]["significant"] is False
    assert report["ctr"]["p_value"] == pytest.approx(0.6236168846990869, rel=1e-9)


def test_totals_from_the_database_become_plain_numbers():
    totals = ArmTotals(np.int64(10), 20, 3, 2, 1, Decimal("12.50"), Decimal("156.25"))
    assert totals.visits == 10 and type(totals.visits) is int
    assert totals.revenue == 12.5 and type(totals.revenue) is float
    report = arm_report(totals, ArmTotals(10, 20, 5, 2, 1, Decimal("10.00"), Decimal("100.00")))
    assert report["revenue_per_visit"]["difference"] == pytest.approx(-0.25)


def test_arm_report_early_and_empty_arms():
    empty = ArmTotals(0, 0, 0, 0, 0, 0.0, 0.0)
    report = arm_report(empty, ARM)
    for metric in METRICS:
        assert report[metric]["enough_data"] is False
        assert report[metric]["p_value"] == 1.0
        assert report[metric]["control"]["value"] is None
        assert report[metric]["difference"] is None
    assert all(math.isfinite(value) for value in walk(report))


def test_arm_report_keeps_the_running_minimum():
    first = arm_report(CONTROL, ARM)
    same = ArmTotals(20_000, 200_000, 10_000, 1_600, 600, 18_000.0, 540_000.0)
    later = arm_report(same, same, previous=first)
    assert later["ctr"]["p_value"] == first["ctr"]["p_value"]
    assert arm_report(same, same)["ctr"]["p_value"] == 1.0


def test_interleaving_report():
    report = interleaving_report(400, 600, 5000)
    assert report["share_b"] == 0.6 and report["visits"] == 6000
    assert report["share_ci"] == proportion_ci(600, 1000)
    assert report["significant"] is True and report["winner"] == "B"
    assert report["p_value"] == pytest.approx(msprt(0.1, 0.25 / 1000, 0.025)["p_value"])
    even = interleaving_report(500, 500, 10)
    assert even["winner"] is None and even["p_value"] == 1.0
    # An even later look keeps the decision the earlier one reached (running minimum, and the
    # intersected sequence that stays above 1/2).
    later = interleaving_report(850, 1050, 10, previous=report)
    assert later["p_value"] == report["p_value"] and later["winner"] == "B"
    assert 0.5 < report["ci"][0] <= later["ci"][0] and later["ci"][1] <= report["ci"][1]
    # Contradicting data after a decision (the sequence missed, at most alpha of the time) keeps it.
    assert interleaving_report(900, 900, 10, previous=report)["winner"] == "B"
    assert interleaving_report(0, 0, 7)["enough_data"] is False


@pytest.mark.parametrize(("call", "field"), [
    (lambda: proportion_ci(5, 100, alpha=0), "alpha"),
    (lambda: proportion_ci(5, 100, alpha=0.6), "alpha"),
    (lambda: proportion_ci(5, 100, alpha=float("nan")), "alpha"),
    (lambda: proportion_ci(101, 100), r"successes \(101\) must be <= n"),
    (lambda: proportion_ci(-1, 100), "successes"),
    (lambda: proportion_ci(1.5, 100), "successes"),
    (lambda: proportion_ci(0, 0), "n must be > 0"),
    (lambda: mean_ci(10, 1, 4), "total_sq"),
    (lambda: mean_ci(10, 30, 1), "n must be >= 2"),
    (lambda: sample_size(0.05, 0.005, power=0.999), "power"),
    (lambda: sample_size(0.05, 0.005, power=0.5), "power"),
    (lambda: sample_size(0, 0.005), "baseline_rate"),
    (lambda: sample_size(1.0, 0.005), "baseline_rate"),
    (lambda: sample_size(0.05, 0), "mde"),
    (lambda: sample_size(0.05, -0.01), "mde"),
    (lambda: sample_size(0.05, 1e-9), "mde"),
    (lambda: sample_size(0.95, 0.1), "mde"),
    (lambda: mde_for(1, 0.05), "n_per_arm"),
    (lambda: mde_for(3, 0.5), "n_per_arm"),
    (lambda: msprt(0.1, 0.0, 0.1), "variance"),
    (lambda: msprt(0.1, 1e-9, 0.0), "tau"),
    (lambda: msprt(float("inf"), 1e-3, 0.1), "estimate"),
    (lambda: srm([10, 10], [1, 1], alpha=0), "alpha"),
    (lambda: srm([10, 10, 3], [1, 1]), "observed"),
    (lambda: srm([10, -1], [1, 1]), r"observed\[1\]"),
    (lambda: ArmTotals(10, 5, 6, 0, 0, 0.0, 0.0), r"clicks \(6\) must be <= impressions"),
    (lambda: ArmTotals(10, 5, 1, 11, 0, 0.0, 0.0), "add_to_carts"),
    (lambda: ArmTotals(10, 5, 1, 0, 0, -1.0, 0.0), "revenue"),
    (lambda: ArmTotals(10, 5, 1, 0, 0, 10.0, 1.0), "revenue_sq"),
    (lambda: ArmTotals(10, 5, 1, 0, 0, 0.0, 0.0, clicks_sq=3), "go together"),
    (lambda: arm_report(CONTROL, ARM, alpha=1), "alpha"),
    (lambda: arm_report(CONTROL, ARM, relative_tau=0), "relative_tau"),
    (lambda: interleaving_report(1, -2, 0), "wins_b"),
    (lambda: msprt(0.1, 1e-3, 0.1, previous={"ci": (0, 1)}), "previous must be"),
    (lambda: msprt(0.1, 1e-3, 0.1, previous={"p_value": 2.0}), "previous p_value"),
    (lambda: msprt(0.1, 1e-3, 0.1, previous={"p_value": 0.5, "ci": (0,)}), "previous ci"),
    (lambda: arm_report(CONTROL, ARM, previous={"ctr": {"p_value": "x"}}), "previous p_value"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()
