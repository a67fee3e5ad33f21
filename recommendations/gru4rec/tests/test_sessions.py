"""Preprocessing and the time split, on arrays and frames (recommendations.gru4rec.sessions)."""

import numpy as np
import pytest

from recommendations.gru4rec.formats import read_events
from recommendations.gru4rec.sessions import filter_mask, preprocess, preprocess_split, split_by_time, split_stats

from .logs import SHARED
from .logs import events as _events
from .logs import triples as _triples


# ------------------------------------------------------------------------------ preprocessing
def test_preprocess_filters_in_the_standard_order():
    df = _events(
        [
            (1, "A", 1), (1, "B", 2),
            (2, "A", 3),  # length 1: dropped first, so it does not count for A's support
            (3, "A", 4), (3, "C", 5), (3, "A", 6), (3, "B", 7),
            (4, "B", 8), (4, "C", 9),
            (5, "D", 10), (5, "A", 11),
            (6, "E", 12), (7, "E", 13),  # length 1: E's support is then 1, not 3
            (8, "E", 14), (8, "B", 15),
        ]
    )
    out = preprocess(df, min_item_support=3)
    # C (2 events) and D, E (1 each after step 1) go; sessions 4, 5, 8 are then single events.
    # The repeated click on A in session 3 is kept.
    assert _triples(out) == [(1, "A", 1.0), (1, "B", 2.0), (3, "A", 4.0), (3, "A", 6.0), (3, "B", 7.0)]


def test_split_by_time_last_day_by_session_end():
    day = 86400.0
    df = _events(
        [
            (1, "A", 0), (1, "B", 100),
            (2, "B", 200), (2, "C", day - 1),  # ends just before the boundary: train
            (3, "A", day), (3, "B", day + 100),
            (4, "A", day - 400), (4, "X", day + 3600), (4, "B", 2 * day),  # X unseen in train
            (5, "X", day + 7200), (5, "A", day + 7300),  # only one known event left: dropped
            (6, "C", day - 300), (6, "A", day),  # ends exactly on the boundary: test
        ]
    )
    train, test = split_by_time(df, days=1)
    assert train.SessionId.unique().tolist() == [1, 2]
    assert _triples(test) == [
        (3, "A", day), (3, "B", day + 100),
        (4, "A", day - 400), (4, "B", 2 * day),
        (6, "C", day - 300), (6, "A", day),
    ]
    stats = split_stats(train, test)
    assert stats["train"]["events"] == 4 and stats["train"]["sessions"] == 2 and stats["train"]["items"] == 3
    assert stats["test"]["events"] == 6 and stats["test"]["sessions"] == 3 and stats["test"]["items_not_in_train"] == 0
    assert stats["test"]["time_max"] == 2 * day and stats["train"]["start"] == "1970-01-01T00:00:00Z"


# ------------------------------------------------------------------ the shared benchmark splits
def _need(*parts):
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data set not available: {path} (only inside the project workspace)")
    return path


def _assert_same_events(ours, theirs):
    assert len(ours) == len(theirs)
    assert (ours.SessionId.to_numpy() == theirs.SessionId.to_numpy()).all()
    assert (ours.ItemId.to_numpy() == theirs.ItemId.to_numpy()).all()
    assert (ours.Time.to_numpy() == theirs.Time.to_numpy()).all()


def test_reproduces_the_yoochoose_week_split():
    raw = _need("yoochoose-week", "yoochoose-clicks-week.dat")
    split = _need("splits", "yoochoose-week")
    train, test = split_by_time(preprocess(read_events(raw)), days=1)
    stats = split_stats(train, test)
    assert (stats["train"]["events"], stats["train"]["sessions"], stats["train"]["items"]) == (152462, 37877, 4869)
    assert (stats["test"]["events"], stats["test"]["sessions"]) == (27952, 7122)
    _assert_same_events(train, read_events(split / "train.tsv"))
    _assert_same_events(test, read_events(split / "test.tsv"))


def test_reproduces_the_retailrocket_split():
    folder = _need("retailrocket-views")
    split = _need("splits", "retailrocket")
    raw = [folder / "retailrocket_processed_view_train_valid.tsv", folder / "retailrocket_processed_view_test.tsv"]
    train, test = split_by_time(preprocess(read_events(raw)), days=7)
    assert (len(train), len(test)) == (17297, 13605)
    assert (train.SessionId.nunique(), train.ItemId.nunique(), test.SessionId.nunique()) == (5014, 3361, 3968)
    _assert_same_events(train, read_events(split / "train.tsv"))
    _assert_same_events(test, read_events(split / "test.tsv"))




# ------------------------------------------------------------------------------------ on arrays
def test_filter_mask_on_arrays_is_the_frame_preprocessing():
    session = np.array([1, 1, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 7, 8, 8])
    item = np.array([10, 11, 10, 10, 12, 10, 11, 11, 12, 13, 10, 14, 14, 14, 11])  # A=10 B=11 C=12 D=13 E=14
    assert np.flatnonzero(filter_mask(session, item, min_item_support=3)).tolist() == [0, 1, 3, 5, 6]
    assert filter_mask(session, item, min_item_support=1).sum() == 12  # only sessions 2, 6, 7 (one row each) go
    assert filter_mask(session[:0], item[:0]).tolist() == []


def test_preprocess_split_on_microseconds():
    us = 1_000_000
    day = 86400 * us
    # session: (item, time) rows; sessions 1-2 end before the last day, 3 and 4 within it,
    # 4's item 99 is never in train, so 4 keeps one event and goes; 5 is a single event.
    rows = [(1, 1, 0), (1, 2, 10 * us), (2, 2, 20 * us), (2, 3, 30 * us),
            (3, 1, 2 * day), (3, 3, 2 * day + us), (4, 99, 2 * day), (4, 1, 2 * day + 5 * us), (5, 1, 2 * day)]
    session, item, time_us = (np.array(c, dtype=np.int64) for c in zip(*rows))
    train, test = preprocess_split(session, item, time_us, day, min_item_support=1)
    assert np.flatnonzero(train).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(test).tolist() == [4, 5]
    # item support 2 drops 99 before the split (and then session 4, now one event long)
    train2, test2 = preprocess_split(session, item, time_us, day, min_item_support=2)
    assert (train2 == train).all() and (test2 == test).all()
    empty = preprocess_split(session[:0], item[:0], time_us[:0], day)
    assert [m.tolist() for m in empty] == [[], []]
