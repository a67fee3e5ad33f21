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
    assert set(first) == {"product", "score", "token", "source", "model_version"} and first["token"] is None  # served to no visit
    assert (first["source"], first["model_version"], body["experiment"]) == ("recommended", "v-gru", None)
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
    from recommendations import registry

    registry.model_activate(gru_version)
    serving.warm_up()  # what shop/wsgi.py does when a web worker starts: the check itself only reports
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


def test_a_version_activated_by_nobody_matches_the_schema(client, gru_version, activate):
    """activated_by is null for a version activated from the CLI or a task; the schema said a string."""
    activate(gru_version)
    client.force_authenticate(_staff())
    assert [m["activated_by"] for m in client.get("/api/models/").json()] == [None]
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]["ModelVersion"]
    assert schema["properties"]["activated_by"] == {"type": "string", "readOnly": True, "nullable": True}


@pytest.mark.parametrize("query, field", [
    ("k=%D9%A3", "k"),  # Arabic-Indic 3: int() reads it as 3
    ("k=%C2%B3", "k"),  # superscript 3: isdigit() says yes, int() says no
    ("category=%D9%A1", "category"),
    ("k=", "k"),  # DRF read an empty value as "not given" (the default): not an integer (schemathesis)
    ("category=", "category"),
    ("session=", "session"),
    ("session=0b7c1f3e2d4a4c599a8e3f1b2c4d5e6f", "session"),  # the schema's uuid has its dashes
    ("session=%7B0b7c1f3e-2d4a-4c59-9a8e-3f1b2c4d5e6f%7D", "session"),
])
def test_get_refuses_what_the_schema_does_not_allow(client, catalogue, query, field):
    r = client.get(f"/api/recommendations/?{query}")
    assert (r.status_code, list(r.json())) == (400, [field])
    if field == "k":
        assert client.get(f"/api/products/{catalogue[0].pk}/similar/?{query}").status_code == 400


@pytest.mark.parametrize("body, field", [
    ({"items": ["3"]}, "items"),  # JSON types as documented: DRF turned "3", "yes" and 5 into values
    ({"items": [True]}, "items"),
    ({"items": [], "k": "6"}, "k"),
    ({"items": [], "k": 6.5}, "k"),
    ({"items": [], "explain": "yes"}, "explain"),
    ({"items": [], "exclude_seen": 1}, "exclude_seen"),
    ({"items": [], "category": "\u0663"}, "category"),
])
def test_post_takes_the_documented_json_types(client, catalogue, body, field):
    r = client.post("/api/recommendations/", body, format="json")
    assert (r.status_code, list(r.json())) == (400, [field])
    assert client.post("/api/recommendations/", {"items": [], "k": 6.0}, format="json").status_code == 200


def test_api_bodies_are_json_only(client, catalogue):
    """A form cannot say "no items" (an empty list): form bodies were read with required lists missing."""
    r = client.post("/api/recommendations/", {"items": [catalogue[0].pk]})  # multipart
    assert r.status_code == 415
    r = client.post("/api/recommendations/", "items=1", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415


def test_train_takes_the_documented_json_types(client, db):
    client.force_authenticate(_staff(["train_model"]))
    for body, field in (({"activate": "yes"}, "activate"), ({"activate": 0}, "activate"), ({"params": 5}, "params")):
        r = client.post("/api/models/train/", body, format="json")
        assert (r.status_code, list(r.json())) == (400, [field]), body
    assert TrainingRun.objects.count() == 0
