"""Time-range index on events: BRIN on PostgreSQL (tiny, and events arrive in time order), btree elsewhere."""
from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS event_timestamp_brin ON tracking_event USING brin (timestamp) "
            "WITH (pages_per_range = 32)"
        )
    else:
        schema_editor.execute("CREATE INDEX IF NOT EXISTS event_timestamp_brin ON tracking_event (timestamp)")


def backwards(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS event_timestamp_brin")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
