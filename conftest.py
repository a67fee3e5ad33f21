"""Fixtures shared by every app's tests: a live shop (gunicorn, several processes, production
mode) on the test database, for race and fault tests with real parallel requests."""
import pytest
from django.db import connection

from tests import live


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.postgresql(reason=...)``: the test needs PostgreSQL (make test-postgres) and is
    skipped, with its reason, on the SQLite pass (make test-sqlite, the embedded default)."""
    if connection.vendor == "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("postgresql")
        if marker is not None:
            reason = marker.kwargs.get("reason") or "PostgreSQL-only behaviour"
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL: {reason}"))


@pytest.fixture(autouse=True)
def _catalog_version_per_test(monkeypatch):
    """The catalogue's cache version is a database row: each test reads its own database's, and
    keeps it until it changes the catalogue itself (the re-read every VERSION_MEMO_SECONDS that shows
    other processes' changes is tested on its own), so query counts do not depend on timing."""
    from catalog import cache as catalog_cache

    catalog_cache.forget()
    monkeypatch.setattr(catalog_cache, "VERSION_MEMO_SECONDS", float("inf"))


@pytest.fixture(autouse=True)
def _popular_pools_per_test():
    """Recommendations' popular pools live for minutes (in the process and in the cache): each test
    builds its own from its own data, never an earlier test's, whose product ids SQLite gives out
    again after the rollback (PostgreSQL's sequences do not go back, which hid it there)."""
    from django.core.cache import cache

    from recommendations import selectors as recommendation_selectors
    from recommendations.clusters import services as cluster_services

    recommendation_selectors._popular_memo.clear()
    cache.delete(cluster_services.POOLS_KEY)


@pytest.fixture(autouse=True, scope="session")
def _training_in_request():
    """Training runs execute inside the request that queues them (eager Celery), so a test sees
    the finished run; the background thread of the embedded mode has tests of its own."""
    from django.conf import settings

    settings.TRAINING_IN_THREAD = False


@pytest.fixture(scope="session")
def live_var_dir(tmp_path_factory):
    """One var/ for every live server of the run: collectstatic (production's hashed, compressed
    files: ~40 s of CPU) then runs once per test run, not once per module."""
    return tmp_path_factory.mktemp("live-var")


@pytest.fixture(scope="module")
def live_shop(django_db_setup, django_db_blocker, live_var_dir, tmp_path_factory):
    """gunicorn with 3 worker processes on the test database; tests that use it need
    ``transactional_db`` (their data must be committed to be seen by the server)."""
    if connection.vendor != "postgresql":
        pytest.skip("the live shop runs on PostgreSQL (make test sets DATABASE_URL)")
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    shop = live.start(settings_dict, live_var_dir, extra_env={"MODEL_DIR": str(tmp_path_factory.mktemp("live-models"))})
    yield shop
    shop.stop()
