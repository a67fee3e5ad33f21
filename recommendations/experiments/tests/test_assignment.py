"""Assignment: stable per visit, uniform, respects the shares, independent between salts."""
import re

import numpy as np
import pytest
from scipy import stats

from recommendations.experiments.assignment import arm_for, arms_for, new_salt, unit_hash

IDS = [f"visit-{i}" for i in range(20_000)]


def test_the_hash_is_pinned_so_a_running_experiment_never_reshuffles():
    # blake2b-64 of len(salt) + salt + visit id; changing the function would move visits between
    # the arms of every running experiment.
    assert unit_hash("visit-1", "salt") == 0.3778034022111564
    assert arm_for("visit-1", "salt", [1, 1]) == 0
    assert arm_for("visit-1", "salt", [0.3, 0.7]) == 1
    assert arm_for("visit-1", "salt", [0.4, 0.6]) == 0


def test_sticky_per_visit():
    salt = new_salt()
    first = arms_for(IDS[:500], salt, [1, 1, 1])
    assert [arm_for(visit, salt, [1, 1, 1]) for visit in IDS[:500]] == first
    assert arms_for(IDS[:500], salt, [1, 1, 1]) == first


def test_uniform_over_20k_visits():
    arms = arms_for(IDS, "uniform-salt", [1, 1, 1])
    counts = np.bincount(arms, minlength=3)
    assert counts.sum() == 20_000
    assert stats.chisquare(counts).pvalue > 0.001


def test_shares_are_respected_and_normalised():
    arms = arms_for(IDS, "share-salt", [1, 3])
    counts = np.bincount(arms, minlength=2)
    assert stats.chisquare(counts, f_exp=[5_000, 15_000]).pvalue > 0.001
    assert abs(counts[1] / 20_000 - 0.75) < 0.015
    assert arms_for(IDS[:300], "share-salt", [0.25, 0.75]) == arms[:300]


def test_independent_between_salts():
    table = np.zeros((2, 2))
    for a, b in zip(arms_for(IDS, "experiment-1", [1, 1]), arms_for(IDS, "experiment-2", [1, 1])):
        table[a, b] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001
    # The same check does see dependence: one salt against itself is one diagonal.
    same = np.zeros((2, 2))
    for a in arms_for(IDS[:2000], "experiment-1", [1, 1]):
        same[a, a] += 1
    assert stats.chi2_contingency(same).pvalue < 1e-6


def test_salt_and_visit_id_do_not_run_into_each_other():
    assert unit_hash("c", "ab") != unit_hash("bc", "a")


def test_new_salts_are_random_hex():
    salts = {new_salt() for _ in range(50)}
    assert len(salts) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", salt) for salt in salts)


@pytest.mark.parametrize(("shares", "message"), [
    ([], "shares must not be empty"),
    ([0, 1], r"shares\[0\] must be > 0"),
    ([1, -2], r"shares\[1\] must be > 0"),
    ([1, float("nan")], r"shares\[1\] must be finite"),
    ("ab", "shares must be a sequence"),
    ([1, "x"], r"shares\[1\] must be a number"),
])
def test_bad_shares_are_named(shares, message):
    with pytest.raises(ValueError, match=message):
        arm_for("visit-1", "salt", shares)


def test_bad_ids_and_salts_are_named():
    with pytest.raises(ValueError, match="visit_id must be a non-empty string"):
        arm_for("", "salt", [1, 1])
    with pytest.raises(ValueError, match="salt must be a non-empty string"):
        arm_for("visit-1", "", [1, 1])
    with pytest.raises(ValueError, match="visit_id"):
        arm_for(17, "salt", [1, 1])
