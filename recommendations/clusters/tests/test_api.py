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


@pytest.mark.django_db
def test_cluster_api_version_ids_are_ascii_digits(client, built):
    """'¹' passes isdigit() but not int() (a 500); '١' (Arabic-Indic 1) was taken as version id 1."""
    arabic = "".join(chr(0x660 + int(d)) for d in str(built.pk))
    assert client.get(f"/api/clusters/?version={built.pk}").status_code == 200
    for path in ("/api/clusters/", "/api/clusters/0/"):
        for raw in ("%C2%B9", arabic, f"{built.pk}%C2%B9"):
            r = client.get(f"{path}?version={raw}")
            assert (r.status_code, r.json()) == (404, {"detail": "no clusters for this model version"}), (path, raw)
    from recommendations.selectors import model_version_get

    assert model_version_get("\u00b9") is None and model_version_get(arabic) is None
    assert model_version_get(str(built.pk)) == built


@pytest.mark.django_db
def test_clusters_without_categories_match_the_schema(client, built, catalogue):
    """A cluster's dominant category and a product's category are nullable: the schema said strings."""
    from catalog.models import Category

    Category.objects.all().delete()  # SET_NULL on products and clusters alike
    clusters = client.get("/api/clusters/").json()["results"]
    assert {c["dominant_category"] for c in clusters} == {None}
    detail = client.get(f"/api/clusters/{clusters[0]['id']}/").json()
    assert detail["cluster"]["dominant_category"] is None and {p["category"] for p in detail["results"]} == {None}
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert schema["Cluster"]["properties"]["dominant_category"].get("nullable") is True
    assert schema["ClusterProduct"]["properties"]["category"].get("nullable") is True


@pytest.mark.django_db
def test_taste_page_numbers_are_ascii_digits(client, built):
    cid = client.get("/api/clusters/").json()["results"][0]["id"]
    assert 'data-position="24"' in client.get(f"/taste/{cid}/?page=2").content.decode()
    page = client.get(f"/taste/{cid}/?page=%D9%A2").content.decode()  # Arabic-Indic 2: the first page
    assert 'data-position="0"' in page and 'data-position="24"' not in page
