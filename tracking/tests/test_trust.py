"""What the public popular list counts: purchases the shop can vouch for (its orders, imports,
trusted integrations) and views it recorded itself, never what an anonymous API client claims."""
import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tracking import services
from tracking.models import Event, ProductPopularity
from tracking.selectors import popular_products

URL = "/api/events/"
SESSION = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"


def _post(client, events, session=SESSION):
    return client.post(URL, data=json.dumps({"session": session, "events": events}), content_type="application/json")


def _popularity() -> dict:
    """{(product, window): (views, purchases)} after a refresh."""
    services.popularity_refresh()
    return {(r.product_id, r.window_days): (r.views, r.purchases) for r in ProductPopularity.objects.all()}


def _token_client(*, permitted: bool) -> APIClient:
    user = User.objects.create_user("integration" if permitted else "someone")
    if permitted:
        user.user_permissions.add(Permission.objects.get(codename="record_trusted_events"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


UNTRUSTED_PURCHASE = {"reason": "untrusted_purchase", "stored": False}


def test_anonymous_purchases_are_not_stored_and_leave_the_popular_list_alone(products):
    p1, p2 = products[:2]
    before = [p.pk for p in popular_products(2)]
    response = _post(APIClient(), [{"type": "view", "product": p2.pk}] + [{"type": "purchase", "product": p2.pk}] * 20)
    assert response.status_code == 201, response.content
    assert response.json() == {"session": SESSION, "count": 1,
                               "ignored": [{"index": i, **UNTRUSTED_PURCHASE} for i in range(1, 21)]}
    assert not Event.objects.filter(event_type="purchase").exists()
    assert _popularity() == {}  # the anonymous view is stored for the visit's history, counted nowhere
    assert [p.pk for p in popular_products(2)] == before


def test_a_token_without_the_permission_is_not_trusted_either(products):
    response = _post(_token_client(permitted=False), [{"type": "purchase", "product": products[0].pk}])
    assert response.status_code == 201
    assert response.json() == {"session": SESSION, "count": 0, "ignored": [{"index": 0, **UNTRUSTED_PURCHASE}]}
    assert Event.objects.count() == 0 and _popularity() == {}


def test_a_browser_cannot_send_purchases_for_its_own_visit(products):
    browser = Client()
    for _ in range(2):  # the second request returns the shop's cookie: the visit starts
        page = browser.get(f"/products/{products[0].pk}/")
    visit_id = json.loads(re.search(r'visitId: ("[^"]+")', page.content.decode()).group(1))  # escapejs'd
    response = browser.post(URL, data=json.dumps({"session": visit_id, "events": [
        {"type": "purchase", "product": products[1].pk}]}), content_type="text/plain")
    assert response.status_code == 201
    assert response.json()["ignored"] == [{"index": 0, **UNTRUSTED_PURCHASE}]
    assert not Event.objects.filter(event_type="purchase").exists()


def test_a_permitted_integration_records_purchases_that_count(products):
    p1 = products[0]
    response = _post(_token_client(permitted=True), [{"type": "purchase", "product": p1.pk},
                                                     {"type": "view", "product": p1.pk}])
    assert response.status_code == 201
    assert response.json() == {"session": SESSION, "count": 2, "ignored": []}
    assert list(Event.objects.order_by("id").values_list("event_type", "trusted")) == [("purchase", True),
                                                                                       ("view", True)]
    assert _popularity() == {(p1.pk, 1): (1, 1), (p1.pk, 7): (1, 1), (p1.pk, 30): (1, 1)}


def test_a_storefront_order_counts_as_a_purchase(products):
    p1 = products[0]
    shopper = Client()
    for _ in range(2):
        assert shopper.get(f"/products/{p1.pk}/").status_code == 200
    assert shopper.post(f"/cart/add/{p1.pk}/", {"quantity": 1}).status_code == 302
    response = shopper.post("/checkout/", {"name": "Ada Shopper", "email": "ada@example.com"})
    assert response.status_code == 302, response.content
    purchase = Event.objects.get(event_type="purchase")
    assert (purchase.product_id, purchase.trusted) == (p1.pk, True)
    # the product page's view (recorded by the shop) and the order's purchase both count
    views = Event.objects.filter(event_type="view", product=p1).count()
    assert views >= 1
    assert _popularity()[(p1.pk, 30)] == (views, 1)
    assert popular_products(1) == [p1]


def test_views_sent_by_anonymous_clients_do_not_outweigh_the_shops_own(products):
    p1, p2 = products[:2]
    shopper = Client()
    for _ in range(2):
        shopper.get(f"/products/{p1.pk}/")
    _post(APIClient(), [{"type": "view", "product": p2.pk}] * 500)
    assert Event.objects.filter(product=p2).count() == 500  # kept: they are that visit's history
    counted = _popularity()
    assert counted[(p1.pk, 30)][0] >= 1 and (p2.pk, 30) not in counted
    assert popular_products(1) == [p1]
