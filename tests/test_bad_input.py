"""Bad input at the edges of the site: oversized bodies, garbage JSON, unknown URLs under /api/."""
import json

import pytest
from django.test import Client


@pytest.fixture
def api():
    return Client(raise_request_exception=False)


@pytest.mark.django_db
def test_oversized_body_is_413_not_a_crash(api, settings):
    body = json.dumps({"session": "00000000-0000-4000-8000-000000000000",
                       "events": [{"type": "view", "product": 1}] * 200_000})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.post("/api/events/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large."}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/events/", "/api/recommendations/"])
@pytest.mark.parametrize("payload", ["{not json", "[]", "null", "\x00\xff", '{"events": "x"}'])
def test_garbage_bodies_are_400(api, path, payload):
    response = api.post(path, data=payload, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_unknown_api_url_answers_json_404(api):
    response = api.get("/api/products/not-a-number/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    page = api.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_oversized_batch_is_400_with_a_message(api):
    events = [{"type": "view", "product": 1}] * 501
    response = api.post("/api/events/", data={"session": "00000000-0000-4000-8000-000000000000", "events": events},
                        content_type="application/json")
    assert response.status_code == 400
    assert "events" in response.json()
