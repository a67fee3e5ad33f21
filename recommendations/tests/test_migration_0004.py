"""Migration 0004: registry rows that held a host path hold the storage name afterwards, and
TrainingRun.task_id is gone."""
import pytest
from tests.migrations import migrate

BEFORE = [("recommendations", "0003_trainingrun_loss_curve")]


@pytest.mark.django_db(transaction=True)
def test_artifact_paths_become_storage_names(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    apps = migrate(BEFORE)
    try:
        ModelVersion = apps.get_model("recommendations", "ModelVersion")
        TrainingRun = apps.get_model("recommendations", "TrainingRun")
        rows = {
            "v-name": "gru4rec-v-name-0123456789abcdef.safetensors",
            "v-inside": f"{settings.MODEL_DIR}/vsknn-v-inside-0123456789abcdef.zip",
            "v-outside": "/srv/old-models/gru4rec-v-outside-fedcba9876543210.safetensors",
        }
        for version, artifact in rows.items():
            ModelVersion.objects.create(version=version, kind="gru4rec", artifact=artifact, artifact_sha256="0" * 64)
        TrainingRun.objects.create(params="n_epochs=1", task_id="c0ffee")
    finally:
        apps = migrate()
    ModelVersion = apps.get_model("recommendations", "ModelVersion")
    assert dict(ModelVersion.objects.values_list("version", "artifact")) == {
        "v-name": "gru4rec-v-name-0123456789abcdef.safetensors",
        "v-inside": "vsknn-v-inside-0123456789abcdef.zip",
        "v-outside": "gru4rec-v-outside-fedcba9876543210.safetensors",
    }
    run_fields = {f.name for f in apps.get_model("recommendations", "TrainingRun")._meta.get_fields()}
    assert "task_id" not in run_fields and "params" in run_fields
