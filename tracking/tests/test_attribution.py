"""Recommendation attribution: an impression or click counts for a model version only when it
refers to an item the shop served to that visit (served-item tokens), once per (visit, product)."""
import json
import re
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recommendations.selectors import online_performance
from tracking import services
from tracking.attribution import served_token, served_token_valid
from tracking.models import Event

URL = "/api/events/"
SESSION = "7c6b5a49-3827-4165-9a8b-7c6d5e4f3a2b"
OTHER = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"
VERSION = "gru4rec-7"
UNVERIFIED = {"reason": "unverified_attribution", "stored": True}


def _post(client, events, session=SESSION):
    return client.post(URL, data=json.dumps({"session": session, "events": events}), content_type="application/json")


def _served(kind, product, session=SESSION, version=VERSION, source="recommended", position=0):
    return {"type": kind, "product": product.pk, "source": source, "position": position, "model_version": version,
            "token": served_token(session, version, product.pk, source)}


def test_forged_attribution_counts_nothing_and_is_reported(products):
    p1, p2 = products[:2]
    forged = [
        {"type": "impression", "product": p1.pk, "source": "recommended", "model_version": "never-served"},
        {"type": "click", "product": p1.pk, "source": "recommended", "model_version": "never-served"},
        {"type": "click", "product": p1.pk, "source": "similar", "model_version": "never-served", "token": "0" * 32},
        # genuine tokens, of another visit, of another product, of another version, of another source
        _served("click", p1, session=OTHER, version="never-served"),
        {**_served("click", p2, version="never-served"), "product": p1.pk},
        {**_served("click", p1, version=VERSION), "model_version": "never-served"},
        {**_served("click", p1, version="never-served", source="similar"), "source": "recommended"},
    ]
    response = _post(APIClient(), forged)
    assert response.status_code == 201, response.content
    assert response.json() == {"session": SESSION, "count": 7,
                               "ignored": [{"index": i, **UNVERIFIED} for i in range(7)]}
    # stored for the visit's history, without the claimed source and version
    assert set(Event.objects.values_list("source", "model_version", "trusted")) == {("", "", False)}
    assert online_performance(["never-served", VERSION]) == {
        "never-served": {"impressions": 0, "clicks": 0, "ctr": None},
        VERSION: {"impressions": 0, "clicks": 0, "ctr": None},
    }


def test_a_served_item_counts_once_however_often_its_events_come(products):
    p1, p2 = products[:2]
    batch = [_served("impression", p1), _served("impression", p2, position=1), _served("click", p1)]
    for _ in range(3):
        response = _post(APIClient(), batch)
        assert response.status_code == 201 and response.json() == {"session": SESSION, "count": 3, "ignored": []}
    _post(APIClient(), [_served("click", p1)] * 20)
    assert Event.objects.filter(event_type="click", model_version=VERSION, trusted=True).count() == 23
    assert online_performance([VERSION]) == {VERSION: {"impressions": 2, "clicks": 1, "ctr": 0.5}}
    # another visit that was served the same item counts on its own
    _post(APIClient(), [_served("impression", p1, session=OTHER), _served("click", p1, session=OTHER)], session=OTHER)
    assert online_performance([VERSION]) == {VERSION: {"impressions": 3, "clicks": 2, "ctr": 2 / 3}}


def test_staff_visits_do_not_count(products):
    staff = User.objects.create_user("ops", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    _post(client, [_served("impression", products[0]), _served("click", products[0])])
    assert Event.objects.filter(is_staff=True, trusted=True).count() == 2
    assert online_performance([VERSION]) == {VERSION: {"impressions": 0, "clicks": 0, "ctr": None}}


def test_a_permitted_integration_attributes_without_tokens(products):
    user = User.objects.create_user("integration")
    user.user_permissions.add(Permission.objects.get(codename="record_trusted_events"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    events = [{"type": kind, "product": products[0].pk, "source": "similar", "model_version": VERSION}
              for kind in ("impression", "click")]
    assert _post(client, events).json() == {"session": SESSION, "count": 2, "ignored": []}
    assert online_performance([VERSION]) == {VERSION: {"impressions": 1, "clicks": 1, "ctr": 1.0}}


def test_tokens_survive_a_key_rotation_and_no_other_key_makes_them(settings):
    token = served_token(SESSION, VERSION, 3, "recommended")
    assert served_token_valid(token, uuid.UUID(SESSION), VERSION, 3, "recommended")
    with override_settings(SECRET_KEY="another-" + "k" * 50, SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]):
        assert served_token_valid(token, SESSION, VERSION, 3, "recommended")
        assert served_token(SESSION, VERSION, 3, "recommended") != token
    with override_settings(SECRET_KEY="another-" + "k" * 50, SECRET_KEY_FALLBACKS=[]):
        assert not served_token_valid(token, SESSION, VERSION, 3, "recommended")
    assert served_token("", VERSION, 3, "recommended") == ""


_CARD = re.compile(r'<article class="product-card" data-product="(\d+)" data-source="(\w+)" data-position="(\d+)" '
                   r'data-model-version="([^"]*)" data-token="([0-9a-f]+)">')


def test_the_product_page_serves_tokens_of_its_own_visit(products):
    browser = Client()
    for _ in range(2):  # the second request returns the shop's cookie: the visit starts
        page = browser.get(f"/products/{products[0].pk}/")
    html = page.content.decode()
    visit_id = json.loads(re.search(r'visitId: ("[^"]+")', html).group(1))  # escapejs'd
    cards = _CARD.findall(html)
    assert {source for _, source, *_ in cards} == {"recommended", "similar"}
    events = []
    for product, source, position, version, token in cards:
        assert served_token_valid(token, visit_id, version, int(product), source)
        events.append({"type": "impression", "product": int(product), "source": source, "position": int(position),
                       "model_version": version, "token": token})
    # tracking.js sends them back for the page's visit: all kept, and trusted
    response = browser.post(URL, data=json.dumps({"session": visit_id, "events": events}), content_type="text/plain")
    assert response.status_code == 201
    assert response.json() == {"session": visit_id, "count": len(events), "ignored": []}
    stored = list(Event.objects.filter(event_type="impression").order_by("id").values_list("source", "trusted"))
    assert stored == [(source, True) for _, source, *_ in cards]
    # the same tokens are worth nothing for another visit
    response = _post(APIClient(), events)
    assert response.json()["ignored"] == [{"index": i, **UNVERIFIED} for i in range(len(events))]


def test_grid_cards_need_no_token(products):
    response = _post(APIClient(), [{"type": "impression", "product": products[0].pk, "source": "grid", "position": 3}])
    assert response.json() == {"session": SESSION, "count": 1, "ignored": []}
    assert list(Event.objects.values_list("source", "position", "trusted")) == [("grid", 3, False)]


@pytest.mark.parametrize("token", ["", "A" * 32, "0" * 65, 7, None])
def test_token_field_is_validated_like_the_others(products, token):
    response = _post(APIClient(), [{"type": "click", "product": products[0].pk, "token": token}])
    if token == "":
        assert response.status_code == 201
    else:
        assert response.status_code == 400 and list(response.json()["events"]["0"]) == ["token"]
