"""The statistics of an experiment report: Wilson intervals for rates, t intervals for means, the
mixture sequential probability ratio test (mSPRT) for the difference of an arm to control, the
fixed-horizon sample size and minimum detectable effect to show before start, and the
sample-ratio-mismatch check. Distributions come from scipy and statsmodels.

Why a sequential test: staff open the results page every day and stop when it looks decided. A
fixed-horizon p-value read daily and acted on at the first p < 0.05 declares a winner between two
identical arms far more often than 5% (every look is another chance). The mSPRT's always-valid
p-value (Johari, Koomen, Pekelis and Walsh, "Always valid inference", Operations Research 2022;
Robbins 1970 for the mixture) is a p-value at every look at once: P(it ever drops below alpha under
H0) <= alpha, however often and whenever one looks, and no sample size has to be fixed in advance.
The price is a little power against a fixed test run to exactly its planned size.

The test (normal approximation, as in Johari et al. section 4 for two-sample comparisons): with the
difference estimate d and its variance V at a look, and a normal mixture N(0, tau^2) over the true
difference under H1, the likelihood ratio is

    Lambda = N(d; 0, V + tau^2) / N(d; 0, V)

and the always-valid p-value is min(1, 1 / max over looks of Lambda). The matching always-valid
confidence sequence is {x : Lambda(d - x) < 1/alpha}. ``tau`` is the size of difference the test is
most sensitive to: choose it near the effect worth detecting (here by default 10% of the pooled
rate or mean, ``DEFAULT_RELATIVE_TAU``, and 0.025 on the interleaving win share, the same 10%);
any tau keeps the error guarantee, only power changes.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from recommendations.experiments.validation import (
    check_alpha,
    check_count,
    check_power,
    check_rate,
    check_real,
    check_shares,
    check_successes,
)

DEFAULT_RELATIVE_TAU = 0.1
"""The mixing standard deviation of the mSPRT as a share of the pooled rate or mean: the test is
tuned to relative differences around 10%, the size a model change is expected to make."""

DEFAULT_INTERLEAVING_TAU = 0.025
"""The mixing standard deviation for the interleaving win share, matched to the same 10%: when one
arm's items are clicked 10% more often, it wins about 1.1 / 2.1 = 52.4% of the decided visits."""

MAX_SAMPLE_SIZE = 10**12
# Bounds that keep every intermediate of the test finite in floating point (far outside any
# shop's figures): |estimate| <= 1e50, 1e-100 <= variance <= 1e100, 1e-50 <= tau <= 1e50, sums of
# values up to 1e100 and of squares up to 1e200, revenue up to 1e15 per arm.
MAX_ESTIMATE, MIN_VARIANCE, MAX_VARIANCE, MIN_TAU, MAX_TAU = 1e50, 1e-100, 1e100, 1e-50, 1e50
MAX_TOTAL, MAX_TOTAL_SQ, MAX_REVENUE = 1e100, 1e200, 1e15
METRICS = ("ctr", "add_to_cart_rate", "conversion", "revenue_per_visit")


