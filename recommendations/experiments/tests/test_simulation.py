"""The experiment on a small scripted shopper population: A/B and interleaving find the better
arm in most runs, identical arms (A/A) rarely produce a winner, and runs are reproducible."""
import numpy as np
import pytest

from recommendations.experiments.simulation import (
    Shoppers,
    aa_false_positive_rate,
    power,
    run_ab,
    run_interleaving,
    simulate,
    visits_needed,
)

# A large margin keeps the runs short; the bench measures the realistic +10%.
STRONG = Shoppers(base_ctr=0.05, lift=0.3)


def test_ab_finds_the_better_arm_in_most_runs():
    assert power("ab", STRONG, runs=20, seed=1, max_visits=30_000) >= 0.85
    # ... whichever arm it is.
    assert power("ab", STRONG, runs=10, seed=2, better=0, max_visits=30_000) >= 0.8


def test_interleaving_finds_the_better_arm_in_most_runs():
    assert power("interleaving", STRONG, runs=10, seed=3, max_visits=20_000) >= 0.8
    assert power("interleaving", STRONG, runs=5, seed=4, better=0, max_visits=20_000) >= 0.8


def test_aa_declares_a_winner_at_most_about_alpha():
    # 80 runs of 30 daily looks each. The mSPRT's rate is at most alpha = 0.05 (0 of these 80
    # runs); a correct test passes the bound 0.15 with probability > 0.999 (Binomial(80, 0.05)
    # >= 13), a naive z-test read daily fails it (23% with 20 looks, test_stats).
    rate = aa_false_positive_rate("ab", Shoppers(), runs=80, seed=5, visits_per_day=500,
                                  max_visits=15_000)
    assert rate <= 0.15


def test_runs_are_reproducible_from_the_seed():
    first = simulate("ab", STRONG, 1, runs=3, seed=9, max_visits=20_000)
    again = simulate("ab", STRONG, 1, runs=3, seed=9, max_visits=20_000)
    assert [(r.decision, r.visits, r.p_value) for r in first] == [
        (r.decision, r.visits, r.p_value) for r in again]


def test_a_run_reports_its_totals():
    result = run_ab(Shoppers(lift=0.0), None, np.random.default_rng(0), visits_per_day=400,
                    max_visits=800)
    control, arm = result.totals
    assert control.visits + arm.visits == 800 == result.visits
    assert result.days == 2
    assert control.impressions == control.visits * 10
    assert control.clicks_impressions == control.clicks * 10
    assert control.orders <= control.add_to_carts <= control.visits
    wins, ties = run_interleaving(Shoppers(), None, np.random.default_rng(0), visits_per_day=300,
                                  max_visits=300).totals
    assert sum(wins) + ties == 300


def test_visits_needed_counts_only_correct_decisions():
    needed = visits_needed("ab", STRONG, runs=6, seed=6, max_visits=30_000)
    assert needed["runs"] == 6
    assert needed["correct"] >= 0.5
    assert needed["median"] is not None and needed["median"] % 1000 == 0
    never = visits_needed("ab", Shoppers(lift=0.0001), runs=3, seed=6, max_visits=2_000)
    assert never["median"] is None and never["correct"] == 0.0


@pytest.mark.parametrize(("call", "field"), [
    (lambda: Shoppers(base_ctr=0), "base_ctr"),
    (lambda: Shoppers(base_ctr=0.6, lift=1.0), "lift"),
    (lambda: Shoppers(k=0), "k"),
    (lambda: Shoppers(overlap=1.0), "overlap"),
    (lambda: simulate("abc", Shoppers(), 1, 1, 0), "mode"),
    (lambda: simulate("ab", Shoppers(), 2, 1, 0), "better"),
    (lambda: simulate("ab", Shoppers(), 1, 0, 0), "runs"),
    (lambda: simulate("ab", Shoppers(), 1, 1, 0, visits_per_day=10, max_visits=5), "max_visits"),
    (lambda: simulate("ab", Shoppers(), 1, 1, 0, alpha=0.7), "alpha"),
])
def test_bad_options_are_named(call, field):
    with pytest.raises(ValueError, match=field):
        call()
