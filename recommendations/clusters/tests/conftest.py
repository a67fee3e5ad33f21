"""Fixtures: a generated catalogue with a matching generated GRU4Rec model (no training)."""
from pathlib import Path

import pytest
from django.core.cache import cache

from catalog.models import Category, Product
from recommendations import caches, registry
from recommendations.clusters import synthetic

N_ITEMS = 600


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MODEL_DIR = Path(tmp_path) / "models"
    settings.MODEL_RELOAD_INTERVAL_SECONDS = 0.0
    cache.clear()
    caches.reset()
    yield
    caches.reset()
    cache.clear()


@pytest.fixture(scope="session")
def syn():
    return synthetic.structured_output(N_ITEMS, hidden=16, n_topics=12, n_categories=4, seed=0)


@pytest.fixture
def catalogue(db, syn):
    cats = [Category.objects.create(name=f"Cat {c}", slug=f"cat-{c}") for c in range(int(syn.category.max()) + 1)]
    Product.objects.bulk_create(
        Product(external_id=str(i), name=f"Product {i}", slug=f"product-{i}", category=cats[int(syn.category[i])])
        for i in range(N_ITEMS)
    )
    return {p.external_id: p for p in Product.objects.all()}


@pytest.fixture
def model(syn):
    return synthetic.structured_gru4rec(syn)


@pytest.fixture
def version(catalogue, model):
    return registry.model_version_register(kind="gru4rec", model=model, version="v-syn", parameters={}, metrics={})


@pytest.fixture
def active_version(version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_activate(version)
    version.refresh_from_db()
    return version
