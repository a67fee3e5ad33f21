"""The catalogue's cache version: every cached catalogue read (API pages, counts, page anchors,
the category tree, each process's product cache) is keyed with it, so one bump invalidates them
all without a key scan.

The version is a row in the database, replaced in the transaction that changes the catalogue; it
is not kept in Redis: a bump that Redis missed during a stall (writes fail silently there, by
design) left every process and every cached page on the old catalogue until the next change.
Redis only holds what is keyed with the version, so a stale entry can never be found again."""
from __future__ import annotations

import time
import uuid

from django.conf import settings

from .models import CatalogVersion

ROW = 1  # the primary key of the one CatalogVersion row

# The version is read several times per request (page, count, anchors keys); a process keeps it for
# VERSION_MEMO_SECONDS so that is one primary-key query per process every half second, not four
# per request. Another process's bump is seen within that time; a bump in this process at once.
VERSION_MEMO_SECONDS = 0.5
_memo: tuple[float, str] | None = None


def cache_seconds() -> int:
    # Not in settings.py on purpose (others edit it): override with CATALOG_CACHE_SECONDS there if needed.
    return int(getattr(settings, "CATALOG_CACHE_SECONDS", 600))


def _token() -> str:
    # Random, not a counter: a database recreated under the same Redis must not meet old keys.
    return uuid.uuid4().hex


def version() -> str:
    global _memo
    now = time.monotonic()
    if _memo is not None and now - _memo[0] < VERSION_MEMO_SECONDS:
        return _memo[1]
    value = next(iter(CatalogVersion.objects.filter(pk=ROW).values_list("token", flat=True)), None)
    if value is None:  # a new database; get_or_create: processes starting at once agree on one
        value = CatalogVersion.objects.get_or_create(pk=ROW, defaults={"token": _token()})[0].token
    _memo = (now, value)
    return value


def bump() -> str:
    """A new version, in the caller's transaction (if any): it becomes visible with the change."""
    global _memo
    value = _token()
    if not CatalogVersion.objects.filter(pk=ROW).update(token=value):
        CatalogVersion.objects.update_or_create(pk=ROW, defaults={"token": value})
    _memo = (time.monotonic(), value)
    return value


def forget() -> None:
    """Drop this process's memo of the version (tests call it)."""
    global _memo
    _memo = None


def key(*parts) -> str:
    return ":".join(["catalog", version(), *(str(p) for p in parts)])
