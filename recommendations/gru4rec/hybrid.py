"""Hybrid of GRU4Rec and V-SKNN: each model's list for the session, fused per item.

Why: on the shared splits V-SKNN wins Recall@20 and GRU4Rec wins MRR@20; a fusion of the two
lists beats both on both metrics (docs/gru4rec-engine.md, "Hybrid").

How one request is answered (``Hybrid.top_items``; ``evaluate_hybrid`` computes exactly the same
numbers for every test transition, in batches):

1. Each model scores the session (the items it knows, in order; ``exclude`` and ``mask`` are
   applied to its scores first, so an unavailable item takes no place in its list) and keeps its
   *list*: the items scoring strictly above ``lo``, the (depth+1)-th best score (``depth``, a
   fusion parameter, 100 by default), i.e. at most ``depth`` items. V-SKNN lists only items some
   neighbour voted for (score > 0: ``lo`` is at least 0).
2. Each listed item gets a per-request normalised *part* in (0, 1] from each model (0 from a
   model that does not list it), by the fusion:

   - ``"rrf"`` (reciprocal rank fusion): ``part = (c + 1) / (c + rank)``, rank = 1 + the number
     of items of that model scoring strictly higher (equal scores share a rank), ``c`` a
     parameter (60 by default). The ``c + 1`` makes the best item's part 1; it scales both models
     alike, so the ranking is the one of ``w / (c + rank_knn) + (1 - w) / (c + rank_gru)``.
   - ``"minmax"``: ``part = (s - lo) / (s_max - lo)``: the model's score rescaled so that its best
     item gets 1 and the first item outside its list 0. With fewer than ``depth + 1`` candidates,
     ``lo`` is the lowest candidate score minus (best - lowest) / depth (and at least 0 for V-SKNN).

3. ``fused = weight * part_vsknn + (1 - weight) * part_gru4rec``; the answers are the items with a
   positive fused score, best first. ``weight`` (V-SKNN's share) and the fusion are chosen on a
   validation split cut from the training data (:func:`hybrid_weight_fit`), by
   ``metrics.objective``.

The hybrid's catalogue is the union of the two models' item ids: GRU4Rec's in its order, then the
items only V-SKNN knows. Items one model does not know still rank through the other.

Saved as a folder: ``hybrid.json`` (format, weight, fusion, fusion params, metrics),
``gru4rec.safetensors`` and ``vsknn/`` (the SessionKNN folder).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .baselines import SessionKNN, load_baseline, session_transitions
from .checkpoint import CheckpointError
from .lru import LRU
from .metrics import TIES, RankMetrics, objective
from .model import GRU4Rec

FORMAT = "gru4rec-hybrid"
FORMAT_VERSION = 1
_JSON = "hybrid.json"
_GRU = "gru4rec.safetensors"
_KNN = "vsknn"

FUSIONS = ("rrf", "minmax")
DEFAULT_DEPTH = 100
DEFAULT_C = 60.0
# The grid hybrid_weight_fit tries per fusion name (weights x these parameter sets).
FUSION_GRID: dict[str, list[dict]] = {
    "rrf": [{"c": 60.0, "depth": DEFAULT_DEPTH}, {"c": 10.0, "depth": DEFAULT_DEPTH}],
    "minmax": [{"depth": DEFAULT_DEPTH}],
}
DEFAULT_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


def fusion_params(fusion: str, **params) -> dict:
    """The complete, validated parameters of a fusion (defaults filled in); ValueError on a bad
    name or value."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    allowed = {"rrf": {"c", "depth"}, "minmax": {"depth"}}[fusion]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for fusion {fusion!r}; allowed: {sorted(allowed)}")
    out: dict = {}
    try:
        depth = int(params.get("depth", DEFAULT_DEPTH))
    except (TypeError, ValueError):
        raise ValueError(f"depth must be an integer, got {params.get('depth')!r}") from None
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    out["depth"] = depth
    if fusion == "rrf":
        try:
            c = float(params.get("c", DEFAULT_C))
        except (TypeError, ValueError):
            raise ValueError(f"c must be a number, got {params.get('c')!r}") from None
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"c must be a finite number >= 0, got {c}")
        out["c"] = c
    return out


def _check_weight(weight) -> float:
    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}") from None
    if not (0.0 <= w <= 1.0):
        raise ValueError(f"weight must be in [0, 1], got {weight!r}")
    return w


