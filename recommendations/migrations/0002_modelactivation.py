"""The activation history (roll back walks it); earlier activations are rebuilt from activated_at."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def history_from_activated_at(apps, schema_editor):
    ModelVersion = apps.get_model("recommendations", "ModelVersion")
    ModelActivation = apps.get_model("recommendations", "ModelActivation")
    previous = None
    for mv in ModelVersion.objects.filter(activated_at__isnull=False).order_by("activated_at", "id"):
        row = ModelActivation.objects.create(
            version=mv, version_name=mv.version, previous=previous,
            previous_name=previous.version if previous else "", action="activate", by_id=mv.activated_by_id,
        )
        ModelActivation.objects.filter(pk=row.pk).update(at=mv.activated_at)
        previous = mv


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ModelActivation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("version_name", models.CharField(max_length=64)),
                ("previous_name", models.CharField(blank=True, max_length=64)),
                ("action", models.CharField(choices=[("activate", "Activate"), ("rollback", "Roll back")],
                                            default="activate", max_length=16)),
                ("undone", models.BooleanField(default=False)),
                ("at", models.DateTimeField(auto_now_add=True)),
                ("by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                         related_name="+", to=settings.AUTH_USER_MODEL)),
                ("previous", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                               related_name="+", to="recommendations.modelversion")),
                ("version", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                              related_name="activations", to="recommendations.modelversion")),
            ],
            options={"ordering": ["-at", "-id"]},
        ),
        migrations.RunPython(history_from_activated_at, migrations.RunPython.noop),
    ]
