"""The held-out part of a short log: a log no longer than the held-out window (the REES46 sample:
2 h 50 min against "the last day", which held out all of it) holds out the sessions ending in its last
fifth of events, in the engine's split and in the shop's own export; longer logs keep the papers'
last-day split."""
import numpy as np
import pandas as pd

from recommendations import engine
from recommendations.gru4rec.sessions import DAY, holdout_boundary, preprocess_split, split_by_time


def _log(n_sessions, span_seconds, start=1_569_888_000.0, items=8):
    """``n_sessions`` sessions of 3 events spread evenly over ``span_seconds``, over a few items."""
    rows = []
    for s in range(n_sessions):
        t = start + span_seconds * s / max(n_sessions - 1, 1)
        for j in range(3):
            rows.append((s + 1, str((s + j) % items), t - 2 + j))
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])


def test_boundary_is_the_last_day_for_a_long_log_and_the_last_fifth_of_events_for_a_short_one():
    week = np.array([0.0, 3 * DAY, 7 * DAY])
    assert holdout_boundary(week, DAY) == 6 * DAY  # unchanged: max - 1 day
    two_days = np.array([0.0, 1.2 * DAY])
    assert holdout_boundary(two_days, DAY) == 0.2 * DAY  # longer than the window: still the papers' split
    one_day = np.array([0.0, 0.5 * DAY, DAY, DAY, DAY])
    assert holdout_boundary(one_day, DAY) == DAY  # all of it would be held out: the last fifth of events
    # 3 hours, quiet at first, busy at the end: the boundary follows the events, not the clock
    hours = np.array([0.0] * 10 + list(np.linspace(9000, 10800, 90)))
    boundary = holdout_boundary(hours, DAY)
    assert 9000 < boundary < 10800
    assert (hours >= boundary).sum() == 20  # the last fifth of the 100 events
    # microseconds (tracking's export) work the same way
    assert holdout_boundary((hours * 1e6).astype(np.int64), 86400 * 1_000_000) == int(boundary * 1e6)


def test_engine_split_of_a_three_hour_log_keeps_most_of_it_for_training():
    df = _log(200, 3 * 3600)
    train, test, stats = engine.events_split(df)
    assert stats["train"]["sessions"] > 150 and 20 <= stats["test"]["sessions"] <= 45, stats
    assert train["Time"].max() < test.groupby("SessionId")["Time"].max().min()
    # the same log stretched over a week: the last day, as before
    week = _log(200, 7 * DAY)
    train_w, test_w = split_by_time(week, days=1)
    boundary = week["Time"].max() - DAY
    ends = test_w.groupby("SessionId")["Time"].max()
    assert (ends >= boundary).all() and (train_w.groupby("SessionId")["Time"].max() < boundary).all()


def test_shop_export_split_of_a_short_log():
    df = _log(200, 3 * 3600)
    session = df["SessionId"].to_numpy(dtype=np.int64)
    item = df["ItemId"].astype(int).to_numpy(dtype=np.int64)
    time_us = (df["Time"].to_numpy() * 1_000_000).astype(np.int64)
    train, test = preprocess_split(session, item, time_us, 86400 * 1_000_000)  # what tracking's export runs
    assert 150 < len(np.unique(session[train])) and 20 <= len(np.unique(session[test])) <= 45
    # before, a log shorter than the held-out day was all test and training failed
    assert train.sum() > 3 * test.sum() > 0
