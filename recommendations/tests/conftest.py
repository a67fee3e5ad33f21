"""Fixtures: a small catalogue, generated sessions, and small trained model versions."""
from pathlib import Path

import pytest
import torch

from catalog.models import Category, Product
from recommendations import caches, engine, registry
from recommendations.demo import sessions_generate

torch.set_num_threads(1)  # as TORCH_NUM_THREADS does in every shop process

SMALL_PARAMS = "loss=cross-entropy,layers=16,batch_size=16,n_sample=32,learning_rate=0.1,momentum=0.1,n_epochs=2"


@pytest.fixture(autouse=True)
def _isolated_serving(settings, tmp_path):
    settings.MODEL_DIR = Path(tmp_path) / "models"
    settings.MODEL_RELOAD_INTERVAL_SECONDS = 0.0
    caches.reset()
    yield
    caches.reset()


@pytest.fixture
def catalogue(db):
    cats = [Category.objects.create(name=f"Cat {c}", slug=f"cat-{c}") for c in range(3)]
    Product.objects.bulk_create(
        Product(external_id=f"p{i}", name=f"Product {i}", slug=f"product-{i}", category=cats[i % 3]) for i in range(60)
    )
    return list(Product.objects.order_by("pk"))


@pytest.fixture
def sessions(catalogue):
    return sessions_generate([(p.external_id, p.category_id) for p in catalogue], n_sessions=600, days=4, seed=3)


def version_register(kind: str, df, name: str, metrics=None):
    train, test, stats = engine.events_split(df)
    if kind == "gru4rec":
        model = engine.gru4rec_train(train, SMALL_PARAMS)
    else:
        model = engine.vsknn_train(train)
    m = metrics if metrics is not None else {"model": engine.evaluate(kind, model, test)}
    return registry.model_version_register(kind=kind, model=model, version=name, parameters={}, metrics=m,
                                           train_range=stats["train"], test_range=stats["test"])


@pytest.fixture
def gru_version(sessions):
    return version_register("gru4rec", sessions, "v-gru")


@pytest.fixture
def sknn_version(sessions):
    return version_register("vsknn", sessions, "v-sknn")


@pytest.fixture
def activate(django_capture_on_commit_callbacks):
    """Activate like production: on-commit work (the clusters build) runs when the transaction commits."""

    def _activate(mv, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return registry.model_activate(mv, **kwargs)

    return _activate
