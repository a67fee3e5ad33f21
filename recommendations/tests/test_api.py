"""The recommendations API: shapes, validation, staff-only registry endpoints."""
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from recommendations import serving
from recommendations.models import TrainingRun


@pytest.fixture
def client():
    return APIClient()


def test_post_answers_exactly_k_with_products(client, gru_version, catalogue, activate):
    activate(gru_version)
    bundle = serving.model_reload()
    items = [int(bundle.index_pk[i]) for i in (3, 4)]
    r = client.post("/api/recommendations/", {"items": items, "k": 7, "explain": True}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["strategy"] == "gru4rec" and body["model_version"] == "v-gru"
    assert len(body["items"]) == 7
    first = body["items"][0]
    assert set(first) == {"product", "score", "token"} and first["token"] is None  # served to no visit
    assert {"id", "name", "price", "url"} <= set(first["product"])
    assert not {i["product"]["id"] for i in body["items"]} & set(items)
    assert body["explanation"]["session_items_used"] == items


def test_get_by_session_without_history_is_popular(client, catalogue):
    r = client.get("/api/recommendations/", {"session": str(uuid.uuid4()), "k": 3})
    assert r.status_code == 200
    assert r.json()["strategy"] == "popular" and len(r.json()["items"]) == 3
    assert "explanation" not in r.json()


@pytest.mark.parametrize(
    "query, field",
    [({"session": "not-a-uuid"}, "session"), ({"k": 0}, "k"), ({"k": 101}, "k"), ({"k": "x"}, "k")],
)
def test_get_validation(client, catalogue, query, field):
    r = client.get("/api/recommendations/", query)
    assert r.status_code == 400 and field in r.json()


def test_post_validation(client, catalogue):
    r = client.post("/api/recommendations/", {"items": [catalogue[0].pk, 999999, 999998], "k": 200}, format="json")
    assert r.status_code == 400
    assert set(r.json()) == {"items", "k"}
    assert r.json()["items"] == ["unknown product id(s): 999999, 999998"]


def test_similar_endpoint(client, gru_version, catalogue, activate):
    activate(gru_version)
    bundle = serving.model_reload()
    pk = int(bundle.index_pk[0])
    r = client.get(f"/api/products/{pk}/similar/", {"k": 4})
    assert r.status_code == 200 and r.json()["strategy"] == "embedding" and len(r.json()["items"]) == 4
    assert client.get("/api/products/99999999/similar/").status_code == 404


def _staff(perms=()):
    user = User.objects.create_user(f"u{uuid.uuid4().hex[:8]}", password="x", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="recommendations"))
    return User.objects.get(pk=user.pk)


def test_registry_endpoints_are_staff_only(client, gru_version, sknn_version, activate, django_capture_on_commit_callbacks):
    activate(gru_version)
    for method, url in [("get", "/api/models/"), ("post", f"/api/models/{sknn_version.pk}/activate/"),
                        ("post", "/api/models/train/"), ("get", "/api/training-runs/1/")]:
        assert getattr(client, method)(url).status_code == 403
    client.force_authenticate(User.objects.create_user("shopper", password="x"))
    assert client.get("/api/models/").status_code == 403
    # staff without the permission: may read, may not act
    client.force_authenticate(_staff())
    r = client.get("/api/models/")
    assert r.status_code == 200 and {m["version"] for m in r.json()} == {"v-gru", "v-sknn"}
    assert client.post(f"/api/models/{sknn_version.pk}/activate/").status_code == 403
    assert client.post("/api/models/train/", {}, format="json").status_code == 403
    # with the permissions
    client.force_authenticate(_staff(["activate_modelversion", "train_model"]))
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/models/{sknn_version.pk}/activate/")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert serving.active_version() == "v-sknn"
    r = client.post("/api/models/train/", {"params": "layers=bogus"}, format="json")
    assert r.status_code == 400 and "params" in r.json()
    r = client.post("/api/models/train/", {"params": "layers=8,n_epochs=1", "activate": False}, format="json")
    assert r.status_code == 202
    run = TrainingRun.objects.get(pk=r.json()["id"])
    assert run.params == "layers=8,n_epochs=1" and run.activate is False and run.status == "queued"
    r = client.get(f"/api/training-runs/{run.pk}/")
    assert r.status_code == 200 and r.json()["status"] == "queued"


@pytest.mark.django_db(transaction=True)  # the check runs in a worker thread with its own connection
def test_health_reports_the_loaded_model(client, gru_version):
    from recommendations import services

    services.model_activate(gru_version)
    r = client.get("/health/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200, r.content
    assert serving.model_version_loaded() == "v-gru"


def test_get_by_visit_is_one_query_once_warm(client, gru_version, catalogue, activate, django_assert_num_queries,
                                             settings):
    from tracking.services import events_record_for_api

    settings.MODEL_RELOAD_INTERVAL_SECONDS = 3600  # the reload check (a query per interval) is not due
    activate(gru_version)
    bundle = serving.model_reload()
    seen = [int(bundle.index_pk[i]) for i in (2, 3)]
    visit = uuid.uuid4()
    events_record_for_api(visit, [{"type": "view", "product": pk} for pk in seen])
    first = client.get("/api/recommendations/", {"session": str(visit), "k": 4})
    assert first.status_code == 200 and first.json()["strategy"] == "gru4rec"
    with django_assert_num_queries(1):  # the visit's history; products and their JSON are cached
        again = client.get("/api/recommendations/", {"session": str(visit), "k": 4})
    assert again.json() == first.json()
    client.post("/api/recommendations/", {"items": seen, "k": 4}, format="json")
    with django_assert_num_queries(0):  # POST: the items are validated against the product cache
        r = client.post("/api/recommendations/", {"items": seen, "k": 4}, format="json")
    # the same products; only the GET was served to a visit (served-item tokens)
    assert [{**i, "token": None} for i in r.json()["items"]] == [{**i, "token": None} for i in first.json()["items"]]