@dataclass(frozen=True)
class ArmTotals:
    """An arm's totals since the experiment started.

    ``add_to_carts`` and ``orders`` count visits with at least one add-to-cart / order (so each is
    at most ``visits``: the rates are shares of visits). ``revenue`` is the sum of the visits'
    revenue and ``revenue_sq`` the sum over visits of (revenue of the visit) squared, so the mean
    revenue per visit and its variance come from the totals.

    CTR is clicks / impressions, and clicks of one visit are not independent (a keen shopper clicks
    many). Give the per-visit sums ``impressions_sq`` (sum of impressions per visit squared),
    ``clicks_sq`` and ``clicks_impressions`` (sum of clicks * impressions per visit) and the CTR
    variance is the delta-method one over visits (valid under that dependence); without them it is
    the binomial one, which treats every impression as independent and is too narrow when visits
    differ.
    """

    visits: int
    impressions: int
    clicks: int
    add_to_carts: int
    orders: int
    revenue: float
    revenue_sq: float
    impressions_sq: int | None = None
    clicks_sq: int | None = None
    clicks_impressions: int | None = None

    def __post_init__(self):
        visits = check_count(self.visits, "visits")
        clicks, impressions = check_successes(self.clicks, self.impressions, "clicks", "impressions")
        add_to_carts, _ = check_successes(self.add_to_carts, visits, "add_to_carts", "visits")
        orders, _ = check_successes(self.orders, visits, "orders", "visits")
        revenue = check_real("revenue", self.revenue, low=0.0, low_open=False, high=MAX_REVENUE,
                             high_open=False)
        revenue_sq = check_real("revenue_sq", self.revenue_sq, low=0.0, low_open=False,
                                high=MAX_REVENUE**2, high_open=False)
        # Stored as plain ints and floats, whatever came in (numpy integers, Decimal sums).
        for name, value in (("visits", visits), ("impressions", impressions), ("clicks", clicks),
                            ("add_to_carts", add_to_carts), ("orders", orders),
                            ("revenue", revenue), ("revenue_sq", revenue_sq)):
            object.__setattr__(self, name, value)
        if visits == 0 and revenue > 0:
            raise ValueError(f"revenue must be 0 with no visits, got {revenue!r}")
        if visits and revenue_sq < revenue * revenue / visits * (1 - 1e-9):
            raise ValueError("revenue_sq must be at least revenue**2 / visits (a sum of squares)")
        optional = (self.impressions_sq, self.clicks_sq, self.clicks_impressions)
        if any(value is not None for value in optional):
            if any(value is None for value in optional):
                raise ValueError("impressions_sq, clicks_sq and clicks_impressions go together")
            for name in ("impressions_sq", "clicks_sq", "clicks_impressions"):
                object.__setattr__(self, name, check_count(getattr(self, name), name))

    def as_dict(self) -> dict:
        return asdict(self)


# --- intervals -----------------------------------------------------------------------------------

def proportion_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for successes / n (statsmodels ``proportion_confint``)."""
    successes, n = check_successes(successes, n, "successes", "n")
    alpha = check_alpha(alpha)
    if n == 0:
        raise ValueError("n must be > 0 for a rate's confidence interval")
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(max(0.0, low)), float(min(1.0, high))


def _check_total(value, name: str) -> float:
    return check_real(name, value, low=-MAX_TOTAL, high=MAX_TOTAL, low_open=False, high_open=False)


def _check_total_sq(value, name: str) -> float:
    return check_real(name, value, low=0.0, high=MAX_TOTAL_SQ, low_open=False, high_open=False)


def _sample_variance(total: float, total_sq: float, n: int) -> float:
    variance = (total_sq - total * total / n) / (n - 1)
    if variance < 0:
        if variance < -1e-9 * max(1.0, total_sq):
            raise ValueError("total_sq must be at least total**2 / n (a sum of squares)")
        variance = 0.0  # rounding of a constant sample
    return variance


def mean_ci(total: float, total_sq: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Student-t interval for the mean of n values given their sum and sum of squares."""
    total, total_sq = _check_total(total, "total"), _check_total_sq(total_sq, "total_sq")
    n = check_count(n, "n")
    alpha = check_alpha(alpha)
    if n < 2:
        raise ValueError(f"n must be >= 2 for a mean's confidence interval, got {n}")
    mean = total / n
    variance = _sample_variance(total, total_sq, n)
    if variance == 0.0:
        return mean, mean
    low, high = scipy_stats.t.interval(1 - alpha, n - 1, loc=mean, scale=math.sqrt(variance / n))
    return float(low), float(high)


# --- the sequential test -------------------------------------------------------------------------