# ---------------------------------------------------------------------------------- fusion math
def list_parts(vals: torch.Tensor, idxs: torch.Tensor, fusion: str, params: dict, positive_only: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One model's lists and parts for a batch of requests, from its best ``T <= depth + 1``
    scores per row (``vals`` [B, T] sorted best first, -inf where a row has fewer candidates;
    ``idxs`` [B, T] their item indices). Returns sparse (rows, items, parts) of the listed items.

    Serving (one row from ``top_items``) and evaluation (``torch.topk`` of a batch) both call this,
    so they rank by the same arithmetic. Only the top ``depth + 1`` scores are needed: the listed
    items score above the (depth+1)-th, so they and every item above them are among the top depth.
    """
    depth = params["depth"]
    vals = vals.to(torch.float64)
    b, t = vals.shape
    if b == 0 or t == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, torch.zeros(0, dtype=torch.float64)
    finite = torch.isfinite(vals)
    if positive_only:
        finite &= vals > 0
    n_fin = finite.sum(1)
    vmax = vals[:, 0]
    full = n_fin > depth  # at least depth + 1 candidates: lo is the (depth+1)-th score
    # otherwise: below the lowest candidate by (best - lowest) / depth
    lowest = vals.gather(1, (n_fin - 1).clamp_min(0).view(-1, 1)).view(-1)
    spread = (vmax - lowest).clamp_min(0)
    lo_short = lowest - torch.where(spread > 0, spread / depth, torch.ones_like(spread))
    lo = torch.where(full, vals[:, min(depth, t - 1)], lo_short)
    if positive_only:
        lo = lo.clamp_min(0.0)
    top = vals[:, :depth]
    listed = finite[:, :depth] & (top > lo.view(-1, 1))
    rows, cols = listed.nonzero(as_tuple=True)
    s = top[rows, cols]
    if fusion == "rrf":
        c = params["c"]
        # equal scores share a rank: 1 + the number of strictly higher scores (all among the top depth)
        asc = top.flip(1).contiguous()
        higher = top.shape[1] - torch.searchsorted(asc[rows], s.view(-1, 1), right=True).view(-1)
        denom = c + 1.0 + higher.to(torch.float64)
        parts = torch.full_like(denom, c + 1.0) / denom  # not scalar / tensor: torch multiplies by a reciprocal
    else:  # minmax
        denom = vmax[rows] - lo[rows]
        parts = (s - lo[rows]) / denom
    return rows, idxs[rows, cols].to(torch.long), parts


def row_parts(vals: np.ndarray, idxs: np.ndarray, fusion: str, params: dict, positive_only: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`list_parts` for one request in numpy (serving: torch's per-call cost, ~5-10 us an
    op, would double the latency): ``vals`` the model's best ``T <= depth + 1`` scores, best first
    (only finite ones), ``idxs`` their items. Returns (listed items, parts); the same arithmetic,
    in float64, step for step (tests compare the two on every test transition)."""
    depth = params["depth"]
    vals = np.asarray(vals, dtype=np.float64)
    keep = np.isfinite(vals) & (vals > 0) if positive_only else np.isfinite(vals)
    vals, idxs = vals[keep], np.asarray(idxs)[keep]
    n = len(vals)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    vmax = vals[0]
    if n > depth:
        lo = vals[depth]
    else:
        spread = max(vmax - vals[-1], 0.0)
        lo = vals[-1] - (spread / depth if spread > 0 else 1.0)
    if positive_only:
        lo = max(lo, 0.0)
    top = vals[:depth]
    listed = top > lo
    s = top[listed]
    if fusion == "rrf":
        c = params["c"]
        higher = len(top) - np.searchsorted(top[::-1], s, side="right")
        parts = (c + 1.0) / (c + 1.0 + higher.astype(np.float64))
    else:
        parts = (s - lo) / (vmax - lo)
    return np.asarray(idxs[:depth][listed], dtype=np.int64), parts


def _topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(k, scores.shape[1])
    top = torch.topk(scores, k, dim=1)
    return top.values, top.indices


# ------------------------------------------------------------------------------------- the model
class Hybrid:
    """A trained GRU4Rec and a trained SessionKNN (V-SKNN) fused per item; see the module doc."""

    kind = "hybrid"
    # Requests whose fused parts one model keeps (:meth:`_parts`): the shop asks ``top_items`` and
    # then ``contributions`` of the same request ("why these?" on every storefront block), which
    # would otherwise score both models twice. At most ~5 KB an entry.
    PARTS_MEMO_ENTRIES = 64

    def __init__(self, gru: GRU4Rec, knn: SessionKNN, weight: float, fusion: str = "rrf", **fusion_params_):
        if not isinstance(gru, GRU4Rec):
            raise ValueError(f"gru must be a GRU4Rec model, got {type(gru).__name__}")
        if not isinstance(knn, SessionKNN):
            raise ValueError(f"knn must be a SessionKNN (V-SKNN) model, got {type(knn).__name__}")
        self.gru = gru
        self.knn = knn
        self.weight = _check_weight(weight)
        self.fusion_params = fusion_params(fusion, **fusion_params_)
        self.fusion = fusion
        self.meta: dict = {"metrics": {}}
        # catalogue: GRU4Rec's items in its order, then the items only V-SKNN knows
        extra = [it for it in knn.item_ids if it not in gru.item_index]
        self.item_ids: list[str] = list(gru.item_ids) + extra
        self.item_index: dict[str, int] = {it: i for i, it in enumerate(self.item_ids)}
        self.n_gru = gru.n_items
        self.k2h = np.fromiter((self.item_index[it] for it in knn.item_ids), dtype=np.int64, count=knn.n_items)
        self.h2k = np.full(self.n_items, -1, dtype=np.int64)
        self.h2k[self.k2h] = np.arange(knn.n_items)
        self._k2h_t = torch.from_numpy(self.k2h)
        self._knn_identity = knn.n_items == self.n_items and bool((self.k2h == np.arange(self.n_items)).all())
        self._parts_memo = LRU(self.PARTS_MEMO_ENTRIES)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def depth(self) -> int:
        return self.fusion_params["depth"]

    def params(self) -> dict:
        return {"weight": self.weight, "fusion": self.fusion, **self.fusion_params,
                "gru4rec": self.gru.params.to_string(), "vsknn": self.knn.params()}

    # -------------------------------------------------------------------------- index mapping
    def _split_idx(self, idx: Sequence[int]) -> tuple[list[int], list[int]]:
        """The session in each model's indices (items a model does not know are skipped)."""
        idx = [int(i) for i in idx]
        for i in idx:
            if not 0 <= i < self.n_items:
                raise ValueError(f"item index {i} out of range [0, {self.n_items})")
        g = [i for i in idx if i < self.n_gru]
        k = [int(self.h2k[i]) for i in idx if self.h2k[i] >= 0]
        return g, k

    def _knn_mask(self, exclude, mask: torch.Tensor | None) -> torch.Tensor | None:
        """The additive mask over V-SKNN's items equivalent to ``exclude`` + ``mask``."""
        if mask is None and not (exclude is not None and len(exclude)):
            return None
        m = torch.zeros(self.n_items, dtype=torch.float32)
        if mask is not None:
            m += mask.to(torch.float32).cpu()
        if exclude is not None and len(exclude):
            m[torch.as_tensor(list(exclude), dtype=torch.long)] = -math.inf
        return m if self._knn_identity else m[self._k2h_t]

    # -------------------------------------------------------------------------------- serving
    def _parts_one(self, idx, exclude=None, mask: torch.Tensor | None = None):
        """(items (hybrid indices), GRU4Rec parts, V-SKNN parts) of one request over the union of
        both lists, numpy arrays aligned by item."""
        g_idx, k_idx = self._split_idx(idx)
        t = self.depth + 1
        p = self.fusion_params
        ex = np.asarray([int(i) for i in exclude], dtype=np.int64) if exclude is not None and len(exclude) else None
        g_items = k_items = np.zeros(0, dtype=np.int64)
        g_parts = k_parts = np.zeros(0, dtype=np.float64)
        if g_idx:
            g_ex = ex[ex < self.n_gru].tolist() if ex is not None else None
            g_mask = mask[: self.n_gru] if mask is not None else None
            pos, vals = self.gru.top_items(g_idx, t, exclude=g_ex, mask=g_mask)
            g_items, g_parts = row_parts(np.asarray(vals), np.asarray(pos, dtype=np.int64), self.fusion, p, False)
        if k_idx:
            items, scores = self.knn.votes(k_idx)  # knn indices, scores > 0
            if mask is not None or ex is not None:
                if mask is not None:
                    scores = scores + mask.detach().to("cpu", torch.float32).numpy()[self.k2h[items]]
                if ex is not None:  # items are ascending: find the excluded ones by bisection
                    k_ex = self.h2k[ex]
                    at = np.searchsorted(items, k_ex)
                    hit = (at < len(items)) & (k_ex >= 0)
                    at = at[hit]
                    at = at[items[at] == k_ex[hit]]
                    scores = scores.copy() if mask is None else scores
                    scores[at] = -np.inf
            if len(items) > t:  # only voted items can be listed: select among them
                sel = np.argpartition(-scores, t - 1)[:t]
                items, scores = items[sel], scores[sel]
            order = np.argsort(-scores, kind="stable")
            k_items, k_parts = row_parts(scores[order], items[order], self.fusion, p, True)
            k_items = self.k2h[k_items]
        both = np.union1d(g_items, k_items)
        g = np.zeros(len(both))
        k = np.zeros(len(both))
        g[np.searchsorted(both, g_items)] = g_parts
        k[np.searchsorted(both, k_items)] = k_parts
        return both, g, k

    def _parts(self, idx, exclude=None, mask: torch.Tensor | None = None):
        """:meth:`_parts_one`, kept for the last ``PARTS_MEMO_ENTRIES`` requests on CPU. An entry
        names what its parts were computed from (GRU4Rec's serving cache, rebuilt when a weight
        changes; V-SKNN's session matrix; the mask tensor and its version counter) and is used only
        while all of them are still the same objects, unchanged; the arrays are never written to. A
        mask without a version counter (an inference tensor) is never kept."""
        if self.gru.device.type != "cpu":
            return self._parts_one(idx, exclude, mask)
        version = None
        if mask is not None:
            try:
                version = mask._version
            except RuntimeError:  # an inference tensor has no version counter: in-place changes go unseen
                return self._parts_one(idx, exclude, mask)
        key = (tuple(int(i) for i in idx), None if exclude is None else tuple(int(i) for i in exclude),
               self.fusion, tuple(sorted(self.fusion_params.items())))
        basis = (self.gru._serving(), self.knn.item_sess, mask)
        found = self._parts_memo.get(key)
        if found is not None and found[1] == version and all(ref() is obj for ref, obj in zip(found[0], basis)):
            return found[2]
        parts = self._parts_one(idx, exclude, mask)
        # weak references: an entry never keeps a replaced serving cache (4 MB) or matrix alive,
        # and one whose object was freed cannot match a new object at the same address
        refs = tuple(weakref.ref(obj) if obj is not None else (lambda: None) for obj in basis)
        self._parts_memo.put(key, (refs, version, parts))
        return parts

    def top_items(self, idx: Sequence[int], n: int, exclude=None, mask: torch.Tensor | None = None
                  ) -> tuple[list[int], list[float]]:
        """The top ``n`` (item indices of the hybrid catalogue, fused scores, best first) after one
        session given as item indices, oldest first; same contract as ``GRU4Rec.top_items`` and
        ``SessionKNN.top_items``: items in ``exclude`` or with ``mask`` -inf (an additive
        [n_items] tensor) never come back, and only items at least one model lists (fused score >
        0) are answers, so fewer than ``n`` may come back. Equal fused scores: lower index first."""
        n = max(0, min(int(n), self.n_items))
        if not idx or n == 0:
            return [], []
        items, g, k = self._parts(idx, exclude, mask)
        fused = self.weight * k + (1.0 - self.weight) * g
        pos = np.flatnonzero(fused > 0)
        order = np.lexsort((items[pos], -fused[pos]))[:n]  # best first; equal scores by index
        return items[pos[order]].tolist(), fused[pos[order]].tolist()

    def contributions(self, idx: Sequence[int], items: Sequence[int], exclude=None,
                      mask: torch.Tensor | None = None) -> list[dict]:
        """For each of ``items`` (hybrid indices, e.g. what :meth:`top_items` returned for the same
        session, ``exclude`` and ``mask``): each model's share of its fused score,
        ``{"gru4rec": share, "vsknn": share}`` summing to 1 (both 0 for an item neither lists)."""
        parts = {}
        if idx:
            both, gp, kp = self._parts(idx, exclude, mask)
            parts = {int(i): (a, b) for i, a, b in zip(both.tolist(), gp.tolist(), kp.tolist())}
        w = self.weight
        out = []
        for i in items:
            g, k = parts.get(int(i), (0.0, 0.0))
            g, k = (1.0 - w) * g, w * k
            total = g + k
            out.append({"gru4rec": g / total, "vsknn": k / total} if total > 0 else {"gru4rec": 0.0, "vsknn": 0.0})
        return out

    def similar(self, i: int, n: int, mask: torch.Tensor | None = None) -> tuple[list[int], list[float]]:
        """Items similar to item index ``i`` (best first, ``i`` never): GRU4Rec's embedding cosine
        when GRU4Rec knows ``i`` (its answers are GRU4Rec items), else V-SKNN's session co-occurrence
        cosine; ``mask`` as in :meth:`top_items`."""
        i = int(i)
        if not 0 <= i < self.n_items:
            raise ValueError(f"item index {i} out of range [0, {self.n_items})")
        if i < self.n_gru:
            return self.gru.similar(i, n, mask=mask[: self.n_gru] if mask is not None else None)
        km = self._knn_mask(None, mask)
        pos, vals = self.knn.similar(int(self.h2k[i]), n, mask=km)
        return self.k2h[pos].tolist(), vals

    def recommend_ids(self, items: Sequence[str], k: int = 10, exclude_seen: bool = True) -> tuple[list[str], list[float]]:
        """Top-``k`` item ids for a live session of item ids (unknown ids skipped); a convenience
        for inspection and the CLI."""
        idx = [self.item_index[str(it)] for it in items if str(it) in self.item_index]
        pos, vals = self.top_items(idx, k, exclude=idx if exclude_seen else None)
        return [self.item_ids[j] for j in pos], vals

    def serving_prepare(self) -> bool:
        """Build GRU4Rec's serving cache now; True when its int8 candidate stage is in use."""
        return self.gru.serving_prepare()

    # ----------------------------------------------------------------------------- files
    def save(self, folder: str | os.PathLike) -> None:
        """Write the folder: ``gru4rec.safetensors``, ``vsknn/`` and ``hybrid.json`` (written last,
        through a temporary file, so a folder with ``hybrid.json`` is complete)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.gru.save(folder / _GRU)
        self.knn.save(folder / _KNN)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "weight": self.weight, "fusion": self.fusion,
                "fusion_params": self.fusion_params, "n_items": self.n_items,
                "metrics": self.meta.get("metrics") or {}, "fit": self.meta.get("fit") or {}}
        tmp = folder / (_JSON + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(tmp, folder / _JSON)

    @staticmethod
    def is_hybrid_folder(path: str | os.PathLike) -> bool:
        return (Path(path) / _JSON).is_file()

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> "Hybrid":
        """Read a folder written by :meth:`save`; CheckpointError names what is wrong with it."""
        folder = Path(folder)
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: no such hybrid model folder")
        try:
            meta = json.loads((folder / _JSON).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{folder}: not a hybrid model folder (no {_JSON})") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{folder / _JSON}: unreadable ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{folder / _JSON}: not a hybrid model description")
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{folder / _JSON}: format version {meta.get('format_version')!r}, "
                                  f"this code reads {FORMAT_VERSION}")
        gru = GRU4Rec.load(folder / _GRU, device=device)
        try:
            knn = load_baseline(folder / _KNN)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{folder / _KNN}: unreadable V-SKNN model ({type(exc).__name__}: {exc})") from exc
        if not isinstance(knn, SessionKNN):
            raise CheckpointError(f"{folder / _KNN}: holds a {knn.kind!r} model, not V-SKNN")
        try:
            fp = meta.get("fusion_params") or {}
            if not isinstance(fp, dict):
                raise ValueError("fusion_params is not an object")
            model = cls(gru, knn, meta.get("weight"), meta.get("fusion"), **fp)
        except ValueError as exc:
            raise CheckpointError(f"{folder / _JSON}: {exc}") from exc
        if meta.get("n_items") not in (None, model.n_items):
            raise CheckpointError(f"{folder / _JSON}: says {meta.get('n_items')} items, the models hold {model.n_items}")
        model.meta = {"metrics": meta.get("metrics") or {}, "fit": meta.get("fit") or {}}
        return model


# ---------------------------------------------------------------------------------- evaluation
def _test_sessions(model: Hybrid, test_df) -> list[np.ndarray]:
    """Test sessions as hybrid item-index arrays, events on unknown items dropped, then sessions
    shorter than 2 (the protocol of ``evaluate`` and ``evaluate_baseline``)."""
    class _Index:  # session_transitions reads only ``_index``
        _index = model.item_index

    sessions, _, _ = session_transitions(_Index, test_df)
    return sessions


def _batches(model: Hybrid, sessions: list[np.ndarray], batch_sessions: int = 64):
    """Raw scores of both models for every test transition, in batches: yields (gru scores
    [B, n_gru] or None, knn scores [B, n_knn] (numpy), targets [B] (hybrid indices), has_gru [B]).

    GRU4Rec runs the sessions of a batch side by side one step at a time (one hidden state per
    session, no recomputation of prefixes); V-SKNN scores the same prefixes."""
    gru, knn = model.gru, model.knn
    h2k = model.h2k
    order = np.argsort([len(s) for s in sessions], kind="stable")
    for a in range(0, len(order), batch_sessions):
        chunk = [sessions[j] for j in order[a : a + batch_sessions]]
        b = len(chunk)
        length = max(len(s) for s in chunk)
        pad = np.full((b, length), -1, dtype=np.int64)
        for r, s in enumerate(chunk):
            pad[r, : len(s)] = s
        hidden = gru.zero_hidden(b)
        started = torch.zeros(b, dtype=torch.bool)
        with torch.inference_mode():
            for t in range(length - 1):
                x = torch.from_numpy(pad[:, t])
                active = (pad[:, t + 1] >= 0)
                g_known = (x >= 0) & (x < model.n_gru)
                new = gru.step(torch.where(g_known, x, torch.zeros_like(x)).to(gru.device), hidden)
                keep = g_known.to(gru.device).view(-1, 1)
                hidden = [torch.where(keep, hn, ho) for hn, ho in zip(new, hidden)]
                started |= g_known
                rows = np.flatnonzero(active)
                if not len(rows):
                    continue
                rows_t = torch.from_numpy(rows)
                g_scores = gru.scores(hidden[-1][rows_t.to(gru.device)]).cpu()
                prefixes = []
                for r in rows:
                    pre = pad[r, : t + 1]
                    k = h2k[pre]
                    prefixes.append(k[k >= 0])
                k_scores = knn.score_sessions(prefixes)
                yield g_scores, k_scores, torch.from_numpy(pad[rows, t + 1]), started[rows_t].clone()


class _Lists:
    """Both models' lists for a batch of transitions (sparse), ready to fuse for any weight."""

    def __init__(self, model: Hybrid, g_scores, k_scores, targets, has_gru, fusion: str, params: dict):
        t = params["depth"] + 1
        b = len(targets)
        gv, gi = _topk(g_scores, t)
        gv = torch.where(has_gru.view(-1, 1), gv, torch.full_like(gv, -math.inf))
        gr, gc, gp = list_parts(gv, gi, fusion, params, positive_only=False)
        kv, ki = _topk(torch.from_numpy(np.ascontiguousarray(k_scores)), t)
        kr, kc, kp = list_parts(kv, ki, fusion, params, positive_only=True)
        kc = model._k2h_t[kc]
        n = model.n_items
        keys = torch.cat([gr * n + gc, kr * n + kc])
        uniq, inv = torch.unique(keys, return_inverse=True)
        self.g = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv[: len(gr)], gp)
        self.k = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv[len(gr) :], kp)
        self.rows = uniq // n
        # position of each row's target among the listed entries (-1: neither model lists it)
        tkeys = torch.arange(b) * n + targets
        pos = torch.searchsorted(uniq, tkeys)
        pos_c = pos.clamp_max(max(len(uniq) - 1, 0))
        found = (pos < len(uniq)) & (uniq[pos_c] == tkeys) if len(uniq) else torch.zeros(b, dtype=torch.bool)
        self.target_pos = torch.where(found, pos_c, torch.full_like(pos_c, -1))
        self.b, self.n = b, n

    def ranks(self, weight: float, ties: str = "conservative") -> torch.Tensor:
        """Rank of each row's target under the fused score, ties as in ``metrics.target_ranks``
        (conservative: the number of items scoring >= the target). Every item neither model lists
        scores 0: a target scoring 0 ties with all of them (conservative rank = catalogue size)."""
        zeros = torch.zeros(self.b, dtype=torch.float64)
        fused = weight * self.k + (1.0 - weight) * self.g
        tp = self.target_pos
        ft = torch.where(tp >= 0, fused[tp.clamp_min(0)], zeros) if len(fused) else zeros
        fr = ft[self.rows]
        gt = zeros.clone().index_add_(0, self.rows, (fused > fr).to(torch.float64))
        ge = zeros.clone().index_add_(0, self.rows, (fused >= fr).to(torch.float64))
        # a target at 0 also ties with the unlisted items (and the listed items at 0, counted above)
        ge = torch.where(ft > 0, ge, ge + (self.n - zeros.clone().index_add_(0, self.rows, torch.ones_like(fused))))
        if ties == "conservative":
            return ge
        if ties == "standard":
            return 1.0 + gt
        return (ge + gt + 1.0) / 2.0


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")


