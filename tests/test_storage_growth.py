"""Crawlers and scripts cannot grow the database or the cache without bound (against a live shop:
gunicorn in production mode on the test database and the test Redis).

* A client that sends no cookies gets pages (product pages with recommendations from the product
  alone, the API docs, the admin login) but no ``django_session`` row and no ``tracking_visit`` row.
* A browser gets its visit when it comes back with the cookie the first page set, and the first
  page's product view is recorded then, with its own time (tracking/gate.py).
* Junk query parameters and other spellings of one query share one cache entry.
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from decimal import Decimal

import pytest
import requests
from django.contrib.sessions.models import Session

from catalog.cache import VERSION_MEMO_SECONDS
from catalog.models import Category, Product
from tests import live
from tests.live_var import static_collected
from tracking.models import Event, Visit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def shop(django_db_setup, django_db_blocker, live_var_dir):
    from django.db import connection

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("the live shop runs on PostgreSQL and Redis (make test sets DATABASE_URL and REDIS_URL)")
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    prefix = f"growth{uuid.uuid4().hex[:10]}"
    shop = live.start(settings_dict, static_collected(live_var_dir), timeout=240, extra_env={
        "CACHE_KEY_PREFIX": prefix, "THROTTLE_ANON": "1000000/min", "THROTTLE_USER": "1000000/min"})
    shop.extra["prefix"] = prefix
    yield shop
    shop.stop()


@pytest.fixture
def products():
    lamps = Category.objects.create(name="Lamps", slug="lamps")
    return [Product.objects.create(external_id=f"g{i}", name=f"Lamp {i}", slug=f"lamp-{i}", category=lamps,
                                   price=Decimal("10.00") + i) for i in range(6)]


def _visit_id(html: str) -> str:
    """window.SHOP.visitId as the page's script reads it (escapejs writes "-" as \\u002D)."""
    return json.loads('"' + re.search(r'visitId: "([^"]*)"', html).group(1) + '"')


def _rows():
    return Session.objects.count(), Visit.objects.count(), Event.objects.count()


def test_cookieless_requests_create_no_session_and_no_visit(shop, products):
    paths = [f"/products/{p.pk}/" for p in products] + [
        f"/products/{products[0].pk}/?src=search", "/api/docs/", "/admin/login/", "/", "/cart/"]
    before = _rows()
    pages = [requests.get(shop.url + paths[i % len(paths)], timeout=30) for i in range(50)]
    assert [p.status_code for p in pages] == [200] * 50
    assert _rows() == before == (0, 0, 0)
    # The product page still shows "Recommended for you", from the product alone.
    page = requests.get(shop.url + f"/products/{products[0].pk}/", timeout=30).text
    widget = page.split('id="recommended-for-you"', 1)[1].split("</section>", 1)[0]
    assert widget.count('class="product-card"') >= 1
    assert _visit_id(page) == ""  # no visit: tracking.js stays idle


def test_forged_cookies_create_nothing(shop, products):
    before = _rows()
    for i in range(20):
        cookies = {"sessionid": uuid.uuid4().hex, "shop_pending": "eyJ0IjoidmlldyJ9:1xZOH2:forged-signature"}
        assert requests.get(shop.url + f"/products/{products[i % 6].pk}/", cookies=cookies, timeout=30).ok
    assert _rows() == before == (0, 0, 0)


def test_a_browser_gets_its_visit_on_its_second_request_with_the_first_view(shop, products):
    browser = shop.client()
    a, b, c = products[:3]
    first = browser.get(f"/products/{a.pk}/?src=search")
    assert first.status_code == 200 and "shop_pending" in first.cookies
    assert _rows() == (0, 0, 0)
    assert browser.get(f"/products/{b.pk}/").status_code == 200
    visit = Visit.objects.get()
    assert Session.objects.count() == 1
    events = list(Event.objects.filter(visit=visit).order_by("timestamp", "id"))
    assert [(e.event_type, e.product_id, e.source) for e in events] == [("view", a.pk, "search"), ("view", b.pk, "")]
    assert events[0].timestamp < events[1].timestamp
    assert "shop_pending" not in browser.http.cookies  # taken: the visit is in the session now
    page = browser.get(f"/products/{c.pk}/")
    assert _visit_id(page.text) == str(visit.uuid)
    assert (Session.objects.count(), Visit.objects.count()) == (1, 1)
    assert list(Event.objects.filter(visit=visit).order_by("timestamp", "id").values_list("product_id", flat=True)) == [
        a.pk, b.pk, c.pk]


def test_a_form_post_starts_the_visit_with_the_pending_view(shop, products):
    browser = shop.client()
    a = products[0]
    browser.get(f"/products/{a.pk}/")
    assert browser.post(f"/cart/add/{a.pk}/", {"quantity": 1}).status_code == 302
    visit = Visit.objects.get()
    assert list(Event.objects.filter(visit=visit).order_by("timestamp", "id").values_list("event_type", "product_id")) == [
        ("view", a.pk), ("add_to_cart", a.pk)]


def _keys(shop) -> dict[bytes, int]:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return {key: client.memory_usage(key) or 0 for key in client.scan_iter(f"{shop.extra['prefix']}:*", count=1000)}


def test_junk_query_parameters_share_one_cache_entry(shop, products):
    # A worker keeps the catalogue version it read for VERSION_MEMO_SECONDS: one that answered the
    # previous test within that window would fill the old version's entries first and this version's
    # during the loop (the category tree showed up as a third new key). Wait the memo out.
    time.sleep(VERSION_MEMO_SECONDS + 0.2)
    assert requests.get(shop.url + "/api/products/", timeout=30).ok
    assert requests.get(shop.url + "/", timeout=30).ok
    before = _keys(shop)
    urls = []
    for i in range(500):
        junk = f"junk{i}={uuid.uuid4().hex}"
        urls.append(["/api/products/?" + junk, f"/api/products/?page=01&{junk}", f"/?{junk}",
                     f"/api/products/?page_size=024&{junk}"][i % 4])
    responses = [requests.get(shop.url + url, timeout=30) for url in urls]
    assert {r.status_code for r in responses} == {200}
    added = {k: v for k, v in _keys(shop).items() if k not in before}
    assert len(added) <= 2, sorted(added)  # at most: one page entry for page_size=024 (= 24), one count
    # The cached pages' links carry no client's junk.
    page = requests.get(shop.url + "/api/products/?page_size=2&utm_source=" + "x" * 50, timeout=30).json()
    assert page["next"] == f"{shop.url}/api/products/?page=2&page_size=2"