def _previous(previous: Mapping | None) -> tuple[float | None, tuple[float, float] | None]:
    """The p-value and interval of a previous look's result (None, None without one)."""
    if previous is None:
        return None, None
    if not isinstance(previous, Mapping) or "p_value" not in previous:
        raise ValueError("previous must be an earlier look's result (with p_value and ci)")
    p_value = check_real("previous p_value", previous["p_value"], low=0.0, high=1.0,
                         low_open=False, high_open=False)
    ci = previous.get("ci")
    if ci is not None:
        if isinstance(ci, (str, bytes)) or not isinstance(ci, Sequence) or len(ci) != 2:
            raise ValueError(f"previous ci must be a pair (low, high), got {ci!r}")
        ci = (check_real("previous ci low", ci[0]), check_real("previous ci high", ci[1]))
    return p_value, ci


def _not_enough(estimate, alpha, tau, previous) -> dict:
    p_value, ci = _previous(previous)
    p_value = 1.0 if p_value is None else p_value
    return {"p_value": p_value, "estimate": estimate, "ci": ci, "variance": None, "tau": tau,
            "alpha": alpha, "significant": p_value <= alpha, "enough_data": False}


def msprt(estimate: float, variance: float, tau: float, alpha: float = 0.05,
          previous: Mapping | None = None) -> dict:
    """The mixture SPRT at one look, for a difference ``estimate`` (arm - control) with sampling
    ``variance``, mixing standard deviation ``tau``.

    Returns ``p_value`` (always valid), ``estimate``, ``ci`` (the always-valid confidence sequence
    at level 1 - alpha), ``variance``, ``tau``, ``alpha``, ``significant`` (p_value <= alpha) and
    ``enough_data``. Pass the previous look's result as ``previous`` (same tau and alpha) to get
    the running minimum p-value and the running intersection of the intervals; without it the
    p-value is that of this look alone, larger but just as valid.
    """
    estimate = check_real("estimate", estimate, low=-MAX_ESTIMATE, high=MAX_ESTIMATE,
                          low_open=False, high_open=False)
    variance = check_real("variance", variance, low=MIN_VARIANCE, high=MAX_VARIANCE,
                          low_open=False, high_open=False)
    tau = check_real("tau", tau, low=MIN_TAU, high=MAX_TAU, low_open=False, high_open=False)
    alpha = check_alpha(alpha)
    mixed_sd = math.sqrt(variance + tau * tau)
    log_ratio = float(scipy_stats.norm.logpdf(estimate, scale=mixed_sd)
                      - scipy_stats.norm.logpdf(estimate, scale=math.sqrt(variance)))
    p_value = 1.0 if log_ratio <= 0 else math.exp(-log_ratio)  # exp underflows to 0.0, never nan
    radius = math.sqrt(variance * (variance + tau * tau) / (tau * tau)
                       * (2 * math.log(1 / alpha) + math.log1p(tau * tau / variance)))
    low, high = estimate - radius, estimate + radius
    previous_p, previous_ci = _previous(previous)
    if previous_p is not None:
        p_value = min(p_value, previous_p)
    if previous_ci is not None:
        previous_low, previous_high = previous_ci
        # The intersection is empty only when the sequence has already missed (probability at
        # most alpha); then this look's interval is the honest one to show.
        if max(low, previous_low) <= min(high, previous_high):
            low, high = max(low, previous_low), min(high, previous_high)
    if not all(math.isfinite(value) for value in (p_value, low, high)):  # the bounds prevent it
        raise ValueError(f"estimate, variance and tau ({estimate!r}, {variance!r}, {tau!r}) "
                         "give no finite test")
    return {"p_value": p_value, "estimate": estimate, "ci": (low, high), "variance": variance,
            "tau": tau, "alpha": alpha, "significant": p_value <= alpha, "enough_data": True}


def _tau_from(relative_tau: float, tau: float | None, scale: float) -> float | None:
    if tau is not None:
        return check_real("tau", tau, low=MIN_TAU, high=MAX_TAU, low_open=False, high_open=False)
    relative_tau = check_real("relative_tau", relative_tau, low=0.0, high=100.0, high_open=False)
    tau = relative_tau * scale
    return tau if MIN_TAU <= tau <= MAX_TAU else None


