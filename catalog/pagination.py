"""A Django Paginator that stays fast on a million-row catalogue.

* The count is cached (per query SQL and catalogue version), so no request after the first runs COUNT(*).
* Pages deeper than ``ANCHOR_EVERY`` rows on a primary-key ordering jump to a cached anchor id
  (every ``ANCHOR_EVERY``-th id of the result, computed once with one window query) and then
  OFFSET at most ``ANCHOR_EVERY`` rows: page 40,000 costs what page 80 costs.
* Other orderings (price, name) read deep pages from the nearer end, reversing the ordering, so the
  last pages are as cheap as the first ones; only the middle of a huge result still scans.

Used by the products API (through DRF's PageNumberPagination) and by the storefront grid.
"""
from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.utils.functional import cached_property

from shop.pagination import AsciiPaginator

from . import cache as catalog_cache

ANCHOR_EVERY = 2000
# Past this many skipped rows a page is read ids-first ("deferred join"): the OFFSET walks the index
# only, and just the page's rows are fetched (with their category), not every skipped row.
DEFERRED_JOIN_OFFSET = 100


def _query_hash(qs) -> str | None:
    try:
        sql, params = qs.query.sql_with_params()
    except EmptyResultSet:
        return None
    return hashlib.sha1(f"{sql}|{params!r}".encode()).hexdigest()


def _pk_ordering(qs) -> str | None:
    """'asc' or 'desc' when the queryset is ordered by its primary key alone, else None."""
    query = qs.query
    ordering = list(query.order_by) or (list(query.get_meta().ordering) if query.default_ordering else [])
    pk_name = query.get_meta().pk.name
    if len(ordering) != 1 or not isinstance(ordering[0], str):
        return None
    field = ordering[0]
    if field.lstrip("-") not in ("pk", pk_name):
        return None
    return "desc" if field.startswith("-") else "asc"


def _fetch(qs, start: int, stop: int) -> list:
    if start < DEFERRED_JOIN_OFFSET:
        return list(qs[start:stop])
    ids = list(qs.values_list("pk", flat=True)[start:stop])
    found = qs.order_by().in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


class CachedCountPaginator(AsciiPaginator):
    """Paginator with a cached count and keyset jumps; a drop-in for Django's and DRF's pagination
    (page numbers as ASCII digits only, as every paginator of the project)."""

    @cached_property
    def _count_key(self) -> str | None:
        digest = _query_hash(self.object_list.order_by())
        return None if digest is None else catalog_cache.key("count", digest)

    @cached_property
    def count(self) -> int:
        key = self._count_key
        if key is None:
            return 0
        value = cache.get(key)
        if value is None:
            value = self.object_list.order_by().count()
            cache.set(key, value, catalog_cache.cache_seconds())
        return value

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self._slice(bottom, top), number, self)

    def _slice(self, bottom: int, top: int) -> list:
        size = top - bottom
        if size <= 0:
            return []
        qs = self.object_list
        direction = _pk_ordering(qs)
        if direction and bottom >= ANCHOR_EVERY:
            anchors = self._anchors(direction)
            if anchors:
                index = min(bottom // ANCHOR_EVERY, len(anchors) - 1)
                rest = bottom - index * ANCHOR_EVERY
                pk = qs.model._meta.pk.name
                lookup = f"{pk}__gte" if direction == "asc" else f"{pk}__lte"
                return _fetch(qs.filter(**{lookup: anchors[index]}), rest, rest + size)
        count = self.count
        if qs.ordered and count > 2 * ANCHOR_EVERY and bottom > count // 2:
            # Near the end: read backwards from the end with a small offset.
            start = max(count - top, 0)
            items = _fetch(qs.reverse(), start, start + size)
            items.reverse()
            return items
        return _fetch(qs, bottom, top)

    def _anchors(self, direction: str) -> list:
        digest = _query_hash(self.object_list.order_by())
        if digest is None:
            return []
        key = catalog_cache.key("anchors", direction, ANCHOR_EVERY, digest)
        anchors = cache.get(key)
        if anchors is None:
            anchors = self._compute_anchors(direction)
            cache.set(key, anchors, catalog_cache.cache_seconds())
        return anchors

    def _compute_anchors(self, direction: str) -> list:
        """Every ANCHOR_EVERY-th primary key of the result, in order: one pass, ids only."""
        pk_name = self.object_list.model._meta.pk.name
        qs = self.object_list.order_by().values(pk_name)
        sql, params = qs.query.sql_with_params()
        pk_column = pk_name  # the subquery's column alias
        connection = connections[qs.db]
        col = connection.ops.quote_name(pk_column)
        order = "ASC" if direction == "asc" else "DESC"
        statement = (
            f"SELECT w.{col} FROM (SELECT t.{col}, ROW_NUMBER() OVER (ORDER BY t.{col} {order}) AS rn "
            f"FROM ({sql}) t) w WHERE (w.rn - 1) %% %s = 0 ORDER BY w.rn"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, [*params, ANCHOR_EVERY])
            return [row[0] for row in cursor.fetchall()]
