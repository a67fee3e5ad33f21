"""Cache faults in one process, on a private Redis the tests freeze: a stall may cost a request one
socket timeout, not one per cache call, and a change made during it is what every process serves
once Redis is back (the database is the truth, Redis a cache). The live stack: test_faults_live.py."""
import pytest

from tests.faults import stallable_cache  # noqa: F401 (a fixture)


@pytest.mark.django_db
def test_a_frozen_redis_costs_one_socket_timeout_then_cache_calls_fail_fast(stallable_cache, settings):
    import time

    from django.core.cache import cache

    from tests.faults import wait_until

    timeout = settings.CACHES["default"]["OPTIONS"]["SOCKET_TIMEOUT"]
    cache.set("lamp", 1)
    with stallable_cache.stalled():
        t0 = time.monotonic()
        assert cache.get("lamp") is None  # a miss, after one socket timeout
        first = time.monotonic() - t0
        t0 = time.monotonic()
        assert cache.get("lamp") is None and cache.get_many(["lamp", "chair"]) == {}
        assert not cache.set("lamp", 2) and not cache.add("chair", 3)
        rest = time.monotonic() - t0
    assert timeout <= first < timeout + 0.4
    assert rest < 0.1  # four calls that did not wait (each waited the socket timeout before)
    wait_until(lambda: cache.get("lamp") == 1, 5, "Redis is not asked again after the stall")
