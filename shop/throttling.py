"""API throttles that hold under concurrency and against spoofed headers.

DRF's ``SimpleRateThrottle`` reads a request history from the cache and writes it back: parallel
requests in different processes read the same history and each adds itself, so the limit leaks;
and its ``get_ident`` believes ``X-Forwarded-For`` from anyone. These count with one atomic
operation per request (a fixed window that starts with the client's first request: Redis
``SET NX EX`` + ``INCR`` in one MULTI, or ``add`` + ``incr`` on another cache backend) and name
the client with ``shop.client_ip.client_key``.

Redis outage or stall: each process falls back to a counter of its own for ``FALLBACK_SECONDS``
before it asks Redis again, so requests never wait on a dead Redis for more than one socket timeout
per process and the limit still holds per process (at most limit x web processes in total): the API
is not left unthrottled, and it is not shut because a cache is down.
"""
from __future__ import annotations

import logging
import math
import threading
import time

from django.core.cache import cache
from rest_framework import throttling

from shop.client_ip import client_key

logger = logging.getLogger(__name__)

FALLBACK_SECONDS = 5.0
# The process-local fallback forgets its oldest windows past this many clients.
FALLBACK_MAX_KEYS = 10_000


class _LocalCounters:
    """Fixed windows in this process only (the fallback): {key: [count, window end]}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.windows: dict[str, list] = {}

    def hit(self, key: str, duration: int) -> tuple[int, float]:
        now = time.monotonic()
        with self.lock:
            window = self.windows.get(key)
            if window is None or window[1] <= now:
                if len(self.windows) >= FALLBACK_MAX_KEYS:
                    self.windows = {k: w for k, w in self.windows.items() if w[1] > now}
                    while len(self.windows) >= FALLBACK_MAX_KEYS:
                        self.windows.pop(next(iter(self.windows)))
                window = self.windows[key] = [0, now + duration]
            window[0] += 1
            return window[0], window[1] - now


_local = _LocalCounters()
_redis_down_until = 0.0


def _redis_client():
    """The raw client behind the default cache when it is django-redis, else None."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client


def window_hit(key: str, duration: int) -> tuple[int, float]:
    """Count one request in ``key``'s window of ``duration`` seconds, atomically across processes.

    Returns (requests in the window including this one, seconds until the window ends)."""
    global _redis_down_until
    duration = max(1, int(duration))
    client = _redis_client()
    if client is not None:
        if time.monotonic() < _redis_down_until:
            return _local.hit(key, duration)
        from redis.exceptions import RedisError

        try:
            redis = client.get_client(write=True)
            full_key = client.make_key(key)
            pipe = redis.pipeline(transaction=True)
            pipe.set(full_key, 0, ex=duration, nx=True)
            pipe.incr(full_key)
            pipe.pttl(full_key)
            _, count, ttl_ms = pipe.execute()
        except RedisError as exc:
            _redis_down_until = time.monotonic() + FALLBACK_SECONDS
            logger.warning("throttle: Redis unavailable (%s); counting in this process for %.0f s",
                           exc.__class__.__name__, FALLBACK_SECONDS)
            return _local.hit(key, duration)
        return int(count), (ttl_ms / 1000.0 if ttl_ms and ttl_ms > 0 else float(duration))
    # Any other cache backend (local memory in the embedded default): add() then incr(), both atomic.
    cache.add(key, 0, duration)
    try:
        return int(cache.incr(key)), float(duration)
    except ValueError:  # expired between the two calls: a new window
        cache.add(key, 0, duration)
        return int(cache.incr(key)), float(duration)


class AtomicRateThrottleMixin:
    """``allow_request`` as one atomic count; the client named by ``shop.client_ip``."""

    def get_ident(self, request):
        return client_key(request)

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        count, self._remaining = window_hit(self.key, self.duration)
        return count <= self.num_requests

    def wait(self):
        return math.ceil(getattr(self, "_remaining", self.duration))


class AnonRateThrottle(AtomicRateThrottleMixin, throttling.AnonRateThrottle):
    """Anonymous clients by address (``THROTTLE_ANON``)."""


class UserRateThrottle(AtomicRateThrottleMixin, throttling.UserRateThrottle):
    """Signed-in clients by user id, anonymous ones by address (``THROTTLE_USER``)."""


def fallback_reset() -> None:
    """Forget the local fallback's counts and Redis's down mark (tests)."""
    global _redis_down_until
    _redis_down_until = 0.0
    with _local.lock:
        _local.windows.clear()