def msprt_proportions(successes_a: int, n_a: int, successes_b: int, n_b: int, *,
                      tau: float | None = None, relative_tau: float = DEFAULT_RELATIVE_TAU,
                      alpha: float = 0.05, previous: Mapping | None = None) -> dict:
    """mSPRT for rate_b - rate_a (b the arm, a the control), unpooled normal approximation.
    ``tau`` defaults to ``relative_tau`` times the pooled rate. Too little data (an empty arm, or
    no variance yet, e.g. no click at all) gives ``enough_data: False`` and p = 1."""
    successes_a, n_a = check_successes(successes_a, n_a, "successes_a", "n_a")
    successes_b, n_b = check_successes(successes_b, n_b, "successes_b", "n_b")
    alpha = check_alpha(alpha)
    if n_a == 0 or n_b == 0:
        return _not_enough(None, alpha, tau, previous)
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    tau = _tau_from(relative_tau, tau, (successes_a + successes_b) / (n_a + n_b))
    variance = rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b
    if tau is None or variance < MIN_VARIANCE:
        return _not_enough(rate_b - rate_a, alpha, tau, previous)
    return msprt(rate_b - rate_a, variance, tau, alpha, previous)


def msprt_means(total_a: float, total_sq_a: float, n_a: int, total_b: float, total_sq_b: float,
                n_b: int, *, tau: float | None = None, relative_tau: float = DEFAULT_RELATIVE_TAU,
                alpha: float = 0.05, previous: Mapping | None = None) -> dict:
    """mSPRT for mean_b - mean_a from sums and sums of squares (Welch-style variance).
    ``tau`` defaults to ``relative_tau`` times the absolute pooled mean."""
    total_a, total_b = _check_total(total_a, "total_a"), _check_total(total_b, "total_b")
    total_sq_a = _check_total_sq(total_sq_a, "total_sq_a")
    total_sq_b = _check_total_sq(total_sq_b, "total_sq_b")
    n_a, n_b = check_count(n_a, "n_a"), check_count(n_b, "n_b")
    alpha = check_alpha(alpha)
    if n_a < 2 or n_b < 2:
        return _not_enough(None, alpha, tau, previous)
    mean_a, mean_b = total_a / n_a, total_b / n_b
    tau = _tau_from(relative_tau, tau, abs(total_a + total_b) / (n_a + n_b))
    variance = (_sample_variance(total_a, total_sq_a, n_a) / n_a
                + _sample_variance(total_b, total_sq_b, n_b) / n_b)
    if tau is None or variance < MIN_VARIANCE:
        return _not_enough(mean_b - mean_a, alpha, tau, previous)
    return msprt(mean_b - mean_a, variance, tau, alpha, previous)


def ratio_variance(numerator: float, numerator_sq: float, denominator: float,
                   denominator_sq: float, cross: float, n: int) -> float:
    """Delta-method variance of sum(y) / sum(x) over n independent units (visits), from the sums
    of y, y^2, x, x^2 and x*y: the variance of a click-through rate when clicks cluster by visit."""
    n = check_count(n, "n")
    numerator, denominator = _check_total(numerator, "numerator"), _check_total(denominator, "denominator")
    numerator_sq = _check_total_sq(numerator_sq, "numerator_sq")
    denominator_sq = _check_total_sq(denominator_sq, "denominator_sq")
    cross = check_real("cross", cross, low=-MAX_TOTAL_SQ, high=MAX_TOTAL_SQ, low_open=False,
                       high_open=False)
    if n < 2 or denominator < 1e-50:
        raise ValueError("a ratio's variance needs n >= 2 and a positive denominator")
    ratio = numerator / denominator
    mean_x = denominator / n
    var_y = _sample_variance(numerator, numerator_sq, n)
    var_x = _sample_variance(denominator, denominator_sq, n)
    cov_xy = (cross - numerator * denominator / n) / (n - 1)
    variance = (var_y - 2 * ratio * cov_xy + ratio * ratio * var_x) / (n * mean_x * mean_x)
    if not math.isfinite(variance):
        raise ValueError("numerator and denominator give no finite ratio variance (out of range)")
    return max(0.0, variance)


