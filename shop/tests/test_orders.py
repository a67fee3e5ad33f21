"""Checkout and orders: one order per cart, prices captured, orders listed to the browser that placed them."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from catalog.tests.factories import ProductFactory
from catalog.tests.fixtures import clean_cache, tracked  # noqa: F401
from shop.models import Cart, CartItem, Order, OrderLine
from shop.storefront.selectors import OWNER_SESSION_KEY
from tracking.models import Visit

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
    assert str(order.owner) == client.session[OWNER_SESSION_KEY]
    assert order.cart.status == Cart.Status.ORDERED and order.cart.owner == order.owner
    assert order.visit == Visit.objects.get()
    assert list(order.lines.values_list("product_id", "product_name", "unit_price", "quantity")) == [
        (lamp.pk, "Desk lamp", Decimal("19.90"), 2), (chair.pk, "Chair", Decimal("45.00"), 1)
    ]
    assert not CartItem.objects.filter(cart__status=Cart.Status.OPEN).exists()
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
    assert Cart.objects.get().status == Cart.Status.OPEN and CartItem.objects.count() == 2
    assert [e for e in tracked if e[0] == "purchase"] == []


def test_mixed_currencies_are_a_form_error(client, cart):
    lamp, _ = cart
    lamp.currency = "USD"
    lamp.save()
    response = client.post("/checkout/", CUSTOMER)
    assert response.status_code == 400
    assert "Your cart mixes currencies (EUR, USD); order them separately." in response.content.decode()
    assert Order.objects.count() == 0 and Cart.objects.get().status == Cart.Status.OPEN


def test_repeated_checkout_returns_the_same_order(client, cart, tracked):
    """A double click or a retry after a timeout: the cart is already ordered, the repeat answers
    with that order and records nothing again."""
    first = client.post("/checkout/", CUSTOMER)
    again = client.post("/checkout/", {"name": "Someone Else", "email": "else@example.com"})
    assert again.status_code == 302 and again.url == first.url
    order = Order.objects.get()
    assert order.name == "Ada Lovelace"
    assert len([e for e in tracked if e[0] == "purchase"]) == 2
    # Another cart of the same browser is another order.
    lamp, _ = cart
    client.post(f"/cart/add/{lamp.pk}/", {"quantity": 1})
    third = client.post("/checkout/", CUSTOMER)
    assert third.url != first.url and Order.objects.count() == 2


def test_a_cart_gives_at_most_one_order_in_the_database(client, cart):
    from django.db import IntegrityError, transaction

    client.post("/checkout/", CUSTOMER)
    order = Order.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(cart=order.cart, owner=order.owner, name="Dup", email="d@example.com")


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
    assert admin_client.get(f"/admin/shop/cart/{order.cart_id}/change/").status_code == 200


def test_order_admin_shows_no_credential_of_the_shopper(django_user_model):
    """A superuser shops while logged in; a staff user who may only view orders reads the order's
    admin pages and finds neither the superuser's session key nor any other cookie value."""
    from django.contrib.auth.models import Permission

    django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456-long")
    shopper = Client()
    shopper.post("/admin/login/", {"username": "root", "password": "pw-123456-long", "next": "/admin/"})
    lamp = ProductFactory(name="Desk lamp", price=Decimal("19.90"))
    shopper.post(f"/cart/add/{lamp.pk}/", {"quantity": 1})
    assert shopper.post("/checkout/", CUSTOMER).status_code == 302
    order = Order.objects.get()
    viewer = django_user_model.objects.create_user("viewer", password="pw-123456-long", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"),
                                Permission.objects.get(codename="view_cart"))
    staff = Client()
    staff.force_login(viewer)
    pages = [staff.get(url) for url in (
        "/admin/shop/order/", f"/admin/shop/order/{order.pk}/change/", "/admin/shop/cart/",
        f"/admin/shop/cart/{order.cart_id}/change/",
    )]
    assert [page.status_code for page in pages] == [200] * 4
    secrets = {cookie.value for cookie in shopper.cookies.values()} | {shopper.session.session_key}
    assert all(len(secret) >= 32 for secret in secrets), secrets
    for page in pages:
        html = page.content.decode()
        assert [secret for secret in secrets if secret in html] == []
    assert "Ada Lovelace" in pages[1].content.decode()
    # Nor does searching by the session key find the order (the page only echoes the query).
    search = staff.get("/admin/shop/order/?q=" + shopper.session.session_key).content.decode()
    assert "0 results" in search and f"/admin/shop/order/{order.pk}/change/" not in search


def test_session_key_column_is_gone():
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, "shop_order")]
    assert "session_key" not in columns
    assert {"owner", "cart_id", "visit_id"} <= set(columns)


# SQLite cannot alter tables inside the test's transaction (its foreign key checks cannot be turned off
# there): on SQLite the test commits, and ends at the latest migration as every test must.
@pytest.mark.django_db(transaction=connection.vendor == "sqlite")
def test_migration_keeps_orders_listed_in_their_browser_and_drops_the_session_key():
    """Orders placed before carts: the live session of each gets an owner id the order takes; an
    order whose session is gone keeps none. Run inside the test's transaction, so it rolls back."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("shop", "0001_orders")])
    OldOrder = executor.loader.project_state([("shop", "0001_orders")]).apps.get_model("shop", "Order")
    session = SessionStore()
    session["tracking_visit"] = {"pk": 1}
    session.create()
    kept = OldOrder.objects.create(session_key=session.session_key, name="Ann", email="ann@example.com")
    also = OldOrder.objects.create(session_key=session.session_key, name="Ann", email="ann@example.com")
    gone = OldOrder.objects.create(session_key="x" * 32, name="Bob", email="bob@example.com")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    data = SessionStore(session_key=session.session_key).load()
    assert data["tracking_visit"] == {"pk": 1}
    owners = dict(Order.objects.values_list("pk", "owner"))
    assert str(owners[kept.pk]) == data[OWNER_SESSION_KEY] and owners[also.pk] == owners[kept.pk]
    assert owners[gone.pk] is None
    browser = Client()
    browser.cookies["sessionid"] = session.session_key
    listing = browser.get("/orders/").content.decode()
    assert f"Order {kept.pk}</a>" in listing and f"Order {also.pk}</a>" in listing and f"Order {gone.pk}" not in listing
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, "shop_order")]
    assert "session_key" not in columns
