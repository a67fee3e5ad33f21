"""Events: the ``trusted`` flag (signals count only what the shop can vouch for), the index of
served recommendation attribution, the ``record_trusted_events`` permission, and the idempotency
keys of event batches.

The flag is added with a database default, which PostgreSQL stores in the catalogue (no table
rewrite). Events recorded before it that no one can vouch for are marked untrusted: everything an
API visit sent (no client had the permission yet), and every recommendation impression or click
(none carried a served-item token, so its model version is the client's word). Purchases and views
that browsers sent through the API for their own web visit cannot be told from the storefront's;
they stay trusted and leave the popularity windows within 30 days. The attribution index is built
CONCURRENTLY on PostgreSQL (live inserts go on), hence a non-atomic migration.
"""
import importlib

from django.db import migrations, models
from django.db.models import Q
import django.utils.timezone

# The same operation as migration 0005's (re-run safe, CONCURRENTLY on PostgreSQL).
AddIndexConcurrentlyOnPostgres = importlib.import_module(
    "tracking.migrations.0005_event_visit_time_index"
).AddIndexConcurrentlyOnPostgres


def distrust_unverifiable(apps, schema_editor):
    Event = apps.get_model("tracking", "Event")
    Visit = apps.get_model("tracking", "Visit")
    Event.objects.filter(visit_id__in=Visit.objects.filter(source="api").values("id")).update(trusted=False)
    Event.objects.filter(event_type__in=["impression", "click"]).filter(
        Q(model_version__gt="") | Q(source__in=["recommended", "similar"])
    ).update(trusted=False)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("tracking", "0007_id_sequence_cache")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="trusted",
            field=models.BooleanField(db_default=True, default=True),
        ),
        migrations.RunPython(distrust_unverifiable, migrations.RunPython.noop, atomic=True),
        migrations.AlterModelOptions(
            name="event",
            options={"permissions": [
                ("record_trusted_events", "Can send trusted events (purchases, counted views, unsigned attribution)"),
            ]},
        ),
        migrations.CreateModel(
            name="EventBatchKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scope", models.CharField(max_length=64)),
                ("key", models.CharField(max_length=100)),
                ("fingerprint", models.CharField(max_length=64)),
                ("result", models.JSONField()),
                ("created", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("scope", "key"), name="eventbatchkey_scope_key")],
            },
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="event",
            index=models.Index(
                condition=models.Q(("model_version__gt", ""), ("trusted", True)),
                fields=["model_version", "event_type", "visit", "product"],
                include=["source", "is_staff"],
                name="event_served_attribution",
            ),
        ),
    ]
