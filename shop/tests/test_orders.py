from decimal import Decimal

import pytest
from django.test import Client

from catalog.tests.factories import ProductFactory
from catalog.tests.fixtures import clean_cache, tracked  # noqa: F401
from shop.models import Order, OrderLine

pytestmark = pytest.mark.django_db

CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com"}


@pytest.fixture
def cart(client):
    lamp = ProductFactory(name="Desk lamp", price=Decimal("19.90"))
    chair = ProductFactory(name="Chair", price=Decimal("45.00"))
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    return lamp, chair


def test_checkout_places_order_captures_prices_and_empties_cart(client, cart, tracked):
    lamp, chair = cart
    response = client.post("/checkout/", CUSTOMER)
    order = Order.objects.get()
    assert response.url == f"/orders/{order.pk}/?placed=1"
    assert (order.name, order.email, order.total, order.currency, order.status) == (
        "Ada Lovelace", "ada@example.com", Decimal("84.80"), "EUR", "placed"
    )
    assert order.session_key == client.session.session_key
    assert list(order.lines.values_list("product_id", "product_name", "unit_price", "quantity")) == [
        (lamp.pk, "Desk lamp", Decimal("19.90"), 2), (chair.pk, "Chair", Decimal("45.00"), 1)
    ]
    assert client.session["cart"] == {}
    assert [e for e in tracked if e[0] == "purchase"] == [("purchase", lamp.pk, "cart"), ("purchase", chair.pk, "cart")]
    # The price is the one paid, whatever happens to the product later.
    lamp.price = Decimal("99.00")
    lamp.save()
    html = client.get(response.url).content.decode()
    assert "Thank you, Ada Lovelace! Your order is placed." in html
    assert f'<td id="order-total">84.80 EUR</td>' in html
    assert OrderLine.objects.get(product=lamp).unit_price == Decimal("19.90")


def test_inactive_product_is_a_form_error_and_nothing_is_ordered(client, cart, tracked):
    lamp, _ = cart
    lamp.is_active = False
    lamp.save()
    response = client.post("/checkout/", CUSTOMER)
    assert response.status_code == 400
    assert "Desk lamp is no longer available; remove it from your cart." in response.content.decode()
    assert Order.objects.count() == 0 and OrderLine.objects.count() == 0
    assert len(client.session["cart"]) == 2
    assert [e for e in tracked if e[0] == "purchase"] == []


def test_tampered_quantity_is_a_form_error(client, cart):
    lamp, _ = cart
    session = client.session
    session["cart"][str(lamp.pk)] = 0
    session.save()
    response = client.post("/checkout/", CUSTOMER)
    assert response.status_code == 400
    assert "Desk lamp: quantity must be at least 1." in response.content.decode()
    assert Order.objects.count() == 0


def test_checkout_form_validation_and_empty_cart(client, cart):
    response = client.post("/checkout/", {"name": "", "email": "not-an-email"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required." in html and "Enter a valid email address." in html
    fresh = Client()
    assert fresh.get("/checkout/").url == "/cart/"
    assert "Your cart is empty." in fresh.post("/checkout/", CUSTOMER).content.decode()


def test_orders_belong_to_their_session(client, cart):
    client.post("/checkout/", CUSTOMER)
    order = Order.objects.get()
    listing = client.get("/orders/").content.decode()
    assert f'<a href="/orders/{order.pk}/">Order {order.pk}</a>' in listing and "84.80 EUR" in listing
    other = Client()
    assert f"Order {order.pk}" not in other.get("/orders/").content.decode()
    assert other.get(f"/orders/{order.pk}/").status_code == 404


def test_order_admin_shows_lines_inline(admin_client, client, cart):
    client.post("/checkout/", CUSTOMER)
    order = Order.objects.get()
    html = admin_client.get(f"/admin/shop/order/{order.pk}/change/").content.decode()
    assert "Desk lamp" in html and "39.80" in html
