"""A scripted shopper population to test experiments with: visits arrive day by day, each is
assigned to an arm by ``assignment.arms_for`` (A/B) or sees the team-draft interleaving of both
arms' lists (interleaving), and clicks with a probability that is higher by a known relative margin
for the better arm's recommendations. Staff look once a day with the sequential test and stop at
significance or at a maximum number of visits.

The world is the same in both modes, item by item: a recommendation from the better arm's list is
clicked with probability ``base_ctr * (1 + lift)``, any other with ``base_ctr``, each times the
visit's own propensity (a Gamma draw with mean 1: some shoppers click a lot, most little; this
between-visit spread is what interleaving cancels by comparing both arms inside one visit). Clicks
lead to add-to-carts, add-to-carts to orders, orders to revenue.

``power``, ``aa_false_positive_rate`` and ``visits_needed`` repeat runs with seeded numpy
Generators, so every figure is reproducible from its seed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from recommendations.experiments.assignment import arms_for
from recommendations.experiments.interleaving import TEAM_B, team_draft
from recommendations.experiments.stats import (
    DEFAULT_INTERLEAVING_TAU,
    DEFAULT_RELATIVE_TAU,
    ArmTotals,
    difference_test,
    interleaving_report,
)
from recommendations.experiments.validation import (
    check_alpha,
    check_count,
    check_rate,
    check_real,
)

MODES = ("ab", "interleaving")


@dataclass(frozen=True)
class Shoppers:
    """The population: ``k`` recommendations per visit; ``base_ctr`` per recommendation of the
    worse arm; ``lift`` the better arm's relative margin; ``propensity_shape`` the Gamma shape of
    the per-visit propensity (mean 1; smaller is more spread; 0 means identical shoppers);
    ``overlap`` the share of the worse arm's list that the better arm also recommends; then the
    funnel after a click."""

    base_ctr: float = 0.05
    lift: float = 0.10
    k: int = 10
    propensity_shape: float = 1.0
    overlap: float = 0.0
    add_to_cart_per_click: float = 0.2
    order_per_add_to_cart: float = 0.4
    mean_order_value: float = 50.0

    def __post_init__(self):
        check_rate(self.base_ctr, "base_ctr")
        check_real("lift", self.lift, low=-1.0)
        if self.base_ctr * (1 + self.lift) >= 1:
            raise ValueError("lift must keep base_ctr * (1 + lift) below 1")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        check_real("propensity_shape", self.propensity_shape, low=0.0, low_open=False)
        check_real("overlap", self.overlap, low=0.0, high=1.0, low_open=False, high_open=True)
        check_rate(self.add_to_cart_per_click, "add_to_cart_per_click")
        check_rate(self.order_per_add_to_cart, "order_per_add_to_cart")
        check_real("mean_order_value", self.mean_order_value, low=0.0)

    def propensities(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.propensity_shape == 0:
            return np.ones(n)
        return rng.gamma(self.propensity_shape, 1 / self.propensity_shape, size=n)

    def clicks(self, rng, propensity: np.ndarray, better_items: np.ndarray,
               other_items: np.ndarray, better_exists: bool) -> tuple[np.ndarray, np.ndarray]:
        """Clicks on the better arm's items and on the others, per visit."""
        high = self.base_ctr * (1 + self.lift) if better_exists else self.base_ctr
        p_high = np.minimum(1.0, high * propensity)
        p_low = np.minimum(1.0, self.base_ctr * propensity)
        return rng.binomial(better_items, p_high), rng.binomial(other_items, p_low)

    def funnel(self, rng, clicks: np.ndarray):
        """Per visit: whether it added to cart, whether it ordered, and its revenue."""
        p_cart = 1 - (1 - self.add_to_cart_per_click) ** clicks
        carted = rng.random(clicks.size) < p_cart
        ordered = carted & (rng.random(clicks.size) < self.order_per_add_to_cart)
        revenue = np.where(ordered, rng.gamma(2.0, self.mean_order_value / 2, size=clicks.size), 0.0)
        return carted, ordered, revenue


@dataclass
class RunResult:
    """One simulated experiment: the arm declared better (None: no decision), the visits and days
    it took, and the last p-value."""

    decision: int | None
    visits: int
    days: int
    p_value: float
    totals: list = field(default_factory=list)


