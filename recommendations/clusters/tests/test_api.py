"""Cluster API and the "Browse by taste" pages."""
import pytest

from recommendations.clusters import services


@pytest.fixture
def built(active_version):
    services.clusters_build(active_version, k=4)
    return active_version


@pytest.mark.django_db
def test_cluster_list_of_active_version(client, built):
    r = client.get("/api/clusters/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 4
    first = body["results"][0]
    assert set(first) == {"id", "label", "size", "dominant_category", "dominant_share", "model_version", "samples"}
    assert first["model_version"] == "v-syn" and len(first["samples"]) == 4
    sizes = [c["size"] for c in body["results"]]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 600


@pytest.mark.django_db
def test_cluster_detail_paginates_products(client, built):
    cid = client.get("/api/clusters/").json()["results"][0]["id"]
    r = client.get(f"/api/clusters/{cid}/?version=v-syn")
    assert r.status_code == 200
    body = r.json()
    assert list(body)[0] == "cluster" and body["cluster"]["id"] == cid
    assert len(body["results"]) == 20 and body["count"] == body["cluster"]["size"]
    assert {"id", "external_id", "name", "category"} <= set(body["results"][0])


@pytest.mark.django_db
def test_cluster_api_404s(client, built):
    assert client.get("/api/clusters/?version=nope").status_code == 404
    assert client.get("/api/clusters/99/").status_code == 404


@pytest.mark.django_db
def test_cluster_api_bad_version_is_a_400_with_the_field(client, built):
    """A NUL in ``version`` was a 500 (PostgreSQL text cannot hold it; found by the fuzz test)."""
    for path in ("/api/clusters/", "/api/clusters/1/"):
        for bad in ("%00", "v%00syn", "x" * 65):
            r = client.get(f"{path}?version={bad}")
            assert r.status_code == 400, (path, bad)
            assert "version" in r.json()
    assert client.get("/api/clusters/?version=").status_code == 200  # empty: the active version, as before


@pytest.mark.django_db
def test_taste_pages(client, built):
    r = client.get("/taste/")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.count('class="product-card"') == 16
    assert 'data-source="cluster"' in html and 'data-model-version="v-syn"' in html and 'class="product-link"' in html
    cid = client.get("/api/clusters/").json()["results"][0]["id"]
    r = client.get(f"/taste/{cid}/?page=2")
    assert r.status_code == 200
    assert 'data-position="24"' in r.content.decode()
    assert client.get("/taste/999/").status_code == 404


@pytest.mark.django_db
def test_taste_page_without_clusters(client, db):
    r = client.get("/taste/")
    assert r.status_code == 200 and "No taste groups yet" in r.content.decode()
