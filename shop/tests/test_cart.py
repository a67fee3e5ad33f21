"""The cart: kept in the database under the session's owner id, changed one request at a time."""
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from catalog.tests.factories import ProductFactory
from catalog.tests.fixtures import clean_cache, tracked  # noqa: F401
from shop.models import Cart, CartItem
from shop.storefront.selectors import OWNER_SESSION_KEY

pytestmark = pytest.mark.django_db


def cart_of(client) -> dict[int, int]:
    """The browser's open cart in the database, {product id: quantity}."""
    owner = client.session.get(OWNER_SESSION_KEY)
    items = CartItem.objects.filter(cart__owner=owner, cart__status=Cart.Status.OPEN) if owner else []
    return {item.product_id: item.quantity for item in items}


@pytest.fixture
def lamp():
    return ProductFactory(name="Desk lamp", price=Decimal("19.90"))


@pytest.fixture
def chair():
    return ProductFactory(name="Chair", price=Decimal("45.00"))


def test_add_change_remove(client, lamp, chair, tracked):
    assert client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2}).url == "/cart/"
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1})
    assert cart_of(client) == {lamp.pk: 3, chair.pk: 1}
    html = client.get("/cart/").content.decode()
    assert '<td id="cart-total">104.70 EUR</td>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert client.post(f"/cart/update/{lamp.pk}/", {"quantity": 1}).status_code == 302
    assert cart_of(client) == {lamp.pk: 1, chair.pk: 1}
    assert client.post(f"/cart/remove/{chair.pk}/").url == "/cart/"
    assert cart_of(client) == {lamp.pk: 1}
    assert tracked == [
        ("add_to_cart", lamp.pk, "cart"), ("add_to_cart", chair.pk, "cart"), ("add_to_cart", lamp.pk, "cart"),
        ("remove_from_cart", chair.pk, "cart"),
    ]


def test_quantity_zero_or_garbage_is_a_form_error(client, lamp):
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    response = client.post(f"/cart/update/{lamp.pk}/", {"quantity": 0})
    assert response.status_code == 400
    assert "Quantity must be at least 1 (use Remove to take an item out)." in response.content.decode()
    assert client.post(f"/cart/update/{lamp.pk}/", {"quantity": "many"}).status_code == 400
    assert cart_of(client) == {lamp.pk: 2}
    response = client.post(f"/cart/add/{lamp.pk}/", {"quantity": -1}, follow=True)
    assert "Quantity must be at least 1" in response.content.decode()
    assert cart_of(client) == {lamp.pk: 2}


def test_inactive_product_cannot_be_added(client, lamp):
    lamp.is_active = False
    lamp.save()
    response = client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1}, follow=True)
    assert "This product is no longer available." in response.content.decode()
    assert cart_of(client) == {}


def test_cart_needs_post_and_csrf(lamp):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.get(f"/cart/add/{lamp.pk}/").status_code == 405
    assert csrf_client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1}).status_code == 403
    assert csrf_client.post("/checkout/", {"name": "A", "email": "a@example.com"}).status_code == 403


def test_tracking_failure_does_not_break_the_cart(client, lamp, monkeypatch):
    import tracking.services

    def broken(*args, **kwargs):
        raise RuntimeError("tracking down")

    monkeypatch.setattr(tracking.services, "event_record_for_visitor", broken, raising=False)
    assert client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1}).status_code == 302
    assert cart_of(client) == {lamp.pk: 1}


def test_header_shows_cart_count(client, lamp, chair):
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 5})
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    assert '<span class="badge" aria-label="2 items">2</span>' in client.get("/cart/").content.decode()


@pytest.mark.parametrize("quantity", ["٣", "³", "３", "1\u00a0", "2.0", "1e1"])
def test_quantity_is_ascii_digits_only(client, lamp, quantity):
    response = client.post(f"/cart/add/{lamp.pk}/", {"quantity": quantity}, follow=True)
    assert response.status_code == 200
    assert "Enter a whole number." in response.content.decode()
    assert cart_of(client) == {}
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": " 3 "})
    response = client.post(f"/cart/update/{lamp.pk}/", {"quantity": quantity})
    assert response.status_code == 400 and "Enter a whole number." in response.content.decode()
    assert cart_of(client) == {lamp.pk: 3}


def test_quantity_is_capped(client, lamp):
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 60})
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 60})
    assert cart_of(client) == {lamp.pk: 99}
    assert "Ensure this value is less than or equal to 99." in client.post(
        f"/cart/update/{lamp.pk}/", {"quantity": 100}).content.decode()


def test_session_holds_only_the_owner_id(client, lamp):
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    session = client.session
    cart = Cart.objects.get()
    assert str(cart.owner) == session[OWNER_SESSION_KEY]
    assert "cart" not in session.keys()
    assert cart.status == "open" and cart.owner != cart.id


