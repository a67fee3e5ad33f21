"""Popularity, ItemKNN and V-SKNN baselines: exact scores on a hand-made log, serving, save/load,
and the shared evaluation protocol."""
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommendations.gru4rec.baselines import (
    ItemKNN,
    Popularity,
    SessionKNN,
    evaluate_baseline,
    load_baseline,
)
from recommendations.gru4rec.types import Recommendation

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"

# Four training sessions, oldest first (session end times 1, 11, 22, 31).
#   s1: A B    s2: A C    s3: B C D    s4: A B
# Events: A 3, B 3, C 2, D 1.  Sessions containing: A 3, B 3, C 2, D 1.
# Co-occurring sessions: AB 2, AC 1, BC 1, BD 1, CD 1.
TRAIN = pd.DataFrame(
    {
        "SessionId": [1, 1, 2, 2, 3, 3, 3, 4, 4],
        "ItemId": ["A", "B", "A", "C", "B", "C", "D", "A", "B"],
        "Time": [0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 22.0, 30.0, 31.0],
    }
)
A, B, C, D = 0, 1, 2, 3


def _close(got, expected):
    assert np.allclose(np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------- Popularity
def test_popularity_scores_and_fallback():
    m = Popularity().fit(TRAIN)
    assert m.item_ids == ["A", "B", "C", "D"]
    _close(m.score_sessions([[C]])[0], [3, 3, 2, 1])
    rec = m.recommend([], k=3)
    assert rec == Recommendation(item_ids=["A", "B", "C"], scores=[3.0, 3.0, 2.0], used=[], skipped=[], strategy="popular")
    rec = m.recommend(["A", "Z"], k=2)
    assert (rec.item_ids, rec.scores, rec.used, rec.skipped) == (["B", "C"], [3.0, 2.0], ["A"], ["Z"])
    assert m.recommend(["A"], k=2, exclude_seen=False).item_ids == ["A", "B"]


# ------------------------------------------------------------------------------------- ItemKNN
def test_itemknn_cosine_of_session_occurrences():
    m = ItemKNN(lmbd=0.0).fit(TRAIN)
    _close(m.score_sessions([[C, B]])[0], [2 / 3, 0.0, 1 / math.sqrt(6), 1 / math.sqrt(3)])
    _close(m.score_sessions([[D]])[0], [0.0, 1 / math.sqrt(3), 1 / math.sqrt(2), 0.0])
    rec = m.recommend(["C", "B"], k=3)
    assert rec.item_ids == ["A", "D"]  # only two unseen items have a score, and nothing else exists
    _close(rec.scores, [2 / 3, 1 / math.sqrt(3)])
    assert m.recommend(["C", "B"], k=3, exclude_seen=False).item_ids == ["A", "D", "C"]


def test_itemknn_regularisation():
    m = ItemKNN(lmbd=1.0).fit(TRAIN)
    _close(m.score_sessions([[A]])[0], [0.0, 2 / 4, 1 / (math.sqrt(6) + 1), 0.0])


# ------------------------------------------------------------------------------------- V-SKNN
def test_sknn_cosine_linear_decay():
    # Session C, A: weights C 1/2, A 1. Dot with s1..s4 = 1, 1.5, 0.5, 1; cosine divides by
    # sqrt(2 * |s|): 0.5, 0.75, 0.204, 0.5. The k=3 nearest are s2, s1, s4.
    m = SessionKNN(k=3, sample_size=10, similarity="cosine", weighting="linear").fit(TRAIN)
    _close(m.score_sessions([[C, A]])[0], [0.75 + 0.5 + 0.5, 0.5 + 0.5, 0.75, 0.0])
    rec = m.recommend(["C", "A"], k=3)
    # B is the only unseen item with a score; D fills in by popularity with score 0.
    assert (rec.item_ids, rec.strategy) == (["B", "D"], "model")
    _close(rec.scores, [1.0, 0.0])


def test_sknn_dot_similarity():
    m = SessionKNN(k=3, sample_size=10, similarity="dot").fit(TRAIN)
    _close(m.score_sessions([[C, A]])[0], [1.5 + 1 + 1, 1 + 1, 1.5, 0.0])


def test_sknn_samples_the_most_recent_candidates():
    # Only s3 (end 22) and s4 (end 31) are kept: cosine 0.5 / sqrt(6) and 0.5.
    m = SessionKNN(k=3, sample_size=2).fit(TRAIN)
    s3 = 0.5 / math.sqrt(6)
    _close(m.score_sessions([[C, A]])[0], [0.5, 0.5 + s3, s3, s3])


def test_sknn_repeated_item_keeps_its_latest_weight():
    m = SessionKNN(k=10, sample_size=10, similarity="dot").fit(TRAIN)
    # A C A: A weighs 1 (position 3 of 3), C 2/3; same neighbours as C A with C at 2/3.
    _close(m.score_sessions([[A, C, A]])[0], _dot_scores({A: 1.0, C: 2 / 3}))


def _dot_scores(weights):
    sessions = [{A, B}, {A, C}, {B, C, D}, {A, B}]
    out = np.zeros(4)
    for s in sessions:
        sim = sum(w for i, w in weights.items() if i in s)
        for i in s:
            out[i] += sim
    return out


def test_unknown_items_only_fall_back_to_popular():
    for m in (ItemKNN().fit(TRAIN), SessionKNN().fit(TRAIN)):
        rec = m.recommend(["Z", "Y"], k=2)
        assert (rec.item_ids, rec.scores, rec.used, rec.skipped, rec.strategy) == (["A", "B"], [3.0, 3.0], [], ["Z", "Y"], "popular")


def test_edge_requests():
    for m in (Popularity().fit(TRAIN), ItemKNN().fit(TRAIN), SessionKNN().fit(TRAIN)):
        assert m.recommend(["A"], k=0).item_ids == []
        assert len(m.recommend(["A"], k=10).item_ids) == 3  # every item but the seen one
        assert not m.score_sessions([[]]).any() or isinstance(m, Popularity)


# ----------------------------------------------------------------------------------- save/load
@pytest.mark.parametrize("model", [Popularity(), ItemKNN(lmbd=5.0, alpha=0.3), SessionKNN(k=2, sample_size=3, similarity="dot", weighting="div")])
def test_save_load_round_trip(tmp_path, model):
    model.fit(TRAIN)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["kind"] == model.kind and meta["item_ids"] == ["A", "B", "C", "D"]
    for loaded in (type(model).load(tmp_path / "m"), load_baseline(tmp_path / "m")):
        assert type(loaded) is type(model) and loaded.params() == model.params()
        prefixes = [[A], [C, A], [B, D, C], [D, D]]
        assert np.array_equal(loaded.score_sessions(prefixes), model.score_sessions(prefixes))
        assert loaded.recommend(["B", "C"], k=4) == model.recommend(["B", "C"], k=4)
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_load_refuses_another_kind(tmp_path):
    Popularity().fit(TRAIN).save(tmp_path / "p")
    with pytest.raises(ValueError, match="popularity"):
        ItemKNN.load(tmp_path / "p")


# ---------------------------------------------------------------------------------- evaluation
TEST = pd.DataFrame(
    {
        "SessionId": [7, 7, 7, 8, 8],
        "ItemId": ["A", "B", "C", "Z", "A"],  # session 8 has one known event left: not evaluated
        "Time": [100.0, 101.0, 102.0, 100.0, 101.0],
    }
)


def test_evaluation_itemknn_exact():
    # A -> B: row A is B 0.667, C 0.408: rank 1. B -> C: row B is A 0.667, D 0.577, C 0.408: rank 3.
    r = evaluate_baseline(ItemKNN(lmbd=0.0).fit(TRAIN), TEST, cutoffs=(1, 2, 5))
    assert (r["n_events"], r["n_sessions"]) == (2, 1)
    _close([r["recall@1"], r["recall@2"], r["recall@5"]], [0.5, 0.5, 1.0])
    _close([r["mrr@1"], r["mrr@2"], r["mrr@5"]], [0.5, 0.5, (1 + 1 / 3) / 2])


def test_evaluation_popularity_ties_count_against_the_model():
    # Scores A 3, B 3, C 2, D 1: target B ties with A (rank 2 conservative, 1 standard); C rank 3.
    m = Popularity().fit(TRAIN)
    r = evaluate_baseline(m, TEST, cutoffs=(1, 2, 3))
    _close([r["recall@1"], r["recall@2"], r["recall@3"], r["mrr@3"]], [0.0, 0.5, 1.0, (1 / 2 + 1 / 3) / 2])
    r = evaluate_baseline(m, TEST, cutoffs=(1,), ties="standard")
    assert r["recall@1"] == 0.5


def test_evaluation_batches_do_not_change_the_result():
    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame(
        {"SessionId": np.repeat(np.arange(n // 4), 4), "ItemId": rng.integers(0, 20, n).astype(str), "Time": np.arange(n, dtype=float)}
    )
    train, test = df[df.SessionId < 80], df[df.SessionId >= 80]
    m = SessionKNN(k=5, sample_size=20).fit(train)
    assert evaluate_baseline(m, test, batch_size=7) == pytest.approx(evaluate_baseline(m, test, batch_size=1000), abs=1e-12)


# --------------------------------------------------------------------- serving speed, real data
@pytest.mark.slow
def test_sknn_recommend_is_fast_on_a_large_synthetic_catalogue():
    rng = np.random.default_rng(0)
    n_sess, n_items, length = 100_000, 40_000, 4
    items = (rng.zipf(1.3, n_sess * length) % n_items).astype(str)
    df = pd.DataFrame({"SessionId": np.repeat(np.arange(n_sess), length), "ItemId": items, "Time": np.arange(n_sess * length, dtype=float)})
    m = SessionKNN().fit(df)
    session = list(pd.unique(items[:40]))[:10]
    m.recommend(session, k=10)
    t = time.perf_counter()
    for _ in range(20):
        rec = m.recommend(session, k=10)
    per_call = (time.perf_counter() - t) / 20
    assert len(rec.item_ids) == 10
    assert per_call < 0.05, f"{per_call * 1000:.1f} ms per recommend"


@pytest.mark.slow
def test_vsknn_accuracy_on_the_yoochoose_week_split():
    split = SHARED / "splits" / "yoochoose-week"
    if not split.exists():
        pytest.skip(f"shared data set not available: {split} (only inside the project workspace)")
    from recommendations.gru4rec.formats import read_events

    train, test = read_events(split / "train.tsv"), read_events(split / "test.tsv")
    r = evaluate_baseline(SessionKNN().fit(train), test)
    assert r["n_events"] == 27952 - 7122
    assert r["recall@20"] > 0.64 and r["mrr@20"] > 0.32
