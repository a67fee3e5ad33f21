"""Recommendations services: answering for a session, similar items, popular items, and the
model lifecycle (activate, roll back, train). Views, tasks, admin and commands call these."""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django import db
from django.db import transaction
from django.utils import timezone

from catalog.models import Product

from . import engine, selectors
from .models import ModelActivation, ModelVersion, TrainingRun
from .serving import LoadedModel, model_current

logger = logging.getLogger(__name__)

# Extra candidates asked of the model so that products deactivated since the model was loaded
# can be dropped and exactly k still come back.
CANDIDATE_MARGIN = 8


@dataclass
class ScoredProduct:
    product: Product
    score: float


@dataclass
class RecommendationResult:
    strategy: str  # "gru4rec", "vsknn", "embedding", "itemknn" or "popular"
    model_version: str | None
    items: list[ScoredProduct]
    explanation: dict | None = None
    used: list[int] = field(default_factory=list)  # session product pks the model knew
    skipped: list[int] = field(default_factory=list)  # session product pks unknown to the model

    @property
    def product_ids(self) -> list[int]:
        return [s.product.pk for s in self.items]


class _ProductCache:
    """Products by pk, kept in this process and dropped whenever the catalogue's cache version
    changes (catalog.cache.bump() on every product change), so a steady stream of requests does no
    ORM work at all; misses cost one query. Inactive products are cached as such."""

    MAX_ENTRIES = 100_000

    def __init__(self):
        self.version = None
        self.products: dict[int, Product | None] = {}
        self.serialized: dict[int, dict] = {}  # API representation, same lifetime as the products

    def _lookup(self, pks) -> dict[int, Product | None]:
        try:
            from catalog.cache import version as catalog_version

            current = catalog_version()
        except Exception:  # no catalogue cache version: never trust the cache
            current = object()
        if current != self.version or len(self.products) > self.MAX_ENTRIES:
            self.products = {}
            self.serialized = {}
            self.version = current
        products = self.products
        missing = [pk for pk in pks if pk not in products]
        if missing:
            found = {p.pk: p for p in Product.objects.filter(pk__in=missing).select_related("category")}
            for pk in missing:
                products[pk] = found.get(pk)
        return products

    def get(self, pks: list[int]) -> dict[int, Product]:
        products = self._lookup(pks)
        return {pk: p for pk in pks if (p := products.get(pk)) is not None and p.is_active}

    def known(self, pks) -> set[int]:
        """The pks among ``pks`` that name a product, active or not."""
        products = self._lookup(pks)
        return {pk for pk in pks if products.get(pk) is not None}


_product_cache = _ProductCache()


def _products_in_order(pks: list[int]) -> dict[int, Product]:
    """The active products among ``pks`` (at most one query, none when cached)."""
    if not pks:
        return {}
    return _product_cache.get(pks)


def products_known(pks) -> set[int]:
    """The pks among ``pks`` that name a product (active or not): input validation of the API,
    answered from the process's product cache (no query once the products were seen)."""
    return _product_cache.known(list(dict.fromkeys(int(pk) for pk in pks))) if pks else set()


def _category_id(category) -> int | None:
    if category is None or category == "":
        return None
    return getattr(category, "pk", None) or int(category)


# ---------------------------------------------------------------------------- recommending
def _ann_candidates(bundle: LoadedModel, idx: list[int], n: int, exclude_seen: bool):
    """The large-catalogue path: an ANN index loaded into ``bundle.extras["retrieval"]`` (the
    clusters app) answers instead of scoring every item; None when it does not apply."""
    if "retrieval" not in bundle.extras:
        return None
    try:
        from recommendations.clusters.services import ann_applies, model_candidates_ann
    except ImportError:
        return None
    try:
        if not ann_applies(bundle):
            return None
        return model_candidates_ann(bundle, idx, n, exclude_seen)
    except Exception:  # the exact path below always works
        logger.exception("ANN candidates failed for %s; scoring the whole catalogue", bundle.version)
        return None


