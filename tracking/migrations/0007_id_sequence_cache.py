"""Event and visit ids: each connection takes sequence values 1,000 at a time (PostgreSQL).

A bulk import draws one id per event and per visit; a cached nextval is a backend-local increment
instead of a locked, WAL-logged sequence update (measured: 7% of the event COPY's server time).
The ids stay unique; they may leave gaps (values a connection did not use) and are increasing per
connection rather than across connections, which nothing relies on (ids only break ties of equal
timestamps, and a batch of events is written by one connection).
"""
from django.db import migrations

TABLES = ("tracking_event", "tracking_visit")


def _cache(schema_editor, size: int) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET CACHE {size}")


def forwards(apps, schema_editor):
    _cache(schema_editor, 1000)


def backwards(apps, schema_editor):
    _cache(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [("tracking", "0006_visit_started_brin")]

    operations = [migrations.RunPython(forwards, backwards)]
