"""Small storefront defects: the order page's status line, currencies on cart and checkout totals,
and recommendation rows that fill whole rows."""
import inspect
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from catalog.tests.factories import ProductFactory
from catalog.tests.fixtures import clean_cache  # noqa: F401
from shop.models import Order
from shop.storefront import selectors

CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com"}


@pytest.fixture
def cart(client, db):
    lamp = ProductFactory(name="Desk lamp", price=Decimal("19.90"))
    chair = ProductFactory(name="Chair", price=Decimal("45.00"))
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 2})
    client.post(f"/cart/add/{chair.pk}/", {"quantity": 1})
    return lamp, chair


@pytest.mark.django_db
def test_order_page_says_date_status_and_email_once(client, cart):
    """It read "Placed 2026-12-04 04:39 · Placed · confirmation to ..." (the status twice, and a
    confirmation e-mail that the shop never sends)."""
    client.post("/checkout/", CUSTOMER)
    order = Order.objects.get()
    Order.objects.filter(pk=order.pk).update(created=datetime(2026, 12, 4, 4, 39, tzinfo=timezone.utc))
    html = client.get(f"/orders/{order.pk}/").content.decode()
    assert ('<p class="order-meta" id="order-meta">Placed on <time datetime="2026-12-04T04:39:00+00:00">'
            "4 December 2026, 04:39</time> by Ada Lovelace (ada@example.com)</p>") in html
    assert "confirmation to" not in html and "· Placed" not in html
    assert "<td>19.90 EUR</td><td>2</td><td>39.80 EUR</td>" in html  # line prices carry the currency too
    listing = client.get("/orders/").content.decode()
    assert '<td><time datetime="2026-12-04T04:39:00+00:00">4 December 2026, 04:39</time></td>' in listing


@pytest.mark.django_db
def test_cart_and_checkout_totals_carry_the_currency(client, cart):
    html = client.get("/cart/").content.decode()
    assert '<td id="cart-total">84.80 EUR</td>' in html and "<td>39.80 EUR</td>" in html
    assert 'id="cart-currencies"' not in html
    checkout = client.get("/checkout/").content.decode()
    assert 'Total: <strong id="checkout-total">84.80 EUR</strong>' in checkout
    assert 'id="checkout-currencies"' not in checkout


@pytest.mark.django_db
def test_mixed_currencies_are_totalled_apart_and_flagged(client, cart):
    """Amounts in two currencies are never added up: one total per currency, and the shopper is
    told before checkout what checkout would refuse."""
    lamp, _ = cart
    lamp.currency = "USD"
    lamp.save()
    html = client.get("/cart/").content.decode()
    assert '<td id="cart-total">39.80 USD + 45.00 EUR</td>' in html
    note = ("Your cart holds prices in more than one currency, and an order takes one: "
            "order them separately.</p>")
    assert f'<p class="warn" id="cart-currencies">{note}' in html
    checkout = client.get("/checkout/").content.decode()
    assert 'Total: <strong id="checkout-total">39.80 USD + 45.00 EUR</strong>' in checkout
    assert f'<p class="warn" id="checkout-currencies">{note}' in checkout
    refused = client.post("/checkout/", CUSTOMER)
    assert refused.status_code == 400 and Order.objects.count() == 0


def test_cart_totals_selector():
    line = selectors.CartLine
    lines = [line(ProductFactory.build(price=Decimal("1.50"), currency="EUR"), 2),
             line(ProductFactory.build(price=Decimal("2.00"), currency="USD"), 1),
             line(ProductFactory.build(price=Decimal("0.25"), currency="EUR"), 4)]
    assert selectors.cart_totals(lines) == [(Decimal("4.00"), "EUR"), (Decimal("2.00"), "USD")]
    assert selectors.cart_totals([]) == []


def _row_columns() -> dict[str, list[int]]:
    """Column counts of each recommendation-row selector in shop.css, in source order (the desktop
    rule first, then the media queries, narrower last)."""
    css = re.sub(r"/\*.*?\*/", "", (Path(settings.BASE_DIR) / "shop/static/shop/shop.css").read_text(), flags=re.S)
    counts: dict[str, list[int]] = {}
    for selectors_text, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        columns = re.search(r"grid-template-columns:\s*repeat\((\d+|auto-fill|auto-fit)", body)
        for name in (s.strip() for s in selectors_text.split(",")):
            if name.endswith(".product-row") and columns:
                counts.setdefault(name, []).append(int(columns.group(1)) if columns.group(1).isdigit() else 0)
    return counts


def test_recommendation_rows_fill_whole_rows():
    """Eight recommendations in auto-fill columns (six at 1280 px) left a row of two, and the
    catalogue's six a lone card at 1024 px: every column count of a row must divide its number of
    cards (8 on the product page, the catalogue widget's data-k), so no row is left part-filled."""
    counts = _row_columns()
    assert counts == {".product-row": [4, 2], '[data-k="6"] > .product-row': [6, 3, 2]}
    for widget in (selectors.recommended_for_you, selectors.similar_items):
        limit = inspect.signature(widget).parameters["limit"].default
        assert limit == 8 and all(limit % c == 0 for c in counts[".product-row"])
    index = (Path(settings.BASE_DIR) / "shop/templates/storefront/index.html").read_text()
    assert 'class="widget" aria-labelledby="recommended-for-you-title" data-recommendations data-k="6"' in index
    assert all(6 % c == 0 for c in counts['[data-k="6"] > .product-row'])
