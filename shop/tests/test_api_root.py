"""The API root lists every endpoint a client starts from, not only the catalogue's two."""
import pytest


@pytest.mark.django_db
def test_api_root_lists_every_endpoint(client):
    body = client.get("/api/", HTTP_ACCEPT="application/json").json()
    assert body == {
        "products": "http://testserver/api/products/", "categories": "http://testserver/api/categories/",
        "events": "http://testserver/api/events/", "recommendations": "http://testserver/api/recommendations/",
        "clusters": "http://testserver/api/clusters/", "models": "http://testserver/api/models/",
        "train": "http://testserver/api/models/train/", "experiments": "http://testserver/api/experiments/",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
    }
