"""Model files go through Django's storage API: written once under their content hash, read by
torch from a local copy when the storage has no local path."""
import pytest
from django.core.files.storage import InMemoryStorage

from recommendations import artifacts, caches, ranking, registry, serving
from recommendations.tests.conftest import version_register


def test_a_version_is_stored_once_by_content_hash_under_model_dir(gru_version, settings):
    assert artifacts.local_path(gru_version) == settings.MODEL_DIR / gru_version.artifact
    assert gru_version.artifact.startswith("gru4rec-v-gru-") and gru_version.artifact_sha256[:16] in gru_version.artifact
    assert "/" not in gru_version.artifact  # a storage name, never a host path
    # the same content under the same name is not written again (no "_abc123" copy beside it)
    name, digest, size = artifacts.file_write(lambda d: gru_version.artifact,
                                              lambda p: p.write_bytes(artifacts.local_path(gru_version).read_bytes()))
    assert (name, digest, size) == (gru_version.artifact, gru_version.artifact_sha256, gru_version.artifact_size)
    assert sorted(p.name for p in settings.MODEL_DIR.iterdir() if not p.name.startswith(".")) == [gru_version.artifact]


@pytest.mark.django_db
def test_a_remote_storage_is_served_from_a_local_copy(sessions, catalogue, settings, tmp_path, activate,
                                                      django_capture_on_commit_callbacks):
    settings.STORAGES = {**settings.STORAGES, "models": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    settings.MODEL_CACHE_DIR = tmp_path / "model-cache"
    assert isinstance(artifacts.storage(), InMemoryStorage)
    mv = version_register("gru4rec", sessions, "v-remote")
    assert not settings.MODEL_DIR.exists()  # nothing written to the local model folder
    activate(mv)
    caches.reset()
    bundle = serving.model_reload()
    assert bundle.version == "v-remote"
    assert artifacts.local_path(mv) == settings.MODEL_CACHE_DIR / mv.artifact
    assert ranking.recommend_for_session(items=[catalogue[0].pk], k=3).strategy == "gru4rec"
    registry.model_activate(version_register("vsknn", sessions, "v-other"))
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_version_delete(mv)
    assert not artifacts.exists(mv.artifact)
    assert not (settings.MODEL_CACHE_DIR / mv.artifact).exists()  # nor this process's copy
