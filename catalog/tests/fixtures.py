"""Shared pytest fixtures: a clean cache per test (the catalogue caches counts and pages in it),
and a recorder standing in for tracking's event_record_for_request."""
import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def clean_cache():
    from catalog import cache as catalog_cache

    cache.clear()
    catalog_cache.forget()
    yield
    cache.clear()
    catalog_cache.forget()


@pytest.fixture
def tracked(monkeypatch):
    """Replace tracking.services.event_record_for_request (it may not exist yet) with a recorder."""
    import tracking.services

    events = []

    def record(request, event_type, product, source=""):
        events.append((event_type, product.pk, source))

    monkeypatch.setattr(tracking.services, "event_record_for_request", record, raising=False)
    return events
