"""Idempotent event batches: a batch sent again with its key (the Idempotency-Key header or the
body's batch_id) is stored once and answered as the first time; the key with another body is a 422."""
import json
import uuid
from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.live import parallel
from tracking import services, tasks
from tracking.api import serializers as event_serializers
from tracking.models import Event, EventBatchKey, Visit

URL = "/api/events/"
SESSION = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
KEY = "0d9f3a52-8c1e-4b7a-9e6f-2a1b3c4d5e6f"


def _post(client, body, key=KEY, **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(URL, data=body if isinstance(body, str) else json.dumps(body),
                       content_type="application/json", **headers)


def _batch(products, session=SESSION, **extra):
    return {"session": session, "events": [{"type": "view", "product": p.pk} for p in products[:3]]
            + [{"type": "purchase", "product": products[0].pk}], **extra}


def test_a_repeat_with_the_key_answers_as_the_first_and_stores_nothing(products):
    client = APIClient()
    first = _post(client, _batch(products))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    expected = {"session": SESSION, "count": 3, "ignored": [
        {"index": 3, "reason": "untrusted_purchase", "stored": False}]}
    assert first.json() == expected
    # the same batch in another byte form (spacing, key order) is the same batch
    body = json.dumps({"events": _batch(products)["events"], "session": SESSION}, indent=2)
    for again in (_post(client, _batch(products)), _post(APIClient(), body)):
        assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (201, expected, "true")
    assert Event.objects.count() == 3
    assert list(EventBatchKey.objects.values_list("scope", "key")) == [(f"visit:{SESSION}", KEY)]


def test_the_body_batch_id_works_like_the_header(products):
    client = APIClient()
    body = _batch(products, batch_id=KEY)
    answers = [_post(client, body, key=None) for _ in range(3)]
    assert [a.status_code for a in answers] == [201] * 3
    assert answers[0].json() == answers[1].json() == answers[2].json()
    # the header may name it too (here as an RFC 8941 string)
    assert _post(client, body, key=f'"{KEY}"')["Idempotent-Replayed"] == "true"
    assert Event.objects.count() == 3
    # when both are sent and differ, the header is the key: a new key, a new batch
    different = _post(client, body, key="another-key")
    assert (different.status_code, "Idempotent-Replayed" in different) == (201, False)
    assert Event.objects.count() == 6


def test_the_key_with_another_batch_is_a_422(products):
    client = APIClient()
    assert _post(client, _batch(products)).status_code == 201
    other = _post(client, _batch(products[1:]))
    assert other.status_code == 422
    assert other.json() == {"detail": "This idempotency key was already used for a different batch; "
                                      "use a new key per batch."}
    assert Event.objects.count() == 3


def test_keys_belong_to_their_visit_or_token_user(products):
    client = APIClient()
    other_visit = str(uuid.uuid4())
    assert _post(client, _batch(products)).status_code == 201
    assert _post(client, _batch(products, session=other_visit)).json()["count"] == 3
    user = User.objects.create_user("integration")
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert _post(token_client, _batch(products)).json()["count"] == 3
    # a token client's key covers all its visits: the same key for another visit is another body
    assert _post(token_client, _batch(products, session=other_visit)).status_code == 422
    assert Event.objects.count() == 9
    assert set(EventBatchKey.objects.values_list("scope", flat=True)) == {
        f"visit:{SESSION}", f"visit:{other_visit}", f"user:{user.pk}"}


def test_an_expired_key_is_a_new_batch_and_the_task_deletes_old_keys(products, settings):
    client = APIClient()
    assert _post(client, _batch(products)).status_code == 201
    EventBatchKey.objects.update(created=timezone.now() - timedelta(hours=settings.EVENTS_IDEMPOTENCY_HOURS, seconds=1))
    again = _post(client, _batch(products[1:]))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Event.objects.count() == 6
    assert _post(client, _batch(products[1:]))["Idempotent-Replayed"] == "true"
    stale = EventBatchKey.objects.create(scope="visit:x", key="old", fingerprint="f", result={},
                                         created=timezone.now() - timedelta(days=2))
    assert tasks.event_batch_keys_expire.delay().get() == 1
    assert not EventBatchKey.objects.filter(pk=stale.pk).exists() and EventBatchKey.objects.count() == 1


def test_a_retry_of_an_accepted_batch_is_answered_even_if_it_would_not_validate_now(products, monkeypatch):
    client = APIClient()
    soon = (timezone.now() + timedelta(minutes=30)).isoformat()
    body = {"session": SESSION, "events": [{"type": "view", "product": products[0].pk, "timestamp": soon}]}
    first = _post(client, body)
    assert first.status_code == 201
    monkeypatch.setattr(event_serializers, "MAX_CLOCK_SKEW", timedelta(0))  # the batch's time is now too far ahead
    assert _post(client, body, key="a-new-key").status_code == 400
    again = _post(client, body)
    assert (again.status_code, again.json()) == (201, first.json())
    assert Event.objects.count() == 1


@pytest.mark.parametrize("key", ["", "has space", 'quo"te', "x" * 101, "caf\u00e9"])
def test_malformed_keys_are_a_400(products, key):
    response = APIClient().post(URL, data=json.dumps(_batch(products)), content_type="application/json",
                                HTTP_IDEMPOTENCY_KEY=key.encode("utf-8").decode("latin-1"))
    assert response.status_code == 400
    assert list(response.json()) == ["Idempotency-Key"]
    body_key = APIClient().post(URL, data=json.dumps(_batch(products, batch_id=key)), content_type="application/json")
    assert body_key.status_code == 400 and list(body_key.json()) == ["batch_id"]
    assert Event.objects.count() == 0


def test_the_schema_documents_the_key(db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/events/"]["post"]
    header = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in header] == ["Idempotency-Key"]
    assert "24 hours" in header[0]["description"]
    assert "422" in operation["responses"]
    body = schema["components"]["schemas"]["EventBatch"]["properties"]
    assert "batch_id" in body


@pytest.mark.django_db(transaction=True)
def test_parallel_repeats_store_the_batch_once(live_shop, products):
    """Ten copies of one batch at once (a client retrying while the first is still in flight), one
    per gunicorn worker where they land: one batch stored, ten equal answers."""
    body = json.dumps(_batch(products))

    def send(i):
        r = requests.post(live_shop.url + URL, data=body, timeout=30,
                          headers={"Content-Type": "application/json", "Idempotency-Key": KEY})
        return r.status_code, r.json()

    answers = parallel(send, 10)
    assert all(not isinstance(a, Exception) for a in answers), answers
    assert {json.dumps(a, sort_keys=True) for a in answers} == {json.dumps((201, {
        "session": SESSION, "count": 3, "ignored": [
            {"index": 3, "reason": "untrusted_purchase", "stored": False}]}), sort_keys=True)}
    assert Event.objects.count() == 3 and Visit.objects.count() == 1
    assert EventBatchKey.objects.count() == 1

    # ten different batches under one key: one is stored, the nine others are refused
    other_key = str(uuid.uuid4())

    def send_other(i):
        batch = {"session": SESSION, "events": [{"type": "view", "product": products[i % 5].pk, "position": i}]}
        return requests.post(live_shop.url + URL, json=batch, headers={"Idempotency-Key": other_key},
                             timeout=30).status_code

    assert sorted(parallel(send_other, 10)) == [201] + [422] * 9
    assert Event.objects.count() == 4
