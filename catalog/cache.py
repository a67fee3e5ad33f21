"""The catalogue's cache version: every cached catalogue read (API pages, counts, page anchors,
the category tree) is keyed with it, so one bump invalidates them all without a key scan."""
from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

VERSION_KEY = "catalog:version"

# The version is read several times per request (page, count, anchors keys); a process keeps it for
# VERSION_MEMO_SECONDS so that is one Redis round trip, not four. Another process's bump is seen within
# that time; a bump in this process is seen at once.
VERSION_MEMO_SECONDS = 0.5
_memo: tuple[float, str] | None = None


def cache_seconds() -> int:
    # Not in settings.py on purpose (others edit it): override with CATALOG_CACHE_SECONDS there if needed.
    return int(getattr(settings, "CATALOG_CACHE_SECONDS", 600))


def version() -> str:
    global _memo
    now = time.monotonic()
    if _memo is not None and now - _memo[0] < VERSION_MEMO_SECONDS:
        return _memo[1]
    value = cache.get(VERSION_KEY)
    if value is None:
        value = str(time.time_ns())
        # add(): two processes starting at once agree on one version.
        if not cache.add(VERSION_KEY, value, None):
            value = cache.get(VERSION_KEY) or value
    _memo = (now, str(value))
    return str(value)


def bump() -> str:
    global _memo
    # A fresh value, not incr(): works when the key expired or Redis was flushed.
    value = str(time.time_ns())
    cache.set(VERSION_KEY, value, None)
    _memo = (time.monotonic(), value)
    return value


def forget() -> None:
    """Drop this process's memo of the version (tests that flush the cache call it)."""
    global _memo
    _memo = None


def key(*parts) -> str:
    return ":".join(["catalog", version(), *(str(p) for p in parts)])