@dataclass
class _Totals:
    visits: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    orders: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0
    impressions_sq: int = 0
    clicks_sq: int = 0
    clicks_impressions: int = 0

    def add(self, k: int, clicks, carted, ordered, revenue):
        n = int(clicks.size)
        self.visits += n
        self.impressions += n * k
        self.impressions_sq += n * k * k
        self.clicks += int(clicks.sum())
        self.clicks_sq += int((clicks * clicks).sum())
        self.clicks_impressions += int(clicks.sum()) * k
        self.add_to_carts += int(carted.sum())
        self.orders += int(ordered.sum())
        self.revenue += float(revenue.sum())
        self.revenue_sq += float((revenue * revenue).sum())

    def frozen(self) -> ArmTotals:
        return ArmTotals(**self.__dict__)


def _check_run(better, visits_per_day, max_visits, alpha):
    if better not in (None, 0, 1):
        raise ValueError(f"better must be 0, 1 or None (A/A), got {better!r}")
    visits_per_day = check_count(visits_per_day, "visits_per_day")
    max_visits = check_count(max_visits, "max_visits")
    if visits_per_day < 1 or max_visits < visits_per_day:
        raise ValueError("visits_per_day must be >= 1 and max_visits >= visits_per_day")
    return visits_per_day, max_visits, check_alpha(alpha)


def run_ab(shoppers: Shoppers, better: int | None, rng: np.random.Generator, *,
           visits_per_day: int = 1000, max_visits: int = 100_000, alpha: float = 0.05,
           metric: str = "ctr", relative_tau: float = DEFAULT_RELATIVE_TAU,
           shares: Sequence[float] = (0.5, 0.5)) -> RunResult:
    """An A/B test of arm 1 against control arm 0 (``better``: the arm whose recommendations
    shoppers prefer, None for A/A), looked at daily with the mSPRT on ``metric``."""
    visits_per_day, max_visits, alpha = _check_run(better, visits_per_day, max_visits, alpha)
    salt = rng.bytes(16).hex()
    totals = [_Totals(), _Totals()]
    overlap_items = round(shoppers.k * shoppers.overlap)
    previous = None
    visits = days = 0
    while visits < max_visits:
        n = min(visits_per_day, max_visits - visits)
        arms = np.asarray(arms_for((f"v{visits + i}" for i in range(n)), salt, shares))
        visits += n
        days += 1
        for arm in (0, 1):
            size = int((arms == arm).sum())
            if size == 0:
                continue
            propensity = shoppers.propensities(rng, size)
            # The better arm shows only its own items; the other shows the shared ones among its k.
            better_items = shoppers.k if better == arm else overlap_items
            high, low = shoppers.clicks(rng, propensity, np.full(size, better_items),
                                        np.full(size, shoppers.k - better_items), better is not None)
            clicks = high + low
            carted, ordered, revenue = shoppers.funnel(rng, clicks)
            totals[arm].add(shoppers.k, clicks, carted, ordered, revenue)
        test = difference_test(metric, totals[0].frozen(), totals[1].frozen(), alpha,
                               relative_tau=relative_tau, previous=previous)
        previous = test
        if test["significant"]:
            return RunResult(1 if test["estimate"] > 0 else 0, visits, days, test["p_value"],
                             [t.frozen() for t in totals])
    return RunResult(None, visits, days, previous["p_value"], [t.frozen() for t in totals])


def _lists(shoppers: Shoppers, rng) -> tuple[list[int], list[int]]:
    """The two arms' lists for one run: the better list is items 0..k-1, the other shares
    ``overlap`` of its items (at random ranks) and fills up with its own."""
    k = shoppers.k
    shared = [int(i) for i in rng.choice(k, size=round(k * shoppers.overlap), replace=False)]
    other = shared + list(range(k, 2 * k - len(shared)))
    rng.shuffle(other)
    return list(range(k)), [int(i) for i in other]


