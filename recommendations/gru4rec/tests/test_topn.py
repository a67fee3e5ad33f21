"""The engine's one top-n (recommendations.gru4rec.topn) and the kNN models' public answers built on it."""
import math

import pandas as pd
import pytest
import torch

from recommendations.gru4rec.baselines import SessionKNN
from recommendations.gru4rec.topn import top_n

SCORES = [0.5, -1.0, 2.0, 0.0, 3.0]


def _top(n, **kw):
    return top_n(torch.tensor(SCORES), n, **kw)


def test_best_first_and_n_clamped():
    assert _top(3) == ([4, 2, 0], [3.0, 2.0, 0.5])
    assert _top(99)[0] == [4, 2, 0, 3, 1]
    assert _top(0) == ([], [])


def test_exclude_mask_and_positive_only():
    assert _top(3, exclude=[2]) == ([4, 0, 3], [3.0, 0.5, 0.0])
    assert _top(5, positive_only=True) == ([4, 2, 0], [3.0, 2.0, 0.5])
    mask = torch.tensor([0.0, 0.0, 0.0, 0.0, -math.inf])
    assert _top(2, mask=mask) == ([2, 0], [2.0, 0.5])
    # Everything excluded or masked: nothing comes back, not -inf entries.
    assert _top(5, exclude=[0, 2, 3], mask=mask, positive_only=True) == ([], [])


# Four sessions, oldest first: s1 A B, s2 A C, s3 B C D, s4 A B (as in test_baselines).
TRAIN = pd.DataFrame({
    "SessionId": [1, 1, 2, 2, 3, 3, 3, 4, 4],
    "ItemId": ["A", "B", "A", "C", "B", "C", "D", "A", "B"],
    "Time": [0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 22.0, 30.0, 31.0],
})


@pytest.fixture(scope="module")
def sknn():
    return SessionKNN(k=10, sample_size=10).fit(TRAIN)


def test_sknn_similar_is_cosine_of_session_occurrence(sknn):
    a, b, c = (sknn.item_ids.index(x) for x in "ABC")
    # A is in 3 sessions, B in 3 (2 with A), C in 2 (1 with A), D never with A.
    positions, sims = sknn.similar(a, 5)
    assert positions == [b, c]
    assert sims == pytest.approx([2 / 3, 1 / math.sqrt(6)], rel=1e-6)
    mask = torch.zeros(sknn.n_items)
    mask[b] = -math.inf
    assert sknn.similar(a, 5, mask=mask)[0] == [c]


def test_sknn_top_items_matches_its_scores_and_drops_zeros(sknn):
    a = sknn.item_ids.index("A")
    scores = sknn.score_sessions([[a]])[0]
    positions, values = sknn.top_items([a], 10, exclude=[a])
    expected = sorted((j for j in range(sknn.n_items) if j != a and scores[j] > 0), key=lambda j: -scores[j])
    assert positions == expected
    assert values == pytest.approx([float(scores[j]) for j in expected])
    assert sknn.item_ids[positions[0]] == "B"  # B shares two of A's three sessions
