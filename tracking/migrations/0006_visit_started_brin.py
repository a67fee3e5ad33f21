"""Visits: a BRIN index on started instead of a btree on PostgreSQL (no index elsewhere).

No query of the shop reads visits by start time through an index; the index is kept for time-range
scans of visits, which a BRIN serves at a fraction of the cost: a bulk import creates a visit for
every four events, and the btree cost about a fifth of each visit insert.
"""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS visit_started_brin ON tracking_visit USING brin (started) "
            "WITH (pages_per_range = 32)"
        )
    schema_editor.execute("DROP INDEX IF EXISTS visit_started")


def backwards(apps, schema_editor):
    schema_editor.execute("CREATE INDEX IF NOT EXISTS visit_started ON tracking_visit (started)")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS visit_started_brin")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0005_event_visit_time_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="visit", name="visit_started")],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
