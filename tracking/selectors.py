"""Tracking selectors: a visit's history, popular and trending products."""
from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Iterable

from django.conf import settings

from catalog.models import Category, Product

from .models import Event, ProductPopularity, Visit
from .services import HISTORY_EVENT_TYPES


def visit_get(visit_id) -> Visit | None:
    """A visit by its uuid (str or UUID), its primary key (int) or the Visit itself; None if unknown."""
    if isinstance(visit_id, Visit):
        return visit_id
    if isinstance(visit_id, int):
        return Visit.objects.filter(pk=visit_id).first()
    try:
        return Visit.objects.filter(uuid=uuid_lib.UUID(str(visit_id))).first()
    except ValueError:
        return None


def session_history(visit_id, event_types: Iterable[str] = HISTORY_EVENT_TYPES, limit: int | None = None) -> list[int]:
    """Product ids of a visit's item history (views and clicks by default) in time order.

    ``visit_id`` is the visit's uuid (what the JS and the API see), its pk, or a Visit. With
    ``limit``, the most recent ``limit`` items (still oldest first)."""
    visit = visit_id if isinstance(visit_id, Visit) else None
    if visit is None:
        if isinstance(visit_id, int):
            pk = visit_id
        else:
            visit = visit_get(visit_id)
            if visit is None:
                return []
    pk = visit.pk if visit is not None else pk
    qs = Event.objects.filter(visit_id=pk, event_type__in=list(event_types))
    if limit is not None:
        ids = list(qs.order_by("-timestamp", "-id").values_list("product_id", flat=True)[:limit])
        ids.reverse()
        return ids
    return list(qs.order_by("timestamp", "id").values_list("product_id", flat=True))


def _fallback(k: int, category: Category | int | None, exclude: set[int]) -> list[Product]:
    qs = Product.objects.filter(is_active=True).exclude(pk__in=exclude)
    if category is not None:
        qs = qs.filter(category=category)
    return list(qs.order_by("-created", "-id")[:k])


def _by_popularity(window: int, order: tuple[str, ...], k: int, category, exclude: set[int]) -> list[Product]:
    qs = ProductPopularity.objects.filter(window_days=window, product__is_active=True).exclude(
        product_id__in=exclude
    )
    if category is not None:
        qs = qs.filter(product__category=category)
    ids = list(qs.order_by(*order).values_list("product_id", flat=True)[:k])
    products = Product.objects.in_bulk(ids)
    return [products[i] for i in ids if i in products]


def popular_products(k: int, category: Category | int | None = None, exclude: Iterable[int] = ()) -> list[Product]:
    """The ``k`` most viewed/purchased active products over the longest popularity window, topped
    up with the most recent active products (all of them when popularity is empty)."""
    exclude = {int(x) for x in exclude}
    window = max(settings.POPULARITY_WINDOWS_DAYS)
    result = _by_popularity(window, ("-score", "product_id"), k, category, exclude)
    if len(result) < k:
        result += _fallback(k - len(result), category, exclude | {p.pk for p in result})
    return result


def trending_products(k: int, exclude: Iterable[int] = ()) -> list[Product]:
    """Products whose score over the shortest window grows fastest relative to the longest one,
    falling back to ``popular_products``."""
    exclude = {int(x) for x in exclude}
    window = min(settings.POPULARITY_WINDOWS_DAYS)
    result = _by_popularity(window, ("-trend", "-score", "product_id"), k, None, exclude)
    if len(result) < k:
        result += popular_products(k - len(result), exclude=exclude | {p.pk for p in result})
    return result
