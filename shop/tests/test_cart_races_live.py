"""Races of one browser's cart and checkout, with real parallel requests (released together by a
barrier) against gunicorn with 3 worker processes on the test database."""
from decimal import Decimal

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings

from catalog.tests.factories import ProductFactory
from shop.models import Cart, CartItem, Order, OrderLine
from shop.storefront.selectors import OWNER_SESSION_KEY
from tests import live
from tracking.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com"}
N = 20


def session_data(shop, key: str) -> dict:
    """A session's data as the live shop reads it (signed with the shop's SECRET_KEY)."""
    with override_settings(SECRET_KEY=shop.env["SECRET_KEY"]):
        return SessionStore(session_key=key).load()


def open_cart(shop, browser) -> dict[int, int]:
    """The browser's open cart in the database, {product id: quantity}, read through its session."""
    owner = session_data(shop, browser.http.cookies["sessionid"])[OWNER_SESSION_KEY]
    return dict(CartItem.objects.filter(cart__owner=owner, cart__status=Cart.Status.OPEN)
                .values_list("product_id", "quantity"))


@pytest.fixture
def products():
    return [ProductFactory(name=name, price=Decimal("10.00")) for name in ("A", "B", "C")]


def test_parallel_adds_keep_every_change(live_shop, products):
    """10 x A and 10 x B at once, while the browser has no open cart (its last one was just ordered),
    so the requests also race to open the new cart."""
    a, b, c = products
    browser = live_shop.client()
    assert browser.post(f"/cart/add/{c.pk}/", {"quantity": 1}).status_code == 302
    assert browser.post("/checkout/", CUSTOMER).status_code == 302

    results = live.parallel(lambda i: browser.clone().post(f"/cart/add/{(a if i % 2 else b).pk}/", {"quantity": 1}), N)

    assert [(r.status_code, r.headers.get("Location")) for r in results] == [(302, "/cart/")] * N
    assert open_cart(live_shop, browser) == {a.pk: 10, b.pk: 10}
    assert Cart.objects.filter(status=Cart.Status.OPEN).count() == 1


def test_parallel_first_adds_of_a_session_without_owner_share_one_cart(live_shop, products):
    """A session saved before sessions carried an owner id: its parallel first adds must agree on one."""
    a, b, _ = products
    with override_settings(SECRET_KEY=live_shop.env["SECRET_KEY"]):
        legacy = SessionStore()
        legacy["seen"] = True
        legacy.create()
    browser = live_shop.client()
    browser.http.cookies.set("sessionid", legacy.session_key, domain="127.0.0.1", path="/")
    browser.csrf()

    results = live.parallel(lambda i: browser.clone().post(f"/cart/add/{(a if i % 2 else b).pk}/", {"quantity": 1}), N)

    assert [r.status_code for r in results] == [302] * N
    assert open_cart(live_shop, browser) == {a.pk: 10, b.pk: 10}
    assert Cart.objects.count() == 1


def test_parallel_checkouts_of_one_cart_give_one_order(live_shop, products):
    a, b, _ = products
    browser = live_shop.client()
    browser.post(f"/cart/add/{a.pk}/", {"quantity": 2})
    browser.post(f"/cart/add/{b.pk}/", {"quantity": 1})

    results = live.parallel(lambda i: browser.clone().post("/checkout/", CUSTOMER), N)

    order = Order.objects.get()
    placed = f"/orders/{order.pk}/?placed=1"
    assert [(r.status_code, r.headers.get("Location")) for r in results] == [(302, placed)] * N
    assert list(order.lines.values_list("product_id", "quantity")) == [(a.pk, 2), (b.pk, 1)]
    assert Event.objects.filter(event_type="purchase").count() == 2
    # A retry after the answer was lost (a timeout): the same order, nothing new.
    retry = browser.clone().post("/checkout/", CUSTOMER)
    assert (retry.status_code, retry.headers.get("Location")) == (302, placed)
    assert Order.objects.count() == 1 and OrderLine.objects.count() == 2
    assert "Thank you, Ada Lovelace!" in browser.get(placed).text
    assert open_cart(live_shop, browser) == {}


def test_adds_during_parallel_checkouts_are_ordered_or_kept(live_shop, products):
    """Checkouts and adds of one browser at once: each accepted add is in exactly one place, an order
    or the new open cart (an add that lands after the first order opens a cart that a later checkout
    may order in turn), and what was in the cart is ordered once."""
    a, b, _ = products
    browser = live_shop.client()
    browser.post(f"/cart/add/{a.pk}/", {"quantity": 1})

    def act(i):
        if i % 2:
            return browser.clone().post("/checkout/", CUSTOMER)
        return browser.clone().post(f"/cart/add/{b.pk}/", {"quantity": 1})

    results = live.parallel(act, N)

    assert [r.status_code for r in results] == [302] * N
    orders = {f"/orders/{pk}/?placed=1" for pk in Order.objects.values_list("pk", flat=True)}
    assert {r.headers["Location"] for r in results[1::2]} == orders
    assert sum(OrderLine.objects.filter(product=a).values_list("quantity", flat=True)) == 1
    ordered_b = sum(OrderLine.objects.filter(product=b).values_list("quantity", flat=True))
    assert ordered_b + open_cart(live_shop, browser).get(b.pk, 0) == N // 2
    assert Cart.objects.filter(status=Cart.Status.ORDERED).count() == len(orders)
