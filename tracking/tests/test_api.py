import json
import uuid
from datetime import datetime, timezone as dt_timezone

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tracking import services
from tracking.http import visitor_from_request
from tracking.models import Event, Visit

URL = "/api/events/"
SESSION = "3f2b8c1e-9d4a-4e5b-8c7d-1a2b3c4d5e6f"


@pytest.fixture
def client():
    return APIClient()


def _post(client, payload, content_type="application/json"):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post(URL, data=body, content_type=content_type)


def _event(product, **extra):
    return {"type": "view", "product": product.pk, **extra}


def test_good_batch_is_stored(client, products):
    p1, p2 = products[:2]
    response = _post(client, {"session": SESSION, "events": [
        _event(p1, source="grid", position=3, timestamp="2025-01-01T10:00:00Z"),
        {"type": "click", "product": p2.pk, "source": "recommended", "position": 0, "model_version": "gru4rec-1",
         "timestamp": "2025-01-01T10:00:05+00:00"},
        {"type": "impression", "product": p2.pk},
    ]})
    assert response.status_code == 201, response.content
    # the click names a model version without the token of a list served to this visit: stored
    # without it, and said so
    assert response.json() == {"session": SESSION, "count": 3, "ignored": [
        {"index": 1, "reason": "unverified_attribution", "stored": True}]}
    visit = Visit.objects.get(uuid=SESSION)
    assert visit.source == "api"
    rows = list(Event.objects.order_by("id").values_list("event_type", "product_id", "source", "position",
                                                          "model_version", "history_length", "timestamp", "trusted"))
    assert rows[:2] == [("view", p1.pk, "grid", 3, "", 0, datetime(2025, 1, 1, 10, tzinfo=dt_timezone.utc), False),
                        ("click", p2.pk, "", 0, "", 1, datetime(2025, 1, 1, 10, 0, 5, tzinfo=dt_timezone.utc), False)]
    assert rows[2][:6] == ("impression", p2.pk, "", None, "", 2) and rows[2][7] is False


def test_beacon_text_plain_is_accepted(client, products):
    response = _post(client, {"session": SESSION, "events": [_event(products[0])]}, "text/plain;charset=UTF-8")
    assert response.status_code == 201
    assert Event.objects.count() == 1


def test_batch_of_500_is_accepted(client, products):
    response = _post(client, {"session": SESSION, "events": [_event(products[0])] * 500})
    assert response.status_code == 201
    assert Event.objects.count() == 500


