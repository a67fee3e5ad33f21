"""Tracking selectors: a visit's history, popular and trending products, the sessions to train on."""
from __future__ import annotations

import datetime
import tempfile
import uuid as uuid_lib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from catalog.models import Category, Product

from . import db
from .models import Event, ProductPopularity, Visit
from .services import EVENT_TYPE_VALUES, HISTORY_EVENT_TYPES


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


def session_history_recent(visit_uuid: uuid_lib.UUID | str, limit: int) -> list[int]:
    """``session_history(visit_uuid, limit=limit)`` for a visit uuid, in one fixed statement joined on
    the uuid (tracking.db): no visit lookup first and no ORM compilation, since every recommendation
    reads it (0.17 ms instead of 1.3 ms measured at load 5). [] for an unknown or malformed uuid."""
    try:
        visit_uuid = uuid_lib.UUID(str(visit_uuid))
    except ValueError:
        return []
    ids = db.history_product_ids(visit_uuid, limit)
    ids.reverse()
    return ids


def _fallback(k: int, category: Category | int | None, exclude: set[int]) -> list[Product]:
    qs = Product.objects.filter(is_active=True).exclude(pk__in=exclude)
    if category is not None:
        qs = qs.filter(category=category)
    return list(qs.order_by("-created", "-id")[:k])


def popularity_ranking(limit: int, *, window: int | None = None, category: Category | int | None = None,
                       exclude: Iterable[int] = (), trending: bool = False) -> list[tuple[int, int | None]]:
    """The one reader of ``ProductPopularity``: (product id, category id) of the ``limit`` most popular
    active products over ``window`` days (default: the longest of POPULARITY_WINDOWS_DAYS), best
    score first, or fastest-growing first with ``trending``; ties by product id. One query."""
    window = max(settings.POPULARITY_WINDOWS_DAYS) if window is None else window
    order = ("-trend", "-score", "product_id") if trending else ("-score", "product_id")
    qs = ProductPopularity.objects.filter(window_days=window, product__is_active=True)
    exclude = list(exclude)
    if exclude:
        qs = qs.exclude(product_id__in=exclude)
    if category is not None:
        qs = qs.filter(product__category=category)
    return list(qs.order_by(*order).values_list("product_id", "product__category_id")[:limit])


def _by_popularity(window: int, trending: bool, k: int, category, exclude: set[int]) -> list[Product]:
    ids = [pk for pk, _ in popularity_ranking(k, window=window, category=category, exclude=exclude, trending=trending)]
    products = Product.objects.in_bulk(ids)
    return [products[i] for i in ids if i in products]


def popular_products(k: int, category: Category | int | None = None, exclude: Iterable[int] = ()) -> list[Product]:
    """The ``k`` most viewed/purchased active products over the longest popularity window, topped
    up with the most recent active products (all of them when popularity is empty)."""
    exclude = {int(x) for x in exclude}
    window = max(settings.POPULARITY_WINDOWS_DAYS)
    result = _by_popularity(window, False, k, category, exclude)
    if len(result) < k:
        result += _fallback(k - len(result), category, exclude | {p.pk for p in result})
    return result


def trending_products(k: int, exclude: Iterable[int] = ()) -> list[Product]:
    """Products whose score over the shortest window grows fastest relative to the longest one,
    falling back to ``popular_products``."""
    exclude = {int(x) for x in exclude}
    window = min(settings.POPULARITY_WINDOWS_DAYS)
    result = _by_popularity(window, True, k, None, exclude)
    if len(result) < k:
        result += popular_products(k - len(result), exclude=exclude | {p.pk for p in result})
    return result


RECOMMENDATION_OUTCOMES = ("impressions", "clicks", "add_to_cart", "orders")