def _model_candidates(bundle: LoadedModel, idx: list[int], n: int, exclude_seen: bool) -> tuple[list[int], list[float]]:
    """Top ``n`` model item indices (and scores) for a session given as model item indices."""
    ann = _ann_candidates(bundle, idx, n, exclude_seen)
    if ann is not None:
        return ann
    # Both kinds answer through the engine's top_items (GRU4Rec: int8 candidates, fp32 re-scoring
    # on CPU; V-SKNN: items no neighbour voted for are not answers, the popular fallback fills).
    return bundle.engine.top_items(idx, n, exclude=idx if exclude_seen else None, mask=bundle.unavailable)


def recommend_for_session(
    session=None,
    items: list[int] | None = None,
    k: int = 6,
    exclude_seen: bool = True,
    explain: bool = False,
    category=None,
    cap_per_cluster: int | None = None,
) -> RecommendationResult:
    """Next products for a live session: ``session`` (a tracking visit id) or ``items`` (product
    pks in order). Unknown items are skipped; with no known item or no active model the popular
    products (of ``category`` when given) answer. Never raises: failures log and fall back.
    ``cap_per_cluster``: at most that many items of one item cluster (diversity; clusters app)."""
    k = max(1, int(k))
    category_id = None
    try:
        category_id = _category_id(category)
        if items is None:
            items = selectors.session_product_ids(session) if session else []
        items = [int(i) for i in items]
        bundle = model_current()
        if bundle is not None:
            return _recommend_model(bundle, items, k, exclude_seen, explain, category_id, cap_per_cluster)
        reason = "no active model"
        used, skipped = [], list(items)
    except Exception:
        logger.exception("recommendation failed; answering with popular items")
        reason = "the model failed; popular items answer"
        used, skipped = [], list(items or [])
    return _recommend_popular(k, items or [], exclude_seen, explain, category_id, reason, None, used, skipped)


def _recommend_model(bundle, items, k, exclude_seen, explain, category_id, cap_per_cluster=None) -> RecommendationResult:
    idx, used, skipped = [], [], []
    for pk in items:
        i = bundle.pk_index.get(pk)
        if i is None:
            skipped.append(pk)
        else:
            idx.append(i)
            used.append(pk)
    if not idx:
        reason = "no item of the session is known to the model" if items else "empty session"
        return _recommend_popular(k, items, exclude_seen, explain, category_id, reason, bundle.version, used, skipped)
    n = k + CANDIDATE_MARGIN
    cand, scores = _model_candidates(bundle, idx, 4 * n if cap_per_cluster else n, exclude_seen)
    if cap_per_cluster:  # a wider candidate list, then at most cap_per_cluster per item cluster
        from recommendations.clusters.services import diversify_bundle

        cand, scores = diversify_bundle(bundle, cand, scores, n, cap_per_cluster)
    pks = [int(bundle.index_pk[i]) for i in cand]
    products = _products_in_order(pks)
    chosen = [ScoredProduct(products[pk], s) for pk, s in zip(pks, scores) if pk in products][:k]
    strategy = bundle.kind
    reason = f"{bundle.kind} scored the catalogue after {len(used)} session item(s)"
    if len(chosen) < k:
        seen = set(items) if exclude_seen else set()
        fill = _popular_scored(k - len(chosen), category_id, seen | {s.product.pk for s in chosen})
        if fill:
            reason += f"; {len(fill)} popular item(s) filled the rest"
        chosen += fill
    result = RecommendationResult(strategy, bundle.version, chosen, used=used, skipped=skipped)
    if explain:
        result.explanation = _explanation(result, reason, exclude_seen)
    return result


def _popular_scored(k: int, category_id: int | None, exclude: set[int]) -> list[ScoredProduct]:
    pks = selectors.popular_product_ids(k, category_id=category_id, exclude=exclude)
    products = _products_in_order(pks)
    ordered = [products[pk] for pk in pks if pk in products]
    if len(ordered) < k:  # some popular ones were inactive: top up from the catalogue
        more = selectors.popular_product_ids(k - len(ordered), None, exclude | {p.pk for p in ordered} | set(pks))
        extra = _products_in_order(more)
        ordered += [extra[pk] for pk in more if pk in extra]
    # Popularity rank as the score: 1, 1/2, 1/3, ... (tracking's counts are not comparable across windows).
    return [ScoredProduct(p, round(1.0 / (r + 1), 6)) for r, p in enumerate(ordered[:k])]