BAD = {
    "unknown type": ({"session": SESSION, "events": [{"type": "hover", "product": 1}]}, "type"),
    "negative position": ({"session": SESSION, "events": [{"type": "view", "product": 1, "position": -1}]}, "position"),
    "position as string": ({"session": SESSION, "events": [{"type": "view", "product": 1, "position": "2"}]}, "position"),
    "product as string": ({"session": SESSION, "events": [{"type": "view", "product": "1"}]}, "product"),
    "product as bool": ({"session": SESSION, "events": [{"type": "view", "product": True}]}, "product"),
    "product as float": ({"session": SESSION, "events": [{"type": "view", "product": 1.5}]}, "product"),
    "missing product": ({"session": SESSION, "events": [{"type": "view"}]}, "product"),
    "bad timestamp": ({"session": SESSION, "events": [{"type": "view", "product": 1, "timestamp": "yesterday"}]}, "timestamp"),
    "future timestamp": ({"session": SESSION, "events": [{"type": "view", "product": 1, "timestamp": "2999-01-01T00:00:00Z"}]}, "timestamp"),
    "source as number": ({"session": SESSION, "events": [{"type": "view", "product": 1, "source": 5}]}, "source"),
    "source with markup": ({"session": SESSION, "events": [{"type": "view", "product": 1, "source": "<b>"}]}, "source"),
    "model version too long": ({"session": SESSION, "events": [{"type": "view", "product": 1, "model_version": "m" * 65}]}, "model_version"),
    "unknown field": ({"session": SESSION, "events": [{"type": "view", "product": 1, "postion": 1}]}, "postion"),
    "event not an object": ({"session": SESSION, "events": ["view"]}, None),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_item_is_400_and_nothing_stored(client, products, name):
    payload, field = BAD[name]
    # a valid event before the bad one: the whole batch is refused
    payload = {"session": payload["session"], "events": [_event(products[0])] + payload["events"]}
    payload["events"][1:] = [
        dict(e, product=products[1].pk) if isinstance(e, dict) and type(e.get("product")) is int else e
        for e in payload["events"][1:]
    ]
    response = _post(client, payload)
    assert response.status_code == 400, response.content
    errors = response.json()["events"]
    assert list(errors) == ["1"]  # the valid first item has no errors
    if field:
        assert list(errors["1"]) == [field]
    assert Event.objects.count() == 0
    assert Visit.objects.count() == 0


def test_unknown_product_error_names_the_item(client, products):
    payload = {"session": SESSION, "events": [_event(products[0]), _event(products[1]),
                                              {"type": "view", "product": 999999}]}
    response = _post(client, payload)
    assert response.status_code == 400
    assert response.json() == {"events": {"2": {"product": ["Unknown product 999999."]}}}
    assert Event.objects.count() == 0


@pytest.mark.parametrize("payload", [
    "{not json",
    json.dumps([{"type": "view", "product": 1}]),
    json.dumps({"session": "not-a-uuid", "events": [{"type": "view", "product": 1}]}),
    json.dumps({"session": SESSION, "events": []}),
    json.dumps({"session": SESSION}),
    json.dumps({"events": [{"type": "view", "product": 1}]}),
    json.dumps({"session": SESSION, "events": {"type": "view", "product": 1}}),
])
def test_bad_batch_is_400(client, products, payload):
    response = _post(client, payload)
    assert response.status_code == 400
    assert Event.objects.count() == 0 and Visit.objects.count() == 0


def test_too_many_events_is_400(client, products):
    response = _post(client, {"session": SESSION, "events": [_event(products[0])] * 501})
    assert response.status_code == 400
    assert "events" in response.json()
    assert Event.objects.count() == 0


def test_form_posts_are_refused(client, products):
    response = client.post(URL, {"session": SESSION})
    assert response.status_code == 415
    assert Event.objects.count() == 0


def test_token_client_staff_flag(client, products):
    staff = User.objects.create_user("ops", is_staff=True)
    token = Token.objects.create(user=staff)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = _post(client, {"session": SESSION, "events": [_event(products[0])]})
    assert response.status_code == 201
    event = Event.objects.get()
    assert (event.is_staff, event.user_id) == (True, staff.pk)


def test_logged_in_browser_works_without_csrf_header_and_uses_its_visit(products):
    # sendBeacon cannot send X-CSRFToken: the view does not use session auth, so it needs none.
    browser = APIClient(enforce_csrf_checks=True)
    user = User.objects.create_user("ann", password="pw-12345-xyz")
    browser.force_login(user)
    session = browser.session
    visit = Visit.objects.create(user=user)
    from django.utils import timezone

    session[services.VISIT_SESSION_KEY] = {"pk": visit.pk, "uuid": str(visit.uuid),
                                           "last_seen": timezone.now().isoformat()}
    session.save()
    response = browser.post(URL, data=json.dumps({"session": str(visit.uuid), "events": [_event(products[0])]}),
                            content_type="text/plain")
    assert response.status_code == 201
    event = Event.objects.get()
    assert (event.visit_id, event.user_id, event.is_staff) == (visit.pk, user.pk, False)


def test_history_endpoint(client, products):
    p1, p2, p3 = products[:3]
    _post(client, {"session": SESSION, "events": [
        _event(p2, timestamp="2025-01-01T10:00:02Z"),
        _event(p1, timestamp="2025-01-01T10:00:01Z"),
        {"type": "impression", "product": p3.pk, "timestamp": "2025-01-01T10:00:03Z"},
        {"type": "click", "product": p3.pk, "timestamp": "2025-01-01T10:00:04Z"},
    ]})
    response = client.get(f"/api/sessions/{SESSION}/history/")
    assert response.status_code == 200
    assert response.json() == {"session": SESSION, "items": [p1.pk, p2.pk, p3.pk]}
    assert client.get(f"/api/sessions/{uuid.uuid4()}/history/").status_code == 404
    assert client.get("/api/sessions/123/history/").status_code == 404


def test_schema_documents_the_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"] if response["content-type"].startswith("application/json") else None
    if paths is None:
        import yaml

        paths = yaml.safe_load(response.content)["paths"]
    assert "post" in paths["/api/events/"]
    assert "201" in paths["/api/events/"]["post"]["responses"]
    assert "/api/sessions/{session}/history/" in paths


def test_context_processor_gives_the_visit(make_request):
    from tracking.context_processors import visit

    request = make_request()
    # Read-only (it runs for every template, Swagger UI's and the admin's too): no visit, no row.
    assert visit(request)["tracking_visit_id"] == "" and Visit.objects.count() == 0
    current = services.visit_for_visitor(visitor_from_request(request))
    context = visit(request)
    assert context["tracking_events_url"] == "/api/events/"
    assert context["tracking_visit_id"] == str(current.uuid) == str(Visit.objects.get().uuid)


def test_batches_continue_history_and_keep_the_visit(client, products):
    visit = Visit.objects.create(uuid=SESSION, source="api", is_staff=True)
    before = visit.last_seen
    for n in range(2):
        response = _post(client, {"session": SESSION, "events": [
            _event(products[0]), {"type": "impression", "product": products[1].pk}, _event(products[2])]})
        assert response.status_code == 201 and response.json() == {"session": SESSION, "count": 3, "ignored": []}
    assert Visit.objects.count() == 1
    visit.refresh_from_db()
    assert visit.last_seen > before and visit.source == "api"
    rows = list(Event.objects.order_by("id").values_list("event_type", "history_length", "is_staff", "visit_id"))
    assert rows == [("view", 0, True, visit.pk), ("impression", 1, True, visit.pk), ("view", 1, True, visit.pk),
                    ("view", 2, True, visit.pk), ("impression", 3, True, visit.pk), ("view", 3, True, visit.pk)]
