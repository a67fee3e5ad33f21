"""Fixtures of the tracking tests: products, requests with sessions, the shared real data."""
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from catalog.models import Product

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_file(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"real data not available: {path} (../shared/data relative to the repository root)")
    return path


@pytest.fixture
def products(db):
    return [
        Product.objects.create(external_id=f"P{i}", name=f"Product {i}", slug=f"product-{i}") for i in range(1, 6)
    ]


@pytest.fixture
def make_request(db):
    factory = RequestFactory()

    def make(user=None, session=None):
        request = factory.get("/")
        request.session = session if session is not None else SessionStore()
        request.user = user or AnonymousUser()
        return request

    return make
