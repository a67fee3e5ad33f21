"""Candidate retrieval for large catalogues: a faiss maximum-inner-product index over the model's
output vectors with the bias folded in (item ``[Wy_j, By_j]``, query ``[h, 1]``, so the inner
product is exactly the GRU4Rec score ``h . Wy_j + By_j``), and the exact path for small ones.

No Django here. Index files are written with ``faiss.write_index`` and read with
``faiss.read_index`` (never pickled); the caller records their sha256.

Index choice: IVF-Flat with an inner-product metric. HNSW reaches the same recall but takes many
minutes to build 1M x 101 on two cores; IVF builds in about a minute, keeps exact scores for the
candidates (no re-ranking needed) and has one knob, ``nprobe``. ``nlist`` ~ 4 sqrt(n) (4096 at 1M)
and ``nprobe`` (32 at 100k, 64 at 1M; the ``nprobe`` of the RetrievalIndex row overrides it at
load time, no rebuild needed) were chosen with bench/ann_retrieval.py for recall@20 >= 0.95 on
session-like queries (docs/clusters.md).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_NPROBE_SHARE = 1 / 32  # share of the lists probed, within MIN_NPROBE..MAX_NPROBE
MIN_NPROBE = 16
# Lists hold ~sqrt(n)/4 items, so 64 probes already scan ~16k candidates at 1M (recall@20 0.999 on
# session states in bench/ann_retrieval.py); 128 would double the search time for +0.0002.
MAX_NPROBE = 64
TRAIN_POINTS_PER_LIST = 40


def _faiss():
    import faiss

    return faiss


def fold(Wy: np.ndarray, By: np.ndarray) -> np.ndarray:
    """Item vectors with the bias as an extra dimension: ``[Wy | By]`` float32, C-contiguous."""
    Wy = np.asarray(Wy, dtype=np.float32)
    By = np.asarray(By, dtype=np.float32).reshape(-1, 1)
    return np.ascontiguousarray(np.hstack([Wy, By]))


def queries(hidden_states) -> np.ndarray:
    """Query vectors ``[h | 1]`` for hidden states [n, H] (numpy or torch)."""
    h = hidden_states.detach().cpu().numpy() if hasattr(hidden_states, "detach") else np.asarray(hidden_states)
    h = np.atleast_2d(h).astype(np.float32, copy=False)
    return np.ascontiguousarray(np.hstack([h, np.ones((len(h), 1), dtype=np.float32)]))


def index_params(n_items: int) -> dict:
    """nlist and nprobe for a catalogue of ``n_items`` (see the module docstring)."""
    nlist = int(min(max(1, round(4 * math.sqrt(n_items))), max(1, n_items // TRAIN_POINTS_PER_LIST)))
    nlist = 1 << max(0, int(round(math.log2(nlist))))  # a power of two: predictable list sizes
    nlist = max(1, min(nlist, max(1, n_items // TRAIN_POINTS_PER_LIST)))
    nprobe = min(MAX_NPROBE, max(MIN_NPROBE, int(math.ceil(nlist * DEFAULT_NPROBE_SHARE))))
    return {"nlist": nlist, "nprobe": min(nprobe, nlist)}


def build_ip_index(Wy: np.ndarray, By: np.ndarray, nlist: int | None = None, nprobe: int | None = None,
                   seed: int = 0, train_size: int | None = None):
    """An IVF-Flat inner-product faiss index over ``[Wy | By]``; row j of the index is item j."""
    faiss = _faiss()
    x = fold(Wy, By)
    n, d = x.shape
    params = index_params(n)
    nlist = int(nlist or params["nlist"])
    nprobe = int(nprobe or params["nprobe"])
    # index_factory: the index owns its coarse quantizer (no Python reference to keep alive).
    index = faiss.index_factory(d, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    ivf.cp.niter = 20
    ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    ivf.cp.min_points_per_centroid = 1
    train_size = int(min(n, train_size or nlist * TRAIN_POINTS_PER_LIST))
    rng = np.random.default_rng(seed)
    sample = x if train_size >= n else x[np.sort(rng.choice(n, train_size, replace=False))]
    index.train(sample)
    index.add(x)
    ivf.nprobe = min(nprobe, nlist)
    return index


def set_nprobe(index, nprobe: int) -> None:
    _faiss().extract_index_ivf(index).nprobe = int(nprobe)


def search(index, hidden_states, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` items by ``h . Wy + By`` per query -> (scores [q, n], item indices [q, n]).
    Missing results (fewer than ``n`` items reachable) have index -1 and score -inf."""
    q = queries(hidden_states)
    n = int(min(n, index.ntotal))
    scores, ids = index.search(q, n)
    scores[ids < 0] = -np.inf
    return scores, ids


def session_topk(model, index, idx: list[int], n: int, exclude_seen: bool = True,
                 unavailable=None) -> tuple[list[int], list[float]]:
    """Serving path for one live session: GRU state after its items, ANN candidates (exact
    scores: IVF-Flat), seen and unavailable (score mask -inf) items dropped, best ``n`` first.
    The search widens when too many candidates were dropped."""
    import torch

    with torch.inference_mode():
        h = model.final_hidden([idx])
    seen = set(idx) if exclude_seen else set()
    blocked = None if unavailable is None else np.asarray(unavailable)  # 0 or -inf per item
    ask = n + len(seen) + 16
    out_i: list[int] = []
    out_s: list[float] = []
    for _ in range(3):
        scores, ids = search(index, h, ask)
        out_i, out_s = [], []
        for j, s in zip(ids[0].tolist(), scores[0].tolist()):
            if j < 0 or j in seen or (blocked is not None and blocked[j] == -np.inf):
                continue
            out_i.append(j)
            out_s.append(s)
            if len(out_i) >= n:
                return out_i, out_s
        if (ids[0] >= 0).sum() < ask:
            break
        ask *= 4
    return out_i, out_s


def exact_topk(Wy: np.ndarray, By: np.ndarray, hidden_states, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``n`` by ``h . Wy + By`` over the whole catalogue -> (scores, indices), best first."""
    h = queries(hidden_states)[:, :-1]
    s = h @ np.asarray(Wy, dtype=np.float32).T + np.asarray(By, dtype=np.float32)[None, :]
    n = int(min(n, s.shape[1]))
    part = np.argpartition(-s, n - 1, axis=1)[:, :n]
    ps = np.take_along_axis(s, part, 1)
    order = np.argsort(-ps, axis=1, kind="stable")
    return np.take_along_axis(ps, order, 1), np.take_along_axis(part, order, 1)


def recall_at(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean share of each exact top-n list that the approximate list found."""
    hits = [len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in zip(approx_ids, exact_ids)]
    return float(np.mean(hits)) if hits else 1.0


def index_write(index, path: str | os.PathLike) -> int:
    """Write atomically (temp file then rename); returns the size in bytes."""
    faiss = _faiss()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{time.time_ns()}-{path.name}")
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path.stat().st_size


def index_read(path: str | os.PathLike, nprobe: int | None = None):
    index = _faiss().read_index(str(path))
    if nprobe:
        set_nprobe(index, nprobe)
    return index
