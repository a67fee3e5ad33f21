"""The catalogue's cache version: every cached catalogue read (API pages, counts, page anchors,
the category tree) is keyed with it, so one bump invalidates them all without a key scan."""
from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

VERSION_KEY = "catalog:version"


def cache_seconds() -> int:
    # Not in settings.py on purpose (others edit it): override with CATALOG_CACHE_SECONDS there if needed.
    return int(getattr(settings, "CATALOG_CACHE_SECONDS", 600))


def version() -> str:
    value = cache.get(VERSION_KEY)
    if value is None:
        value = str(time.time_ns())
        # add(): two processes starting at once agree on one version.
        if not cache.add(VERSION_KEY, value, None):
            value = cache.get(VERSION_KEY) or value
    return str(value)


def bump() -> str:
    # A fresh value, not incr(): works when the key expired or Redis was flushed.
    value = str(time.time_ns())
    cache.set(VERSION_KEY, value, None)
    return value


def key(*parts) -> str:
    return ":".join(["catalog", version(), *(str(p) for p in parts)])
