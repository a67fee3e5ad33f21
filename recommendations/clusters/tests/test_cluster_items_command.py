"""``cluster_items`` behaves like a Unix tool: a non-zero exit and one line on stderr with the fix
for each failure; the quality line says when it was not measured; the admin says the same."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from catalog.models import Product
from recommendations.clusters import services
from recommendations.models import ModelVersion


def vsknn(version="v-knn", status=ModelVersion.Status.READY):
    return ModelVersion.objects.create(version=version, kind=ModelVersion.Kind.VSKNN, status=status,
                                       artifact=f"{version}.zip", artifact_sha256="0" * 64)


@pytest.mark.django_db
@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one(version, k):
    with pytest.raises(CommandError) as err:
        call_command("cluster_items", "--k", k, "--version", "v-syn")
    assert str(err.value) == f"--k must be at least 1 (got {k}); leave it out for sqrt(n/2) clusters"


@pytest.mark.django_db
def test_unknown_version_names_the_ones_there_are(version):
    vsknn()  # not offered: it cannot be clustered
    with pytest.raises(CommandError) as err:
        call_command("cluster_items", "--version", "nope")
    assert str(err.value) == ("unknown model version 'nope': the latest GRU4Rec versions are v-syn "
                              "(or leave --version out for the active one)")


@pytest.mark.django_db
def test_unknown_version_without_any_gru4rec_version(db):
    with pytest.raises(CommandError) as err:
        call_command("cluster_items", "--version", "nope")
    assert str(err.value) == ("unknown model version 'nope': there is no GRU4Rec version "
                              "(or leave --version out for the active one)")


@pytest.mark.django_db
def test_version_without_embeddings(db):
    vsknn(status=ModelVersion.Status.ACTIVE)
    message = ("v-knn is a V-SKNN (session kNN) model, which has no item embeddings to cluster: pass --version "
               "with a GRU4Rec version (every training run registers one)")
    for args in (("--version", "v-knn"), ()):  # named, or the active one
        with pytest.raises(CommandError) as err:
            call_command("cluster_items", *args)
        assert str(err.value) == message


@pytest.mark.django_db
def test_no_active_version(db):
    with pytest.raises(CommandError) as err:
        call_command("cluster_items")
    assert str(err.value) == ("no active model version: train one (manage.py train_model --activate) "
                              "or name one with --version")


@pytest.mark.django_db
def test_missing_artifact_is_one_line_not_a_traceback(version):
    (Path(settings.MODEL_DIR) / version.artifact).unlink()
    with pytest.raises(CommandError) as err:
        call_command("cluster_items", "--version", "v-syn", "--no-index")
    assert str(err.value).startswith("cannot load v-syn: ") and "artifact file missing" in str(err.value)


def test_exit_status_and_stderr_of_a_real_process(tmp_path):
    """What a shell sees: exit status 1, the error as the only stderr line, nothing on stdout."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}", "SHOP_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "manage.py", "cluster_items", "--k", "0"], cwd=settings.BASE_DIR,
                          env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", "CommandError: --k must be at least 1 (got 0); leave it out for sqrt(n/2) clusters\n")


@pytest.mark.django_db
def test_without_categories_the_command_and_the_admin_say_not_measured(active_version, capsys, client):
    Product.objects.update(category=None)
    call_command("cluster_items", "--k", "4", "--no-index")
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "quality not measured: the catalogue has no categories for these items",
        "4 clusters of 600 items (600 catalogue products) for v-syn: "
        "quality not measured: the catalogue has no categories for these items",
    ]
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    html = client.get("/admin/clusters/itemclustering/").content.decode()
    assert '<td class="field-quality">- (not measured: the catalogue has no categories for these items)</td>' in html
    assert '<td class="field-n_categorised">0</td>' in html


@pytest.mark.django_db
def test_admin_shows_the_measured_quality_and_the_composition(active_version, client):
    cl = services.clusters_build(active_version, k=4)
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    html = client.get("/admin/clusters/itemclustering/").content.decode()
    expected = f"{100 * cl.dominant_share:.1f}% ({100 * cl.random_share:.1f}%)"
    assert f'<td class="field-quality">{expected}</td>' in html
    assert f"<div class=\"readonly\">{expected}</div>" in client.get(
        f"/admin/clusters/itemclustering/{cl.pk}/change/").content.decode()
    clusters = client.get("/admin/clusters/itemcluster/").content.decode()
    for c in cl.clusters.all():
        assert f'<td class="field-composition">{c.composition}</td>' in clusters and "%" in c.composition
