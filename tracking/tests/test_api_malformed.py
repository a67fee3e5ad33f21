"""Every malformed value of every field of POST /api/events/ is a 400 with per-item field errors
and stores nothing (regression: JSON objects/arrays as "type", NUL characters and lone surrogates
in strings used to reach the database or a hash lookup and answered 500)."""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rest_framework.test import APIClient

from tracking.models import Event, Visit

URL = "/api/events/"
SESSION = "0b7c1f3e-2d4a-4c59-9a8e-3f1b2c4d5e6f"

# Wrong JSON types and out-of-range or unstorable values for every field.
WRONG_TYPES = [{}, {"a": 1}, [], ["view"], True, False, 1.5, 1e308, None, 2**63, -(2**63) - 1, 10**30]
BAD_STRINGS = ["", "x" * 100_000, "view\u0000", "\u0000", "\ud800", "vi\udfffew"]
BAD_VALUES = {
    "type": WRONG_TYPES + BAD_STRINGS + [1, 0],
    "product": WRONG_TYPES + BAD_STRINGS + ["1", 0, -1, 9_999_999],
    "timestamp": [v for v in WRONG_TYPES if v is not None] + BAD_STRINGS + [
        None, 0, 946684800, "2000-01-01T00:00:00Z\u0000", "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00", "2999-01-01T00:00:00Z", "1989-12-31T23:59:59Z",
    ],
    "source": WRONG_TYPES + BAD_STRINGS[1:] + [0, "Grid", "s" * 33],
    "position": [v for v in WRONG_TYPES if v is not None] + BAD_STRINGS + ["0", -1, 2**31],
    "model_version": WRONG_TYPES + BAD_STRINGS[1:] + [0, "m" * 65, "m\u0000"],
}
CASES = [(name, value) for name, values in BAD_VALUES.items() for value in values]


@pytest.fixture
def client():
    return APIClient()


def _good(product_pk):
    return {"type": "view", "product": product_pk, "timestamp": "2000-01-01T00:00:00Z", "source": "0",
            "position": 0, "model_version": ""}


def _post(client, payload):
    return client.post(URL, data=json.dumps(payload), content_type="application/json")


@pytest.mark.parametrize("name,value", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_malformed_field_is_400_with_item_error(client, products, name, value):
    good = _good(products[0].pk)
    response = _post(client, {"session": SESSION, "events": [good, {**good, name: value}]})
    assert response.status_code == 400, (name, value, response.content)
    assert list(response.json()["events"]) == ["1"]
    assert name in response.json()["events"]["1"]
    assert Event.objects.count() == 0
    assert Visit.objects.count() == 0


def test_reported_body_is_400(client, products):
    response = _post(client, {"session": SESSION, "events": [
        {"type": {}, "product": 1, "timestamp": "2000-01-01T00:00:00Z", "source": "0", "position": 0,
         "model_version": ""}]})
    assert response.status_code == 400
    assert "type" in response.json()["events"]["0"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize("value", WRONG_TYPES + BAD_STRINGS + [1, "not-a-uuid", "0b7c1f3e-2d4a-4c59-9a8e-3f1b2c4d5e6"])
def test_malformed_session_is_400(client, products, value):
    response = _post(client, {"session": value, "events": [_good(products[0].pk)]})
    assert response.status_code == 400, (value, response.content)
    assert "session" in response.json()
    assert Event.objects.count() == 0
    assert Visit.objects.count() == 0


@pytest.mark.parametrize("events", [{}, "view", None, 1, [], [None], [[]], [1], [{"type": "view", "product": 1}] * 501])
def test_malformed_events_is_400(client, products, events):
    response = _post(client, {"session": SESSION, "events": events})
    assert response.status_code == 400, (events, response.content)
    assert Event.objects.count() == 0


@pytest.mark.parametrize("key", ["postion", "\ud800", "\u0000", "k" * 10_000])
def test_unknown_key_is_400(client, products, key):
    response = _post(client, {"session": SESSION, "events": [{**_good(products[0].pk), key: 1}]})
    assert response.status_code == 400, response.content
    assert len(response.json()["events"]["0"]) == 1
    assert Event.objects.count() == 0


def test_body_not_an_object_is_400(client, products):
    for body in ([], "x", 1, None):
        assert _post(client, body).status_code == 400
    assert client.post(URL, data='{"session": "\\ud800', content_type="application/json").status_code == 400


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(name=st.sampled_from(sorted(BAD_VALUES)), value=_json)
def test_any_json_value_in_any_field_never_500(client, products, name, value):
    good = _good(products[0].pk)
    response = _post(client, {"session": SESSION, "events": [{**good, name: value}]})
    assert response.status_code in (201, 400), (name, value, response.content)
    if response.status_code == 400:
        assert name in response.json()["events"]["0"]
        assert Event.objects.count() == 0
    Event.objects.all().delete()
    Visit.objects.all().delete()