def recommendation_outcomes(versions: list[str], since=None) -> dict[str, dict]:
    """What each model version's recommendations did, in total and per day (UTC), counting only
    what the shop can vouch for: trusted impressions and clicks of served recommendation cards
    (``source`` recommended or similar: the served-item token, or a trusted client) of non-staff
    visits, each (visit, product) once, on the day it was first seen; an add to cart or a purchase
    counts for a version when the visit had clicked that version's recommendation of the product
    before (trusted, non-staff events, each (visit, product) once). ``orders`` are the visits with
    such a purchase. ``since`` (a datetime) limits the days; totals cover the same range.

    ``{version: {"total": {impressions, clicks, add_to_cart, orders, ctr}, "days": [{"day": date,
    impressions, clicks, add_to_cart, orders}, ...]}}`` with every version asked for present."""
    from django.db import connection
    from django.utils import timezone

    versions = [v for v in dict.fromkeys(versions) if v]
    out = {v: {"total": dict.fromkeys(RECOMMENDATION_OUTCOMES, 0) | {"ctr": None}, "days": []} for v in versions}
    if not versions:
        return out
    qn = connection.ops.quote_name
    table = qn(Event._meta.db_table)
    marks = ", ".join(["%s"] * len(versions))
    tz = timezone.get_current_timezone_name() if settings.USE_TZ else None
    served_filter = (f"model_version IN ({marks}) AND trusted AND NOT is_staff"
                     " AND (source IN ('recommended', 'similar')"
                     "      OR source LIKE 'recommended-x%%' OR source LIKE 'similar-x%%')")  # experiments' arms
    since_sql, since_params = ("", [])
    if since is not None:
        since_sql, since_params = " AND timestamp >= %s", [connection.ops.adapt_datetimefield_value(since)]
    day_sql, day_params = connection.ops.datetime_cast_date_sql("first_at", [], tz)
    # Served impressions and clicks: each (version, type, visit, product) on the day first seen.
    served = (
        f"SELECT model_version, event_type, visit_id, product_id, MIN(timestamp) AS first_at FROM {table}"
        f" WHERE {served_filter} AND event_type IN ('impression', 'click'){since_sql}"
        " GROUP BY model_version, event_type, visit_id, product_id"
    )
    # A cart or purchase of a product the visit had clicked in a version's recommendations.
    clicks = (
        f"SELECT model_version, visit_id, product_id, MIN(timestamp) AS clicked_at FROM {table}"
        f" WHERE {served_filter} AND event_type = 'click' GROUP BY model_version, visit_id, product_id"
    )
    followed = (
        f"SELECT c.model_version, e.event_type, e.visit_id, e.product_id, MIN(e.timestamp) AS first_at"
        f" FROM {table} e JOIN ({clicks}) c ON e.visit_id = c.visit_id AND e.product_id = c.product_id"
        "  AND e.timestamp >= c.clicked_at"
        f" WHERE e.event_type IN ('add_to_cart', 'purchase') AND e.trusted AND NOT e.is_staff"
        f"{since_sql.replace('timestamp', 'e.timestamp')}"
        " GROUP BY c.model_version, e.event_type, e.visit_id, e.product_id"
    )
    sql = (
        f"SELECT model_version, event_type, day, COUNT(*), COUNT(DISTINCT visit_id) FROM ("
        f" SELECT model_version, event_type, visit_id, {day_sql} AS day FROM ({served}) s"
        f" UNION ALL SELECT model_version, event_type, visit_id, {day_sql} AS day FROM ({followed}) f"
        ") o GROUP BY model_version, event_type, day ORDER BY day"
    )
    params = [*day_params, *versions, *since_params, *day_params, *versions, *since_params]
    names = {"impression": "impressions", "click": "clicks", "add_to_cart": "add_to_cart"}
    days: dict[str, dict] = {v: {} for v in versions}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for version, event_type, day, n, n_visits in cursor.fetchall():
            if isinstance(day, str):  # SQLite answers the date as text
                day = datetime.date.fromisoformat(day)
            row = days[version].setdefault(day, {"day": day, **dict.fromkeys(RECOMMENDATION_OUTCOMES, 0)})
            if event_type == "purchase":
                row["orders"] += n_visits
            else:
                row[names[event_type]] += n
    for version, by_day in days.items():
        total = out[version]["total"]
        for row in by_day.values():
            for name in RECOMMENDATION_OUTCOMES:
                total[name] += row[name]
        total["ctr"] = total["clicks"] / total["impressions"] if total["impressions"] else None
        out[version]["days"] = [by_day[d] for d in sorted(by_day)]
    return out


# --- Sessions to train on ----------------------------------------------------------------

