"""Baselines for session-based recommendation (Popularity, ItemKNN, V-SKNN) with the serving and
evaluation interface of the GRU4Rec engine, so that every model is measured the same way.

Models are saved as a folder: ``meta.json`` (kind, parameters, item ids) and ``arrays.npz``
(numbers only, read with ``allow_pickle=False``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .metrics import RankMetrics, target_ranks
from .topn import top_n
from .types import Recommendation

FORMAT_VERSION = 1
_META = "meta.json"
_ARRAYS = "arrays.npz"


# ----------------------------------------------------------------------------------- helpers
class _Sessions:
    """Training events as index arrays: item map, per-session item sequences, session end times."""

    def __init__(self, df: pd.DataFrame):
        for col in ("SessionId", "ItemId", "Time"):
            if col not in df.columns:
                raise ValueError(f"training events lack column {col!r}")
        if len(df) == 0:
            raise ValueError("no training events")
        sess = df["SessionId"].to_numpy()
        times = df["Time"].to_numpy(dtype=np.float64)
        s_codes, _ = pd.factorize(sess, sort=True)
        order = np.lexsort((times, s_codes))
        s_codes, times = s_codes[order], times[order]
        item_codes, uniques = pd.factorize(df["ItemId"].astype(str).to_numpy()[order], sort=True)
        self.item_ids = [str(x) for x in uniques]
        self.items = item_codes.astype(np.int64)
        starts = np.flatnonzero(np.r_[True, s_codes[1:] != s_codes[:-1]])
        self.offsets = np.r_[starts, len(s_codes)].astype(np.int64)
        self.end_time = times[self.offsets[1:] - 1]
        self.n_items = len(self.item_ids)
        self.n_sessions = len(starts)


def _binary_session_matrix(items: np.ndarray, offsets: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Sessions x items, 1 where the session contains the item (repeats counted once)."""
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    m = sp.csr_matrix((np.ones(len(items), dtype=np.float32), (rows, items)), shape=(len(offsets) - 1, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def _save(path, kind: str, params: dict, item_ids: list[str], arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"kind": kind, "format_version": FORMAT_VERSION, "params": params, "item_ids": item_ids}
    with open(path / _META, "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
    np.savez(path / _ARRAYS, **arrays)


def _read(path, kind: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    path = Path(path)
    with open(path / _META, encoding="utf-8") as fh:
        meta = json.load(fh)
    if kind is not None and meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r} model, not {kind!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    with np.load(path / _ARRAYS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


# ------------------------------------------------------------------------------------- models
class _Baseline:
    """Common serving part: item map, popularity fallback, ``recommend``, save/load."""

    kind = ""

    def __init__(self):
        self.item_ids: list[str] = []
        self._index: dict[str, int] = {}
        self.popularity = np.zeros(0, dtype=np.float32)
        self._pop_order = np.zeros(0, dtype=np.int64)

    # -- to implement
    def params(self) -> dict:
        return {}

    def score_sessions(self, sessions: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores (float32, len(sessions) x n_items) of every item as the next one after each
        session, given as item indices in order (the prefix seen so far)."""
        raise NotImplementedError

    def _fit(self, data: _Sessions) -> None:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    # -- common
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def _set_items(self, item_ids: list[str], popularity: np.ndarray) -> None:
        self.item_ids = list(item_ids)
        self._index = {it: i for i, it in enumerate(self.item_ids)}
        self.popularity = np.asarray(popularity, dtype=np.float32)
        # Most popular first; equal counts in index order, so the fallback is deterministic.
        self._pop_order = np.lexsort((np.arange(len(self.popularity)), -self.popularity))

    def fit(self, df: pd.DataFrame):
        """Fit on events ``SessionId, ItemId, Time``; returns self."""
        data = _Sessions(df)
        self._set_items(data.item_ids, np.bincount(data.items, minlength=data.n_items))
        self._fit(data)
        return self

    def item_index(self, items: Sequence[str]) -> tuple[list[int], list[str], list[str]]:
        """Indices of the known items (in order), and the used / skipped item ids."""
        idx, used, skipped = [], [], []
        for it in items:
            i = self._index.get(str(it))
            if i is None:
                skipped.append(str(it))
            else:
                idx.append(i)
                used.append(str(it))
        return idx, used, skipped

    def recommend(self, items: Sequence[str], k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """Top-``k`` next items for a live session (item ids in click order). Unknown items are
        skipped; with no known item the most popular items answer (``strategy="popular"``).
        Items the model cannot tell apart (equal scores, e.g. zero) are ordered by popularity."""
        k = max(0, int(k))
        idx, used, skipped = self.item_index(items)
        if k == 0:
            return Recommendation([], [], used, skipped, "model" if idx else "popular")
        seen = np.asarray(idx, dtype=np.int64) if exclude_seen else np.zeros(0, dtype=np.int64)
        chosen = np.zeros(0, dtype=np.int64)
        chosen_scores = np.zeros(0, dtype=np.float32)
        if idx:
            scores = self.score_sessions([idx])[0].astype(np.float32, copy=True)
            scores[seen] = -np.inf
            pos = np.flatnonzero(scores > 0)
            if len(pos) > k:
                kth = np.partition(scores[pos], len(pos) - k)[len(pos) - k]
                pos = pos[scores[pos] >= kth]
            order = np.lexsort((pos, -self.popularity[pos], -scores[pos]))[:k]
            chosen, chosen_scores = pos[order], scores[pos[order]]
        strategy = "model" if len(chosen) else "popular"
        if len(chosen) < k:
            taken = np.zeros(self.n_items, dtype=bool)
            taken[chosen] = True
            taken[seen] = True
            fill = self._pop_order[~taken[self._pop_order]][: k - len(chosen)]
            fill_scores = self.popularity[fill] if strategy == "popular" else np.zeros(len(fill), np.float32)
            chosen = np.r_[chosen, fill]
            chosen_scores = np.r_[chosen_scores, fill_scores]
        return Recommendation(
            item_ids=[self.item_ids[i] for i in chosen],
            scores=[float(s) for s in chosen_scores],
            used=used,
            skipped=skipped,
            strategy=strategy,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to the folder ``path`` (``meta.json`` + ``arrays.npz``)."""
        arrays = {"popularity": self.popularity, **self._arrays()}
        _save(path, self.kind, self.params(), self.item_ids, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike):
        meta, arrays = _read(path, cls.kind)
        return cls._from_saved(meta, arrays)

    @classmethod
    def _from_saved(cls, meta: dict, arrays: dict[str, np.ndarray]):
        model = cls(**meta["params"])
        model._set_items(meta["item_ids"], arrays["popularity"])
        model._set_arrays(arrays)
        return model


class Popularity(_Baseline):
    """Recommends the items with the most training events, whatever the session."""

    kind = "popularity"

    def _fit(self, data: _Sessions) -> None:
        pass

    def score_sessions(self, sessions):
        return np.broadcast_to(self.popularity, (len(sessions), self.n_items))


class ItemKNN(_Baseline):
    """Item-to-item kNN on the last item of the session: cosine similarity of the items' session
    occurrence vectors, ``sim(i, j) = n(i, j) / (sqrt(n(i) * n(j)) + lmbd)``, where n counts
    training sessions (regularisation ``lmbd`` damps pairs of rare items). An item is not its own
    neighbour."""

    kind = "itemknn"

    def __init__(self, lmbd: float = 20.0, alpha: float = 0.5):
        super().__init__()
        self.lmbd = float(lmbd)
        self.alpha = float(alpha)
        self.sim = sp.csr_matrix((0, 0), dtype=np.float32)

    def params(self):
        return {"lmbd": self.lmbd, "alpha": self.alpha}

    def _fit(self, data: _Sessions) -> None:
        x = _binary_session_matrix(data.items, data.offsets, data.n_items)
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        support = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        # alpha = 0.5 is the cosine; other values make it asymmetric (as in the published ItemKNN).
        denom = support[rows] ** self.alpha * support[co.indices] ** (1.0 - self.alpha) + self.lmbd
        co.data = (co.data / denom).astype(np.float32)
        co.sort_indices()
        self.sim = co

    def score_sessions(self, sessions):
        out = np.zeros((len(sessions), self.n_items), dtype=np.float32)
        rows = [r for r, s in enumerate(sessions) if len(s)]
        if rows:
            last = np.fromiter((sessions[r][-1] for r in rows), dtype=np.int64, count=len(rows))
            out[rows] = self.sim[last].toarray()
        return out

    def _arrays(self):
        return {"indptr": self.sim.indptr.astype(np.int64), "indices": self.sim.indices.astype(np.int32), "data": self.sim.data}

    def _set_arrays(self, arrays):
        n = self.n_items
        self.sim = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))


class SessionKNN(_Baseline):
    """V-SKNN (Ludewig & Jannach 2018): session-based kNN with the items of the current session
    weighted by position (the last item 1, earlier ones decaying, ``weighting="linear"``: p / L).

    Candidate neighbours are the training sessions sharing an item with the current session; of
    them the ``sample_size`` most recent (by session end) are kept. Similarity of the weighted
    current session a and a neighbour's item set b: ``dot`` (a . b), or ``cosine``
    (a . b / sqrt(|a| * |b|), with |.| the number of distinct items). The ``k`` most similar
    neighbours vote: score(i) = sum of the similarities of the neighbours containing i.
    """

    kind = "sknn"
    WEIGHTINGS = ("linear", "same", "div", "quadratic", "log")
    SIMILARITIES = ("dot", "cosine")

    # Defaults from a light tuning on validation splits cut from the training sets (last day of the
    # YOOCHOOSE week, last 2 days of RetailRocket): k 200 beat 50/100 on YOOCHOOSE (R@20 +0.013) and
    # tied on RetailRocket; sample_size 1000 gained nothing over 500; cosine beat dot on both.
    def __init__(self, k: int = 200, sample_size: int = 500, similarity: str = "cosine", weighting: str = "linear"):
        super().__init__()
        if similarity not in self.SIMILARITIES:
            raise ValueError(f"similarity must be one of {self.SIMILARITIES}")
        if weighting not in self.WEIGHTINGS:
            raise ValueError(f"weighting must be one of {self.WEIGHTINGS}")
        self.k = int(k)
        self.sample_size = int(sample_size)
        self.similarity = similarity
        self.weighting = weighting
        self.sess_items = sp.csr_matrix((0, 0), dtype=np.float32)  # sessions (oldest first) x items
        self.item_sess = sp.csr_matrix((0, 0), dtype=np.float32)  # inverted index: items x sessions
        self.sess_len = np.zeros(0, dtype=np.float32)

    def params(self):
        return {"k": self.k, "sample_size": self.sample_size, "similarity": self.similarity, "weighting": self.weighting}

    def _fit(self, data: _Sessions) -> None:
        x = _binary_session_matrix(data.items, data.offsets, data.n_items)
        # Sessions in order of their end: a higher session index is a more recent session, so
        # "the most recent candidates" are simply the largest indices.
        order = np.argsort(data.end_time, kind="stable")
        self._set_matrix(x[order])

    def _set_matrix(self, x: sp.csr_matrix) -> None:
        x = x.tocsr()
        x.sort_indices()
        self.sess_items = x
        self.item_sess = x.T.tocsr()
        self.item_sess.sort_indices()
        self.sess_len = np.diff(x.indptr).astype(np.float32)

    def _weights(self, n: int) -> np.ndarray:
        p = np.arange(1, n + 1, dtype=np.float64)
        if self.weighting == "linear":
            return p / n
        if self.weighting == "same":
            return np.ones(n)
        if self.weighting == "div":
            return 1.0 / (n - p + 1)
        if self.weighting == "quadratic":
            return (p / n) ** 2
        return 1.0 / np.log2(n - p + 2)  # "log"

    def _score_one(self, session: Sequence[int], out: np.ndarray) -> None:
        items, scores = self.votes(session)
        out[items] += scores

    def votes(self, session: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The items some neighbour voted for after ``session`` (item indices, ascending) and their
        scores (float32, > 0): the non-zero entries of :meth:`score_sessions`'s row, without a
        catalogue-sized array (one-session serving)."""
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        if not len(session):
            return empty
        seq = np.asarray(session, dtype=np.int64)
        w = self._weights(len(seq))
        # An item clicked more than once keeps the weight of its latest position.
        uniq, first_from_end = np.unique(seq[::-1], return_index=True)
        wu = w[::-1][first_from_end]
        ip, ix = self.item_sess.indptr, self.item_sess.indices
        # Each item's sessions are stored oldest first. The sample_size most recent sessions of
        # the union are among the sample_size most recent of every item they contain, so reading
        # only those tails gives the same sample and the same similarities, in O(L * sample_size)
        # even for items in every other session.
        stop = ip[uniq + 1]
        begin = np.maximum(ip[uniq], stop - self.sample_size)
        cnt = stop - begin
        cand_all = ix[np.repeat(begin, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
        if len(cand_all) == 0:
            return empty
        cand, inv = np.unique(cand_all, return_inverse=True)
        sim = np.bincount(inv, weights=np.repeat(wu, cnt), minlength=len(cand))
        if len(cand) > self.sample_size:
            cand, sim = cand[-self.sample_size :], sim[-self.sample_size :]
        if self.similarity == "cosine":
            sim = sim / np.sqrt(len(uniq) * self.sess_len[cand])
        if len(cand) > self.k:
            top = np.argpartition(-sim, self.k - 1)[: self.k]
            cand, sim = cand[top], sim[top]
        sp_, sx = self.sess_items.indptr, self.sess_items.indices
        ncnt = sp_[cand + 1] - sp_[cand]
        items = sx[np.repeat(sp_[cand], ncnt) + (np.arange(ncnt.sum()) - np.repeat(np.cumsum(ncnt) - ncnt, ncnt))]
        # the same sums, in the same order, as a bincount over the whole catalogue
        voted, inv = np.unique(items, return_inverse=True)
        scores = np.bincount(inv, weights=np.repeat(sim, ncnt), minlength=len(voted)).astype(np.float32)
        keep = scores > 0
        return voted[keep], scores[keep]

    def score_sessions(self, sessions):
        out = np.zeros((len(sessions), self.n_items), dtype=np.float32)
        for row, s in zip(out, sessions):
            if len(s):
                self._score_one(s, row)
        return out

    def top_items(self, idx: Sequence[int], n: int, exclude=None, mask: torch.Tensor | None = None
                  ) -> tuple[list[int], list[float]]:
        """The top ``n`` (item indices, scores, best first) after one session given as item
        indices, the serving twin of ``GRU4Rec.top_items`` (same ``exclude`` and additive
        ``mask``). Items no neighbour voted for (score 0) are not answers: fewer may come back."""
        with torch.inference_mode():
            scores = torch.from_numpy(self.score_sessions([list(idx)])[0])
            return top_n(scores, n, exclude=exclude, mask=mask, positive_only=True)

    def item_similarities(self, i: int) -> np.ndarray:
        """Item-kNN on the session matrix: cosine of item ``i``'s session occurrence vector with
        every item's (float32 [n_items]); 0 for items never in a session with ``i``."""
        co = np.asarray((self.item_sess[i] @ self.sess_items).todense()).ravel().astype(np.float32)
        support = np.maximum(np.diff(self.item_sess.indptr).astype(np.float32), 1.0)
        return co / np.sqrt(support[i] * support)

    def similar(self, i: int, n: int, mask: torch.Tensor | None = None) -> tuple[list[int], list[float]]:
        """The ``n`` items most similar to item index ``i`` by :meth:`item_similarities` (item
        indices, similarities, best first), ``i`` itself never; ``mask`` as in :meth:`top_items`."""
        with torch.inference_mode():
            sims = torch.from_numpy(self.item_similarities(i))
            return top_n(sims, n, exclude=[i], mask=mask, positive_only=True)

    def _arrays(self):
        x = self.sess_items
        return {"indptr": x.indptr.astype(np.int64), "indices": x.indices.astype(np.int32)}

    def _set_arrays(self, arrays):
        indptr, indices = arrays["indptr"], arrays["indices"]
        x = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(indptr) - 1, self.n_items)
        )
        self._set_matrix(x)


BASELINES = {cls.kind: cls for cls in (Popularity, ItemKNN, SessionKNN)}


def load_baseline(path: str | os.PathLike) -> _Baseline:
    """Load any saved baseline; the kind is read from its ``meta.json``."""
    meta, arrays = _read(path)
    cls = BASELINES.get(meta.get("kind"))
    if cls is None:
        raise ValueError(f"{path}: unknown baseline kind {meta.get('kind')!r}")
    return cls._from_saved(meta, arrays)


# ---------------------------------------------------------------------------------- evaluation
def session_transitions(model: _Baseline, test_df: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Test sessions as item-index arrays (events on unknown items dropped, then sessions shorter
    than 2), and for every transition the (session number, position of the target)."""
    df = test_df
    sess = df["SessionId"].to_numpy()
    times = df["Time"].to_numpy(dtype=np.float64)
    codes, _ = pd.factorize(sess, sort=True)
    order = np.lexsort((times, codes))
    codes = codes[order]
    idx = pd.Series(df["ItemId"].astype(str).to_numpy()[order]).map(model._index)
    known = idx.notna().to_numpy()
    codes, items = codes[known], idx.to_numpy()[known].astype(np.int64)
    bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    sessions = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= 2]
    s_num = np.concatenate([np.full(len(s) - 1, i) for i, s in enumerate(sessions)]) if sessions else np.zeros(0, int)
    pos = np.concatenate([np.arange(1, len(s)) for s in sessions]) if sessions else np.zeros(0, int)
    return sessions, s_num.astype(np.int64), pos.astype(np.int64)


def evaluate_baseline(
    model: _Baseline,
    test_df: pd.DataFrame,
    cutoffs: Sequence[int] = (1, 5, 10, 20),
    ties: str = "conservative",
    batch_size: int = 512,
) -> dict:
    """Next-item evaluation with the GRU4Rec protocol: for every transition (current item -> next
    item) of each test session the whole catalogue is scored given the session so far, and the
    target is ranked with ``metrics.target_ranks``. Seen items are not masked (repeat clicks are
    legitimate targets). Returns ``recall@N``, ``mrr@N``, ``n_events`` (transitions), ``n_sessions``."""
    sessions, s_num, pos = session_transitions(model, test_df)
    metrics = RankMetrics(cutoffs)
    for start in range(0, len(s_num), batch_size):
        sn, ps = s_num[start : start + batch_size], pos[start : start + batch_size]
        prefixes = [sessions[a][:p] for a, p in zip(sn, ps)]
        targets = np.fromiter((sessions[a][p] for a, p in zip(sn, ps)), dtype=np.int64, count=len(sn))
        scores = torch.from_numpy(np.ascontiguousarray(model.score_sessions(prefixes), dtype=np.float32))
        metrics.add(target_ranks(scores, torch.from_numpy(targets), ties=ties))
    out = metrics.result()
    out["n_sessions"] = len(sessions)
    return out
