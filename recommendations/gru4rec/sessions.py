"""The one preprocessing and train/test time split of session data, on arrays (and DataFrames).

The engine CLI, the benchmarks, training and tracking's export all cut their data here, so the
shop's own sessions and the benchmark logs in shared/data are filtered and split the same way.
``preprocess`` + ``split_by_time`` reproduce the benchmark splits in ``shared/data``.
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .types import DataFormatError

COLUMNS = ("SessionId", "ItemId", "Time")
DAY = 86400.0
# A log no longer than the held-out window (a few hours of a sample: "the last day" is all of it and
# nothing would be left to train on) holds out the sessions ending in its last SHORT_LOG_FRACTION of
# events instead. Longer logs keep the papers' split, the benchmark splits in shared/data included.
SHORT_LOG_FRACTION = 0.2


# ---------------------------------------------------------------------------------- on arrays
def session_time_order(session: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Stable order by session id, then time (ties keep the input order)."""
    codes, _ = pd.factorize(session, sort=True)
    return np.lexsort((time, codes))


def _support_at_least(keys: np.ndarray, minimum: int) -> np.ndarray:
    """Mask of rows whose key occurs at least ``minimum`` times (hash-based: ids may be str)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    codes, _ = pd.factorize(keys)
    return np.bincount(codes)[codes] >= minimum


def filter_mask(session, item, min_item_support: int = 5, min_session_length: int = 2) -> np.ndarray:
    """The standard GRU4Rec filtering, one pass, repeated clicks kept, as a mask over the rows:
    drop sessions of length 1, then items with fewer than ``min_item_support`` events, then
    sessions shorter than ``min_session_length``."""
    session, item = np.asarray(session), np.asarray(item)
    keep = np.zeros(len(session), dtype=bool)
    idx = np.flatnonzero(_support_at_least(session, 2))
    idx = idx[_support_at_least(item[idx], min_item_support)]
    idx = idx[_support_at_least(session[idx], min_session_length)]
    keep[idx] = True
    return keep


def holdout_boundary(times: np.ndarray, window):
    """Where the held-out part of a log begins, in the unit of ``times``: ``window`` (the papers'
    last day, in that unit) before the last event, unless the log spans no more than ``window`` (all
    of it would be held out); then the time by which all but the last ``SHORT_LOG_FRACTION`` of its
    events had happened (by events, not by clock: a few hours of a sample can be quiet at first and
    busy at the end)."""
    times = np.asarray(times)
    t_max = times.max()
    if t_max - times.min() > window:
        return t_max - window
    ordered = np.sort(times, kind="stable")
    return ordered[min(int(len(ordered) * (1.0 - SHORT_LOG_FRACTION)), len(ordered) - 1)]


def split_masks(session, item, time, window) -> tuple[np.ndarray, np.ndarray]:
    """Train/test split of the GRU4Rec papers as (train mask, test mask) over the rows: test is
    the sessions whose last event is at or after ``holdout_boundary(time, window)`` (``window`` in
    the unit of ``time``); test events on items absent from train are dropped, then test sessions
    shorter than 2."""
    session, item, time = np.asarray(session), np.asarray(item), np.asarray(time)
    n = len(session)
    train, test = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if n == 0:
        return train, test
    codes, _ = pd.factorize(session)
    end = pd.Series(time).groupby(codes, sort=False).transform("max").to_numpy()
    is_test = end >= holdout_boundary(time, window)
    train[~is_test] = True
    idx = np.flatnonzero(is_test)
    idx = idx[pd.Series(item[idx]).isin(pd.unique(item[train])).to_numpy()]
    idx = idx[_support_at_least(session[idx], 2)]
    test[idx] = True
    return train, test


def preprocess_split(session, item, time, window, min_item_support: int = 5, min_session_length: int = 2
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``filter_mask`` then ``split_masks`` on the rows it keeps: (train mask, test mask) over the
    input rows (what tracking's export and training use on the shop's events)."""
    session, item, time = np.asarray(session), np.asarray(item), np.asarray(time)
    train, test = np.zeros(len(session), dtype=bool), np.zeros(len(session), dtype=bool)
    idx = np.flatnonzero(filter_mask(session, item, min_item_support, min_session_length))
    tr, te = split_masks(session[idx], item[idx], time[idx], window)
    train[idx[tr]] = True
    test[idx[te]] = True
    return train, test


# ------------------------------------------------------------------------------ on DataFrames
def validate_columns(df: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataFormatError(f"events lack columns {missing}; need {list(COLUMNS)}")


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    order = session_time_order(df["SessionId"].to_numpy(), df["Time"].to_numpy())
    return df.iloc[order].reset_index(drop=True)


def preprocess(df: pd.DataFrame, min_item_support: int = 5, min_session_length: int = 2) -> pd.DataFrame:
    """``filter_mask`` on a ``SessionId, ItemId, Time`` frame; returns the events sorted by session, then time."""
    validate_columns(df)
    df = df[list(COLUMNS)]
    keep = filter_mask(df["SessionId"].to_numpy(), df["ItemId"].to_numpy(), min_item_support, min_session_length)
    return _sorted(df[keep])


def split_by_time(df: pd.DataFrame, days: float = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``split_masks`` on a frame with Time in unix seconds, held out: the last ``days`` days
    (a log spanning no more than that: the sessions ending in its last fifth of events)."""
    validate_columns(df)
    if len(df) == 0:
        return df.copy(), df.copy()
    train, test = split_masks(df["SessionId"].to_numpy(), df["ItemId"].to_numpy(), df["Time"].to_numpy(),
                              float(days) * DAY)
    return _sorted(df[train]), _sorted(df[test])


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _stats(df: pd.DataFrame) -> dict:
    out = {
        "events": int(len(df)),
        "sessions": int(df["SessionId"].nunique()),
        "items": int(df["ItemId"].nunique()),
    }
    if len(df):
        t0, t1 = float(df["Time"].min()), float(df["Time"].max())
        out.update(time_min=t0, time_max=t1, start=_iso(t0), end=_iso(t1), days=round((t1 - t0) / DAY, 4))
    return out


def split_stats(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Counts and time ranges of a split, JSON-ready."""
    out = {"train": _stats(train), "test": _stats(test)}
    out["test"]["items_not_in_train"] = int((~pd.Index(pd.unique(test["ItemId"])).isin(pd.unique(train["ItemId"]))).sum())
    return out