@dataclass
class SessionEvents:
    """Events column-wise, sorted by session, then time: visit ids, product pks, times in µs (UTC)."""

    session: np.ndarray  # int64 visit id
    item: np.ndarray  # int64 product pk
    time_us: np.ndarray  # int64 microseconds since the epoch

    def __len__(self) -> int:
        return len(self.time_us)


@dataclass
class SessionsSplit:
    train: SessionEvents
    test: SessionEvents
    events_read: int  # events of the window before the preprocessing
    event_types: tuple[str, ...]


def _event_columns(since, until, event_types) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(visit id, product id, time in µs, event id) of the non-staff events of the window, streamed."""
    event_types = list(event_types)
    if connection.vendor == "postgresql":
        where, params = ["e.is_staff = false", "v.is_staff = false", "e.event_type = ANY(%s)"], [event_types]
        if since:
            where.append("e.timestamp >= %s")
            params.append(since)
        if until:
            where.append("e.timestamp < %s")
            params.append(until)
        sql = (
            "SELECT e.visit_id, e.product_id, (EXTRACT(EPOCH FROM e.timestamp) * 1000000)::bigint, e.id "
            "FROM tracking_event e JOIN tracking_visit v ON v.id = e.visit_id WHERE " + " AND ".join(where)
        )
        # COPY streams the rows to a temporary file that pandas reads back in chunks: no Python
        # object per row and no table of model instances in memory.
        import pandas as pd  # here, not at start-up: web workers never export (~34 MB each)

        with tempfile.TemporaryFile() as tmp:
            with connection.cursor() as cursor:
                raw = cursor.cursor
                raw.copy_expert(raw.mogrify(f"COPY ({sql}) TO STDOUT", params).decode(), tmp)
            empty = tmp.tell() == 0  # pandas refuses an empty file ("No columns to parse")
            tmp.seek(0)
            parts = [] if empty else [
                chunk.to_numpy(dtype=np.int64)
                for chunk in pd.read_csv(tmp, sep="\t", header=None, dtype=np.int64, chunksize=2_000_000)
            ]
        data = np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.int64)
        return data[:, 0], data[:, 1], data[:, 2], data[:, 3]
    qs = Event.objects.filter(is_staff=False, visit__is_staff=False, event_type__in=event_types)
    if since:
        qs = qs.filter(timestamp__gte=since)
    if until:
        qs = qs.filter(timestamp__lt=until)
    cols: list[list[int]] = [[], [], [], []]
    for visit_id, product_id, ts, pk in qs.values_list("visit_id", "product_id", "timestamp", "id").iterator(
        chunk_size=20_000
    ):
        cols[0].append(visit_id)
        cols[1].append(product_id)
        cols[2].append(int(ts.timestamp()) * 1_000_000 + ts.microsecond)
        cols[3].append(pk)
    return tuple(np.asarray(c, dtype=np.int64) for c in cols)  # type: ignore[return-value]


def sessions_training_data(since=None, until=None, test_days: float = 1, event_types: Iterable[str] = HISTORY_EVENT_TYPES,
                           min_item_support: int = 5) -> SessionsSplit:
    """The shop's sessions to train on, in memory: the non-staff events of ``event_types`` in
    [since, until), cut by the engine's preprocessing and time split
    (``recommendations.gru4rec.sessions.preprocess_split``; test = the last ``test_days`` days, a
    shorter log its last fifth of events). Items are product pks, sessions visit ids."""
    # The engine's split, so the shop's data and the benchmark logs are cut the same way; the
    # engine package is plain numpy/pandas (no Django, no app), so tracking may use it.
    from recommendations.gru4rec.sessions import preprocess_split  # why: loads pandas; web workers never train

    event_types = tuple(event_types)
    unknown = set(event_types) - EVENT_TYPE_VALUES
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(sorted(unknown))}")
    session, product, time_us, pk = _event_columns(since, until, event_types)
    # Ties in time keep the order the events were recorded in (their ids).
    order = np.lexsort((pk, time_us, session))
    session, product, time_us = session[order], product[order], time_us[order]
    del pk, order
    window = int(round(test_days * 86400 * 1_000_000))
    train, test = preprocess_split(session, product, time_us, window, min_item_support=min_item_support)

    def part(mask) -> SessionEvents:
        return SessionEvents(session[mask], product[mask], time_us[mask])

    return SessionsSplit(part(train), part(test), int(len(session)), event_types)
