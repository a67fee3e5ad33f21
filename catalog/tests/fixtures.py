"""Shared pytest fixtures: a clean cache per test (the catalogue caches counts and pages in it),
and a recorder standing in for tracking's event_record_for_visitor."""
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
    """Replace tracking.services.event_record_for_visitor (it may not exist yet) with a recorder."""
    import tracking.services

    events = []

    def record(visitor, event_type, product, source=""):
        events.append((event_type, product.pk, source))

    monkeypatch.setattr(tracking.services, "event_record_for_visitor", record, raising=False)
    return events
