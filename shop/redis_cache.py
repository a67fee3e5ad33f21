"""The default cache's Redis client: django-redis's own, failing fast while Redis does not answer.

With IGNORE_EXCEPTIONS a Redis outage is a cache miss, but each cache call still waits its socket
timeout first: during a Redis freeze a product page (six cache calls) took 3.2 s. Once a call
times out or cannot connect, this process sends nothing to Redis for DOWN_SECONDS: every cache
call in that window fails at once (a miss, as IGNORE_EXCEPTIONS makes it), then Redis is tried
again. Only the cache API is affected; locks and raw clients talk to Redis as before.
"""
from __future__ import annotations

import functools
import time

from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted

DOWN_SECONDS = 1.0
_down_until = 0.0  # monotonic time until which this process does not ask Redis (one Redis per process)


class RedisSkipped(Exception):
    """Not sent: Redis failed to answer less than DOWN_SECONDS ago."""


def redis_down_mark() -> None:
    global _down_until
    _down_until = time.monotonic() + DOWN_SECONDS


def redis_down_forget() -> None:
    """Ask Redis again at the next call (tests)."""
    global _down_until
    _down_until = 0.0


def _fail_fast(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if time.monotonic() < _down_until:
            raise ConnectionInterrupted(connection=None) from RedisSkipped(
                f"Redis did not answer less than {DOWN_SECONDS:g} s ago")
        try:
            return method(self, *args, **kwargs)
        except ConnectionInterrupted:
            redis_down_mark()
            raise
    return call


class FailFastClient(DefaultClient):
    """django-redis's DefaultClient; the cache calls below fail at once while Redis is marked down."""


for _name in ("get", "set", "add", "delete", "delete_many", "delete_pattern", "get_many", "set_many", "has_key",
              "incr", "decr", "touch", "expire", "persist", "ttl", "keys", "iter_keys", "clear"):
    setattr(FailFastClient, _name, _fail_fast(getattr(DefaultClient, _name)))
