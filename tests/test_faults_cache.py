"""Cache faults in one process, on a private Redis the tests freeze: a stall may cost a request one
socket timeout, not one per cache call, and a change made during it is what every process serves
once Redis is back (the database is the truth, Redis a cache). The live stack: test_faults_live.py."""
import pytest

from catalog import cache as catalog_cache
from catalog.models import Product
from catalog.services import products_set_active
from recommendations import caches
from tests.faults import connections_drop, stallable_cache  # noqa: F401 (stallable_cache: a fixture)


@pytest.mark.django_db
def test_a_catalogue_change_during_a_stall_invalidates_every_process_once_redis_is_back(stallable_cache, client):
    lamp = Product.objects.create(external_id="lamp", name="Lamp", slug="lamp")
    chair = Product.objects.create(external_id="chair", name="Chair", slug="chair")
    before = catalog_cache.version()
    assert {p["id"] for p in client.get("/api/products/").json()["results"]} == {lamp.pk, chair.pk}  # now cached
    assert caches.products_known([lamp.pk]) == {lamp.pk}
    assert caches.products_active([lamp.pk, chair.pk]).keys() == {lamp.pk, chair.pk}
    connections_drop()  # the bump's write during the stall is lost, not applied late
    with stallable_cache.stalled():
        assert products_set_active([lamp.pk], False) == 1
    # Another process (or this one once its memo expires) reads the version after the stall
    catalog_cache.forget()
    assert catalog_cache.version() != before
    assert [p["id"] for p in client.get("/api/products/").json()["results"]] == [chair.pk]
    assert caches.products_active([lamp.pk, chair.pk]).keys() == {chair.pk}


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
