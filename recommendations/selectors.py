"""Recommendations selectors: the registry, training runs, online performance, and the inputs the
recommender reads from other apps (session history and popularity from tracking)."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.db.models import Q, QuerySet

from catalog.models import Product
from shop.validators import is_ascii_digits
from tracking import selectors as tracking_selectors

from . import caches
from .models import ModelVersion, ShopTrainingSettings, TrainingRun, TuningRun, TuningTrial

logger = logging.getLogger(__name__)

# The most recent items of a session fed to the model (GRU4Rec's state is dominated by recent ones).
SESSION_ITEMS_MAX = 50


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("activated_by", "training_run")


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def model_version_get(version: str | int) -> ModelVersion | None:
    qs = ModelVersion.objects.all()
    if isinstance(version, int) or is_ascii_digits(version):  # isdigit() passes '¹', which int() refuses
        found = qs.filter(pk=int(version)).first()
        if found is not None:
            return found
    return qs.filter(version=str(version)).first()


def model_version_previous(current: ModelVersion | None) -> ModelVersion | None:
    """The version that was active before ``current`` (for roll back): the latest activated other one."""
    qs = ModelVersion.objects.filter(activated_at__isnull=False).exclude(status=ModelVersion.Status.ACTIVE)
    if current is not None:
        qs = qs.exclude(pk=current.pk)
    return qs.order_by("-activated_at").first()


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.all()


def training_settings_current() -> ShopTrainingSettings | None:
    """The shop's current training settings (the latest row), None while nothing was tuned."""
    return ShopTrainingSettings.objects.select_related("set_by", "tuning_run").order_by("-set_at", "-id").first()


def tuning_run_active() -> TuningRun | None:
    """The tuning run queued, running or stopping (at most one), if any."""
    return TuningRun.objects.filter(status__in=TuningRun.ACTIVE_STATUSES).first()


def tuning_trials(run: TuningRun) -> QuerySet[TuningTrial]:
    return TuningTrial.objects.filter(run=run).order_by("number")


def online_performance(versions: list[str]) -> dict[str, dict]:
    """Impressions, clicks and CTR of recommended cards per model version: tracking's
    ``recommendation_outcomes`` totals (only what the shop served, each visit and product once)."""
    return {v: {k: o["total"][k] for k in ("impressions", "clicks", "ctr")}
            for v, o in tracking_selectors.recommendation_outcomes(versions).items()}


# --------------------------------------------------------------------- inputs from tracking
def session_product_ids(visit_id: uuid.UUID | str) -> list[int]:
    """Product pks the visit viewed/clicked, oldest first: tracking's ``session_history``; for a
    uuid (what the API gets) its one-statement form ``session_history_recent``."""
    if isinstance(visit_id, (str, uuid.UUID)):
        history = tracking_selectors.session_history_recent(visit_id, SESSION_ITEMS_MAX)
    else:
        history = tracking_selectors.session_history(visit_id, limit=SESSION_ITEMS_MAX)
    out = []
    for entry in history or ():
        pk = _as_pk(entry)
        if pk is not None:
            out.append(pk)
    return out


def _as_pk(entry) -> int | None:
    if isinstance(entry, int):
        return entry
    if isinstance(entry, Product):
        return entry.pk
    if isinstance(entry, dict):
        value = entry.get("product_id", entry.get("product"))
    else:
        value = getattr(entry, "product_id", None)
    if isinstance(value, Product):
        return value.pk
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# Popular products change slowly (tracking refreshes popularity every few minutes): each process
# keeps the top POPULAR_POOL per category for POPULAR_TTL seconds, so the fallback costs no query.
POPULAR_POOL = 100
POPULAR_TTL = 60.0
_popular_memo: dict[int | None, tuple[float, list[int]]] = {}
caches.reset_register("popular", _popular_memo.clear)
# fn(category_id, n) -> product pks: the precomputed pools (the clusters app registers them)
_popular_source: Callable[..., list[int]] | None = None


def popular_source_register(fn: Callable[..., list[int]] | None) -> None:
    """Register ``fn(category_id, n) -> pks``, the precomputed popular pools (clusters app):
    this module never imports the app that builds them."""
    global _popular_source
    _popular_source = fn


def _popular_pool(category_id: int | None) -> list[int]:
    """The category's precomputed popular pool (built for every category at once from tracking's
    popularity and shared through the cache: the registered source, clusters' popular pools), memoised
    in the process for POPULAR_TTL seconds so that the fallback costs no query."""
    now = time.monotonic()
    hit = _popular_memo.get(category_id)
    if hit is not None and now - hit[0] < POPULAR_TTL:
        return hit[1]
    pool: list[int] = []
    try:
        if _popular_source is not None:
            pool = _popular_source(category_id, POPULAR_POOL)
    except Exception:
        logger.exception("popular pools unavailable; using the catalogue order")
    if len(pool) < POPULAR_POOL:  # a young shop: the newest products (of the category first) fill it
        pool = list(pool) + _catalogue_fill(POPULAR_POOL - len(pool), category_id, pool)
    if len(_popular_memo) > 1000:
        _popular_memo.clear()
    _popular_memo[category_id] = (now, pool)
    return pool


def _catalogue_fill(need: int, category_id: int | None, exclude) -> list[int]:
    """Up to ``need`` active products not in ``exclude``, newest first: the category's, then any."""
    out: list[int] = []
    scopes = [Q(category_id=category_id), Q()] if category_id else [Q()]
    for scope in scopes:
        more = need - len(out)
        if more <= 0:
            break
        out.extend(
            Product.objects.filter(scope, is_active=True)
            .exclude(pk__in=[*exclude, *out])
            .order_by("-pk")
            .values_list("pk", flat=True)[:more]
        )
    return out


def popular_product_ids(k: int, category_id: int | None = None, exclude=()) -> list[int]:
    """Most popular products (tracking's popularity), topped up from the catalogue so that ``k``
    come back whenever the catalogue has them: same category first, then everything (the pool
    memoised with its top-up; a query only when exclusions leave it short). Callers drop inactive
    ones (the pool may be up to POPULAR_TTL seconds old)."""
    exclude = set(exclude)
    pool = _popular_pool(category_id)
    out = [pk for pk in pool if pk not in exclude][:k]
    if len(out) < k:
        out.extend(_catalogue_fill(k - len(out), category_id, [*exclude, *pool]))
    return out[:k]
