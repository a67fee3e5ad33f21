"""Migration 0008 on a database with events: what no one could vouch for becomes untrusted."""
from datetime import datetime, timezone

import pytest
from django.db import connection

from recommendations.selectors import online_performance
from tracking.models import Event
from tests.migrations import migrate

BEFORE = [("tracking", "0007_id_sequence_cache")]


@pytest.mark.django_db(transaction=True)
def test_unverifiable_events_are_untrusted_after_the_migration():
    apps = migrate(BEFORE)
    try:
        Product = apps.get_model("catalog", "Product")
        Visit = apps.get_model("tracking", "Visit")
        OldEvent = apps.get_model("tracking", "Event")
        product = Product.objects.create(external_id="1", name="Item", slug="item-1")
        stamp = datetime(2025, 1, 1, tzinfo=timezone.utc)
        visits = {source: Visit.objects.create(source=source, started=stamp, last_seen=stamp)
                  for source in ("web", "api", "import")}

        def event(visit, kind, **extra):
            return OldEvent.objects.create(visit=visits[visit], product=product, event_type=kind, timestamp=stamp,
                                           **extra).pk

        ids = {
            "web purchase": event("web", "purchase", source="cart"),
            "web view": event("web", "view"),
            "web impression, attributed": event("web", "impression", source="recommended", model_version="v1"),
            "web click, attributed": event("web", "click", source="similar", model_version="v1"),
            "web click, grid": event("web", "click", source="grid"),
            "api purchase": event("api", "purchase"),
            "api view": event("api", "view"),
            "import purchase": event("import", "purchase", import_seq=0),
        }
    finally:
        migrate()  # every app back to its latest migration
    trusted = dict(Event.objects.values_list("pk", "trusted"))
    assert {name: trusted[pk] for name, pk in ids.items()} == {
        "web purchase": True, "web view": True, "web impression, attributed": False, "web click, attributed": False,
        "web click, grid": True, "api purchase": False, "api view": False, "import purchase": True,
    }
    assert online_performance(["v1"]) == {"v1": {"impressions": 0, "clicks": 0, "ctr": None}}
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "tracking_event")
    included = ["source", "is_staff"] if connection.features.supports_covering_indexes else []  # not SQLite
    assert indexes["event_served_attribution"]["columns"] == [
        "model_version", "event_type", "visit_id", "product_id", *included]  # the last two INCLUDEd
