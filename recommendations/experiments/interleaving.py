"""Team-draft interleaving (Radlinski, Kurup and Joachims 2008) of two arms' lists in one response,
and the credit of clicks to the arm ("team") that contributed the clicked item.

Each round, the team with fewer picks so far (a seeded coin when even) adds its highest-ranked item
not already shown. An item both lists hold is shown once and belongs to the team that picked it.
Deterministic for a seed: the serving side seeds with the visit id and the request context, so a
reload shows the same list. Standard library only: web workers import this on every request.
"""
from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Sequence

TEAM_A = 0
TEAM_B = 1
WIN_A = "A"
WIN_B = "B"
TIE = "tie"


def team_draft(list_a: Sequence[int], list_b: Sequence[int], k: int,
               seed: str) -> tuple[list[int], list[int]]:
    """The interleaved list (at most ``k`` items, fewer when the two lists together hold fewer
    distinct items) and, per position, the team that contributed it (0 = A, 1 = B)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not isinstance(seed, str):
        raise ValueError(f"seed must be a string, got {seed!r}")
    for name, values in (("list_a", list_a), ("list_b", list_b)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"{name} must be a sequence of item ids, got {values!r}")
        for item in values:
            if not isinstance(item, Hashable):
                raise ValueError(f"{name} holds an item that is not an id: {item!r}")
    # random.Random seeded with a str hashes it with sha512: the same in every process and on
    # every machine (unlike hash(), which PYTHONHASHSEED changes).
    coin = random.Random(f"team-draft:{seed}")
    lists = (list_a, list_b)
    cursors = [0, 0]
    picks = [0, 0]
    shown: set = set()
    items: list[int] = []
    teams: list[int] = []

    def next_item(team: int):
        values = lists[team]
        while cursors[team] < len(values) and values[cursors[team]] in shown:
            cursors[team] += 1
        return values[cursors[team]] if cursors[team] < len(values) else None

    while len(items) < k:
        candidates = (next_item(TEAM_A), next_item(TEAM_B))
        if candidates[TEAM_A] is None and candidates[TEAM_B] is None:
            break
        if picks[TEAM_A] < picks[TEAM_B]:
            team = TEAM_A
        elif picks[TEAM_B] < picks[TEAM_A]:
            team = TEAM_B
        else:
            team = TEAM_A if coin.random() < 0.5 else TEAM_B
        if candidates[team] is None:  # this team's list is used up: the other one fills the rest
            team = 1 - team
        item = candidates[team]
        shown.add(item)
        items.append(item)
        teams.append(team)
        picks[team] += 1
    return items, teams


def credit(teams: Sequence[int], clicked: Iterable[int]) -> tuple[int, int]:
    """Clicks per team, ``(clicks_a, clicks_b)``; ``clicked`` are positions (0-based indices) in
    the interleaved list, each counted once however often it was clicked."""
    counts = [0, 0]
    for position in set(clicked):
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < len(teams):
            raise ValueError(f"clicked position {position!r} is not in the list of {len(teams)} items")
        team = teams[position]
        if team not in (TEAM_A, TEAM_B):
            raise ValueError(f"teams[{position}] must be 0 or 1, got {team!r}")
        counts[team] += 1
    return counts[0], counts[1]


def credit_items(items: Sequence[int], teams: Sequence[int],
                 clicked_items: Iterable[int]) -> tuple[int, int]:
    """Clicks per team when the clicks are known by item id; ids not in the list are ignored
    (a click the shop did not serve in this list earns no arm credit)."""
    if len(items) != len(teams):
        raise ValueError(f"items ({len(items)}) and teams ({len(teams)}) must have the same length")
    position_of = {item: position for position, item in enumerate(items)}
    return credit(teams, [position_of[item] for item in set(clicked_items) if item in position_of])


def interleaving_outcome(clicks_a: int, clicks_b: int) -> str:
    """A visit's outcome from its clicks per team over all its interleaved responses:
    ``"A"`` or ``"B"`` for the team with more clicks, ``"tie"`` when equal (also with no click)."""
    for name, value in (("clicks_a", clicks_a), ("clicks_b", clicks_b)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if clicks_a > clicks_b:
        return WIN_A
    if clicks_b > clicks_a:
        return WIN_B
    return TIE