def _recommend_popular(k, items, exclude_seen, explain, category_id, reason, version, used, skipped):
    exclude = set(items) if exclude_seen else set()
    chosen = _popular_scored(k, category_id, exclude)
    if category_id:
        reason += "; popular items of the current category first"
    result = RecommendationResult("popular", version, chosen, used=used, skipped=skipped)
    if explain:
        result.explanation = _explanation(result, reason, exclude_seen)
    return result


def _explanation(result: RecommendationResult, reason: str, exclude_seen: bool) -> dict:
    return {
        "strategy": result.strategy,
        "reason": reason,
        "model_version": result.model_version,
        "session_items_used": result.used,
        "session_items_skipped": result.skipped,
        "exclude_seen": exclude_seen,
        "scores": [{"product": s.product.pk, "name": s.product.name, "score": s.score} for s in result.items],
    }


def similar_items(product: Product | int, k: int = 6) -> RecommendationResult:
    """Nearest products by the active model's item embeddings (cosine); item-kNN co-occurrence for
    V-SKNN models; popular items of the product's category when the model does not know it."""
    k = max(1, int(k))
    pk = product.pk if isinstance(product, Product) else int(product)
    category_id = product.category_id if isinstance(product, Product) else None
    bundle = None
    try:
        bundle = model_current()
        i = bundle.pk_index.get(pk) if bundle is not None else None
        if i is not None:
            cand, scores, strategy = _similar_candidates(bundle, i, k + CANDIDATE_MARGIN)
            pks = [int(bundle.index_pk[j]) for j in cand]
            products = _products_in_order(pks)
            chosen = [ScoredProduct(products[p], s) for p, s in zip(pks, scores) if p in products][:k]
            if len(chosen) < k:
                chosen += _popular_scored(k - len(chosen), category_id, {pk} | {s.product.pk for s in chosen})
            return RecommendationResult(strategy, bundle.version, chosen, used=[pk])
    except Exception:
        logger.exception("similar items failed; answering with popular items")
    if category_id is None:
        category_id = Product.objects.filter(pk=pk).values_list("category_id", flat=True).first()
    chosen = _popular_scored(k, category_id, {pk})
    return RecommendationResult("popular", bundle.version if bundle else None, chosen, skipped=[pk])


def _similar_candidates(bundle: LoadedModel, i: int, n: int) -> tuple[list[int], list[float], str]:
    # GRU4Rec: cosine of item embeddings; V-SKNN: item-kNN on its session matrix (both in the engine).
    out_i, out_s = bundle.engine.similar(i, n, mask=bundle.unavailable)
    return out_i, out_s, "embedding" if bundle.kind == "gru4rec" else "itemknn"


def popular_items(k: int = 6, category=None, exclude=()) -> RecommendationResult:
    """Most popular active products (of ``category`` first), from tracking's popularity."""
    chosen = _popular_scored(max(1, int(k)), _category_id(category), set(exclude))
    return RecommendationResult("popular", None, chosen)


# ------------------------------------------------------------------------------ the registry
class ActivationRefused(Exception):
    """The candidate is worse than the active model (MODEL_ACTIVATE_REQUIRES_BETTER) or unusable."""


def model_version_register(*, kind: str, model, version: str, parameters: dict, metrics: dict,
                           train_range: dict | None = None, test_range: dict | None = None,
                           training_run: TrainingRun | None = None) -> ModelVersion:
    """Write the artifact under its content-addressed name and add a ``ready`` registry row."""
    name, digest, size = engine.artifact_write(kind, model, settings.MODEL_DIR, version)

    def ts(r, key):
        value = (r or {}).get(key)
        return None if value is None else datetime.fromtimestamp(float(value), tz=dt_timezone.utc)

    return ModelVersion.objects.create(
        version=version, kind=kind, status=ModelVersion.Status.READY, artifact=name, artifact_sha256=digest,
        artifact_size=size, parameters=parameters, n_items=len(model.item_ids), metrics=metrics,
        train_start=ts(train_range, "time_min"), train_end=ts(train_range, "time_max"),
        test_start=ts(test_range, "time_min"), test_end=ts(test_range, "time_max"), training_run=training_run,
    )


