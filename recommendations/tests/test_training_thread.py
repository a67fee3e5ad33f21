"""Without a broker (the embedded demo) a training run runs in a background thread of the web
process: the request that asks for it answers at once and says truthfully where the run is."""
import threading
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from rest_framework.test import APIClient

from recommendations import training
from recommendations.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)  # the run's thread has its own connection


def _trainer():
    user = User.objects.create_user(f"t{uuid.uuid4().hex[:8]}", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["train_model", "view_trainingrun", "view_modelversion"],
        content_type__app_label="recommendations"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def held_training(monkeypatch, settings):
    """The training service blocked until released, recording the thread that ran it."""
    settings.TRAINING_IN_THREAD = True
    started, release, seen = threading.Event(), threading.Event(), {}

    def execute(run_id, progress=False):
        seen["thread"] = threading.current_thread()
        seen["run"] = run_id
        TrainingRun.objects.filter(pk=run_id).update(status=TrainingRun.Status.RUNNING, stage="held")
        started.set()
        assert release.wait(30), "the test never released the run"
        TrainingRun.objects.filter(pk=run_id).update(status=TrainingRun.Status.SUCCEEDED, stage="done")
        return TrainingRun.objects.get(pk=run_id)

    monkeypatch.setattr(training, "training_run_execute", execute)
    yield started, release, seen
    release.set()
    if "thread" in seen:
        seen["thread"].join(30)


def test_api_answers_202_while_the_run_is_still_to_do(held_training, settings):
    started, release, seen = held_training
    client = APIClient()
    client.force_authenticate(_trainer())
    r = client.post("/api/models/train/", {"activate": False}, format="json")
    assert r.status_code == 202, r.content
    body = r.json()
    # The answer came while the run was held: it cannot say "succeeded".
    assert body["status"] in ("queued", "running") and body["finished_at"] is None
    assert started.wait(30), "the run never started in the background"
    assert seen["run"] == body["id"] and seen["thread"] is not threading.current_thread()
    assert seen["thread"].daemon
    assert client.get(f"/api/training-runs/{body['id']}/").json()["status"] == "running"
    release.set()
    seen["thread"].join(30)
    assert client.get(f"/api/training-runs/{body['id']}/").json()["status"] == "succeeded"


def test_admin_retrain_returns_before_the_run_ends(held_training, settings, client):
    started, release, seen = held_training
    client.force_login(_trainer())
    r = client.post(reverse("admin:recommendations_modelversion_train"), follow=True)
    assert r.status_code == 200
    run = TrainingRun.objects.get()
    url = reverse("admin:recommendations_trainingrun_change", args=[run.pk])
    assert f'Training run <a href="{url}">{run.pk}</a> queued.' in r.content.decode()
    assert started.wait(30)
    assert TrainingRun.objects.get().status == TrainingRun.Status.RUNNING  # the page came back first