def evaluate_hybrid(model: Hybrid, test_df, cutoffs=(1, 5, 10, 20), ties: str = "conservative") -> dict:
    """Recall@N and MRR@N of the hybrid with the protocol of ``evaluate`` / ``evaluate_baseline``:
    every transition of every test session (events on unknown items dropped, then sessions shorter
    than 2), the target ranked among the whole catalogue by the fused score (items outside both
    lists all score 0), ``ties`` as in ``metrics.target_ranks``. Returns ``recall@N``, ``mrr@N``, ``n_events``,
    ``n_sessions``, ``eval_seconds``."""
    _check_ties(ties)
    t0 = time.perf_counter()
    sessions = _test_sessions(model, test_df)
    metrics = RankMetrics(cutoffs)
    for g, k, targets, has_gru in _batches(model, sessions):
        lists = _Lists(model, g, k, targets, has_gru, model.fusion, model.fusion_params)
        metrics.add(lists.ranks(model.weight, ties))
    out = metrics.result()
    out["n_sessions"] = len(sessions)
    out["eval_seconds"] = time.perf_counter() - t0
    return out


def _grid(fusions, fusion_grid) -> list[tuple[str, dict]]:
    grid = FUSION_GRID if fusion_grid is None else fusion_grid
    configs = []
    for f in fusions:
        if f not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {f!r}")
        for p in grid.get(f) or [{}]:
            configs.append((f, fusion_params(f, **p)))
    if not configs:
        raise ValueError("no fusion to try")
    return configs


