"""/taste/ says what is true in each case: no active model, an active model without item embeddings
(V-SKNN: then the latest GRU4Rec model's groups, if any), groups not built yet; groups have
shopper-facing names."""
import re

import pytest

from recommendations.clusters import services
from recommendations.models import ModelVersion


def state_line(html: str) -> str:
    return re.search(r'<p class="empty" id="taste-state"[^>]*>.*?</p>', html, re.S).group(0)


def make_vsknn_active():
    ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).update(status=ModelVersion.Status.RETIRED)
    return ModelVersion.objects.create(version="v-knn", kind=ModelVersion.Kind.VSKNN,
                                       status=ModelVersion.Status.ACTIVE, artifact="v-knn.zip",
                                       artifact_sha256="0" * 64)


@pytest.mark.django_db
def test_no_active_model(client, version):
    services.clusters_build(version, k=4)  # a ready, not active, GRU4Rec version's groups are not shown
    assert state_line(client.get("/taste/").content.decode()) == (
        '<p class="empty" id="taste-state" data-state="no_model">'
        "No taste groups yet: they appear once a recommendation model is active.</p>")


@pytest.mark.django_db
def test_active_gru4rec_without_clusters_yet(client, active_version):
    services.ItemClustering.objects.all().delete()  # the build after the activation has not run yet
    assert state_line(client.get("/taste/").content.decode()) == (
        '<p class="empty" id="taste-state" data-state="not_built">'
        "No taste groups yet: the groups of the current recommendation model (v-syn) are not built yet. "
        "They appear here once they are.</p>")


@pytest.mark.django_db
def test_active_vsknn_and_no_gru4rec_groups(client, db):
    make_vsknn_active()
    html = client.get("/taste/").content.decode()
    assert state_line(html) == (
        '<p class="empty" id="taste-state" data-state="no_embeddings">'
        "No taste groups: the current recommendation model (v-knn) is a V-SKNN (session kNN) model, which does "
        "not group products. Taste groups come from a GRU4Rec model, and none has its groups built yet.</p>")
    assert "once a recommendation model is active" not in html  # the old, untrue, message


@pytest.mark.django_db
def test_active_vsknn_shows_the_latest_gru4rec_groups(client, active_version):
    cl = services.clusters_build(active_version, k=4)
    make_vsknn_active()
    html = client.get("/taste/").content.decode()
    assert 'id="taste-state"' not in html
    assert ('<p class="result-info">Products that shoppers treat alike, grouped by GRU4Rec model v-syn '
            "(the current recommendations come from V-SKNN (session kNN) model v-knn, which does not group "
            "products) · page 1 of 1</p>") in html
    assert html.count('class="product-card"') == 16 and 'data-model-version="v-syn"' in html
    first = cl.clusters.order_by("-size", "cluster_id").first()
    assert f'<a href="/taste/{first.cluster_id}/">{first.label}</a>' in html
    page = client.get(f"/taste/{first.cluster_id}/")  # the links lead to the same groups
    assert page.status_code == 200 and f"<h1>{first.label}</h1>" in page.content.decode()


@pytest.mark.django_db
def test_group_names_are_words_not_percentages(client, active_version):
    services.clusters_build(active_version, k=4)
    html = client.get("/taste/").content.decode()
    headings = re.findall(r'<h2 id="cluster-\d+"><a href="/taste/\d+/">([^<]*)</a>', html)
    assert len(headings) == 4 and all(h and "%" not in h for h in headings)