def test_database_keeps_one_open_cart_per_owner_and_sane_quantities(lamp):
    cart = Cart.objects.create(owner=Cart().id)
    with pytest.raises(IntegrityError), transaction.atomic():
        Cart.objects.create(owner=cart.owner)
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.ORDERED)
    Cart.objects.create(owner=cart.owner)  # a new open cart after checkout
    for quantity in (0, 100):
        with pytest.raises(IntegrityError), transaction.atomic():
            CartItem.objects.create(cart=cart, product=lamp, quantity=quantity)


def test_stale_session_does_not_resurrect_an_ordered_cart(client, lamp, chair):
    """A copy of the session from before checkout (a cache that missed the write, a parallel request
    that saved late) is written back: the cart stays empty and a second checkout places nothing."""
    from django.contrib.sessions.backends.db import SessionStore

    from shop.models import Order

    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    key = client.session.session_key
    stale = SessionStore(session_key=key).load()
    first = client.post("/checkout/", {"name": "Ada", "email": "ada@example.com"})
    assert first.status_code == 302
    restored = SessionStore(session_key=key)
    restored.update(stale)
    restored.save()
    assert cart_of(client) == {}
    assert "Your cart is empty." in client.get("/cart/").content.decode()
    again = client.post("/checkout/", {"name": "Ada", "email": "ada@example.com"})
    assert again.status_code == 302 and again.url == first.url
    assert Order.objects.count() == 1
    # The next add opens a new cart; the ordered one keeps what was ordered.
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    assert cart_of(client) == {chair.pk: 1}
    ordered = Cart.objects.get(status=Cart.Status.ORDERED)
    assert list(ordered.items.values_list("product_id", "quantity")) == [(lamp.pk, 2)]


def test_login_keeps_the_cart_and_logout_leaves_it(client, lamp, django_user_model):
    django_user_model.objects.create_user("ada", password="pw-123456-long", is_staff=True)
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    before = client.session.session_key
    response = client.post("/admin/login/", {"username": "ada", "password": "pw-123456-long", "next": "/admin/"})
    assert response.status_code == 302 and client.session.session_key != before
    assert cart_of(client) == {lamp.pk: 2}
    client.post("/admin/logout/")
    assert cart_of(client) == {}
    assert Cart.objects.get().items.count() == 1  # still in the database, no longer this browser's


def test_first_save_of_a_session_gives_it_an_owner(client, django_user_model):
    django_user_model.objects.create_user("ada", password="pw-123456-long", is_staff=True)
    client.post("/admin/login/", {"username": "ada", "password": "pw-123456-long", "next": "/admin/"})
    assert client.session.get(OWNER_SESSION_KEY)
    owner = client.session[OWNER_SESSION_KEY]
    client.get("/admin/")
    assert client.session[OWNER_SESSION_KEY] == owner


def test_a_session_from_before_owner_ids_gets_one_once(client, lamp, chair):
    from django.contrib.sessions.backends.db import SessionStore

    legacy = SessionStore()
    legacy["something"] = 1
    legacy.create()
    client.cookies["sessionid"] = legacy.session_key
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1})
    owner = SessionStore(session_key=legacy.session_key).load()[OWNER_SESSION_KEY]
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    assert client.session[OWNER_SESSION_KEY] == owner
    assert cart_of(client) == {lamp.pk: 1, chair.pk: 1}


def test_cart_page_reads_the_cart_in_one_query(client, lamp, chair, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/cart/").content.decode()
    assert '<span class="badge" aria-label="2 items">2</span>' in html
    cart_queries = [q["sql"] for q in queries.captured_queries if "shop_cart" in q["sql"]]
    assert len(cart_queries) == 1, cart_queries


def test_cart_and_checkout_services_need_no_request(lamp, chair):
    """The storefront's services take the browser as plain values (issue #15): a session store for
    the cart, tracking's Visitor for what is also recorded."""
    from django.contrib.sessions.backends.db import SessionStore

    from shop.storefront import selectors, services
    from tracking.models import Event
    from tracking.visitors import Visitor

    session = SessionStore()
    visitor = Visitor(session=session)
    assert services.cart_add(visitor, lamp, 2) == 2
    assert services.cart_add(visitor, chair, 1) == 1
    services.cart_set_quantity(session, chair, 3)
    assert [(line.product.pk, line.quantity) for line in selectors.cart_lines(session)] == [(lamp.pk, 2), (chair.pk, 3)]
    assert services.cart_remove(visitor, chair) is True
    order, placed = services.order_place(visitor, name="A", email="a@example.com")
    assert placed and order.total == Decimal("39.80") and order.owner == selectors.session_owner(session)
    assert order.visit.uuid == services.visit_uuid_for_visitor(visitor)
    assert list(Event.objects.filter(visit=order.visit).order_by("id").values_list("event_type", "product_id")) == [
        ("add_to_cart", lamp.pk), ("add_to_cart", chair.pk), ("remove_from_cart", chair.pk), ("purchase", lamp.pk)]