def hybrid_weight_fit(gru: GRU4Rec, knn: SessionKNN, valid_df, weights=None, fusions=FUSIONS,
                      fusion_grid: dict[str, list[dict]] | None = None, cutoffs=(1, 5, 10, 20)) -> dict:
    """Choose the weight (V-SKNN's share) and the fusion on validation events by
    ``metrics.objective`` (the geometric mean of Recall@20 and MRR@20). Every (fusion, its
    parameters from ``fusion_grid`` (default ``FUSION_GRID``), weight from ``weights`` (default
    0, 0.1, ..., 1)) is evaluated on the same transitions; ties of the objective go to the first in
    that order. Returns ``{"weight", "fusion", "fusion_params", <the fusion params>, "objective",
    "metrics", "grid": [{"weight", "fusion", "fusion_params", "objective", "recall@20", "mrr@20"}, ...]}``."""
    weights = DEFAULT_WEIGHTS if weights is None else tuple(_check_weight(w) for w in weights)
    if not weights:
        raise ValueError("no weight to try")
    configs = _grid(fusions, fusion_grid)
    cutoffs = tuple(sorted(set(int(c) for c in cutoffs) | {20}))
    probe = Hybrid(gru, knn, 0.0, configs[0][0], **configs[0][1])
    sessions = _test_sessions(probe, valid_df)
    acc = {(ci, w): RankMetrics(cutoffs) for ci in range(len(configs)) for w in weights}
    for g, k, targets, has_gru in _batches(probe, sessions):
        for ci, (f, p) in enumerate(configs):
            lists = _Lists(probe, g, k, targets, has_gru, f, p)
            for w in weights:
                acc[(ci, w)].add(lists.ranks(w))
    grid, best = [], None
    for ci, (f, p) in enumerate(configs):
        for w in weights:
            m = acc[(ci, w)].result()
            obj = objective(m)
            grid.append({"weight": w, "fusion": f, "fusion_params": p, "objective": obj,
                         "recall@20": m["recall@20"], "mrr@20": m["mrr@20"]})
            if best is None or obj > best[0]:
                best = (obj, w, f, p, m)
    obj, w, f, p, m = best
    m["n_sessions"] = len(sessions)
    return {"weight": w, "fusion": f, "fusion_params": p, **p, "objective": obj, "metrics": m, "grid": grid}


