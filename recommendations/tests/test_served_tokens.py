"""Served-item tokens on the recommendations API: bound to the visit the list is served to, and what
lets that list's impressions and clicks count for the model version in the admin."""
import json
import uuid

from django.utils import timezone
from rest_framework.test import APIClient

from recommendations import serving
from recommendations.selectors import online_performance
from tracking.attribution import served_token


def test_tokens_bind_each_item_to_the_visit_version_and_source(client, gru_version, sknn_version, catalogue, activate):
    activate(gru_version)
    serving.model_reload()
    visit = str(uuid.uuid4())
    served = client.get("/api/recommendations/", {"session": visit, "k": 4}).json()
    assert served["model_version"] == "v-gru" and len(served["items"]) == 4
    for item in served["items"]:
        assert item["token"] == served_token(visit, "v-gru", item["product"]["id"], "recommended")
    # no visit to serve to: a POST of items from a client without a session, similar items alike
    posted = client.post("/api/recommendations/", {"items": [catalogue[0].pk], "k": 3}, content_type="application/json").json()
    assert [item["token"] for item in posted["items"]] == [None] * 3
    similar = client.get(f"/api/products/{catalogue[0].pk}/similar/", {"k": 3}).json()
    assert [item["token"] for item in similar["items"]] == [None] * 3

    # what tracking.js sends back for the served list counts; the same events naming a version
    # that served nothing (sknn_version was never active) count nothing
    events = [{"type": kind, "product": item["product"]["id"], "source": "recommended", "position": i,
               "model_version": version, "token": item["token"]}
              for version in ("v-gru", "v-sknn") for i, item in enumerate(served["items"])
              for kind in ("impression", "click") if kind == "impression" or i == 0]
    answer = APIClient().post("/api/events/", data=json.dumps({"session": visit, "events": events}),
                              content_type="application/json").json()
    assert [(i["index"], i["reason"]) for i in answer["ignored"]] == [(i, "unverified_attribution") for i in range(5, 10)]
    assert online_performance(["v-gru", "v-sknn"]) == {
        "v-gru": {"impressions": 4, "clicks": 1, "ctr": 0.25},
        "v-sknn": {"impressions": 0, "clicks": 0, "ctr": None},
    }


def test_a_browser_gets_tokens_of_its_own_visit(client, gru_version, catalogue, activate):
    from tracking.models import Visit
    from tracking.services import VISIT_SESSION_KEY

    activate(gru_version)
    serving.model_reload()
    visit = Visit.objects.create()
    session = client.session
    session[VISIT_SESSION_KEY] = {"pk": visit.pk, "uuid": str(visit.uuid), "last_seen": timezone.now().isoformat()}
    session.save()
    similar = client.get(f"/api/products/{catalogue[0].pk}/similar/", {"k": 3}).json()
    assert similar["items"] and all(
        item["token"] == served_token(visit.uuid, "v-gru", item["product"]["id"], "similar") for item in similar["items"])
    posted = client.post("/api/recommendations/", {"items": [catalogue[0].pk], "k": 3},
                         content_type="application/json").json()
    assert all(item["token"] == served_token(visit.uuid, "v-gru", item["product"]["id"], "recommended")
               for item in posted["items"])
