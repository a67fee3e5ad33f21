"""Team-draft interleaving: fair prefixes, deterministic per seed, duplicates shown once and
credited to the team that picked them, short lists, and the credit of clicks."""
import pytest

from recommendations.experiments.interleaving import (
    TIE,
    WIN_A,
    WIN_B,
    credit,
    credit_items,
    interleaving_outcome,
    team_draft,
)

A = list(range(100, 120))
B = list(range(200, 220))


def test_a_known_draw():
    # Coin A, then B's turn (3), coin A (2; 1 is shown), B (5: 3 and 1 are shown), coin A (4).
    assert team_draft([1, 2, 3, 4], [3, 5, 1, 6], 5, "x") == ([1, 3, 2, 5, 4], [0, 1, 0, 1, 0])


def test_deterministic_for_a_seed_and_varied_across_seeds():
    assert team_draft(A, B, 10, "visit-7|home") == team_draft(A, B, 10, "visit-7|home")
    draws = {tuple(team_draft(A, B, 10, f"visit-{i}")[1]) for i in range(50)}
    assert len(draws) > 10


def test_every_prefix_is_fair_and_each_team_keeps_its_order():
    for seed in range(200):
        items, teams = team_draft(A, B, 15, str(seed))
        assert len(items) == 15 and len(set(items)) == 15
        for end in range(1, 16):
            prefix = teams[:end]
            assert abs(prefix.count(0) - prefix.count(1)) <= 1
        assert [item for item, team in zip(items, teams) if team == 0] == A[:teams.count(0)]
        assert [item for item, team in zip(items, teams) if team == 1] == B[:teams.count(1)]


def test_the_first_pick_is_a_fair_coin():
    first = [team_draft(A, B, 4, f"seed-{i}")[1][0] for i in range(2000)]
    assert 900 < first.count(0) < 1100


def test_duplicates_are_shown_once_and_credited_to_the_picker():
    items, teams = team_draft([1, 2, 3], [1, 2, 3], 3, "s")
    assert items == [1, 2, 3]
    assert abs(teams.count(0) - teams.count(1)) <= 1
    items, teams = team_draft([1, 1, 2], [2, 2, 3], 10, "s")
    assert sorted(items) == [1, 2, 3]
    for item, team in zip(items, teams):
        assert item in ([1, 1, 2], [2, 2, 3])[team]


def test_k_larger_than_the_lists():
    items, teams = team_draft([1, 2], [2, 3], 10, "s")
    assert sorted(items) == [1, 2, 3]
    assert team_draft([1, 2], [], 5, "s") == ([1, 2], [0, 0])
    assert team_draft([], [7], 5, "s") == ([7], [1])
    assert team_draft([], [], 5, "s") == ([], [])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        team_draft(A, B, 0, "s")
    with pytest.raises(ValueError, match="seed must be a string"):
        team_draft(A, B, 3, 5)
    with pytest.raises(ValueError, match="list_b must be a sequence"):
        team_draft(A, "abc", 3, "s")


def test_credit_counts_each_clicked_position_once_for_its_team():
    teams = [0, 1, 0, 1]
    assert credit(teams, {0, 2, 3}) == (2, 1)
    assert credit(teams, [1, 1, 1]) == (0, 1)
    assert credit(teams, []) == (0, 0)
    with pytest.raises(ValueError, match="clicked position 4"):
        credit(teams, [4])


def test_credit_by_item_ignores_items_not_served_in_the_list():
    items, teams = [10, 20, 30, 40], [1, 0, 0, 1]
    assert credit_items(items, teams, [10, 30, 99]) == (1, 1)
    with pytest.raises(ValueError, match="same length"):
        credit_items(items, teams[:2], [10])


def test_outcome_per_visit():
    assert interleaving_outcome(2, 1) == WIN_A
    assert interleaving_outcome(0, 3) == WIN_B
    assert interleaving_outcome(0, 0) == TIE
    assert interleaving_outcome(2, 2) == TIE
    with pytest.raises(ValueError, match="clicks_b"):
        interleaving_outcome(1, -1)
