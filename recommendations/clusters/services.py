"""Services: build a model version's clusters and ANN index, load them with the model, and answer
candidate / diversity questions for the recommendation service.

The core never imports this app; apps.py registers these with the core's hooks:

- :func:`retrieval_extras_load` ``(bundle, row) -> dict`` with
  ``serving.extra_loader_register("retrieval", ...)``, so the index and the cluster assignment are
  loaded with every model version, hot reload included: ``bundle.extras["retrieval"]``.
- :func:`ann_candidates` ``(bundle, idx, n, exclude_seen) -> (indices, scores) | None`` with
  ``ranking.candidate_source_register``: the large-catalogue path of ``ranking._model_candidates``;
  :func:`candidates_for` ``(hidden, extras, n)`` is the bare search.
- :func:`diversify_bundle` ``(bundle, indices, scores, k, cap_per_cluster)`` with
  ``ranking.diversifier_register``: the per-cluster cap.
- :func:`activation_extras_queue` with ``registry.activation_hook_register``: clusters + index
  after an activation (the Celery task ``recommendations.clusters.tasks.clusters_build`` runs
  :func:`version_extras_build`).
- :func:`popular_pool` with ``selectors.popular_source_register``: the cold paths' pools.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from catalog.models import Category, Product
from recommendations import artifacts
from recommendations.models import ModelVersion
from recommendations.selectors import POPULAR_POOL
from tracking.selectors import popularity_ranking

from . import clustering, naming, retrieval
from .models import ItemCluster, ItemClustering, ItemClusterMember, RetrievalIndex

logger = logging.getLogger(__name__)

MEMBER_BATCH = 5000
LOCK_SECONDS = 3600


class ClustersUnavailable(Exception):
    """The model version has no item vectors to cluster or index (e.g. V-SKNN)."""


@dataclass
class BuildReport:
    clustering: ItemClustering | None
    index: RetrievalIndex | None


# ----------------------------------------------------------------------------------- helpers
def _engine_load(mv: ModelVersion):
    if mv.kind != ModelVersion.Kind.GRU4REC:
        raise ClustersUnavailable(f"{mv.version}: a {mv.kind} model has no item embeddings")
    return artifacts.model_load(mv)


def _sidecar_name(mv: ModelVersion, suffix: str, digest: str) -> str:
    stem = Path(mv.artifact).name.rsplit(".", 1)[0]
    return f"{stem}.{suffix}-{digest[:16]}"


def _write_content_addressed(mv: ModelVersion, suffix: str, ext: str, write) -> tuple[str, str, int]:
    """``write(tmp_path)``, stored as ``<artifact stem>.<suffix>-<sha16><ext>`` by ``artifacts``."""
    return artifacts.file_write(lambda digest: _sidecar_name(mv, suffix, digest) + ext, write, ext)


def _sidecar_remove(name: str) -> None:
    """Delete a replaced index / assignment file (processes that loaded it keep their copy)."""
    artifacts.delete(name)


@contextmanager
def _build_lock(mv: ModelVersion):
    """One build per version at a time (Redis lock when the cache has locks; else none needed:
    the embedded default runs tasks eagerly in one process)."""
    lock = cache.lock(f"clusters:build:{mv.pk}", timeout=LOCK_SECONDS) if hasattr(cache, "lock") else None
    try:
        acquired = lock is None or lock.acquire(blocking=True, blocking_timeout=LOCK_SECONDS)
    except Exception:  # Redis down: build anyway; the write is one transaction and idempotent
        logger.warning("build lock unavailable for %s; building without it", mv.version)
        lock, acquired = None, True
    if not acquired:
        raise TimeoutError(f"another build of {mv.version} holds the lock")
    try:
        yield
    finally:
        if lock is not None:
            try:
                lock.release()
            except Exception:  # expired meanwhile: nothing to release
                pass


def _item_products(item_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(product pk, category id) per model item; -1 where the catalogue has none."""
    position = {item: i for i, item in enumerate(item_ids)}
    pks = np.full(len(item_ids), -1, dtype=np.int64)
    cats = np.full(len(item_ids), -1, dtype=np.int64)
    rows = Product.objects.values_list("pk", "external_id", "category_id").iterator(chunk_size=10000)
    for pk, ext, cat in rows:
        i = position.get(ext)
        if i is not None:
            pks[i] = pk
            cats[i] = -1 if cat is None else cat
    return pks, cats


