"""Item clustering over model embeddings, its quality figure, and the diversity cap.

No Django here: arrays in, arrays out, so the 1M-item benchmark runs it directly.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def default_k(n_items: int) -> int:
    """sqrt(n/2) clusters, 2..1000: ~7 for 100 items, ~220 for 100k, 707 for 1M."""
    return int(min(1000, max(2, round(math.sqrt(n_items / 2)))))


@dataclass
class KMeansResult:
    labels: np.ndarray  # [n_items] int32 cluster id per item
    centroids: np.ndarray  # [k, dim] float32, in the unit-normalised space that was clustered
    distances: np.ndarray  # [n_items] float32 squared distance of each item to its centroid
    inertia: float
    n_iter: int
    seconds: float


def kmeans_fit(embeddings: np.ndarray, k: int, seed: int = 0, batch_size: int | None = None,
               max_iter: int = 20, n_init: int = 1) -> KMeansResult:
    """MiniBatchKMeans on row-normalised embeddings (cosine geometry, like "similar items").

    Settings for large catalogues: mini-batches of 4096 (several per core per step, and each step
    still sees a fair share of a 1000-cluster model), one initialisation, at most 20 passes with
    sklearn's early stop on no improvement; the final labels come from one full assignment pass.
    The k-means++ initialisation runs here on a float64 sample of 3 batches: sklearn's own does
    the same on float32 through a slow up-casting distance path (55 s instead of 4 s for k=224).
    """
    import time

    from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus

    t0 = time.perf_counter()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    k = int(max(1, min(k, n)))
    batch = int(batch_size or min(4096, max(256, n)))
    rng = np.random.default_rng(seed)
    init_size = min(n, max(3 * batch, 3 * k))
    sample = x if init_size >= n else x[np.sort(rng.choice(n, init_size, replace=False))]
    best = None
    for trial in range(max(1, n_init)):
        init, _ = kmeans_plusplus(sample.astype(np.float64), k, random_state=seed + trial)
        km = MiniBatchKMeans(
            n_clusters=k, init=init.astype(np.float32), n_init=1, batch_size=batch, max_iter=max_iter,
            random_state=seed + trial, max_no_improvement=10, reassignment_ratio=0.01, compute_labels=False,
        )
        km.fit(x)
        score = -km.score(sample) if n_init > 1 else 0.0  # inertia on the sample: comparable across trials
        if best is None or score < best[0]:
            best = (score, km)
    km = best[1]
    labels, distances = _assign(x, km.cluster_centers_.astype(np.float32))
    inertia = float(distances.sum())
    return KMeansResult(labels, km.cluster_centers_.astype(np.float32), distances, inertia, int(km.n_iter_),
                        time.perf_counter() - t0)


def _assign(x: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row, in chunks so that 1M x 1000 distances never sit in memory."""
    c_sq = (centroids * centroids).sum(1)
    labels = np.empty(len(x), dtype=np.int32)
    dist = np.empty(len(x), dtype=np.float32)
    for s in range(0, len(x), chunk):
        part = x[s : s + chunk]
        d = c_sq[None, :] - 2.0 * (part @ centroids.T)
        j = d.argmin(1)
        labels[s : s + chunk] = j
        dist[s : s + chunk] = np.maximum(d[np.arange(len(part)), j] + (part * part).sum(1), 0.0)
    return labels, dist


# ---------------------------------------------------------------------------------- quality
def dominant_shares(labels: np.ndarray, categories: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: (dominant category, its share of the cluster's items with a category, size).

    ``categories`` holds one category id per item, -1 for unknown (not counted). Empty clusters
    (or ones whose items have no category) get category -1 and share 0.
    """
    labels = np.asarray(labels, dtype=np.int64)
    categories = np.asarray(categories, dtype=np.int64)
    sizes = np.bincount(labels, minlength=k)
    known = categories >= 0
    dom = np.full(k, -1, dtype=np.int64)
    share = np.zeros(k, dtype=np.float64)
    if not known.any():
        return dom, share, sizes
    lab, cat = labels[known], categories[known]
    # Count (cluster, category) pairs with one sort instead of a k x n_categories table.
    _, cat_dense = np.unique(cat, return_inverse=True)
    n_cat = int(cat_dense.max()) + 1
    pair = lab * n_cat + cat_dense
    uniq, counts = np.unique(pair, return_counts=True)
    cl, cd = uniq // n_cat, uniq % n_cat
    order = np.lexsort((-counts, cl))  # per cluster, the largest count first
    cl, cd, counts = cl[order], cd[order], counts[order]
    first = np.r_[True, cl[1:] != cl[:-1]]
    known_sizes = np.bincount(lab, minlength=k)
    cat_values = np.unique(cat)
    dom[cl[first]] = cat_values[cd[first]]
    share[cl[first]] = counts[first] / np.maximum(known_sizes[cl[first]], 1)
    return dom, share, sizes


def weighted_share(share: np.ndarray, sizes: np.ndarray) -> float:
    """Share of all items that sit in their cluster's dominant category (size-weighted mean)."""
    total = sizes.sum()
    return float((share * sizes).sum() / total) if total else 0.0


def random_baseline_share(labels: np.ndarray, categories: np.ndarray, k: int, seed: int = 0) -> float:
    """The same figure for random clusters of the same sizes: a permutation of the labels."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(np.asarray(labels))
    _, share, sizes = dominant_shares(shuffled, categories, k)
    return weighted_share(share, sizes)


# -------------------------------------------------------------------------------- diversity
def diversify(ranked_item_indices: Sequence[int], scores: Sequence[float], cluster_of_item, k: int,
              cap_per_cluster: int | None, fill: bool = True) -> tuple[list[int], list[float]]:
    """Top ``k`` of a ranked list with at most ``cap_per_cluster`` items per cluster.

    Walks the ranking once, keeping an item while its cluster is under the cap. With ``fill`` the
    skipped items are appended, in rank order, when fewer than ``k`` passed, so a narrow candidate
    list still yields ``k`` items (the cap is a preference, not a reason to show fewer). Items with no
    cluster (``cluster_of_item`` gives a negative id or has no entry) are never capped.
    ``cluster_of_item`` is an array indexed by item or a mapping item -> cluster.
    """
    k = int(k)
    ranked = [int(i) for i in ranked_item_indices]
    scores = [float(s) for s in scores]
    if not cap_per_cluster or cap_per_cluster <= 0:
        return ranked[:k], scores[:k]
    lookup = cluster_of_item.get if hasattr(cluster_of_item, "get") else None
    counts: dict[int, int] = {}
    kept, skipped = [], []
    for pos, item in enumerate(ranked):
        if len(kept) >= k:
            break
        if lookup is not None:
            c = lookup(item, -1)
        else:
            c = int(cluster_of_item[item]) if 0 <= item < len(cluster_of_item) else -1
        c = -1 if c is None else int(c)
        if c >= 0 and counts.get(c, 0) >= cap_per_cluster:
            skipped.append(pos)
            continue
        if c >= 0:
            counts[c] = counts.get(c, 0) + 1
        kept.append(pos)
    if fill and len(kept) < k:
        kept = kept + skipped[: k - len(kept)]  # after the diverse ones: a caller's [:n] keeps the cap
    return [ranked[p] for p in kept], [scores[p] for p in kept]
