"""Admin pages of clusters render with sizes and sample products; the schema documents the API."""
import pytest
from django.contrib.auth import get_user_model

from recommendations.clusters import services


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_cluster_admin_lists_sizes_and_samples(admin_client, active_version):
    services.clusters_build(active_version, k=4)
    r = admin_client.get("/admin/clusters/itemcluster/")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.count("/admin/catalog/product/") >= 16  # 4 sample links per cluster
    assert admin_client.get("/admin/clusters/itemclustering/").status_code == 200


@pytest.mark.django_db
def test_schema_documents_cluster_endpoints(client):
    r = client.get("/api/schema/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "/api/clusters/" in body and "/api/clusters/{cluster_id}/" in body