def run_interleaving(shoppers: Shoppers, better: int | None, rng: np.random.Generator, *,
                     visits_per_day: int = 1000, max_visits: int = 100_000, alpha: float = 0.05,
                     tau: float = DEFAULT_INTERLEAVING_TAU) -> RunResult:
    """Every visit sees the team-draft interleaving of arm 0's (A) and arm 1's (B) lists, seeded
    by the visit; a visit is won by the arm whose items got more clicks. Looked at daily with the
    mSPRT of B's share of the won visits."""
    visits_per_day, max_visits, alpha = _check_run(better, visits_per_day, max_visits, alpha)
    salt = rng.bytes(8).hex()
    better_list, other_list = _lists(shoppers, rng)
    lists = (better_list, other_list) if better != 1 else (other_list, better_list)
    better_set = set(better_list)
    wins = [0, 0]
    ties = 0
    previous = None
    visits = days = 0
    while visits < max_visits:
        n = min(visits_per_day, max_visits - visits)
        # Per visit and team: how many of its shown items are the better arm's, and how many not.
        counts = np.zeros((n, 2, 2), dtype=np.int64)
        for i in range(n):
            items, teams = team_draft(lists[0], lists[1], shoppers.k, f"{salt}:v{visits + i}")
            for item, team in zip(items, teams):
                counts[i, team, 0 if item in better_set else 1] += 1
        propensity = shoppers.propensities(rng, n)
        clicks = np.zeros((n, 2), dtype=np.int64)
        for team in (0, 1):
            high, low = shoppers.clicks(rng, propensity, counts[:, team, 0], counts[:, team, 1],
                                        better is not None)
            clicks[:, team] = high + low
        wins[0] += int((clicks[:, 0] > clicks[:, 1]).sum())
        wins[1] += int((clicks[:, 1] > clicks[:, 0]).sum())
        ties += int((clicks[:, 0] == clicks[:, 1]).sum())
        visits += n
        days += 1
        report = interleaving_report(wins[0], wins[1], ties, alpha, tau=tau, previous=previous)
        previous = report
        if report["significant"]:
            return RunResult(TEAM_B if report["winner"] == "B" else 0, visits, days,
                             report["p_value"], [tuple(wins), ties])
    return RunResult(None, visits, days, previous["p_value"], [tuple(wins), ties])


def simulate(mode: str, shoppers: Shoppers, better: int | None, runs: int, seed: int,
             **options) -> list[RunResult]:
    """``runs`` independent experiments (each its own child of ``seed``'s SeedSequence)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    runs = check_count(runs, "runs")
    if runs < 1:
        raise ValueError("runs must be >= 1")
    run = run_ab if mode == "ab" else run_interleaving
    children = np.random.SeedSequence(check_count(seed, "seed")).spawn(runs)
    return [run(shoppers, better, np.random.default_rng(child), **options) for child in children]


def power(mode: str = "ab", shoppers: Shoppers | None = None, *, runs: int = 100, seed: int = 0,
          better: int = 1, **options) -> float:
    """The share of runs that declare the better arm better (within ``max_visits``)."""
    results = simulate(mode, shoppers or Shoppers(), better, runs, seed, **options)
    return sum(result.decision == better for result in results) / len(results)


def aa_false_positive_rate(mode: str = "ab", shoppers: Shoppers | None = None, *,
                           runs: int = 100, seed: int = 0, **options) -> float:
    """The share of A/A runs (no better arm) that declare a winner at any daily look."""
    results = simulate(mode, shoppers or Shoppers(), None, runs, seed, **options)
    return sum(result.decision is not None for result in results) / len(results)


def summary(results: Sequence[RunResult], better: int | None) -> dict:
    """Figures of a batch of runs: ``decided_right`` (the power, or for A/A with ``better`` None
    the share that declared any winner: the false-positive rate), and the visits to a correct
    decision: median and quartiles, where a run that decides wrongly or not at all counts as never
    (None when fewer than the quantile's share decide right)."""
    if better is None:
        wrong = sum(result.decision is not None for result in results)
        return {"runs": len(results), "false_positive_rate": wrong / len(results)}
    needed = np.array([result.visits if result.decision == better else math.inf
                       for result in results])

    def quantile(q):
        value = float(np.quantile(needed, q, method="inverted_cdf"))
        return value if math.isfinite(value) else None

    return {"runs": len(results), "correct": float(np.isfinite(needed).mean()),
            "wrong": sum(result.decision not in (None, better) for result in results) / len(results),
            "median": quantile(0.5), "q25": quantile(0.25), "q75": quantile(0.75)}


def visits_needed(mode: str = "ab", shoppers: Shoppers | None = None, *, runs: int = 100,
                  seed: int = 0, better: int = 1, **options) -> dict:
    """The median number of visits to a correct decision over ``runs`` (see ``summary``), with
    the quartiles and the share of correct decisions."""
    return summary(simulate(mode, shoppers or Shoppers(), better, runs, seed, **options), better)
