"""Migrations 0005 (plain (visit, timestamp) index instead of the unique dedup index), 0006 (BRIN
on visit.started) and 0007 (id sequence cache) on a database that already holds imported events."""
from datetime import datetime, timezone

import pytest
from django.db import connection

from tracking.importers import import_file, visit_uuid_for
from tracking.models import Event
from tests.migrations import migrate

BEFORE = [("tracking", "0004_visit_user_partial_index")]


def _indexes() -> dict:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, "tracking_event")


@pytest.mark.django_db(transaction=True)
def test_events_survive_the_index_change_and_reimports_stay_idempotent(tmp_path):
    apps = migrate(BEFORE)
    try:
        assert "event_visit_time_dedup" in _indexes()
        Product = apps.get_model("catalog", "Product")
        Visit = apps.get_model("tracking", "Visit")
        OldEvent = apps.get_model("tracking", "Event")
        product = Product.objects.create(external_id="214536500", name="Item", slug="item-214536500")
        stamp = datetime(2014, 4, 7, 10, 51, 9, 277000, tzinfo=timezone.utc)
        visit = Visit.objects.create(uuid=visit_uuid_for("yoochoose", "1"), started=stamp, last_seen=stamp,
                                     source="import")
        OldEvent.objects.create(visit=visit, product=product, event_type="view", timestamp=stamp, import_seq=0)
        OldEvent.objects.create(visit=visit, product=product, event_type="view", timestamp=stamp)  # live
    finally:
        migrate()  # every app back to its latest migration
    indexes = _indexes()
    assert "event_visit_time_dedup" not in indexes
    assert indexes["event_visit_time"]["columns"] == ["visit_id", "timestamp"]
    assert not indexes["event_visit_time"]["unique"]
    assert Event.objects.count() == 2
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            visit_indexes = connection.introspection.get_constraints(cursor, "tracking_visit")
            assert visit_indexes["visit_started_brin"]["type"] == "brin" and "visit_started" not in visit_indexes
            cursor.execute("SELECT seqcache FROM pg_sequence WHERE seqrelid = 'tracking_event_id_seq'::regclass")
            assert cursor.fetchone()[0] == 1000
    # the row imported before the migration is recognised, the new one is added
    path = tmp_path / "a.dat"
    path.write_text("1,2014-04-07T10:51:09.277Z,214536500,0\n1,2014-04-07T10:52:00.000Z,214536500,0\n")
    stats = import_file(str(path))
    assert (stats.imported, stats.duplicates, stats.visits_created) == (1, 1, 0)
    assert Event.objects.count() == 3
