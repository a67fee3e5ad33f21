"""TrainingRun.task_id is gone (nothing read it: a run's row is its status, and tasks are published
without a chosen id); ModelVersion.Status loses TRAINING (no code ever set it). The artifact column
holds storage names (recommendations.artifacts): a row that holds an absolute host path gets the
file's name under MODEL_DIR."""
from pathlib import PurePath

from django.conf import settings
from django.db import migrations, models


def artifact_paths_to_names(apps, schema_editor):
    ModelVersion = apps.get_model("recommendations", "ModelVersion")
    model_dir = PurePath(str(settings.MODEL_DIR))
    for pk, artifact in ModelVersion.objects.filter(artifact__startswith="/").values_list("pk", "artifact"):
        path = PurePath(artifact)
        try:
            name = path.relative_to(model_dir).as_posix()
        except ValueError:  # a path outside MODEL_DIR: its file name is the content-addressed name
            name = path.name
        ModelVersion.objects.filter(pk=pk).update(artifact=name)


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0003_trainingrun_loss_curve"),
    ]

    operations = [
        migrations.RemoveField(model_name="trainingrun", name="task_id"),
        migrations.AlterField(
            model_name="modelversion",
            name="status",
            field=models.CharField(
                choices=[("ready", "Ready"), ("active", "Active"), ("retired", "Retired")],
                db_index=True, default="ready", max_length=16,
            ),
        ),
        migrations.RunPython(artifact_paths_to_names, migrations.RunPython.noop),
    ]