def _labels(labels: np.ndarray, pks: np.ndarray, cats: np.ndarray, distances: np.ndarray,
            k: int) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Per cluster: a shopper-facing name ("Sofas", "Mostly Lenovo notebooks", "Like <its most
    typical product>", see :mod:`.naming`), the staff's composition ("Sofa 67% · Notebook 28%"),
    and the dominant category with its share."""
    dom, share, _ = clustering.dominant_shares(labels, cats, k)
    tree = {pk: (name, parent) for pk, name, parent in Category.objects.values_list("pk", "name", "parent_id")}
    products = np.flatnonzero(pks >= 0)
    # Products of each cluster, the most typical (closest to the centre) first.
    order = products[np.lexsort((distances[products], labels[products]))]
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    typical_pk = {c: int(pks[order[bounds[c]]]) for c in range(k) if bounds[c] < bounds[c + 1]}
    typical_name = dict(Product.objects.filter(pk__in=list(typical_pk.values())).values_list("pk", "name"))
    wanted = set(pks[products].tolist())
    brand_of = {pk: brand for pk, brand in Product.objects.exclude(brand="").values_list("pk", "brand")
                .iterator(chunk_size=10000) if pk in wanted}
    names, typicals, compositions = [], [], []
    for c in range(k):
        members = order[bounds[c] : bounds[c + 1]]
        member_cats = [int(x) if x >= 0 else None for x in cats[members]]
        brands = [brand_of.get(int(pk), "") for pk in pks[members]]
        typical = typical_name.get(typical_pk.get(c), "")
        names.append(naming.cluster_name(member_cats, brands, typical, tree))
        typicals.append(typical)
        compositions.append(naming.composition(member_cats, tree)[:255])
    names = [(name or f"Taste group {c + 1}")[:255] for c, name in enumerate(naming.names_unique(names, typicals))]
    return names, compositions, dom, share


# ------------------------------------------------------------------------------- clusters
def clusters_build(model_version: ModelVersion, k: int | None = None, seed: int = 0, model=None,
                   log=None) -> ItemClustering:
    """Cluster the version's item embeddings (MiniBatchKMeans) and store clusters, members, the
    per-item assignment file and the quality figure. Replaces an earlier clustering of the same
    version in one transaction: safe to run twice."""
    log = log or (lambda msg: logger.info("%s", msg))
    mv = model_version
    model = model or _engine_load(mv)
    emb = model.item_embeddings()
    n = len(emb)
    k = int(min(k or clustering.default_k(n), n))
    result = clustering.kmeans_fit(emb, k, seed=seed)
    log(f"{mv.version}: {k} clusters of {n} items in {result.seconds:.1f} s ({result.n_iter} passes)")
    pks, cats = _item_products(model.item_ids)
    label_texts, compositions, dom, share = _labels(result.labels, pks, cats, result.distances, k)
    sizes = np.bincount(result.labels, minlength=k)
    # Quality over the items with a category: the clusters' dominant share vs random clusters.
    # n_categorised = 0 marks it as not measured (click logs without product data): its two
    # shares are then 0 by construction, not a finding.
    known = cats >= 0
    n_categorised = int(known.sum())
    d_share = clustering.weighted_share(*clustering.dominant_shares(result.labels[known], cats[known], k)[1:])
    r_share = clustering.random_baseline_share(result.labels[known], cats[known], k, seed=seed)

    assignment = result.labels.astype("<i4")
    name, digest, _ = _write_content_addressed(mv, f"clusters{k}", ".npy",
                                               lambda p: np.save(p, assignment, allow_pickle=False))
    with transaction.atomic():
        previous = ItemClustering.objects.filter(model_version=mv).values_list("assignment", flat=True).first()
        if previous and previous != name:
            transaction.on_commit(lambda: _sidecar_remove(previous))
        ItemClustering.objects.filter(model_version=mv).delete()
        cl = ItemClustering.objects.create(
            model_version=mv, k=k, n_items=n, n_products=int((pks >= 0).sum()), dominant_share=d_share,
            random_share=r_share, n_categorised=n_categorised, inertia=result.inertia, n_iter=result.n_iter,
            seconds=result.seconds,
            assignment=name, assignment_sha256=digest,
        )
        clusters = ItemCluster.objects.bulk_create(
            ItemCluster(clustering=cl, model_version=mv, cluster_id=c, label=label_texts[c],
                        composition=compositions[c], size=int(sizes[c]),
                        dominant_category_id=int(dom[c]) if dom[c] >= 0 else None, dominant_share=float(share[c]),
                        centroid=result.centroids[c].astype("<f4").tobytes())
            for c in range(k)
        )
        cluster_pk = np.array([c.pk for c in clusters], dtype=np.int64)
        # Members: products only, ranked from the centre outwards within each cluster.
        items = np.flatnonzero(pks >= 0)
        order = items[np.lexsort((result.distances[items], result.labels[items]))]
        lab = result.labels[order]
        starts = np.r_[0, np.flatnonzero(np.diff(lab)) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        for s in range(0, len(order), MEMBER_BATCH):
            sl = slice(s, s + MEMBER_BATCH)
            ItemClusterMember.objects.bulk_create(
                ItemClusterMember(cluster_id=int(cluster_pk[c]), product_id=int(p), item_index=int(i), rank=int(r))
                for c, p, i, r in zip(lab[sl], pks[order[sl]], order[sl], rank[sl])
            )
    log(quality_text(cl))
    return cl


def quality_text(cl: ItemClustering) -> str:
    """The clustering's quality figure in words, or why it was not measured."""
    if not cl.n_categorised:
        return "quality not measured: the catalogue has no categories for these items"
    over = "" if cl.n_categorised == cl.n_items else f", over the {cl.n_categorised} of {cl.n_items} items with one"
    return (f"quality: {100 * cl.dominant_share:.1f}% of items in their cluster's dominant category{over} "
            f"(random clusters of the same sizes: {100 * cl.random_share:.1f}%)")


# ------------------------------------------------------------------------------ ANN index
def retrieval_index_build(model_version: ModelVersion, model=None, log=None) -> RetrievalIndex:
    """Build the faiss IVF inner-product index over ``[Wy | By]`` and store it next to the artifact."""
    log = log or (lambda msg: logger.info("%s", msg))
    mv = model_version
    model = model or _engine_load(mv)
    Wy, By = model.output_vectors()
    params = retrieval.index_params(len(Wy))
    t0 = time.perf_counter()
    index = retrieval.build_ip_index(Wy, By, **params)
    seconds = time.perf_counter() - t0
    name, digest, size = _write_content_addressed(mv, "ann", ".faiss", lambda p: retrieval.index_write(index, p))
    previous = RetrievalIndex.objects.filter(model_version=mv).values_list("path", flat=True).first()
    row, _ = RetrievalIndex.objects.update_or_create(
        model_version=mv,
        defaults=dict(path=name, sha256=digest, size=size, index_type=f"IVF{params['nlist']},Flat,IP",
                      nlist=params["nlist"], nprobe=params["nprobe"], n_items=len(Wy), build_seconds=seconds),
    )
    if previous and previous != name:
        transaction.on_commit(lambda: _sidecar_remove(previous))
    log(f"{mv.version}: ANN index {row.index_type} nprobe={row.nprobe} over {len(Wy)} items "
        f"in {seconds:.1f} s, {size / 2**20:.1f} MiB")
    return row


def version_extras_build(model_version: ModelVersion | int, k: int | None = None, log=None,
                         missing_only: bool = False) -> BuildReport:
    """Clusters and ANN index of a version (the task after each activation). A model kind without
    item vectors gets neither; that is not an error. With ``missing_only`` (activation, roll back)
    parts that already exist with their files are kept."""
    mv = model_version if isinstance(model_version, ModelVersion) else ModelVersion.objects.get(pk=model_version)
    if mv.kind != ModelVersion.Kind.GRU4REC:
        logger.info("%s: %s model, no clusters or ANN index", mv.version, mv.kind)
        return BuildReport(None, None)
    with _build_lock(mv):
        cl = ItemClustering.objects.filter(model_version=mv).first() if missing_only else None
        idx = RetrievalIndex.objects.filter(model_version=mv).first() if missing_only else None
        if cl is not None and not artifacts.exists(cl.assignment):
            cl = None
        if idx is not None and not artifacts.exists(idx.path):
            idx = None
        if cl is not None and idx is not None:
            return BuildReport(cl, idx)
        model = _engine_load(mv)
        if cl is None:
            cl = clusters_build(mv, k=k, model=model, log=log)
        if idx is None:
            idx = retrieval_index_build(mv, model=model, log=log)
    return BuildReport(cl, idx)


CLUSTERS_BUILD_TASK = "recommendations.clusters.tasks.clusters_build"


def version_extras_queue(model_version: ModelVersion, k: int | None = None, missing_only: bool = False) -> None:
    """Queue the build after the surrounding transaction commits."""
    # By name from Celery's registry: tasks.py calls this module, so importing it here would be a cycle.
    task = current_app.tasks[CLUSTERS_BUILD_TASK]
    transaction.on_commit(lambda: task.delay(model_version.pk, k, missing_only))


def activation_extras_queue(mv: ModelVersion) -> None:
    """Activation hook (registry): the newly active GRU4Rec version's missing clusters and ANN index
    (training queue); a failure to queue never undoes the activation (the broker's timeouts bound
    the wait)."""
    if mv.kind != ModelVersion.Kind.GRU4REC:
        return
    try:
        current_app.tasks[CLUSTERS_BUILD_TASK].delay(mv.pk, None, True)
    except Exception:
        logger.exception("could not queue the clusters build of model version %s", mv.pk)


# --------------------------------------------------------------------------------- loading
def retrieval_extras_load(bundle, row: ModelVersion) -> dict:
    """Loader for ``serving.extra_loader_register``: the version's ANN index and per-item cluster
    ids, each checked against its recorded sha256. Missing parts are None (exact scoring, no cap)."""
    # below the ANN threshold serving scores exactly: no faiss library and index in this process
    # (about 30 MB per web worker with a 40k-item model); "_small" lets _extras load it at once
    # should the threshold come down
    small = not _ann_size(bundle)
    out = {"index": None, "nprobe": None, "cluster_of_item": None, "_checked": time.monotonic(), "_small": small}
    idx_row = None if small else RetrievalIndex.objects.filter(model_version_id=row.pk).first()
    if idx_row is not None and idx_row.n_items == bundle.n_items:
        if artifacts.file_matches(idx_row.path, idx_row.sha256):
            out["index"] = retrieval.index_read(artifacts.local_path(idx_row.path), nprobe=idx_row.nprobe)
            out["nprobe"] = idx_row.nprobe
        else:
            logger.error("ANN index of %s missing or its sha256 does not match; exact scoring", row.version)
    cl = ItemClustering.objects.filter(model_version_id=row.pk).first()
    if cl is not None and cl.assignment:
        if artifacts.file_matches(cl.assignment, cl.assignment_sha256):
            labels = np.load(artifacts.local_path(cl.assignment), allow_pickle=False)
            if len(labels) == bundle.n_items:
                out["cluster_of_item"] = labels
        else:
            logger.error("cluster assignment of %s missing or its sha256 does not match", row.version)
    return out


# ------------------------------------------------------------------------------- serving
EXTRAS_RECHECK_SECONDS = 30.0
_extras_lock = threading.Lock()


def _extras(bundle) -> dict:
    """The bundle's retrieval extras. The build task runs after an activation, so a process may
    have loaded the version before its index and clusters existed: while a part is missing, look
    again every EXTRAS_RECHECK_SECONDS (one query) and load it in place, without a model reload."""
    extras = getattr(bundle, "extras", None)
    if extras is None:
        return {}
    mine = extras.get("retrieval")
    if mine is None:
        mine = extras.setdefault("retrieval", {"index": None, "nprobe": None, "cluster_of_item": None})
    index_done = mine.get("index") is not None or not _ann_size(bundle)
    if bundle.kind != "gru4rec" or (index_done and mine.get("cluster_of_item") is not None):
        return mine
    now = time.monotonic()
    threshold_dropped = bool(mine.get("_small")) and _ann_size(bundle)
    waiting = now - mine.get("_checked", 0.0) < EXTRAS_RECHECK_SECONDS and not threshold_dropped
    if waiting or not _extras_lock.acquire(blocking=False):
        return mine
    try:
        mine["_checked"] = now
        row = ModelVersion.objects.filter(version=bundle.version).first()
        if row is not None:
            fresh = retrieval_extras_load(bundle, row)
            mine["_small"] = fresh.pop("_small")
            for key, value in fresh.items():
                if mine.get(key) is None and value is not None:
                    mine[key] = value
    except Exception:  # an add-on never breaks serving
        logger.exception("reloading the retrieval extras of %s failed", bundle.version)
    finally:
        _extras_lock.release()
    return mine


def _ann_size(bundle) -> bool:
    """A GRU4Rec catalogue large enough (``ANN_MIN_CATALOGUE``) to be served from ANN candidates."""
    return bundle.kind == "gru4rec" and bundle.n_items >= int(settings.ANN_MIN_CATALOGUE)


def ann_applies(bundle) -> bool:
    """True when this bundle should be served from ANN candidates: a GRU4Rec model whose
    catalogue has at least ``ANN_MIN_CATALOGUE`` items and an index loaded with it."""
    return _ann_size(bundle) and _extras(bundle).get("index") is not None


def candidates_for(hidden, extras: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` (item indices, scores) of the ANN index for one hidden state [H] or [1, H]."""
    scores, ids = retrieval.search(extras["index"], hidden, n)
    keep = ids[0] >= 0
    return ids[0][keep], scores[0][keep]


def ann_candidates(bundle, idx: list[int], n: int, exclude_seen: bool):
    """Candidate source for ``ranking``: ANN candidates when they apply to the bundle, else None."""
    if "retrieval" not in bundle.extras or not ann_applies(bundle):
        return None
    return model_candidates_ann(bundle, idx, n, exclude_seen)


def model_candidates_ann(bundle, idx: list[int], n: int, exclude_seen: bool) -> tuple[list[int], list[float]]:
    """The large-catalogue twin of ``ranking._model_candidates``: GRU state for the session,
    ANN candidates (scores are exact: IVF-Flat), unavailable and seen items dropped, top ``n``."""
    return retrieval.session_topk(bundle.engine, _extras(bundle)["index"], idx, n, exclude_seen,
                                  unavailable=_unavailable_mask(bundle))


def _unavailable_mask(bundle) -> np.ndarray | None:
    """``bundle.unavailable`` (a torch tensor of 0 / -inf, or None when every item is an active
    product) as a zero-copy numpy view."""
    u = getattr(bundle, "unavailable", None)
    if u is None:
        return None
    return u.numpy() if hasattr(u, "numpy") else np.asarray(u)


def diversify_bundle(bundle, indices: list[int], scores: list[float], k: int,
                     cap_per_cluster: int | None) -> tuple[list[int], list[float]]:
    """:func:`clustering.diversify` with the bundle's cluster assignment (no cap without one)."""
    labels = _extras(bundle).get("cluster_of_item")
    if labels is None or not cap_per_cluster:
        return list(indices)[:k], list(scores)[:k]
    return clustering.diversify(indices, scores, labels, k, cap_per_cluster)


diversify = clustering.diversify


# ------------------------------------------------------------------------ cold-path pools
POOLS_KEY = "clusters:popular_pools"
POOLS_TTL = 600


def popular_pools_build(limit: int = POPULAR_POOL) -> dict[int, list[int]]:
    """Popular active products per category (ancestors included), best first, from tracking's
    popularity of the longest window; stored in the cache for the cold paths. Key 0: all.
    ``limit`` is the pool size the reader asks for (selectors.POPULAR_POOL): a smaller pool made
    every read run the catalogue fill query."""
    parent = dict(Category.objects.values_list("pk", "parent_id"))
    n_cats = max(1, len(parent))
    # popularity rows exist only for products seen in the window (score > 0; tracking.services)
    rows = popularity_ranking(limit * (n_cats + 1))
    pools: dict[int, list[int]] = {}
    for pk, cat in rows:
        chain, seen = [0], set()
        while cat is not None and cat not in seen:
            seen.add(cat)
            chain.append(cat)
            cat = parent.get(cat)
        for c in chain:
            pool = pools.setdefault(c, [])
            if len(pool) < limit:
                pool.append(pk)
    cache.set(POOLS_KEY, pools, POOLS_TTL)
    return pools


def popular_pool(category_id: int | None, n: int, exclude=()) -> list[int]:
    """Up to ``n`` precomputed popular product pks of the category (all categories when None)."""
    pools = cache.get(POOLS_KEY)
    if pools is None:
        pools = popular_pools_build()
    exclude = set(exclude)
    return [pk for pk in pools.get(int(category_id or 0), []) if pk not in exclude][:n]
