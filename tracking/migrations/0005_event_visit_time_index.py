"""Events: a plain (visit, timestamp) index instead of the unique (visit, timestamp, product, type,
import_seq) one. Re-imports are recognised by the import ledger and the importer's anti-join, so
the event table no longer pays a wide unique index on every row.

On PostgreSQL the new index is built CONCURRENTLY (live event inserts go on while it is built on a
table of tens of millions of rows), hence a non-atomic migration; it is in place before the old
index goes, so "a visit's events in time order" always has an index.
"""
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """AddIndex, built CONCURRENTLY on PostgreSQL (after dropping an invalid leftover of an
    interrupted run); a plain AddIndex elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                [self.index.name],
            )
            row = cursor.fetchone()
        if row is not None:
            if not row[0]:
                return  # built by an earlier run that stopped before recording the migration
            schema_editor.execute(f"DROP INDEX CONCURRENTLY {schema_editor.quote_name(self.index.name)}")
        model = to_state.apps.get_model(app_label, self.model_name)
        schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("tracking", "0004_visit_user_partial_index")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="event", index=models.Index(fields=["visit", "timestamp"], name="event_visit_time")
        ),
        migrations.RemoveConstraint(model_name="event", name="event_visit_time_dedup"),
    ]
