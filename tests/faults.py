"""Fault injection for tests and the stress script: a private Redis server that can be frozen
(SIGSTOP: connections are accepted by the kernel, nothing answers), thawed (SIGCONT), stopped
and started again, without touching the Redis other people use.

    with PrivateRedis() as redis:
        url = redis.url(0)          # redis://127.0.0.1:<port>/0
        with redis.stalled():       # frozen inside the block
            ...
        redis.stop(); redis.start() # down (connection refused), then back, empty
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """One redis-server on a free port, no persistence, owned by the caller (``close()`` kills it)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="private-redis-")
        self.process: subprocess.Popen | None = None
        self.frozen = False
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.frozen = False
        wait_until(self.ping, timeout, f"redis-server on port {self.port} did not answer")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.settimeout(0.5)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel's backlog), nothing answers."""
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)
        self.frozen = False

    @contextlib.contextmanager
    def stalled(self):
        self.freeze()
        try:
            yield self
        finally:
            self.thaw()

    def stop(self) -> None:
        """Down: SIGKILL (no shutdown work), so the port refuses connections at once."""
        if self.process is not None and self.process.poll() is None:
            if self.frozen:
                self.thaw()
            self.process.kill()
            self.process.wait(timeout=10)
        self.frozen = False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PrivateRedis":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_until(predicate: Callable[[], object], timeout: float, message: str = "", interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


try:  # the fixture below, for test modules that import it
    import pytest
except ImportError:  # the stress script uses PrivateRedis without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture
    def stallable_cache(settings):
        """This process's default cache on a private Redis the test may freeze (the shared Redis is
        never touched); django-redis as configured, only the location differs."""
        if not settings.CACHES["default"]["BACKEND"].startswith("django_redis"):
            pytest.skip("needs REDIS_URL (django-redis as the cache)")
        from shop.redis_cache import redis_down_forget

        with PrivateRedis() as redis:
            settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis.url(0)}}
            yield redis
        redis_down_forget()  # the next test's cache calls go to Redis at once


def connections_drop() -> None:
    """Close this process's pooled connections to the default cache's Redis, as for a new worker or a
    dropped idle connection: a write during a stall then never reaches Redis (the new connection's
    handshake times out first) instead of being applied late, after the stall."""
    from django.core.cache import cache

    cache.client.get_client().connection_pool.disconnect()
