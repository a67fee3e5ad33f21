from decimal import Decimal

import pytest

from catalog.tests.factories import ProductFactory
from catalog.tests.fixtures import clean_cache, tracked  # noqa: F401

pytestmark = pytest.mark.django_db


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
    assert client.session["cart"] == {str(lamp.pk): 3, str(chair.pk): 1}
    html = client.get("/cart/").content.decode()
    assert '<td id="cart-total">104.70</td>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert client.post(f"/cart/update/{lamp.pk}/", {"quantity": 1}).status_code == 302
    assert client.session["cart"] == {str(lamp.pk): 1, str(chair.pk): 1}
    assert client.post(f"/cart/remove/{chair.pk}/").url == "/cart/"
    assert client.session["cart"] == {str(lamp.pk): 1}
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
    assert client.session["cart"] == {str(lamp.pk): 2}
    response = client.post(f"/cart/add/{lamp.pk}/", {"quantity": -1}, follow=True)
    assert "Quantity must be at least 1" in response.content.decode()
    assert client.session["cart"] == {str(lamp.pk): 2}


def test_inactive_product_cannot_be_added(client, lamp):
    lamp.is_active = False
    lamp.save()
    response = client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1}, follow=True)
    assert "This product is no longer available." in response.content.decode()
    assert client.session.get("cart", {}) == {}


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

    monkeypatch.setattr(tracking.services, "event_record_for_request", broken, raising=False)
    assert client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1}).status_code == 302
    assert client.session["cart"] == {str(lamp.pk): 1}


def test_header_shows_cart_count(client, lamp, chair):
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 5})
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    assert '<span class="badge" aria-label="2 items">2</span>' in client.get("/cart/").content.decode()
