"""Cache and broker faults against the real stack: gunicorn (3 worker processes, production mode)
on the test database, with a private Redis as cache AND Celery broker that the tests freeze
(SIGSTOP), thaw (SIGCONT) and stop. The database is the truth: a Redis stall or outage may slow
the shop, never resurrect state, never leave a request hanging for the whole stall, and never
leave work queued that nobody will do."""
from __future__ import annotations

import time

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connection

from tests import live
from tests.faults import PrivateRedis

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the live shop runs on PostgreSQL")

STALL_SECONDS = 15
RELOAD_SECONDS = 1.0


@pytest.fixture(scope="module")
def redis_private():
    with PrivateRedis() as redis:
        yield redis


@pytest.fixture(scope="module")
def fault_shop(django_db_setup, django_db_blocker, tmp_path_factory, redis_private):
    """The live shop with the private Redis as cache (db 0), broker (db 1) and result store (db 2);
    no Celery worker."""
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    shop = live.start(settings_dict, tmp_path_factory.mktemp("fault-var"), extra_env={
        "REDIS_URL": redis_private.url(0),
        "CELERY_BROKER_URL": redis_private.url(1),
        "CELERY_RESULT_BACKEND": redis_private.url(2),  # as scripts/serve.sh runs it
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "MODEL_RELOAD_INTERVAL_SECONDS": str(RELOAD_SECONDS),
        "TORCH_NUM_THREADS": "1",
        "LOG_LEVEL": "INFO",  # "model X loaded ... by process N": which worker serves what
    })
    yield shop
    shop.stop()


@pytest.fixture
def redis_up(redis_private):
    """Every test starts with the private Redis running, thawed and empty."""
    redis_private.start()
    if redis_private.frozen:
        redis_private.thaw()
    _flushall(redis_private)
    yield redis_private
    if redis_private.frozen:
        redis_private.thaw()
    redis_private.start()


def _flushall(redis_private):
    import redis

    redis.Redis.from_url(redis_private.url(0), socket_timeout=5).flushall()


def _login(shop, username, password) -> live.Browser:
    browser = shop.client()
    browser.get("/admin/login/")
    r = browser.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})
    assert r.status_code == 302 and r.headers["Location"] == "/admin/", r.text[:500]
    return browser


def _timed(fn):
    t0 = time.monotonic()
    result = fn()
    return result, time.monotonic() - t0


# ------------------------------------------------------------------------------------ sessions
@pytest.mark.django_db(transaction=True)
def test_logout_during_a_redis_stall_is_not_undone_when_redis_resumes(fault_shop, redis_up):
    User.objects.create_superuser("root", "root@example.com", "pw-123456-long")
    admin = _login(fault_shop, "root", "pw-123456-long")
    assert admin.get("/admin/auth/user/").status_code == 200
    old_cookie = admin.clone()  # the cookie as someone who copied it would keep it
    with redis_up.stalled():
        r, took = _timed(lambda: admin.post("/admin/logout/"))
        assert r.status_code == 200, r.text[:300]
        assert took < 5.0, f"logout took {took:.1f} s during the stall"
    # Redis is back with whatever it held before the stall: the old cookie must still be dead
    r = old_cookie.get("/admin/auth/user/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login/")
    # and it stays dead whichever worker answers
    for _ in range(6):
        assert old_cookie.get("/admin/", allow_redirects=False).status_code == 302