# --- planning ------------------------------------------------------------------------------------

def sample_size(baseline_rate: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Visits (or impressions, for CTR) per arm that a fixed-horizon two-sided test needs to find
    an absolute lift ``mde`` over ``baseline_rate`` (statsmodels NormalIndPower with Cohen's h).
    The sequential test needs more on average when there is no effect, and fewer when the effect
    is larger than planned; this is the figure to show before start."""
    baseline_rate = check_rate(baseline_rate, "baseline_rate")
    mde = check_real("mde", mde, low=0.0)
    alpha, power = check_alpha(alpha), check_power(power)
    if baseline_rate + mde >= 1:
        raise ValueError(f"mde must keep baseline_rate + mde below 1, got {baseline_rate} + {mde}")
    effect = float(proportion_effectsize(baseline_rate + mde, baseline_rate))
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0,
                                     alternative="two-sided")
    n = float(np.asarray(n).reshape(-1)[0])
    if not math.isfinite(n) or n > MAX_SAMPLE_SIZE:
        raise ValueError(f"mde {mde} is too small to detect: it needs more than {MAX_SAMPLE_SIZE} per arm")
    return max(2, math.ceil(n))


def mde_for(n_per_arm: int, baseline_rate: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest absolute lift over ``baseline_rate`` that ``n_per_arm`` per arm detects with
    the given power (the inverse of ``sample_size``)."""
    n_per_arm = check_count(n_per_arm, "n_per_arm")
    if n_per_arm < 2:
        raise ValueError(f"n_per_arm must be >= 2, got {n_per_arm}")
    baseline_rate = check_rate(baseline_rate, "baseline_rate")
    alpha, power = check_alpha(alpha), check_power(power)
    effect = NormalIndPower().solve_power(effect_size=None, nobs1=n_per_arm, alpha=alpha,
                                          power=power, ratio=1.0, alternative="two-sided")
    effect = float(np.asarray(effect).reshape(-1)[0])
    angle = math.asin(math.sqrt(baseline_rate)) + effect / 2  # Cohen's h = 2 asin(sqrt p2) - 2 asin(sqrt p1)
    if not math.isfinite(effect) or effect <= 0 or angle >= math.pi / 2:
        raise ValueError(f"n_per_arm {n_per_arm} is too small to detect any lift over "
                         f"baseline_rate {baseline_rate} with power {power}")
    return math.sin(angle) ** 2 - baseline_rate


# --- sample ratio mismatch -----------------------------------------------------------------------

def srm(observed: Sequence[int], shares: Sequence[float], alpha: float = 0.001) -> dict:
    """Sample-ratio-mismatch check: Pearson's chi-square (scipy ``chisquare``) of the visits per
    arm against the configured shares. A mismatch means assignment or counting is broken (bots,
    redirects, a lost event) and the results must not be trusted. alpha is small (0.001) because
    the check runs at every look."""
    normalised = check_shares(shares)
    alpha = check_alpha(alpha)
    if isinstance(observed, (str, bytes)) or not isinstance(observed, Sequence):
        raise ValueError(f"observed must be a sequence of counts, got {observed!r}")
    counts = [check_count(value, f"observed[{i}]") for i, value in enumerate(observed)]
    if len(counts) != len(normalised) or len(counts) < 2:
        raise ValueError(f"observed must have one count per arm (at least 2), got {len(counts)} "
                         f"counts for {len(normalised)} shares")
    total = sum(counts)
    expected = [total * share for share in normalised]
    if total == 0:
        return {"p_value": 1.0, "statistic": 0.0, "expected": expected, "mismatch": False,
                "enough_data": False}
    statistic, p_value = scipy_stats.chisquare(counts, f_exp=expected)
    return {"p_value": float(p_value), "statistic": float(statistic), "expected": expected,
            "mismatch": bool(p_value < alpha),
            # the chi-square approximation wants about 5 expected per arm
            "enough_data": min(expected) >= 5}


# --- reports -------------------------------------------------------------------------------------

def _rate(successes: int, n: int, alpha: float) -> dict:
    if n == 0:
        return {"value": None, "ci": None}
    return {"value": successes / n, "ci": proportion_ci(successes, n, alpha)}


def _mean(total: float, total_sq: float, n: int, alpha: float) -> dict:
    if n < 2:
        return {"value": total / n if n else None, "ci": None}
    return {"value": total / n, "ci": mean_ci(total, total_sq, n, alpha)}


def _ctr_test(control: ArmTotals, arm: ArmTotals, alpha, relative_tau, previous):
    alpha = check_alpha(alpha)
    if control.clicks_sq is None or arm.clicks_sq is None:
        return msprt_proportions(control.clicks, control.impressions, arm.clicks, arm.impressions,
                                 relative_tau=relative_tau, alpha=alpha, previous=previous)
    if min(control.visits, arm.visits) < 2 or min(control.impressions, arm.impressions) == 0:
        return _not_enough(None, alpha, None, previous)
    rate_a, rate_b = control.clicks / control.impressions, arm.clicks / arm.impressions
    variance = sum(ratio_variance(t.clicks, t.clicks_sq, t.impressions, t.impressions_sq,
                                  t.clicks_impressions, t.visits) for t in (control, arm))
    pooled = (control.clicks + arm.clicks) / (control.impressions + arm.impressions)
    tau = _tau_from(relative_tau, None, pooled)
    if tau is None or variance < MIN_VARIANCE:
        return _not_enough(rate_b - rate_a, alpha, tau, previous)
    return msprt(rate_b - rate_a, variance, tau, alpha, previous)


def difference_test(metric: str, control: ArmTotals, arm: ArmTotals, alpha: float = 0.05, *,
                    relative_tau: float = DEFAULT_RELATIVE_TAU,
                    previous: Mapping | None = None) -> dict:
    """The mSPRT of arm - control for one of ``METRICS`` (the result of ``msprt``)."""
    if not isinstance(control, ArmTotals) or not isinstance(arm, ArmTotals):
        raise ValueError("control and arm must be ArmTotals")
    if metric == "ctr":
        return _ctr_test(control, arm, alpha, relative_tau, previous)
    if metric == "add_to_cart_rate":
        return msprt_proportions(control.add_to_carts, control.visits, arm.add_to_carts,
                                 arm.visits, relative_tau=relative_tau, alpha=alpha,
                                 previous=previous)
    if metric == "conversion":
        return msprt_proportions(control.orders, control.visits, arm.orders, arm.visits,
                                 relative_tau=relative_tau, alpha=alpha, previous=previous)
    if metric == "revenue_per_visit":
        return msprt_means(control.revenue, control.revenue_sq, control.visits, arm.revenue,
                           arm.revenue_sq, arm.visits, relative_tau=relative_tau, alpha=alpha,
                           previous=previous)
    raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")


def arm_report(control: ArmTotals, arm: ArmTotals, alpha: float = 0.05, *,
               relative_tau: float = DEFAULT_RELATIVE_TAU,
               previous: Mapping | None = None) -> dict:
    """Per metric (``METRICS``: ctr, add_to_cart_rate, conversion, revenue_per_visit): the
    control's and the arm's value with its (1 - alpha) interval (Wilson for rates, t for revenue),
    the difference arm - control and relative difference, the always-valid p-value and confidence
    sequence of the difference, ``significant`` and ``enough_data``.

    ``previous``: this function's result at the previous look of the same pair, for the running
    minimum p-value (keep it to make daily looks as powerful as the test allows)."""
    if not isinstance(control, ArmTotals) or not isinstance(arm, ArmTotals):
        raise ValueError("control and arm must be ArmTotals")
    alpha = check_alpha(alpha)
    previous = previous or {}
    tests = {metric: difference_test(metric, control, arm, alpha, relative_tau=relative_tau,
                                     previous=previous.get(metric))
             for metric in METRICS}
    values = {
        "ctr": lambda t: _rate(t.clicks, t.impressions, alpha),
        "add_to_cart_rate": lambda t: _rate(t.add_to_carts, t.visits, alpha),
        "conversion": lambda t: _rate(t.orders, t.visits, alpha),
        "revenue_per_visit": lambda t: _mean(t.revenue, t.revenue_sq, t.visits, alpha),
    }
    report = {}
    for metric in METRICS:
        test = tests[metric]
        control_value, arm_value = values[metric](control), values[metric](arm)
        difference = None
        relative = None
        if control_value["value"] is not None and arm_value["value"] is not None:
            difference = arm_value["value"] - control_value["value"]
            if control_value["value"] > 0:
                relative = difference / control_value["value"]
        report[metric] = {
            "control": control_value, "arm": arm_value, "difference": difference,
            "relative_difference": relative, "ci": test["ci"], "p_value": test["p_value"],
            "significant": test["significant"], "enough_data": test["enough_data"],
            "tau": test["tau"], "alpha": alpha,
        }
    return report


def interleaving_report(wins_a: int, wins_b: int, ties: int, alpha: float = 0.05, *,
                        tau: float = DEFAULT_INTERLEAVING_TAU,
                        previous: Mapping | None = None) -> dict:
    """The interleaving result: B's share of the decided visits (ties left out) with its Wilson
    interval, and the mSPRT of that share against 1/2 (variance 1/(4n), the largest a share can
    have, so the test is valid without estimating it). ``winner`` is "A", "B" or None."""
    wins_a, wins_b, ties = (check_count(wins_a, "wins_a"), check_count(wins_b, "wins_b"),
                            check_count(ties, "ties"))
    alpha = check_alpha(alpha)
    tau = check_real("tau", tau, low=MIN_TAU, high=1.0, low_open=False, high_open=False)
    decided = wins_a + wins_b
    result = {"wins_a": wins_a, "wins_b": wins_b, "ties": ties, "visits": decided + ties,
              "share_b": None, "share_ci": None, "ci": None, "p_value": 1.0,
              "significant": False, "winner": None, "enough_data": False, "tau": tau,
              "alpha": alpha}
    previous_p, previous_ci = _previous(previous)
    if previous_p is not None:
        result["p_value"] = previous_p
        result["ci"] = previous_ci
    if decided == 0:
        return result
    share_b = wins_b / decided
    previous_test = None
    if previous_p is not None:
        previous_test = {"p_value": previous_p, "ci": None if previous_ci is None else
                         (previous_ci[0] - 0.5, previous_ci[1] - 0.5)}
    test = msprt(share_b - 0.5, 0.25 / decided, tau, alpha, previous_test)
    low, high = test["ci"]
    winner = None
    if test["significant"]:
        # The direction comes from the (running) confidence sequence, which a significant running
        # minimum keeps off 1/2, not from today's share alone.
        if low > 0 or high < 0:
            winner = "B" if low > 0 else "A"
        elif previous is not None and previous.get("winner"):
            winner = previous["winner"]  # the sequence has missed (rare): keep the decision made
        elif share_b != 0.5:
            winner = "B" if share_b > 0.5 else "A"
    result.update({
        "share_b": share_b, "share_ci": proportion_ci(wins_b, decided, alpha),
        "ci": (max(0.0, low + 0.5), min(1.0, high + 0.5)), "p_value": test["p_value"],
        "significant": test["significant"], "enough_data": True, "winner": winner,
    })
    return result