def model_version_new_name(kind: str) -> str:
    base = f"{timezone.now():%Y%m%d-%H%M%S}-{kind}"
    name, n = base, 1
    while ModelVersion.objects.filter(version=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def model_activate(mv: ModelVersion, user=None, require_better: bool = False, *, _rollback_of=None) -> ModelVersion:
    """Make ``mv`` the version every process serves. The artifact's digest is checked first; with
    ``require_better`` the candidate must be at least as good as the active model on the primary
    metrics measured on the same held-out day (``metrics["active"]``). The change is one database
    update; every process reads it within MODEL_RELOAD_INTERVAL_SECONDS (nothing to publish, so a
    Redis stall can neither block the activation nor hide it from a process)."""
    from .serving import artifact_path

    path = artifact_path(mv)
    # Load it once here, as every process will: a missing, altered, truncated or incompatible artifact
    # is refused before the database changes, so the active version keeps serving everywhere.
    try:
        engine.artifact_load(mv.kind, path, mv.artifact_sha256)
    except engine.ArtifactError as exc:
        raise ActivationRefused(f"{mv.version}: artifact refused: {exc}") from exc
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
        mv = ModelVersion.objects.select_for_update().get(pk=mv.pk)
        if current is not None and current.pk == mv.pk:
            return mv
        if require_better and current is not None:
            reference = (mv.metrics or {}).get("active") or {}
            ref_metrics = reference.get("metrics") if reference.get("version") == current.version else None
            if ref_metrics is None:
                ref_metrics = (current.metrics or {}).get("model", {})
            candidate = (mv.metrics or {}).get("model", {})
            if not engine.metrics_at_least(candidate, ref_metrics):
                raise ActivationRefused(
                    f"{mv.version} ({_fmt(candidate)}) is worse than the active {current.version} ({_fmt(ref_metrics)})"
                )
        if current is not None:
            current.status = ModelVersion.Status.RETIRED
            current.save(update_fields=["status"])
        mv.status = ModelVersion.Status.ACTIVE
        mv.activated_at = timezone.now()
        mv.activated_by = user if getattr(user, "is_authenticated", False) else None
        mv.save(update_fields=["status", "activated_at", "activated_by"])
        if _rollback_of is not None:
            # Only now, with the activation certain: a refused roll back leaves the history as it was.
            ModelActivation.objects.filter(pk=_rollback_of.pk).update(undone=True)
        ModelActivation.objects.create(
            version=mv, version_name=mv.version, previous=current, previous_name=current.version if current else "",
            action=ModelActivation.Action.ROLLBACK if _rollback_of is not None else ModelActivation.Action.ACTIVATE,
            undone=_rollback_of is not None, by=mv.activated_by,
        )
        if mv.kind == ModelVersion.Kind.GRU4REC:
            transaction.on_commit(lambda pk=mv.pk: _clusters_build_queue(pk))
    logger.info("model %s activated (was %s)", mv.version, current.version if current else None)
    return mv


def _clusters_build_queue(pk: int) -> None:
    """Item clusters and the ANN index of the newly active version (clusters app, training queue);
    a failure to queue never undoes the activation (the broker's timeouts bound the wait)."""
    try:
        from recommendations.clusters.tasks import clusters_build

        clusters_build.delay(pk, None, True)
    except Exception:
        logger.exception("could not queue the clusters build of model version %s", pk)


def model_rollback(user=None) -> ModelVersion:
    """Undo the latest activation not undone yet: its previous version becomes active again. Each
    roll back walks one step further back through the activation history (A -> B -> C: roll back
    gives B, again gives A), and an activation after a roll back is the new top of the history."""
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
        if current is None:
            raise ActivationRefused("no active version to roll back from")
        step = (ModelActivation.objects.select_for_update()
                .filter(action=ModelActivation.Action.ACTIVATE, undone=False).order_by("-at", "-id").first())
        if step is None or step.version_id != current.pk:
            raise ActivationRefused(f"the activation history has no earlier version to return to from {current.version}")
        if step.previous is None:
            gone = f" ({step.previous_name} was deleted)" if step.previous_name else ""
            raise ActivationRefused(f"{current.version} is the first activated version{gone}: nothing to roll back to")
        target = step.previous
    return model_activate(target, user=user, _rollback_of=step)


def model_version_delete(mv: ModelVersion) -> None:
    """Delete a version that is not active, and its artifact file once no other row names it.
    The active version is refused: every process serves it and a roll back may return to it."""
    from .serving import artifact_path

    with transaction.atomic():
        mv = ModelVersion.objects.select_for_update().get(pk=mv.pk)
        if mv.status == ModelVersion.Status.ACTIVE:
            raise ActivationRefused(f"{mv.version} is the active version: activate another one before deleting it")
        path = artifact_path(mv)
        shared = ModelVersion.objects.filter(artifact=mv.artifact).exclude(pk=mv.pk).exists()
        mv.delete()
        if not shared:
            transaction.on_commit(lambda: path.unlink(missing_ok=True))


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{n} {float(metrics.get(n, 0.0)):.4f}" for n in engine.PRIMARY_METRICS)


# ------------------------------------------------------------------------------ training
class TrainingNotQueued(Exception):
    """The broker did not take a training run's task; the run is marked failed with the reason."""

    def __init__(self, run: TrainingRun):
        super().__init__(run.error)
        self.run = run


NOT_QUEUED = "not queued"  # the stage a run is left in when its task never reached the broker


def training_run_queue(user=None, params: str | None = None, activate: bool = True, data_path: str = "") -> TrainingRun:
    """Record a run and queue the Celery task once the run is committed. When the broker cannot
    take the task within its timeouts (settings: a few seconds, not the length of the outage) the
    run is marked failed, never left ``queued`` with nothing to run it; called outside a
    transaction (the API, the admin) that raises :class:`TrainingNotQueued` as well."""
    run = TrainingRun.objects.create(
        params=params or settings.MODEL_TRAIN_PARAMS, activate=activate, data_path=data_path,
        requested_by=user if getattr(user, "is_authenticated", False) else None, task_id=str(uuid.uuid4()),
    )
    transaction.on_commit(lambda: training_run_publish(run.pk, run.task_id))
    run.refresh_from_db()  # outside a transaction the callback ran already
    if run.status == TrainingRun.Status.FAILED and run.stage == NOT_QUEUED:
        raise TrainingNotQueued(run)
    return run


def training_run_publish(run_id: int, task_id: str | None = None) -> bool:
    """Hand a queued run to the broker; on failure mark it failed (the caller reports it). Without
    a broker (settings.TRAINING_IN_THREAD) the run goes to a background thread of this process."""
    from .tasks import model_train

    if settings.TRAINING_IN_THREAD:
        threading.Thread(target=_training_run_thread, args=(run_id,), name=f"training-run-{run_id}",
                         daemon=True).start()
        return True
    try:
        model_train.apply_async((run_id,), task_id=task_id)
    except Exception as exc:  # OperationalError, timeouts, the result store's RuntimeError, ...
        logger.error("training run %s not queued: %s: %s", run_id, type(exc).__name__, exc)
        TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.FAILED, stage=NOT_QUEUED, finished_at=timezone.now(),
            error=f"not queued: the task broker did not take it ({type(exc).__name__}: {str(exc).strip()[:300]}); "
                  "nothing will run it, start a new run when the broker is back",
        )
        return False
    return True


def _training_run_thread(run_id: int) -> None:
    try:
        training_run_execute(run_id)
    except Exception:  # run_execute records its failures on the run; this is the unforeseen rest
        logger.exception("training run %s failed in its background thread", run_id)
    finally:
        db.connections.close_all()  # this thread's connections only


def training_run_execute(run_id: int, progress: bool = False) -> TrainingRun:
    from .training import run_execute

    return run_execute(run_id, progress=progress)