def fit_hybrid(train_df, gru_params, knn_params: dict | None = None, valid_days: float = 1, seed=0,
               progress: bool = False, log=None, weights=None, fusions=FUSIONS,
               fusion_grid: dict[str, list[dict]] | None = None, device: str = "cpu") -> tuple[Hybrid, dict]:
    """Train a hybrid on ``train_df``: cut the last ``valid_days`` off as validation
    (``sessions.split_by_time``), train GRU4Rec (``gru_params``) and V-SKNN (``knn_params``) on the
    rest, choose weight and fusion there (:func:`hybrid_weight_fit`), then train both again on all
    of ``train_df`` and fuse them with that choice. Returns (hybrid, info: the choice, the validation
    metrics and grid, the models' validation metrics at weights 0 and 1, timings)."""
    from .params import parse_params  # why: training-only modules, kept out of the serving imports
    from .sessions import split_by_time  # why: training-only modules, kept out of the serving imports
    from .trainer import fit  # why: training-only modules, kept out of the serving imports

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True) if progress else None)
    params = parse_params(gru_params) if isinstance(gru_params, str) else gru_params
    knn_params = dict(knn_params or {})
    SessionKNN(**knn_params)  # bad parameters fail before any training
    info: dict = {"valid_days": valid_days}
    t0 = time.perf_counter()
    tr, va = split_by_time(train_df, days=valid_days)
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"cannot cut a validation split of {valid_days} day(s) from the training events "
                         f"({len(tr)} training, {len(va)} validation events left)")
    say(f"validation split: {len(tr):,} training events, {len(va):,} validation events")
    gru_v, _ = fit(tr, params, device=device, seed=seed, progress=progress, log=log)
    knn_v = SessionKNN(**knn_params).fit(tr)
    chosen = hybrid_weight_fit(gru_v, knn_v, va, weights=weights, fusions=fusions, fusion_grid=fusion_grid)
    info["fit_seconds_validation"] = round(time.perf_counter() - t0, 3)
    by = {(g["fusion"], json.dumps(g["fusion_params"], sort_keys=True), g["weight"]): g for g in chosen["grid"]}
    key = json.dumps(chosen["fusion_params"], sort_keys=True)
    for name, w in (("gru4rec", 0.0), ("vsknn", 1.0)):
        g = by.get((chosen["fusion"], key, w))
        if g is not None:
            info[f"valid_{name}"] = {"recall@20": g["recall@20"], "mrr@20": g["mrr@20"]}
    info.update({k: chosen[k] for k in ("weight", "fusion", "fusion_params", "objective", "metrics", "grid")})
    say(f"chosen: fusion {chosen['fusion']} {chosen['fusion_params']}, weight {chosen['weight']}, "
        f"validation R@20 {chosen['metrics']['recall@20']:.4f} MRR@20 {chosen['metrics']['mrr@20']:.4f}")
    t1 = time.perf_counter()
    gru, _ = fit(train_df, params, device=device, seed=seed, progress=progress, log=log)
    knn = SessionKNN(**knn_params).fit(train_df)
    info["fit_seconds_final"] = round(time.perf_counter() - t1, 3)
    model = Hybrid(gru, knn, chosen["weight"], chosen["fusion"], **chosen["fusion_params"])
    model.meta["fit"] = {k: info[k] for k in ("weight", "fusion", "fusion_params", "objective", "valid_days")}
    model.meta["fit"]["valid_metrics"] = {k: v for k, v in chosen["metrics"].items() if k.startswith(("recall", "mrr"))}
    return model, info
